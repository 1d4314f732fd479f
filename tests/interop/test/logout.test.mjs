// Sessions and logout (contract section 9), against node-oidc-provider: RP-initiated logout
// (`idp_logout`: our Sign out goes on to the provider's end_session_endpoint) and back-channel
// logout (the provider ends its session and POSTs a logout_token to
// /auth/oidc/backchannel-logout, which ends our session of that provider session, by `sid`).
//
// One daemon and one provider for the file. The client registers post_logout_redirect_uris
// (<public URL>/login), backchannel_logout_uri and backchannel_logout_session_required (so the ID
// tokens and logout tokens carry `sid`). The provider logs each back-channel call it made
// (`backchannel.success|error <client_id> <sub> <sid>`) in idp-logout.log.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { spawnProvider } from '../provider.mjs';
import { configureSso, freePort, launchBrowser, makeTmp, removeTmp, screenshot, startDaemon, waitFor } from '../lib/harness.mjs';
import { browserMe, pageState, ssoLogin } from '../lib/flows.mjs';

const SCENARIO_TIMEOUT = 120000;
const NAV_TIMEOUT = 20000;
const CLIENT = { client_id: 'coderflow-interop-logout', client_secret: 'logout-s3cret:&+' };
const SIGN_OUT = 'nav form[action="/logout"] button[type="submit"]';

const ACCOUNTS = [
  { sub: 's-lena', email: 'lena@corp.example', email_verified: true, name: 'Lena Logout' },
  { sub: 't-tom', email: 'tom@corp.example', email_verified: true, name: 'Tom Backchannel' },
];

let tmp;
let daemon;
let idp;
let browser;
let discovery;
let failures = 0;

function configure(overrides = {}) {
  return configureSso(daemon, {
    enabled: true,
    display_name: 'Sign in with Interop IdP',
    client_id: CLIENT.client_id,
    client_secret: CLIENT.client_secret,
    issuer: idp.issuer,
    scopes: ['openid', 'profile', 'email'],
    auto_provision: true,
    default_role: 'developer',
    allow_local_auth: true,
    ...overrides,
  }).then(() =>
    // configureSso compares the older fields only: wait for idp_logout itself.
    waitFor(
      async () => {
        const s = await daemon.admin('/api/settings/sso');
        return s.status === 200 && Boolean(s.body.config?.idp_logout) === Boolean(overrides.idp_logout) && s.body.status?.provider?.state === 'ready';
      },
      { timeout: 15000, interval: 50, what: `idp_logout ${Boolean(overrides.idp_logout)} applied` },
    ),
  );
}

function scenario(name, fn) {
  test(name, { timeout: SCENARIO_TIMEOUT }, async (t) => {
    const contexts = [];
    const slug = name.split(' ')[0].replace(/\W+/g, '');
    try {
      await fn({ t, slug, fresh: async () => contexts[contexts.push(await browser.newContext()) - 1] });
    } catch (err) {
      failures += 1;
      let i = 0;
      for (const ctx of contexts) {
        for (const page of ctx.pages()) await screenshot(page, `${slug}-FAILED-${(i += 1)}`);
      }
      if (daemon) err.message += `\n--- daemon log (tail) ---\n${daemon.logTail(30)}`;
      if (idp) err.message += `\n--- provider log (tail) ---\n${idp.log.split('\n').slice(-15).join('\n')}`;
      throw err;
    } finally {
      for (const ctx of contexts) await ctx.close().catch(() => {});
    }
  });
}

/** An SSO login in `context` (a new page): the page state; `form` says whether the provider's form had to be filled. */
async function login(context, account, shot, { form }) {
  const page = await context.newPage();
  const state = await ssoLogin(page, daemon, idp, { login: account, shot });
  assert.equal(state.sawProviderForm, form, `${shot}: the provider's form ${form ? 'shows' : 'is skipped (provider session)'}; ended on ${state.url}:\n${state.text.slice(0, 300)}`);
  return { ...state, page };
}

async function assertSignedIn(context, state, username, where) {
  assert.ok(state.daemon, `${where}: expected the daemon, got ${state.url}\n${state.text.slice(0, 400)}`);
  assert.equal(state.whoami, username, `${where}: .whoami; the page says:\n${state.text.slice(0, 400)}`);
  const me = await browserMe(context, daemon);
  assert.equal(me.status, 200, `${where}: GET /api/me: ${JSON.stringify(me.body)}`);
  assert.equal(me.body.username, username);
}

/** The newest audit event id (events after it are this scenario's). */
async function auditMark() {
  const res = await daemon.admin('/api/audit?limit=1');
  assert.equal(res.status, 200, `GET /api/audit: ${JSON.stringify(res.body)}`);
  return res.body.events[0]?.id ?? 0;
}

/** The `logout*` events after `mark`, oldest first. */
async function logoutEvents(mark) {
  const res = await daemon.admin('/api/audit?kind=logout&limit=100');
  assert.equal(res.status, 200, `GET /api/audit?kind=logout: ${JSON.stringify(res.body)}`);
  return res.body.events.filter((e) => e.id > mark).reverse();
}

/** The back-channel calls the provider logged since `from` (an offset in its log). */
function backchannelCalls(from) {
  return [...idp.log.slice(from).matchAll(/^backchannel\.(success|error) (\S+) (\S+) (\S+)(?:: (.*))?$/gm)].map((m) => ({
    outcome: m[1],
    client: m[2],
    sub: m[3],
    sid: m[4],
    error: m[5],
  }));
}

function decodeJwt(jwt) {
  const [, payload] = jwt.split('.');
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
}

const isProvider = (u) => new URL(u).origin === new URL(idp.issuer).origin;
const isEndSession = (u) => {
  const url = new URL(u);
  const end = new URL(discovery.end_session_endpoint);
  return url.origin === end.origin && url.pathname === end.pathname;
};

/** Confirms the provider's logout question ("Yes, sign me out"); resolves when `landed(url)`. */
async function confirmProviderLogout(page, landed, shot) {
  await page.locator('#logout-yes').waitFor({ timeout: NAV_TIMEOUT });
  assert.match(await page.locator('#logout-yes').innerText(), /Yes, sign me out/);
  await screenshot(page, `${shot}-provider-logout`);
  await Promise.all([page.waitForURL((u) => landed(u), { timeout: NAV_TIMEOUT, waitUntil: 'load' }), page.click('#logout-yes')]);
  await screenshot(page, `${shot}-after-logout`);
}

before(async () => {
  tmp = makeTmp('coderflow-interop-logout-');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  idp = await spawnProvider(
    {
      accounts: ACCOUNTS,
      clients: [
        {
          ...CLIENT,
          redirect_uris: [`${base}/auth/oidc/callback`],
          post_logout_redirect_uris: [`${base}/login`],
          backchannel_logout_uri: `${base}/auth/oidc/backchannel-logout`,
          backchannel_logout_session_required: true,
        },
      ],
    },
    { name: 'idp-logout', logFile: path.join(tmp, 'idp-logout.log') },
  );
  discovery = await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json();
  assert.ok(discovery.end_session_endpoint, 'the provider has an end_session_endpoint');
  assert.equal(discovery.backchannel_logout_supported, true, 'the provider supports back-channel logout');
  assert.equal(discovery.backchannel_logout_session_supported, true, 'the provider sends sid in logout tokens');
  daemon = await startDaemon({ tmp, port });
  browser = await launchBrowser();
  console.error(`# interop logout: daemon ${daemon.base}, provider ${idp.issuer}, work dir ${tmp}`);
});

after(async () => {
  await browser?.close().catch(() => {});
  await daemon?.stop().catch(() => {});
  await idp?.dispose().catch(() => {});
  if (tmp) {
    if (failures === 0 && !process.env.INTEROP_KEEP_TMP) removeTmp(tmp);
    else console.error(`# interop logout: kept ${tmp} (daemon.log, idp-logout.log, setup/, data/)`);
  }
});

scenario('s. RP-initiated logout (idp_logout): Sign out → the provider\'s end_session_endpoint → confirm → /login; the next SSO login needs the provider\'s form', async ({ fresh, slug }) => {
  const context = await fresh();

  // Control, idp_logout false: Sign out stays here, the provider session stays (no form next time).
  await configure();
  let state = await login(context, 's-lena', `${slug}-1-first`, { form: true });
  await assertSignedIn(context, state, 'lena', 'first login');
  let page = state.page;
  const providerRequests = [];
  context.on('request', (r) => {
    if (r.isNavigationRequest() && isProvider(r.url())) providerRequests.push(`${r.method()} ${r.url()}`);
  });
  await Promise.all([page.waitForURL((u) => u.origin === daemon.origin && u.pathname === '/login', { timeout: NAV_TIMEOUT }), page.click(SIGN_OUT)]);
  assert.deepEqual(providerRequests, [], 'idp_logout false: Sign out does not go to the provider');
  assert.equal((await browserMe(context, daemon)).status, 401, 'signed out here');
  await page.close();
  state = await login(context, 's-lena', `${slug}-2-provider-session`, { form: false });
  await assertSignedIn(context, state, 'lena', 'provider session still there');

  // idp_logout true (the session signed in just now stays).
  await configure({ idp_logout: true });
  page = state.page;
  await page.goto(`${daemon.base}/`, { timeout: NAV_TIMEOUT });
  await assertSignedIn(context, await pageState(page, daemon, idp), 'lena', 'signed in before the sign-out');
  const mark = await auditMark();
  const logFrom = idp.log.length;
  let endSessionUrl = null;
  page.on('request', (r) => {
    if (!endSessionUrl && r.isNavigationRequest() && isEndSession(r.url())) endSessionUrl = r.url();
  });
  await Promise.all([page.waitForURL((u) => isEndSession(u.toString()), { timeout: NAV_TIMEOUT, waitUntil: 'load' }), page.click(SIGN_OUT)]);

  // The request the daemon sent the browser with: id_token_hint, client_id, post_logout_redirect_uri.
  const params = new URL(endSessionUrl).searchParams;
  assert.equal(params.get('client_id'), CLIENT.client_id);
  assert.equal(params.get('post_logout_redirect_uri'), `${daemon.base}/login`);
  const hint = params.get('id_token_hint');
  assert.ok(hint, `an id_token_hint: ${endSessionUrl.replace(/id_token_hint=[^&]+/, 'id_token_hint=…')}`);
  const idToken = decodeJwt(hint);
  assert.equal(idToken.iss, idp.issuer);
  assert.equal(idToken.aud, CLIENT.client_id);
  assert.equal(idToken.sub, 's-lena');
  assert.equal(typeof idToken.sid, 'string', `the ID token carries sid (backchannel_logout_session_required): ${JSON.stringify(Object.keys(idToken))}`);
  assert.equal((await browserMe(context, daemon)).status, 401, 'our session ended before the browser left');

  // The provider asks; "Yes, sign me out" → back on our /login.
  await confirmProviderLogout(page, (u) => u.origin === daemon.origin && u.pathname === '/login', `${slug}-4`);
  const landed = await pageState(page, daemon, idp);
  assert.equal(landed.whoami, null);
  assert.ok((await page.locator('#sso-login').count()) > 0, `our login page: ${landed.text.slice(0, 300)}`);
  assert.equal((await browserMe(context, daemon)).status, 401, 'still signed out');

  // Audited: the sign-out and the hand-over to the provider.
  const events = await logoutEvents(mark);
  const kinds = events.map((e) => `${e.kind} ${e.outcome} ${e.actor}`);
  assert.ok(kinds.includes('logout success lena'), `a logout event: ${JSON.stringify(events)}`);
  assert.ok(kinds.includes('logout.provider success lena'), `a logout.provider event: ${JSON.stringify(events)}`);

  // The provider also told us through the back channel (that session had ended already): 200.
  const calls = backchannelCalls(logFrom);
  assert.deepEqual(
    calls.map(({ outcome, client, sub, sid }) => ({ outcome, client, sub, sid })),
    [{ outcome: 'success', client: CLIENT.client_id, sub: 's-lena', sid: idToken.sid }],
    `the provider's back-channel call: ${JSON.stringify(calls)}`,
  );

  // The provider session ended: signing in again needs the provider's form.
  await page.close();
  state = await login(context, 's-lena', `${slug}-5-again`, { form: true });
  await assertSignedIn(context, state, 'lena', 'signed in again');
});

scenario('t. back-channel logout: the provider ends its session → logout_token → our session of that sid ends (401), audited; another session stays', async ({ fresh, slug }) => {
  await configure(); // idp_logout false: our own Sign out is not involved
  const context = await fresh();
  const state = await login(context, 't-tom', `${slug}-1-login`, { form: true });
  await assertSignedIn(context, state, 'tom', 'signed in');
  // A second browser: another provider session (another sid), another session here.
  const other = await fresh();
  const otherState = await login(other, 't-tom', `${slug}-2-other-browser`, { form: true });
  await assertSignedIn(other, otherState, 'tom', 'signed in in a second browser');

  const mark = await auditMark();
  const logFrom = idp.log.length;
  // Sign out at the provider itself (no id_token_hint, no client): it asks, then ends its session.
  const page = state.page;
  await page.goto(discovery.end_session_endpoint, { timeout: NAV_TIMEOUT });
  await confirmProviderLogout(page, (u) => isProvider(u.toString()) && !isEndSession(u.toString()), `${slug}-3`);
  await page.locator('#signed-out').waitFor({ timeout: NAV_TIMEOUT });

  // The provider's call to our back-channel URI, and what it ended here.
  const calls = await waitFor(() => backchannelCalls(logFrom).length > 0 && backchannelCalls(logFrom), { timeout: 5000, what: 'the provider\'s back-channel call' });
  assert.equal(calls.length, 1, JSON.stringify(calls));
  assert.equal(calls[0].outcome, 'success', `the daemon's answer to the logout_token: ${calls[0].error}`);
  assert.equal(calls[0].client, CLIENT.client_id);
  assert.equal(calls[0].sub, 't-tom');
  assert.notEqual(calls[0].sid, 'undefined', 'the logout token carries sid');
  await waitFor(async () => (await browserMe(context, daemon)).status === 401, { timeout: 5000, interval: 100, what: 'GET /api/me 401 in the signed-out browser' });
  await page.goto(`${daemon.base}/`, { timeout: NAV_TIMEOUT });
  assert.equal(new URL(page.url()).pathname, '/login', `/ after the back-channel logout: ${page.url()}`);
  await screenshot(page, `${slug}-4-ours-after`);

  // By sid: the other browser's session (another provider session) is still signed in.
  const otherMe = await browserMe(other, daemon);
  assert.equal(otherMe.status, 200, `the other session stays: ${JSON.stringify(otherMe.body)}`);
  assert.equal(otherMe.body.username, 'tom');

  const events = await waitFor(
    async () => {
      const list = await logoutEvents(mark);
      return list.some((e) => e.kind === 'logout.backchannel') && list;
    },
    { timeout: 5000, what: 'a logout.backchannel audit event' },
  );
  const backchannel = events.filter((e) => e.kind === 'logout.backchannel');
  assert.equal(backchannel.length, 1, JSON.stringify(events));
  assert.equal(backchannel[0].outcome, 'success', JSON.stringify(backchannel[0]));
  assert.equal(backchannel[0].actor, 'tom');
  assert.match(backchannel[0].reason, /^1 session\(s\) and 0 device-login key\(s\) ended \(sid\)$/, JSON.stringify(backchannel[0]));
  assert.deepEqual(
    events.filter((e) => e.kind !== 'logout.backchannel'),
    [],
    `only the back-channel logout (idp_logout false, no Sign out here): ${JSON.stringify(events)}`,
  );
});
