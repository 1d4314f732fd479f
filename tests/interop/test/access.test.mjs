// Access from the identity provider (contract section 8), against node-oidc-provider with a
// `groups` claim (released with the `groups` scope, at userinfo): allowed_email_domains,
// allowed_groups, role_mapping across logins (the provider restarted with changed groups), the
// "Check with my account" preview started from the settings page, and People & Access showing a
// user whose access the provider manages read-only.
//
// One daemon and one provider for the file; each scenario writes the oidc.json it needs and
// uses its own provider accounts. ASSETS_FROM_DISK=1 serves the pages' scripts and stylesheet
// from the working tree's assets/ (as in tests/browser), to try them without `cargo build`.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { spawnProvider } from '../provider.mjs';
import { configureSso, freePort, launchBrowser, makeTmp, removeTmp, REPO_ROOT, screenshot, startDaemon, waitFor } from '../lib/harness.mjs';
import { browserMe, pageState, ssoLogin } from '../lib/flows.mjs';

const SCENARIO_TIMEOUT = 120000;
const NAV_TIMEOUT = 20000;
const CLIENT = { client_id: 'coderflow-interop-access', client_secret: 'access-s3cret:&+' };

// Accounts (password "secret"). `groups` is what the provider sends as the groups claim; an
// account without it sends no groups claim at all.
const ACCOUNTS = [
  // n: allowed_email_domains
  { sub: 'n-olga', email: 'olga@elsewhere.example', email_verified: true, name: 'Olga Outside', groups: ['engineering'] },
  { sub: 'n-sue', email: 'sue@sub.corp.example', email_verified: true, name: 'Sue Subdomain', groups: ['engineering'] },
  { sub: 'n-nina', email: 'nina@Corp.Example', email_verified: true, name: 'Nina Inside', groups: ['engineering'] },
  // o: allowed_groups
  { sub: 'o-gus', email: 'gus@corp.example', email_verified: true, name: 'Gus Guest', groups: ['visitors'] },
  { sub: 'o-nog', email: 'nog@corp.example', email_verified: true, name: 'Nog Nogroups' },
  { sub: 'o-otto', email: 'otto@corp.example', email_verified: true, name: 'Otto Engineer', groups: ['visitors', 'engineering'] },
  // p: role_mapping across logins (groups changed at the provider between them)
  { sub: 'p-rob', email: 'rob@corp.example', email_verified: true, name: 'Rob Rotating', groups: ['engineering'] },
  // q: the preview
  { sub: 'q-quinn', email: 'quinn@corp.example', email_verified: true, name: 'Quinn Preview', groups: ['cf-admins', 'engineering'] },
  { sub: 'q-olaf', email: 'olaf@elsewhere.example', email_verified: true, name: 'Olaf Outside', groups: ['engineering'] },
  // r: People & Access
  { sub: 'r-ria', email: 'ria@corp.example', email_verified: true, name: 'Ria Managed', groups: ['auditors'] },
];

const ROLE_MAPPING = [
  { group: 'engineering', role: 'environment_admin' },
  { group: 'cf-admins', role: 'server_admin' },
  { group: 'auditors', role: 'viewer' },
];

let tmp;
let daemon;
let idp;
let browser;
let failures = 0;

function oidcConfig(overrides = {}) {
  return {
    enabled: true,
    display_name: 'Sign in with Interop IdP',
    client_id: CLIENT.client_id,
    client_secret: CLIENT.client_secret,
    issuer: idp.issuer,
    scopes: ['openid', 'profile', 'email', 'groups'],
    auto_provision: true,
    default_role: 'developer',
    allow_local_auth: true,
    ...overrides,
  };
}

const ACCESS_FIELDS = ['required_claims', 'allowed_email_domains', 'allowed_groups', 'role_mapping'];

/**
 * Writes oidc.json and waits until the daemon runs it, new fields included (configureSso compares
 * the older fields only, so a change of the access rules alone would not be waited for).
 */
async function configure(overrides = {}) {
  const config = oidcConfig(overrides);
  await configureSso(daemon, config);
  await waitFor(
    async () => {
      const settings = await daemon.admin('/api/settings/sso');
      if (settings.status !== 200 || !settings.body.config) return false;
      const live = settings.body.config;
      const want = (key) => (key === 'allowed_email_domains' && config[key] ? config[key].map((d) => d.toLowerCase()) : config[key] ?? null);
      return ACCESS_FIELDS.every((key) => JSON.stringify(live[key]) === JSON.stringify(want(key))) && settings.body.status?.provider?.state === 'ready';
    },
    { timeout: 15000, interval: 50, what: 'the access rules applied' },
  );
}

/** A browser context; with ASSETS_FROM_DISK=1 the daemon's /assets/* come from assets/. */
async function newContext() {
  const context = await browser.newContext();
  if (process.env.ASSETS_FROM_DISK === '1') {
    const files = { 'settings-sso.js': 'settings.js' };
    await context.route(/\/assets\/[A-Za-z0-9._-]+$/, (route) => {
      const name = new URL(route.request().url()).pathname.split('/').pop();
      const file = path.join(REPO_ROOT, 'assets', files[name] || name);
      if (!existsSync(file)) return route.continue();
      const contentType = name.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8';
      return route.fulfill({ status: 200, contentType, body: readFileSync(file, 'utf8') });
    });
  }
  return context;
}

function scenario(name, fn) {
  test(name, { timeout: SCENARIO_TIMEOUT }, async (t) => {
    const context = await newContext();
    const slug = name.split(' ')[0].replace(/\W+/g, '');
    const extra = [];
    try {
      await fn({ t, context, slug, fresh: async () => extra[extra.push(await newContext()) - 1] });
    } catch (err) {
      failures += 1;
      let i = 0;
      for (const ctx of [context, ...extra]) {
        for (const page of ctx.pages()) await screenshot(page, `${slug}-FAILED-${(i += 1)}`);
      }
      if (daemon) err.message += `\n--- daemon log (tail) ---\n${daemon.logTail(30)}`;
      throw err;
    } finally {
      for (const ctx of [context, ...extra]) await ctx.close().catch(() => {});
    }
  });
}

async function users() {
  const res = await daemon.admin('/api/users');
  assert.equal(res.status, 200, `GET /api/users: ${JSON.stringify(res.body)}`);
  return res.body.users;
}

async function user(username) {
  return daemon.admin(`/api/users/${encodeURIComponent(username)}`);
}

function bindings(u) {
  return (u.access || []).map(({ role, scope }) => ({ role, scope }));
}

/** An SSO login in a context of its own. Returns the page state. */
async function loginAs(fresh, login, shot) {
  const context = await fresh();
  const page = await context.newPage();
  const state = await ssoLogin(page, daemon, idp, { login, shot });
  assert.ok(state.sawProviderForm, `went through the provider's form; ended on ${state.url}:\n${state.text.slice(0, 300)}`);
  return { ...state, context, page };
}

async function assertSignedInAs(state, username, where) {
  assert.ok(state.daemon, `${where}: expected the daemon, got ${state.url}\n${state.text.slice(0, 400)}`);
  assert.equal(state.whoami, username, `${where}: .whoami; the page says:\n${state.text.slice(0, 400)}`);
  const me = await browserMe(state.context, daemon);
  assert.equal(me.status, 200, `${where}: GET /api/me: ${JSON.stringify(me.body)}`);
  assert.equal(me.body.username, username);
}

/** A refusal page of the daemon: its title, the rule named, no session, no allowed value shown. */
async function assertRefused(state, { title, rule, secrets = [] }, where) {
  assert.ok(state.daemon, `${where}: expected the daemon's page, got ${state.url}`);
  assert.equal(state.whoami, null, `${where}: not signed in`);
  assert.equal(state.h1, title, `${where}: the page's title; it says:\n${state.text.slice(0, 500)}`);
  if (rule) assert.ok(state.text.includes(rule), `${where}: the page names the rule ${rule}:\n${state.text.slice(0, 500)}`);
  for (const secret of secrets) assert.ok(!state.text.includes(secret), `${where}: the page must not list the allowed value ${secret}`);
  assert.ok(state.hasLoginLink, `${where}: the page links back to /login`);
  assert.equal((await browserMe(state.context, daemon)).status, 401, `${where}: no session`);
}

/** The audit trail has a failed SSO login naming `rule` for `subject`. */
async function assertAudited(subject, rule) {
  await waitFor(
    async () => {
      const res = await daemon.admin('/api/audit?kind=login.sso&limit=50');
      if (res.status !== 200) return false;
      return (res.body.events || []).some((e) => JSON.stringify(e).includes(subject) && JSON.stringify(e).includes(rule));
    },
    { timeout: 5000, what: `an audited refusal of ${subject} naming ${rule}` },
  );
}

/** Signs the local admin in on /login in `context`; returns the page. */
async function adminPage(context, target) {
  const page = await context.newPage();
  await page.goto(`${daemon.base}/login?return_to=${encodeURIComponent(target)}`);
  await page.fill('#username', 'admin');
  await page.fill('#password', daemon.adminPassword);
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('#local-login')]);
  if (new URL(page.url()).pathname !== target) await page.goto(`${daemon.base}${target}`);
  await page.locator('#app[data-ready="true"]').waitFor({ timeout: NAV_TIMEOUT });
  return page;
}

before(async () => {
  tmp = makeTmp('coderflow-interop-access-');
  const port = await freePort();
  idp = await spawnProvider(
    { accounts: ACCOUNTS, clients: [{ ...CLIENT, redirect_uris: [`http://127.0.0.1:${port}/auth/oidc/callback`] }] },
    { name: 'idp-access', logFile: path.join(tmp, 'idp-access.log') },
  );
  daemon = await startDaemon({ tmp, port });
  browser = await launchBrowser();
  console.error(`# interop access: daemon ${daemon.base}, provider ${idp.issuer}, work dir ${tmp}`);
});

after(async () => {
  await browser?.close().catch(() => {});
  await daemon?.stop().catch(() => {});
  await idp?.dispose().catch(() => {});
  if (tmp) {
    if (failures === 0 && !process.env.INTEROP_KEEP_TMP) removeTmp(tmp);
    else console.error(`# interop access: kept ${tmp} (daemon.log, idp-access.log, setup/, data/)`);
  }
});

scenario('n. allowed_email_domains: another domain (or a subdomain) is refused, no user; the domain signs in', async ({ fresh, slug }) => {
  await configure({ allowed_email_domains: ['corp.example'] });
  const before = await users();

  const olga = await loginAs(fresh, 'n-olga', `${slug}-olga`);
  await assertRefused(olga, { title: 'Email domain not allowed', rule: 'allowed_email_domains', secrets: ['corp.example'] }, 'other domain');
  // Exact match only: a subdomain is another domain.
  const sue = await loginAs(fresh, 'n-sue', `${slug}-sue`);
  await assertRefused(sue, { title: 'Email domain not allowed', rule: 'allowed_email_domains' }, 'subdomain');
  assert.equal((await users()).length, before.length, 'no user created');
  assert.equal((await user('olga')).status, 404);
  await assertAudited('n-olga', 'allowed_email_domains');

  // Case-insensitive: nina@Corp.Example is in corp.example.
  const nina = await loginAs(fresh, 'n-nina', `${slug}-nina`);
  await assertSignedInAs(nina, 'nina', 'allowed domain');
});

scenario('o. allowed_groups: in none of them (or no groups claim) is refused; a member signs in', async ({ fresh, slug }) => {
  await configure({ allowed_groups: ['engineering', 'cf-admins'] });
  const before = await users();

  const gus = await loginAs(fresh, 'o-gus', `${slug}-gus`);
  await assertRefused(gus, { title: 'Not allowed to sign in', rule: 'allowed_groups', secrets: ['engineering', 'cf-admins'] }, 'not in the groups');
  const nog = await loginAs(fresh, 'o-nog', `${slug}-nog`);
  await assertRefused(nog, { title: 'Missing groups claim', rule: 'groups_claim' }, 'no groups claim');
  assert.equal((await users()).length, before.length, 'no user created');
  await assertAudited('o-gus', 'allowed_groups');

  const otto = await loginAs(fresh, 'o-otto', `${slug}-otto`);
  await assertSignedInAs(otto, 'otto', 'member of an allowed group');
  // No role_mapping: the default role, and access stays editable here.
  const u = (await user('otto')).body;
  assert.deepEqual(bindings(u), [{ role: 'developer', scope: 'environment:*' }]);
  assert.equal(u.access_managed_by_provider, false);
});

scenario('p. role_mapping: promoted and demoted across logins; a missing groups claim refuses and never demotes', async ({ fresh, slug, t }) => {
  t.after(async () => {
    await idp.restart({ accounts: ACCOUNTS });
    await configure().catch(() => {});
  });
  await configure({ role_mapping: ROLE_MAPPING, default_role: 'developer' });
  const withGroups = async (groups) => {
    await idp.restart({ accounts: ACCOUNTS.map((a) => (a.sub === 'p-rob' ? { ...a, groups } : a)) });
    await configure({ role_mapping: ROLE_MAPPING, default_role: 'developer' }); // the provider is ready again
  };
  const access = async () => bindings((await user('rob')).body);

  // First login: the mapping applies (not default_role).
  let state = await loginAs(fresh, 'p-rob', `${slug}-1-first`);
  await assertSignedInAs(state, 'rob', 'first login');
  assert.deepEqual(await access(), [{ role: 'environment_admin', scope: 'environment:*' }], 'engineering → environment_admin');
  assert.equal((await user('rob')).body.access_managed_by_provider, true);

  // Promotion: the highest of the mapped groups.
  await withGroups(['engineering', 'cf-admins']);
  state = await loginAs(fresh, 'p-rob', `${slug}-2-promoted`);
  await assertSignedInAs(state, 'rob', 'promoted');
  assert.deepEqual(await access(), [{ role: 'server_admin', scope: 'server' }], 'cf-admins → server_admin');

  // The groups claim missing: refused, and nothing changes.
  await withGroups(undefined);
  state = await loginAs(fresh, 'p-rob', `${slug}-3-no-groups`);
  await assertRefused(state, { title: 'Missing groups claim', rule: 'groups_claim' }, 'no groups claim');
  assert.match(state.text, /Nothing was changed/);
  assert.deepEqual(await access(), [{ role: 'server_admin', scope: 'server' }], 'a missing claim never demotes');

  // Demotion.
  await withGroups(['auditors']);
  state = await loginAs(fresh, 'p-rob', `${slug}-4-demoted`);
  await assertSignedInAs(state, 'rob', 'demoted');
  assert.deepEqual(await access(), [{ role: 'viewer', scope: 'environment:*' }], 'auditors → viewer');

  // In no mapped group (an empty list is not a missing claim): default_role.
  await withGroups([]);
  state = await loginAs(fresh, 'p-rob', `${slug}-5-unmapped`);
  await assertSignedInAs(state, 'rob', 'no mapped group');
  assert.deepEqual(await access(), [{ role: 'developer', scope: 'environment:*' }], 'default_role');

  // The access is read-only in the API while the provider manages it.
  const refused = await daemon.admin('/api/users/rob/access', { method: 'PUT', body: [{ role: 'server_admin', scope: 'server' }] });
  assert.equal(refused.status, 409, JSON.stringify(refused.body));
  assert.equal(refused.body.error, 'managed_by_provider');
  assert.deepEqual(await access(), [{ role: 'developer', scope: 'environment:*' }]);
});

scenario('q. Check with my account: settings page → provider → preview with the verdict and the claims; nothing signed in', async ({ context, slug }) => {
  await configure({ role_mapping: ROLE_MAPPING, allowed_email_domains: ['corp.example'] });
  const before = await users();
  const page = await adminPage(context, '/settings/sso');

  /** Clicks the button on the settings page, signs in at the provider as `login`; the preview. */
  async function check(login, shot) {
    if (new URL(page.url()).pathname !== '/settings/sso') {
      await page.goto(`${daemon.base}/settings/sso`);
      await page.locator('#app[data-ready="true"]').waitFor();
    }
    // The provider's cookies share the host with the daemon's: a provider session of an earlier
    // check would skip its form. The daemon's session stays.
    await page.context().clearCookies({ name: /^_(session|interaction)/ });
    await page.click('#tab-provisioning');
    const button = page.locator('#preview-sso');
    await waitFor(async () => button.isEnabled(), { timeout: 15000, what: '#preview-sso enabled' });
    assert.match(await page.locator('#preview-sso-hint').textContent(), /Nobody is signed in/);
    await screenshot(page, `${shot}-1-settings`);
    await Promise.all([page.waitForURL((u) => u.origin === new URL(idp.issuer).origin, { timeout: NAV_TIMEOUT }), button.click()]);
    await page.locator('#idp-login').waitFor();
    await page.fill('#login', login);
    await page.fill('#password', 'secret');
    await Promise.all([page.waitForURL((u) => u.origin === daemon.origin, { timeout: NAV_TIMEOUT, waitUntil: 'load' }), page.click('#submit')]);
    await screenshot(page, `${shot}-2-preview`);
    const state = await pageState(page, daemon, idp);
    assert.equal(state.h1, 'Check with my account', `the preview page; it says:\n${state.text.slice(0, 500)}`);
    assert.match(await page.title(), /^Check with my account\b/);
    const verdict = page.locator('#preview-verdict');
    const decision = Object.fromEntries(
      await page.locator('#preview-decision tr').evaluateAll((rows) => rows.map((r) => [r.querySelector('th').textContent.trim(), r.querySelector('td').textContent.trim()])),
    );
    const claims = JSON.parse(await page.locator('#preview-claims').textContent());
    return { state, allowed: await verdict.getAttribute('data-allowed'), verdict: (await verdict.textContent()).trim(), decision, claims };
  }

  const quinn = await check('q-quinn', `${slug}-quinn`);
  assert.equal(quinn.allowed, 'true', quinn.verdict);
  assert.match(quinn.verdict, /^Allowed: .*quinn/);
  assert.equal(quinn.decision.Email, 'quinn@corp.example');
  assert.equal(quinn.decision.Username, 'quinn');
  assert.equal(quinn.decision.Name, 'Quinn Preview');
  assert.match(quinn.decision.Access, /server_admin|Server Admin/, `the highest mapped role: ${quinn.decision.Access}`);
  assert.match(quinn.decision.Groups, /cf-admins/);
  assert.equal(quinn.decision.Issuer, idp.issuer);
  assert.equal(quinn.decision['Subject (sub)'], 'q-quinn');
  assert.equal(quinn.claims.sub, 'q-quinn');
  assert.deepEqual(quinn.claims.groups, ['cf-admins', 'engineering']);
  assert.equal(quinn.claims.email, 'quinn@corp.example');
  assert.ok(!/eyJ[A-Za-z0-9_-]{10,}\./.test(quinn.state.text), 'no token on the page');
  assert.ok(!quinn.state.text.includes(CLIENT.client_secret), 'no secret on the page');
  // Nothing signed in or created: the browser is still the admin's, quinn does not exist.
  assert.equal(quinn.state.whoami, 'admin');
  assert.equal((await browserMe(context, daemon)).body.username, 'admin');
  assert.equal((await user('quinn')).status, 404);

  // A refusal: the rule that refuses, for the administrator.
  const olaf = await check('q-olaf', `${slug}-olaf`);
  assert.equal(olaf.allowed, 'false', olaf.verdict);
  assert.match(olaf.verdict, /^Refused: .*allowed_email_domains/);
  assert.equal(olaf.claims.email, 'olaf@elsewhere.example');
  assert.equal((await user('olaf')).status, 404);
  assert.equal((await users()).length, before.length, 'no user created');

  // Back to the settings page from the preview's link.
  await page.click('a[href="/settings/sso"]');
  await page.locator('#app[data-ready="true"]').waitFor();
});

scenario('r. People & Access: a user whose access the provider manages is read-only', async ({ context, fresh, slug }) => {
  await configure({ role_mapping: ROLE_MAPPING });
  const ria = await loginAs(fresh, 'r-ria', `${slug}-ria`);
  await assertSignedInAs(ria, 'ria', 'SSO login');
  assert.equal((await user('ria')).body.access_managed_by_provider, true);

  const page = await adminPage(context, '/people');
  const row = page.locator('#users-body tr[data-username="ria"]');
  await row.waitFor();
  assert.equal(await row.getAttribute('data-managed'), 'true');
  assert.match(await row.locator('.access-managed').textContent(), /^Managed by the identity provider \(role_mapping\)/);
  await row.locator('.access-badges [data-role="viewer"]').waitFor();
  assert.equal(await row.locator('select[data-action="role"]').count(), 0, 'no access select');
  assert.equal(await row.locator('[data-action="apply-access"]').count(), 0, 'no Apply button');
  // The local admin is not managed: the select is there.
  const admin = page.locator('#users-body tr[data-username="admin"]');
  assert.equal(await admin.getAttribute('data-managed'), 'false');
  assert.equal(await admin.locator('select[data-action="role"]').count(), 1);
  await screenshot(page, `${slug}-people`);

  // Without role_mapping, access is managed here again.
  await configure();
  assert.equal((await user('ria')).body.access_managed_by_provider, false);
  await page.reload();
  await page.locator('#app[data-ready="true"]').waitFor();
  assert.equal(await row.getAttribute('data-managed'), 'false');
  assert.equal(await row.locator('select[data-action="role"]').count(), 1);
});
