// Self-test of the interop provider (no daemon): the code flow works with a throwaway relying
// party, so a failing daemon scenario points at the daemon, not at the test's identity provider.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { generateJwks, spawnProvider } from '../provider.mjs';
import { freePort, launchBrowser } from '../lib/harness.mjs';
import { codeFlow } from '../lib/rp.mjs';

const REDIRECT = 'http://127.0.0.1:9/auth/oidc/callback';
const CLIENT = { client_id: 'interop-rp', client_secret: 'rp-s3cr:et&x+y', redirect_uris: [REDIRECT] };
const RP = { ...CLIENT, redirect_uri: REDIRECT };
const ACCOUNTS = [
  { sub: 'pat-1', email: 'Pat.Doe@example.com', email_verified: true, name: 'Pat Doe' },
  { sub: 'nomail-1', name: 'No Mail' },
];

let idp;

before(async () => {
  idp = await spawnProvider({ accounts: ACCOUNTS, clients: [CLIENT] }, { name: 'selftest' });
});

after(async () => {
  await idp?.dispose();
});

test('provider: discovery, PKCE S256 only, code flow with client_secret_basic, email only at userinfo', async () => {
  const discovery = await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json();
  assert.equal(discovery.issuer, idp.issuer);
  assert.deepEqual(discovery.code_challenge_methods_supported, ['S256']);
  assert.ok(discovery.token_endpoint_auth_methods_supported.includes('client_secret_basic'));

  const flow = await codeFlow({ issuer: idp.issuer, client: RP, login: 'pat.doe@example.com' });
  assert.equal(flow.error, undefined, JSON.stringify(flow.error));
  assert.equal(flow.callbackParams.get('iss'), idp.issuer, 'RFC 9207 iss on the callback');
  assert.ok(flow.signatureValid, 'ID token signed by a key of the JWKS');
  assert.equal(flow.idToken.header.kid, idp.options.jwks.keys[0].kid, 'the first key signs');
  assert.equal(flow.idToken.payload.sub, 'pat-1');
  assert.equal(flow.idToken.payload.email, undefined, 'conformIdTokenClaims: no email in the ID token');
  assert.equal(flow.idToken.payload.name, undefined, 'conformIdTokenClaims: no name in the ID token');
  assert.deepEqual(flow.userinfo, { sub: 'pat-1', email: 'Pat.Doe@example.com', email_verified: true, name: 'Pat Doe' });

  const noPkce = await codeFlow({ issuer: idp.issuer, client: RP, login: 'pat-1', pkce: false });
  assert.equal(noPkce.error, 'invalid_request', 'PKCE is required');

  const wrongPassword = await codeFlow({ issuer: idp.issuer, client: RP, login: 'pat-1', password: 'nope' });
  assert.equal(wrongPassword.error, 'login_rejected');
});

test('provider: restart on the same port with conformIdTokenClaims false, a rotated key and changed accounts', async () => {
  const oldKid = idp.options.jwks.keys[0].kid;
  const port = idp.port;
  await idp.restart({
    conformIdTokenClaims: false,
    jwks: generateJwks(1),
    accounts: ACCOUNTS.map((a) => (a.sub === 'pat-1' ? { ...a, name: 'Pat Renamed' } : a)),
  });
  assert.equal(idp.port, port, 'same port after restart');
  const jwks = await (await fetch(`${idp.issuer}/jwks`)).json();
  assert.notEqual(jwks.keys[0].kid, oldKid, 'the key rotated');

  const flow = await codeFlow({ issuer: idp.issuer, client: RP, login: 'pat-1' });
  assert.ok(flow.signatureValid);
  assert.notEqual(flow.idToken.header.kid, oldKid);
  assert.equal(flow.idToken.payload.email, 'Pat.Doe@example.com', 'email in the ID token when not conforming');
  assert.equal(flow.idToken.payload.name, 'Pat Renamed');

  const noMail = await codeFlow({ issuer: idp.issuer, client: RP, login: 'nomail-1' });
  assert.equal(noMail.idToken.payload.email, undefined);
  assert.deepEqual(noMail.userinfo, { sub: 'nomail-1', name: 'No Mail' });
});

test('provider: down while stopped, back on the same issuer after start', async () => {
  const issuer = idp.issuer;
  await idp.stop();
  await assert.rejects(fetch(`${issuer}/.well-known/openid-configuration`), (err) => err.cause?.code === 'ECONNREFUSED');
  await idp.start();
  assert.equal(idp.issuer, issuer);
  const res = await fetch(`${issuer}/.well-known/openid-configuration`);
  assert.equal(res.status, 200);
});

test('provider: Chromium fills the scripted login form and reaches the redirect URI', async (t) => {
  // The redirect URI is a local listener standing in for the daemon's callback.
  const port = await freePort();
  const redirect = `http://127.0.0.1:${port}/auth/oidc/callback`;
  const client = { client_id: 'interop-browser', client_secret: 'browser-secret', redirect_uris: [redirect] };
  const http = await import('node:http');
  const hits = [];
  const server = http.createServer((req, res) => {
    if (req.url.startsWith('/auth/oidc/callback')) hits.push(req.url);
    res.setHeader('content-type', 'text/html');
    res.end('<!doctype html><h1>callback reached</h1>');
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  const idp2 = await spawnProvider({ accounts: ACCOUNTS, clients: [client] }, { name: 'selftest-browser' });
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await idp2.dispose();
    server.close();
  });
  const { createHash, randomBytes } = await import('node:crypto');
  const verifier = randomBytes(32).toString('base64url');
  const auth = new URL(`${idp2.issuer}/auth`);
  auth.search = new URLSearchParams({
    client_id: client.client_id,
    response_type: 'code',
    redirect_uri: redirect,
    scope: 'openid profile email',
    state: 'st',
    nonce: 'nn',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  }).toString();
  const page = await (await browser.newContext()).newPage();
  await page.goto(auth.toString());
  assert.match(new URL(page.url()).pathname, /^\/interaction\//);
  await page.fill('#login', 'pat-1');
  await page.fill('#password', 'secret');
  await Promise.all([page.waitForURL((u) => u.port === String(port)), page.click('#submit')]);
  const back = new URL(page.url());
  assert.equal(back.pathname, '/auth/oidc/callback');
  assert.ok(back.searchParams.get('code'));
  assert.equal(back.searchParams.get('state'), 'st');
  assert.equal(back.searchParams.get('iss'), idp2.issuer);
  assert.equal(hits.length, 1);
});
