// The interop scenarios: the real coder-server and coder, node-oidc-provider, headless Chromium.
//
// One daemon (fresh data dir and setup repo) and one provider ("A") serve every scenario; each
// scenario writes the oidc.json it needs first and restores what it changed (provider options,
// issuer) in a finally block, so they also run alone (INTEROP_FILTER). Every scenario uses its own
// provider accounts, so users provisioned by one never collide with another's.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import path from 'node:path';

import { generateJwks, spawnProvider } from '../provider.mjs';
import {
  configureSso,
  freePort,
  http,
  launchBrowser,
  makeTmp,
  removeTmp,
  screenshot,
  sleep,
  spawnCoder,
  runCoder,
  startDaemon,
  waitFor,
} from '../lib/harness.mjs';
import { browserMe, ssoLogin } from '../lib/flows.mjs';
import { codeFlow } from '../lib/rp.mjs';

const SCENARIO_TIMEOUT = 120000;

// Accounts at provider A. `password` defaults to "secret".
const ACCOUNTS_A = [
  { sub: 'a-alice', email: 'alice@example.com', email_verified: true, name: 'Alice Anders' },
  { sub: 'a-bea', email: 'bea.device@example.com', email_verified: true, name: 'Bea Device' },
  { sub: 'a-john', email: 'John.Doe+interop@Example.COM', email_verified: true, name: 'John Doe' },
  { sub: 'a-dana', email: 'dana@example.com', email_verified: true, name: 'Dana Before' },
  { sub: 'a-nomail', name: 'Nomail Person' },
  { sub: 'a-frank', email: 'frank@example.com', email_verified: false, name: 'Frank From IdP' },
  { sub: 'a-gina', email: 'gina.userinfo@example.com', email_verified: true, name: 'Gina Userinfo' },
  { sub: 'a-gus', email: 'gus.idtoken@example.com', email_verified: true, name: 'Gus Idtoken' },
  { sub: 'a-hank', email: 'hank@example.com', email_verified: true, name: 'Hank Rotation' },
  { sub: 'a-ivy', email: 'ivy@example.com', email_verified: true, name: 'Ivy Outage' },
  { sub: 'a-kim', email: 'kim.unknown@example.com', email_verified: true, name: 'Kim Unknown' },
  { sub: 'a-kate', email: 'kate.sso@example.com', email_verified: true, name: 'Kate From IdP' },
  { sub: 'a-lou', email: 'lou@example.com', email_verified: true, name: 'Lou Local' },
];

// Provider B (scenario j): other accounts, another client.
const ACCOUNTS_B = [{ sub: 'b-jade', email: 'jade@b.example.com', email_verified: true, name: 'Jade From B' }];

// A secret with the characters the contract names (`: & +`): client_secret_basic must
// form-urlencode it.
const CLIENT_A = { client_id: 'coderflow-interop', client_secret: 'interop-s3cr:et&with+chars' };
const CLIENT_B = { client_id: 'coderflow-interop-b', client_secret: 'second-provider-secret' };

let tmp;
let daemon;
let idpA;
let browser;
let failures = 0;

function oidcConfig(overrides = {}) {
  return {
    enabled: true,
    display_name: 'Sign in with Interop IdP',
    client_id: CLIENT_A.client_id,
    client_secret: CLIENT_A.client_secret,
    issuer: idpA.issuer,
    scopes: ['openid', 'profile', 'email'],
    auto_provision: true,
    default_role: 'developer',
    allow_local_auth: true,
    ...overrides,
  };
}

/** The standard configuration, provider A up with its standard options. */
async function baseline(overrides = {}) {
  return configureSso(daemon, oidcConfig(overrides));
}

/**
 * A scenario: a fresh browser context (own cookie jar) per scenario; on failure, a screenshot of
 * every open page and the daemon's log tail are attached to the error.
 */
function scenario(name, fn) {
  test(name, { timeout: SCENARIO_TIMEOUT }, async (t) => {
    const context = await browser.newContext();
    const slug = name.split(' ')[0].replace(/\W+/g, '');
    try {
      await fn({ t, context, slug });
    } catch (err) {
      failures += 1;
      let i = 0;
      for (const page of context.pages()) {
        await screenshot(page, `${slug}-FAILED-${(i += 1)}`);
      }
      if (daemon) err.message += `\n--- daemon log (tail) ---\n${daemon.logTail(30)}`;
      throw err;
    } finally {
      await context.close().catch(() => {});
    }
  });
}

/** Access bindings as {role, scope} (fields may be added to them). */
function bindings(u) {
  return (u.access || []).map(({ role, scope }) => ({ role, scope }));
}

async function users() {
  const res = await daemon.admin('/api/users');
  assert.equal(res.status, 200, `GET /api/users: ${JSON.stringify(res.body)}`);
  return res.body.users;
}

async function user(username) {
  const res = await daemon.admin(`/api/users/${encodeURIComponent(username)}`);
  return res;
}

function assertErrorPage(state, message, where) {
  assert.ok(state.daemon, `${where}: expected the daemon's error page, got ${state.url}`);
  assert.equal(state.whoami, null, `${where}: must not be signed in (saw .whoami "${state.whoami}")`);
  assert.ok(state.h1, `${where}: the error page has an <h1> title`);
  if (message) {
    assert.ok(
      state.text.toLowerCase().includes(message.toLowerCase()),
      `${where}: the page should say "${message}"; it says:\n${state.text.slice(0, 600)}`,
    );
  }
  assert.ok(state.hasLoginLink, `${where}: the error page links back to /login`);
}

async function assertSignedInAs(context, state, username, where) {
  assert.ok(state.daemon, `${where}: expected to land on the daemon, got ${state.url}\n${state.text.slice(0, 400)}`);
  assert.equal(state.whoami, username, `${where}: .whoami; page says:\n${state.text.slice(0, 400)}`);
  const url = new URL(state.url);
  assert.ok(!url.searchParams.has('code') && !url.searchParams.has('state'), `${where}: code/state left the URL (${state.url})`);
  const me = await browserMe(context, daemon);
  assert.equal(me.status, 200, `${where}: GET /api/me with the browser's cookies: ${JSON.stringify(me.body)}`);
  assert.equal(me.body.username, username);
  return me.body;
}

before(async () => {
  tmp = makeTmp();
  const port = await freePort();
  const callback = `http://127.0.0.1:${port}/auth/oidc/callback`;
  idpA = await spawnProvider(
    { accounts: ACCOUNTS_A, clients: [{ ...CLIENT_A, redirect_uris: [callback] }] },
    { name: 'idp-a', logFile: path.join(tmp, 'idp-a.log') },
  );
  daemon = await startDaemon({ tmp, port });
  browser = await launchBrowser();
  console.error(`# interop: daemon ${daemon.base}, provider A ${idpA.issuer}, work dir ${tmp}`);
});

after(async () => {
  await browser?.close().catch(() => {});
  await daemon?.stop().catch(() => {});
  await idpA?.dispose().catch(() => {});
  if (tmp) {
    if (failures === 0 && !process.env.INTEROP_KEEP_TMP) removeTmp(tmp);
    else console.error(`# interop: kept ${tmp} (daemon.log, idp-a.log, setup/, data/)`);
  }
});

scenario('a. browser signs in with SSO from /login', async ({ context, slug }) => {
  const config = oidcConfig();
  await baseline();
  const page = await context.newPage();
  await page.goto(`${daemon.base}/login`);
  assert.equal((await page.locator('#sso-login').innerText()).trim(), config.display_name, 'button labelled display_name');
  const href = await page.locator('#sso-login').getAttribute('href');
  assert.match(href, /^\/auth\/oidc\/login(\?|$)/, `#sso-login href ${href}`);
  await screenshot(page, `${slug}-0-login-page`);

  const state = await ssoLogin(page, daemon, idpA, { login: 'alice@example.com', shot: slug });
  assert.ok(
    state.sawProviderForm,
    `went through the provider's form; ended on ${state.url}:\n${state.text.slice(0, 300)}`,
  );
  const me = await assertSignedInAs(context, state, 'alice', 'after SSO');
  assert.equal(me.email.toLowerCase(), 'alice@example.com');
  assert.equal(me.source, 'sso');

  // The session cookie is the daemon's own, not the provider's `_session`.
  const cookies = await context.cookies(daemon.base);
  assert.ok(cookies.length > 0);
});

scenario('b. coder login --sso --no-browser: device flow approved in the browser', async ({ context, slug, t }) => {
  await baseline();
  const cliDir = path.join(tmp, 'cli-b');
  const env = { CODER_CONFIG_DIR: cliDir };
  const cli = spawnCoder(['login', '--sso', '--no-browser', '--server', daemon.base], { env });
  t.after(() => cli.kill());
  const m = await cli.waitForOutput(/(https?:\/\/\S+\/device\?user_code=([A-Za-z0-9-]+))/);
  const verificationUrl = m[1].replace(/[).,;]+$/, '');
  const userCode = decodeURIComponent(m[2]);
  assert.match(userCode, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-?[BCDFGHJKLMNPQRSTVWXZ]{4}$/, `user code ${userCode}`);
  assert.ok(verificationUrl.startsWith(`${daemon.base}/device?`), `verification URL on the daemon: ${verificationUrl}`);

  // Not signed in yet: /device sends to /login?return_to=..., which offers SSO.
  const page = await context.newPage();
  await page.goto(verificationUrl);
  const atLogin = new URL(page.url());
  assert.equal(atLogin.pathname, '/login', `an anonymous /device goes to /login first (got ${page.url()})`);
  assert.ok((atLogin.searchParams.get('return_to') || '').startsWith('/device'), `return_to keeps /device: ${page.url()}`);
  const state = await ssoLogin(page, daemon, idpA, {
    login: 'bea.device@example.com',
    start: `${atLogin.pathname}${atLogin.search}`,
    shot: `${slug}-sso`,
  });
  assert.ok(state.daemon, `back on the daemon after SSO: ${state.url}`);
  assert.equal(new URL(state.url).pathname, '/device', `SSO returns to /device (got ${state.url})`);
  assert.ok(state.text.replace(/[\s-]/g, '').includes(userCode.replace(/-/g, '')), 'the confirm page shows the user code');
  await screenshot(page, `${slug}-3-confirm`);
  await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && r.url().startsWith(daemon.base)),
    page.click('#approve'),
  ]);
  await page.waitForLoadState('load');
  await screenshot(page, `${slug}-4-approved`);

  const done = await cli.done(30000);
  assert.equal(done.code, 0, `coder login exit code; output:\n${done.stdout}\n${done.stderr}`);
  const server = daemon.base.replace(/[.]/g, '\\.');
  assert.match(done.stdout + done.stderr, new RegExp(`Logged in to ${server}/? as beadevice`));

  const who = await runCoder(['whoami'], { env });
  assert.equal(who.code, 0, `coder whoami: ${who.stdout}\n${who.stderr}`);
  assert.match(who.stdout, /beadevice/);
});

scenario('c. first-login provisioning: username from email, name, default_role binding', async ({ context, slug }) => {
  await baseline({ default_role: 'developer' });
  const before = (await users()).map((u) => u.username);
  assert.ok(!before.includes('johndoe'));
  const page = await context.newPage();
  const state = await ssoLogin(page, daemon, idpA, { login: 'a-john', shot: slug });
  await assertSignedInAs(context, state, 'johndoe', 'first login');
  const res = await user('johndoe');
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.username, 'johndoe');
  assert.equal(res.body.email.toLowerCase(), 'john.doe+interop@example.com');
  assert.equal(res.body.name, 'John Doe');
  assert.equal(res.body.source, 'sso');
  assert.deepEqual(bindings(res.body), [{ role: 'developer', scope: 'environment:*' }]);
});

scenario('d. display name changed at the provider is picked up at next login', async ({ context, slug, t }) => {
  await baseline();
  let page = await context.newPage();
  let state = await ssoLogin(page, daemon, idpA, { login: 'dana@example.com', shot: `${slug}-first` });
  await assertSignedInAs(context, state, 'dana', 'first login');
  assert.equal((await user('dana')).body.name, 'Dana Before');

  t.after(() => idpA.restart({ accounts: ACCOUNTS_A }));
  await idpA.restart({ accounts: ACCOUNTS_A.map((a) => (a.sub === 'a-dana' ? { ...a, name: 'Dana After' } : a)) });
  await baseline(); // the daemon sees the provider ready again (it may have noticed the restart)
  const fresh = await browser.newContext();
  try {
    page = await fresh.newPage();
    state = await ssoLogin(page, daemon, idpA, { login: 'dana@example.com', shot: `${slug}-second` });
    await assertSignedInAs(fresh, state, 'dana', 'second login');
  } finally {
    await fresh.close();
  }
  const after = (await user('dana')).body;
  assert.equal(after.name, 'Dana After', 'the name follows the provider');
  assert.equal(after.username, 'dana', 'the username does not change');
  assert.deepEqual(bindings(after), [{ role: 'developer', scope: 'environment:*' }], 'bindings do not change');
});

scenario('e. a user without email: "Missing email claim", no user created', async ({ context, slug }) => {
  await baseline();
  const before = await users();
  const page = await context.newPage();
  const state = await ssoLogin(page, daemon, idpA, { login: 'a-nomail', shot: slug });
  assertErrorPage(state, 'Missing email claim', 'no email');
  assert.equal((await browserMe(context, daemon)).status, 401, 'no session');
  const afterUsers = await users();
  assert.equal(afterUsers.length, before.length, 'no user created');
  assert.ok(!afterUsers.some((u) => /nomail/i.test(u.username) || u.name === 'Nomail Person'));
});

scenario('f. unverified email matching a local user is not linked', async ({ context, slug }) => {
  await baseline();
  const created = await daemon.admin('/api/users', {
    method: 'POST',
    body: { username: 'frank', email: 'frank@example.com', name: 'Frank Local', role: 'developer', password: 'Frank-local-password-1' },
  });
  assert.equal(created.status, 201, `POST /api/users: ${JSON.stringify(created.body)}`);
  const snapshot = created.body;
  const before = await users();

  const page = await context.newPage();
  const state = await ssoLogin(page, daemon, idpA, { login: 'a-frank', shot: slug });
  assertErrorPage(state, null, 'email_verified false');
  assert.equal((await browserMe(context, daemon)).status, 401, 'no session');

  const afterUsers = await users();
  assert.equal(afterUsers.length, before.length, 'no user created');
  const frank = (await user('frank')).body;
  assert.equal(frank.name, 'Frank Local', 'the local user is unchanged');
  assert.equal(frank.source, snapshot.source);
  assert.equal(frank.email, snapshot.email);
  assert.deepEqual(bindings(frank), bindings(snapshot));

  // And the refusal sticks: a second attempt is refused the same way (no link was made).
  const again = await browser.newContext();
  try {
    const p2 = await again.newPage();
    const s2 = await ssoLogin(p2, daemon, idpA, { login: 'a-frank' });
    assertErrorPage(s2, null, 'second attempt');
  } finally {
    await again.close();
  }
  const local = await http(`${daemon.base}/api/auth/login`, {
    method: 'POST',
    body: { username: 'frank', password: 'Frank-local-password-1' },
  });
  assert.equal(local.status, 200, 'the local user still signs in with the password');
});

scenario('g1. email only at userinfo (conformIdTokenClaims true) works', async ({ context, slug }) => {
  await baseline();
  // Precondition, checked with the throwaway RP: no email/name in this provider's ID tokens.
  const probe = await codeFlow({
    issuer: idpA.issuer,
    client: { ...CLIENT_A, redirect_uri: `${daemon.base}/auth/oidc/callback` },
    login: 'a-gina',
  });
  assert.equal(probe.idToken.payload.email, undefined);
  assert.equal(probe.userinfo.email, 'gina.userinfo@example.com');

  const page = await context.newPage();
  const state = await ssoLogin(page, daemon, idpA, { login: 'a-gina', shot: slug });
  await assertSignedInAs(context, state, 'ginauserinfo', 'login');
  const u = (await user('ginauserinfo')).body;
  assert.equal(u.email.toLowerCase(), 'gina.userinfo@example.com');
  assert.equal(u.name, 'Gina Userinfo', 'name from userinfo');
});

scenario('g2. email in the ID token (conformIdTokenClaims false) works', async ({ context, slug, t }) => {
  await baseline();
  t.after(() => idpA.restart({ conformIdTokenClaims: true }));
  await idpA.restart({ conformIdTokenClaims: false });
  await baseline();
  const probe = await codeFlow({
    issuer: idpA.issuer,
    client: { ...CLIENT_A, redirect_uri: `${daemon.base}/auth/oidc/callback` },
    login: 'a-gus',
  });
  assert.equal(probe.idToken.payload.email, 'gus.idtoken@example.com', 'precondition: email in the ID token');

  const page = await context.newPage();
  const state = await ssoLogin(page, daemon, idpA, { login: 'a-gus', shot: slug });
  await assertSignedInAs(context, state, 'gusidtoken', 'login');
  const u = (await user('gusidtoken')).body;
  assert.equal(u.email.toLowerCase(), 'gus.idtoken@example.com');
  assert.equal(u.name, 'Gus Idtoken');
});

scenario('h. provider signing key rotated without a daemon restart: next login works', async ({ context, slug }) => {
  await baseline();
  let page = await context.newPage();
  let state = await ssoLogin(page, daemon, idpA, { login: 'a-hank', shot: `${slug}-before` });
  await assertSignedInAs(context, state, 'hank', 'before rotation');

  const oldKid = idpA.options.jwks.keys[0].kid;
  await idpA.restart({ jwks: generateJwks(1) });
  const jwks = await (await fetch(`${idpA.issuer}/jwks`)).json();
  assert.ok(!jwks.keys.some((k) => k.kid === oldKid), 'precondition: the old key is gone from the JWKS');
  await baseline();
  // The contract lets the daemon refetch the JWKS at most once per 5 s; its last fetch (the old
  // keys) may be that recent when this scenario runs alone, so let the window pass.
  await sleep(5500);

  const fresh = await browser.newContext();
  try {
    page = await fresh.newPage();
    state = await ssoLogin(page, daemon, idpA, { login: 'a-hank', shot: `${slug}-after` });
    await assertSignedInAs(fresh, state, 'hank', 'after rotation');
  } finally {
    await fresh.close();
  }
});

scenario('i. provider down: SSO fails with an error page, local login works; back up: SSO works', async ({ context, slug, t }) => {
  await baseline();
  t.after(async () => {
    if (!idpA.running) await idpA.start();
  });
  await idpA.stop();

  // While down: the daemon answers an error page of its own (it may need a moment to notice).
  const page = await context.newPage();
  let down;
  const deadline = Date.now() + 15000;
  for (;;) {
    down = await ssoLogin(page, daemon, idpA, { login: 'a-ivy' });
    if (down.daemon && !down.networkError) break;
    if (Date.now() > deadline) break;
    await sleep(1000);
  }
  await screenshot(page, `${slug}-1-down`);
  assert.ok(
    !down.networkError,
    'with the provider down, /auth/oidc/login sent the browser to the dead provider; expected an error page of the daemon',
  );
  // An error page of the daemon (its own, or /login showing the error): not signed in.
  assert.ok(down.daemon, `provider down: expected a page of the daemon, got ${down.url}`);
  assert.equal(down.whoami, null, 'provider down: not signed in');
  assert.equal((await browserMe(context, daemon)).status, 401, 'provider down: no session');

  const local = await http(`${daemon.base}/api/auth/login`, {
    method: 'POST',
    body: { username: 'admin', password: daemon.adminPassword },
  });
  assert.equal(local.status, 200, `local login while the provider is down: ${JSON.stringify(local.body)}`);
  await page.goto(`${daemon.base}/login`);
  assert.equal(await page.locator('#local-login-form').count(), 1, 'the local form is still there');

  await idpA.start();
  let up;
  await waitFor(
    async () => {
      const ctx = await browser.newContext();
      try {
        const p = await ctx.newPage();
        up = await ssoLogin(p, daemon, idpA, { login: 'a-ivy' });
        if (up.whoami === 'ivy') {
          await screenshot(p, `${slug}-2-back`);
          return true;
        }
        return false;
      } finally {
        await ctx.close();
      }
    },
    { timeout: 60000, interval: 1000, what: 'SSO login to work again after the provider came back' },
  );
  assert.equal(up.whoami, 'ivy');
});

scenario('j. issuer switched in oidc.json to a second provider: next login goes there', async ({ context, slug, t }) => {
  const callback = `${daemon.base}/auth/oidc/callback`;
  const idpB = await spawnProvider(
    { accounts: ACCOUNTS_B, clients: [{ ...CLIENT_B, redirect_uris: [callback] }] },
    { name: 'idp-b', logFile: path.join(tmp, 'idp-b.log') },
  );
  t.after(async () => {
    await baseline().catch(() => {});
    await idpB.dispose();
  });
  assert.notEqual(idpB.issuer, idpA.issuer);
  await configureSso(daemon, oidcConfig({ issuer: idpB.issuer, ...CLIENT_B, display_name: 'Sign in with B' }));

  const page = await context.newPage();
  const state = await ssoLogin(page, daemon, idpB, { login: 'jade@b.example.com', shot: slug });
  assert.ok(state.providerUrl && state.providerUrl.startsWith(`${idpB.issuer}/`), `the login went to provider B (${state.providerUrl})`);
  await assertSignedInAs(context, state, 'jade', 'login at B');
  assert.equal((await user('jade')).body.name, 'Jade From B');
});

scenario('k. auto_provision false: "User not found" without a user; pre-created user signs in', async ({ context, slug, t }) => {
  t.after(() => baseline().catch(() => {}));
  await configureSso(daemon, oidcConfig({ auto_provision: false }));
  const before = await users();

  let page = await context.newPage();
  const refused = await ssoLogin(page, daemon, idpA, { login: 'a-kim', shot: `${slug}-unknown` });
  assertErrorPage(refused, 'User not found', 'no such user');
  assert.equal((await users()).length, before.length, 'no user created');
  assert.equal((await user('kimunknown')).status, 404);

  const created = await daemon.admin('/api/users', {
    method: 'POST',
    body: { username: 'kate', email: 'kate.sso@example.com', name: 'Kate Precreated', role: 'developer' },
  });
  assert.equal(created.status, 201, `POST /api/users: ${JSON.stringify(created.body)}`);

  const fresh = await browser.newContext();
  try {
    page = await fresh.newPage();
    const state = await ssoLogin(page, daemon, idpA, { login: 'a-kate', shot: `${slug}-precreated` });
    await assertSignedInAs(fresh, state, 'kate', 'pre-created user');
  } finally {
    await fresh.close();
  }
  const all = await users();
  assert.equal(all.length, before.length + 1, 'only the pre-created user was added');
  assert.ok(!all.some((u) => u.username === 'katesso'), 'no auto-provisioned duplicate');
});

scenario('l. allow_local_auth false hides the form and refuses local login; true brings it back', async ({ context, slug, t }) => {
  t.after(() => baseline().catch(() => {}));
  const page = await context.newPage();

  await configureSso(daemon, oidcConfig({ allow_local_auth: false }));
  await page.goto(`${daemon.base}/login`);
  await screenshot(page, `${slug}-1-sso-only`);
  assert.equal(await page.locator('#local-login-form').count(), 0, 'no local form in SSO-only mode');
  assert.equal(await page.locator('#sso-login').count(), 1, 'the SSO button stays');
  const refused = await http(`${daemon.base}/api/auth/login`, {
    method: 'POST',
    body: { username: 'admin', password: daemon.adminPassword },
  });
  assert.equal(refused.status, 403);
  assert.equal(refused.body?.error, 'local_auth_disabled');
  const pub = await http(`${daemon.base}/api/auth/oidc/config`);
  assert.equal(pub.body.allow_local_auth, false);

  await configureSso(daemon, oidcConfig({ allow_local_auth: true }));
  await page.goto(`${daemon.base}/login`);
  await screenshot(page, `${slug}-2-local-back`);
  assert.equal(await page.locator('#local-login-form').count(), 1, 'the local form is back');
  for (const id of ['#username', '#password', '#local-login']) {
    assert.equal(await page.locator(id).count(), 1, `${id} on the local form`);
  }
  const ok = await http(`${daemon.base}/api/auth/login`, {
    method: 'POST',
    body: { username: 'admin', password: daemon.adminPassword },
  });
  assert.equal(ok.status, 200);

  // And an SSO user still signs in in SSO-only mode (the button works).
  await configureSso(daemon, oidcConfig({ allow_local_auth: false }));
  const state = await ssoLogin(page, daemon, idpA, { login: 'lou@example.com', shot: `${slug}-3-sso` });
  await assertSignedInAs(context, state, 'lou', 'SSO while local login is off');
});
