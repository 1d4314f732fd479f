// A tiny OpenID Connect provider for "Test Connection" and for failed sign-ins: it serves
// /.well-known/openid-configuration and /jwks (one RSA public key) on 127.0.0.1:0, an /authorize
// that sends the browser straight back to the redirect URI (with a code and the state, or with
// the error set in `authorizeError`), and a /token that checks the client credentials
// (client_secret_basic against `clientSecret`, when set) and then refuses every code. It never
// logs anybody in; the login flow itself is tested elsewhere against a real provider.
//
// Mutable on the returned object: `clientSecret` (null: any secret is accepted),
// `authorizeError` (null, or {error, error_description} for /authorize to answer with).
import crypto from 'node:crypto';
import http from 'node:http';

export async function startIdp({ clientSecret = null } = {}) {
  const { publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'browser-test-key', use: 'sig', alg: 'RS256' };
  let issuer = '';
  const requests = [];

  const idp = {
    issuer: '',
    requests,
    clientSecret,
    authorizeError: null,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };

  /** The client id and secret of a `client_secret_basic` header (each form-urlencoded). */
  function basicCredentials(header) {
    const m = /^Basic\s+(\S+)$/i.exec(header || '');
    if (!m) return null;
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return null;
    const unform = (s) => decodeURIComponent(s.replace(/\+/g, ' '));
    try {
      return { id: unform(decoded.slice(0, colon)), secret: unform(decoded.slice(colon + 1)) };
    } catch {
      return null;
    }
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const path = url.pathname;
    requests.push(path);
    const send = (status, body, headers = {}) => {
      res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers });
      res.end(JSON.stringify(body));
    };
    if (path === '/.well-known/openid-configuration') {
      return send(200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        userinfo_endpoint: `${issuer}/userinfo`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        code_challenge_methods_supported: ['S256'],
        grant_types_supported: ['authorization_code'],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
        scopes_supported: ['openid', 'profile', 'email'],
        claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nonce', 'email', 'email_verified', 'name'],
      });
    }
    if (path === '/jwks') return send(200, { keys: [jwk] });
    if (path === '/authorize' && req.method === 'GET') {
      let back;
      try {
        back = new URL(url.searchParams.get('redirect_uri') || '');
      } catch {
        return send(400, { error: 'invalid_request', error_description: 'no redirect_uri' });
      }
      const state = url.searchParams.get('state');
      if (idp.authorizeError) {
        for (const [key, value] of Object.entries(idp.authorizeError)) back.searchParams.set(key, value);
      } else {
        back.searchParams.set('code', crypto.randomBytes(16).toString('hex'));
      }
      if (state !== null) back.searchParams.set('state', state);
      res.writeHead(302, { Location: back.href, 'Cache-Control': 'no-store' });
      return res.end();
    }
    if (path === '/token' && req.method === 'POST') {
      req.resume();
      return req.on('end', () => {
        const credentials = basicCredentials(req.headers.authorization);
        if (!credentials || (idp.clientSecret !== null && credentials.secret !== idp.clientSecret)) {
          return send(
            401,
            { error: 'invalid_client', error_description: 'Client authentication failed: the client secret is not valid.' },
            { 'WWW-Authenticate': 'Basic realm="test-idp"' },
          );
        }
        return send(400, { error: 'invalid_grant', error_description: 'this test provider issues no tokens' });
      });
    }
    return send(404, { error: 'not_found' });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${server.address().port}`;
  idp.issuer = issuer;
  return idp;
}
