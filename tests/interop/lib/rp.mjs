// A throwaway relying party over fetch: drives the provider's code flow (PKCE S256, the scripted
// login form, client_secret_basic) without a browser. Used by the provider self-test, so a failing
// daemon scenario can be told apart from a broken provider.

import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

class Jar {
  constructor() {
    this.cookies = new Map();
  }
  store(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(line) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

function decodeJwt(jwt) {
  const [h, p, s] = jwt.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString()),
    payload: JSON.parse(Buffer.from(p, 'base64url').toString()),
    signingInput: `${h}.${p}`,
    signature: Buffer.from(s, 'base64url'),
  };
}

/**
 * Runs one authorization code flow. Returns { code, callbackParams, tokens, idToken: {header,
 * payload}, signatureValid, userinfo, discovery, jwks }. Options: issuer, client {client_id,
 * client_secret, redirect_uri}, login, password, scope, pkce (false to omit it: expect an error).
 */
export async function codeFlow({ issuer, client, login, password = 'secret', scope = 'openid profile email', pkce = true }) {
  const jar = new Jar();
  const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  const state = b64url(randomBytes(16));
  const nonce = b64url(randomBytes(16));
  const auth = new URL(discovery.authorization_endpoint);
  auth.search = new URLSearchParams({
    client_id: client.client_id,
    response_type: 'code',
    redirect_uri: client.redirect_uri,
    scope,
    state,
    nonce,
    ...(pkce ? { code_challenge: challenge, code_challenge_method: 'S256' } : {}),
  }).toString();

  // Follow redirects by hand, filling the login form when it shows, until the redirect URI.
  let url = auth.toString();
  let method = 'GET';
  let body;
  for (let hop = 0; hop < 15; hop += 1) {
    if (url.startsWith(client.redirect_uri)) {
      const params = new URL(url).searchParams;
      if (params.get('error')) return { error: params.get('error'), callbackParams: params, discovery };
      if (params.get('state') !== state) throw new Error('state mismatch');
      const basic = Buffer.from(
        `${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`,
      ).toString('base64');
      const tokenResponse = await fetch(discovery.token_endpoint, {
        method: 'POST',
        headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code: params.get('code'),
          redirect_uri: client.redirect_uri,
          code_verifier: verifier,
        }),
      });
      const tokens = await tokenResponse.json();
      if (!tokenResponse.ok) return { error: tokens.error, tokens, callbackParams: params, discovery };
      const idToken = decodeJwt(tokens.id_token);
      const jwks = await (await fetch(discovery.jwks_uri)).json();
      const jwk = jwks.keys.find((k) => k.kid === idToken.header.kid);
      const signatureValid = Boolean(
        jwk &&
          verify('sha256', Buffer.from(idToken.signingInput), createPublicKey({ key: jwk, format: 'jwk' }), idToken.signature),
      );
      if (idToken.payload.nonce !== nonce) throw new Error('nonce mismatch');
      const userinfo = await (
        await fetch(discovery.userinfo_endpoint, { headers: { authorization: `Bearer ${tokens.access_token}` } })
      ).json();
      return { code: params.get('code'), callbackParams: params, tokens, idToken, signatureValid, userinfo, discovery, jwks };
    }
    const response = await fetch(url, {
      method,
      body,
      redirect: 'manual',
      headers: {
        cookie: jar.header(),
        ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
    });
    jar.store(response);
    if (response.status >= 300 && response.status < 400) {
      url = new URL(response.headers.get('location'), url).toString();
      method = 'GET';
      body = undefined;
      continue;
    }
    const html = await response.text();
    const form = html.match(/<form[^>]*id="idp-login"[^>]*action="([^"]+)"/);
    if (!form) return { error: 'no_login_form', status: response.status, html, discovery };
    if (body) return { error: 'login_rejected', status: response.status, html, discovery };
    url = new URL(form[1], url).toString();
    method = 'POST';
    body = new URLSearchParams({ login, password }).toString();
  }
  throw new Error('too many redirects');
}
