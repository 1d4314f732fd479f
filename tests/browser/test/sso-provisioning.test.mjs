// Settings → Single Sign-On → User Provisioning: who may sign in (allowed email domains, allowed
// groups, required claims), access from the identity provider (role mapping), where the claims
// are, and "Check with my account"; then People & Access for a user whose access the provider
// manages. Real Chromium against the real coder-server.
//
// One daemon, one signed-in admin page; the tests run in order and build on each other:
// defaults → validation as you type → fill and save (oidc.json on disk) → reload → a save without
// changes keeps every field → the server's 422 lands on the right control → clearing leaves the
// fields out → Check with my account → People & Access read-only (the flag and the 409 are
// simulated here; tests/interop/test/access.test.mjs has the real thing, with a real provider).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import {
  assertAccessible,
  assertNoHorizontalOverflow,
  assertNoPageErrors,
  eventually,
  launchBrowser,
  newPage,
  screenshot,
  sequence,
  signIn,
} from '../lib/browser.mjs';
import { startDaemon, writeFileAtomic } from '../lib/daemon.mjs';
import { startIdp } from '../lib/idp.mjs';

// Not "sso-…": the screenshots of sso-settings.test.mjs (suite "sso") would clean them away.
const SUITE = 'provisioning';
const CLIENT_ID = 'coderflow-provisioning-test';
const CLIENT_SECRET = 'provisioning-secret';
const NEW_FIELDS = [
  'email_claim',
  'name_claim',
  'username_claim',
  'groups_claim',
  'required_claims',
  'allowed_email_domains',
  'allowed_groups',
  'role_mapping',
];

// What the form is filled with, and what oidc.json must then hold.
const FILLED = {
  email_claim: 'https://example.com/email',
  name_claim: 'display_name',
  username_claim: 'preferred_username',
  groups_claim: '/realm_access/roles',
  allowed_email_domains: ['company.example', 'example.org', 'sub.company.example'],
  // A group name may contain commas (an LDAP DN): one per line.
  allowed_groups: ['engineering', 'CN=Admins,OU=Groups,DC=example,DC=com'],
  required_claims: { hd: ['company.example'], tid: ['tenant-1', 'tenant-2'] },
  role_mapping: [
    { group: 'engineering', role: 'developer' },
    { group: 'CN=Admins,OU=Groups,DC=example,DC=com', role: 'server_admin' },
    { group: 'auditors', role: 'viewer' },
  ],
};

describe('Settings → Single Sign-On → User Provisioning', () => {
  const step = sequence(test);
  let daemon;
  let idp;
  let browser;
  let page;

  const readDisk = () => JSON.parse(fs.readFileSync(daemon.oidcPath, 'utf8'));
  const pick = (object, keys) => Object.fromEntries(keys.filter((k) => k in object).map((k) => [k, object[k]]));
  const claimRows = () => page.locator('#required-claims-list li.rule-row');
  const mappingRows = () => page.locator('#role-mapping-list li.rule-row');

  before(async () => {
    idp = await startIdp({ clientSecret: CLIENT_SECRET });
    daemon = await startDaemon('sso-provisioning');
    // Connection settings straight into the file: this suite is about the other tab.
    writeFileAtomic(
      daemon.oidcPath,
      JSON.stringify({ enabled: true, client_id: CLIENT_ID, client_secret: CLIENT_SECRET, issuer: idp.issuer }, null, 2) + '\n',
    );
    browser = await launchBrowser();
    page = await newPage(browser);
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
    await idp?.close();
  });

  async function toast(text) {
    const item = page.locator('#toast-region .toast:not([data-test-seen])', { hasText: text }).first();
    await item.waitFor({ state: 'visible' });
    await item.evaluate((node) => node.setAttribute('data-test-seen', ''));
  }

  async function save() {
    await page.locator('#save').click();
    await toast('SSO settings saved');
    await eventually(async () => assert.equal(await page.locator('#sso-form').getAttribute('data-dirty'), 'false'));
  }

  async function errorOf(id) {
    const box = page.locator(`#${id}`);
    return (await box.isVisible()) ? (await box.textContent()).trim() : '';
  }

  async function fillClaimRow(i, claim, values) {
    const row = claimRows().nth(i);
    await row.locator('[data-field="claim"]').fill(claim);
    await row.locator('[data-field="values"]').fill(values);
  }

  async function fillMappingRow(i, group, role) {
    const row = mappingRows().nth(i);
    await row.locator('[data-field="group"]').fill(group);
    await row.locator('[data-field="role"]').selectOption(role);
  }

  /** What the User Provisioning tab shows now, in oidc.json's terms (rows as typed). */
  async function shown() {
    return page.evaluate(() => {
      const value = (id) => document.getElementById(id).value;
      const rows = (id) =>
        Array.from(document.querySelectorAll(`#${id} li.rule-row`), (row) =>
          Object.fromEntries(Array.from(row.querySelectorAll('[data-field]'), (n) => [n.dataset.field, n.value])),
        );
      return {
        email_claim: value('sso-email-claim'),
        name_claim: value('sso-name-claim'),
        username_claim: value('sso-username-claim'),
        groups_claim: value('sso-groups-claim'),
        allowed_email_domains: value('sso-allowed-email-domains'),
        allowed_groups: value('sso-allowed-groups'),
        required_claims: rows('required-claims-list'),
        role_mapping: rows('role-mapping-list'),
      };
    });
  }

  step('the User Provisioning tab shows the new fields with their defaults', async () => {
    await signIn(page, daemon.url, 'admin', daemon.password, '/settings/sso');
    await page.locator('#app[data-ready="true"]').waitFor();
    await eventually(async () => assert.equal(await page.locator('#provider-state').getAttribute('data-state'), 'ready'), {
      timeoutMs: 20_000,
      message: 'provider state',
    });
    await page.locator('#tab-provisioning').click();
    await page.getByRole('heading', { name: 'Who may sign in', level: 2 }).waitFor();
    await page.getByRole('heading', { name: 'Access from the identity provider', level: 2 }).waitFor();
    await page.getByRole('heading', { name: 'Where the claims are', level: 2 }).waitFor();

    // Labelled controls, empty, placeholders showing the defaults.
    assert.equal(await page.getByLabel('Email claim', { exact: true }).getAttribute('placeholder'), 'email');
    assert.equal(await page.getByLabel('Name claim', { exact: true }).getAttribute('placeholder'), 'name');
    assert.equal(await page.getByLabel('Groups claim', { exact: true }).getAttribute('placeholder'), 'groups');
    assert.match(await page.getByLabel('Username claim', { exact: true }).getAttribute('placeholder'), /email/);
    assert.deepEqual(await shown(), {
      email_claim: '',
      name_claim: '',
      username_claim: '',
      groups_claim: '',
      allowed_email_domains: '',
      allowed_groups: '',
      required_claims: [],
      role_mapping: [],
    });
    await page.getByLabel('Allowed email domains').waitFor();
    await page.getByLabel('Allowed groups').waitFor();
    assert.ok(await page.locator('#required-claims-empty').isVisible());
    assert.ok(await page.locator('#role-mapping-empty').isVisible());

    // The explanation: the order of the checks, a missing groups claim never demotes, and with
    // a mapping the provider manages access.
    const order = await page.locator('#access-order > li').allTextContents();
    assert.equal(order.length, 5);
    assert.match(order[0], /^Required claims/);
    assert.match(order[1], /^Allowed email domains/);
    assert.match(order[2], /^Groups claim: .*refused.*never demotes/);
    assert.match(order[3], /^Allowed groups/);
    assert.match(order[4], /^Role mapping/);
    assert.match(await page.locator('#role-mapping-note').textContent(), /identity provider manages access.*read-only in People & Access/);

    // The API answers the new fields, unset, and the configuration as it was.
    const api = await (await page.request.get(`${daemon.url}/api/settings/sso`)).json();
    assert.equal(api.config.access_managed_by_provider, false);
    for (const key of ['username_claim', 'required_claims', 'allowed_email_domains', 'allowed_groups', 'role_mapping']) {
      assert.equal(api.config[key], null, `${key} unset`);
    }
    await screenshot(page, SUITE, 'defaults');
    for (const colorScheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme });
      await assertAccessible(page, `User Provisioning, defaults (${colorScheme})`);
    }
    await page.emulateMedia({ colorScheme: 'light' });
    assertNoPageErrors(page);
  });

  step('validation as you type: a bad domain, a nested path without its leading /, half a row', async () => {
    const before = fs.readFileSync(daemon.oidcPath, 'utf8');
    const domains = page.getByLabel('Allowed email domains');
    await domains.fill('company.example\nalice@example.org');
    await eventually(async () => assert.match(await errorOf('err-allowed_email_domains'), /"alice@example\.org" is not a domain: enter only the part after the @, example\.org/));
    assert.equal(await domains.getAttribute('aria-invalid'), 'true');
    assert.match(await domains.getAttribute('aria-describedby'), /\berr-allowed_email_domains\b/);
    await domains.fill('company.example, exa mple.org');
    await eventually(async () => assert.match(await errorOf('err-allowed_email_domains'), /contains a space/));
    await domains.fill('company.example\nhttps://example.org');
    await eventually(async () => assert.match(await errorOf('err-allowed_email_domains'), /without https:\/\//));
    await domains.fill('company.example\nexample.org');
    await eventually(async () => assert.equal(await errorOf('err-allowed_email_domains'), ''));
    assert.equal(await domains.getAttribute('aria-invalid'), null);

    const groupsClaim = page.getByLabel('Groups claim', { exact: true });
    await groupsClaim.fill('realm_access/roles');
    await eventually(async () => assert.match(await errorOf('err-groups_claim'), /JSON Pointer starting with \/, such as \/realm_access\/roles/));
    assert.equal(await groupsClaim.getAttribute('aria-invalid'), 'true');
    // A namespaced claim name (a URL) may contain slashes; a pointer is fine.
    await groupsClaim.fill('https://example.com/groups');
    await eventually(async () => assert.equal(await errorOf('err-groups_claim'), ''));
    await groupsClaim.fill('/realm_access/');
    await eventually(async () => assert.match(await errorOf('err-groups_claim'), /Remove the \/ at the end/));
    await groupsClaim.fill('/realm_access/roles');
    await eventually(async () => assert.equal(await errorOf('err-groups_claim'), ''));
    assert.equal(await groupsClaim.getAttribute('aria-invalid'), null);
    const emailClaim = page.getByLabel('Email claim', { exact: true });
    await emailClaim.fill('   ');
    await eventually(async () => assert.match(await errorOf('err-email_claim'), /Enter a claim, or leave the field empty/));
    await emailClaim.fill('');
    await eventually(async () => assert.equal(await errorOf('err-email_claim'), ''));

    // A mapping row needs both fields: said once the focus leaves the row, not while typing.
    await page.locator('#add-role-mapping').click();
    assert.equal(await mappingRows().count(), 1);
    const row = mappingRows().first();
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.field), 'group', 'the new row\'s group has the focus');
    await row.locator('[data-field="group"]').fill('engineering');
    assert.equal(await row.locator('.field-error').isVisible(), false, 'no error while typing');
    await page.getByLabel('Allowed groups').focus();
    await eventually(async () => assert.match(await row.locator('.field-error').textContent(), /Choose the role/));
    assert.equal(await row.locator('[data-field="role"]').getAttribute('aria-invalid'), 'true');
    assert.equal(await row.locator('[data-field="role"]').getAttribute('aria-describedby'), await row.locator('.field-error').getAttribute('id'));
    await row.locator('[data-field="role"]').selectOption('developer');
    await eventually(async () => assert.equal(await row.locator('.field-error').isVisible(), false));

    // A required claim: a nested path without / in its claim, values missing.
    await page.locator('#add-required-claim').click();
    await claimRows().first().locator('[data-field="claim"]').fill('realm_access/tenant');
    await eventually(async () => assert.match(await claimRows().first().locator('.field-error').textContent(), /such as \/realm_access\/tenant/));
    await screenshot(page, SUITE, 'validation-as-you-type');

    // Saving shows every problem beside its field and writes nothing.
    await page.locator('#save').click();
    await eventually(async () => assert.match(await claimRows().first().locator('.field-error').textContent(), /Enter at least one allowed value/));
    assert.equal(await claimRows().first().locator('[data-field="values"]').getAttribute('aria-invalid'), 'true');
    await page.locator('#form-error .alert-error').waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.field), 'claim', 'the focus goes to the first problem');
    assert.equal(fs.readFileSync(daemon.oidcPath, 'utf8'), before, 'nothing is saved');
    assertNoPageErrors(page);
  });

  step('fill every field and save: oidc.json holds them exactly', async () => {
    // Claim locations.
    await page.getByLabel('Email claim', { exact: true }).fill(FILLED.email_claim);
    await page.getByLabel('Name claim', { exact: true }).fill(FILLED.name_claim);
    await page.getByLabel('Username claim', { exact: true }).fill(FILLED.username_claim);
    await page.getByLabel('Groups claim', { exact: true }).fill(FILLED.groups_claim);
    // Lists: domains by line and by comma, a duplicate (any case) is dropped.
    await page.getByLabel('Allowed email domains').fill('company.example, example.org\n\nsub.company.example\nCompany.Example\n');
    await page.getByLabel('Allowed groups').fill(FILLED.allowed_groups.join('\n') + '\n');
    // Rows: the first required claim row is fixed, one more added.
    await fillClaimRow(0, 'hd', 'company.example');
    await page.locator('#add-required-claim').click();
    await fillClaimRow(1, 'tid', ' tenant-1 ,tenant-2, ');
    // Mapping: one row exists; two more, and an empty one that is not sent.
    await page.locator('#add-role-mapping').click();
    await fillMappingRow(1, FILLED.role_mapping[1].group, 'server_admin');
    await page.locator('#add-role-mapping').click();
    await page.locator('#add-role-mapping').click();
    await fillMappingRow(3, 'auditors', 'viewer');
    assert.equal(await mappingRows().count(), 4);
    // Removing the empty third row: the focus goes to the next row's Remove button.
    await page.getByRole('button', { name: 'Remove mapping 3', exact: true }).click();
    assert.equal(await mappingRows().count(), 3);
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Remove mapping 3');
    assert.equal(await page.locator('#role-mapping-empty').isVisible(), false);
    assert.equal(await page.locator('#sso-form').getAttribute('data-dirty'), 'true');
    await page.locator('#role-mapping').scrollIntoViewIfNeeded();
    await screenshot(page, SUITE, 'filled');

    const sent = page.waitForRequest((r) => r.method() === 'PUT' && new URL(r.url()).pathname === '/api/settings/sso');
    await save();
    const body = (await sent).postDataJSON();
    assert.deepEqual(pick(body, NEW_FIELDS), FILLED, 'the PUT body');

    const onDisk = readDisk();
    assert.deepEqual(pick(onDisk, NEW_FIELDS), FILLED, 'oidc.json');
    assert.equal(onDisk.client_secret, CLIENT_SECRET, 'the secret is kept');
    assert.equal(onDisk.issuer, idp.issuer);
    assert.equal('link_by_email' in onDisk, false);
    const api = await (await page.request.get(`${daemon.url}/api/settings/sso`)).json();
    assert.equal(api.config.access_managed_by_provider, true, 'a role mapping: the provider manages access');
    assert.deepEqual(api.config.role_mapping, FILLED.role_mapping);
    assertNoPageErrors(page);
  });

  step('after a reload the fields are shown again', async () => {
    await page.reload();
    await page.locator('#app[data-ready="true"]').waitFor();
    await page.locator('#tab-provisioning').click();
    await eventually(async () => assert.equal(await page.getByLabel('Email claim', { exact: true }).inputValue(), FILLED.email_claim));
    assert.deepEqual(await shown(), {
      email_claim: FILLED.email_claim,
      name_claim: FILLED.name_claim,
      username_claim: FILLED.username_claim,
      groups_claim: FILLED.groups_claim,
      allowed_email_domains: FILLED.allowed_email_domains.join('\n'),
      allowed_groups: FILLED.allowed_groups.join('\n'),
      required_claims: [
        { claim: 'hd', values: 'company.example' },
        { claim: 'tid', values: 'tenant-1, tenant-2' },
      ],
      role_mapping: FILLED.role_mapping,
    });
    assert.equal(await page.locator('#sso-form').getAttribute('data-dirty'), 'false');
    // Rows are labelled with their number.
    await page.getByLabel('Group, mapping 2', { exact: true }).waitFor();
    await page.getByLabel('Allowed values, required claim 2', { exact: true }).waitFor();
    await screenshot(page, SUITE, 'reloaded');
    for (const colorScheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme });
      await assertAccessible(page, `User Provisioning, filled (${colorScheme})`);
    }
    await page.emulateMedia({ colorScheme: 'light' });
    assertNoPageErrors(page);
  });

  step('a save without changes keeps every field (nothing dropped)', async () => {
    const before = readDisk();
    // Another tab changed: the provisioning fields are still sent.
    await page.locator('#tab-connection').click();
    await page.getByLabel('Display name').fill('Sign in with Provisioning');
    const sent = page.waitForRequest((r) => r.method() === 'PUT' && new URL(r.url()).pathname === '/api/settings/sso');
    await save();
    assert.deepEqual(pick((await sent).postDataJSON(), NEW_FIELDS), FILLED);
    let after = readDisk();
    assert.equal(after.display_name, 'Sign in with Provisioning');
    assert.deepEqual(pick(after, NEW_FIELDS), pick(before, NEW_FIELDS));

    // And a save with no change at all.
    const text = fs.readFileSync(daemon.oidcPath, 'utf8');
    await save();
    after = readDisk();
    assert.deepEqual(after, JSON.parse(text), 'the same oidc.json');
    assert.deepEqual(pick(after, NEW_FIELDS), FILLED);
    assertNoPageErrors(page);
  });

  step('the server\'s 422 lands on the right control', async () => {
    await page.locator('#tab-provisioning').click();
    const before = fs.readFileSync(daemon.oidcPath, 'utf8');

    // A value the page does not check itself (over 1024 characters): /required_claims/tid/0.
    const long = 'x'.repeat(1100);
    await fillClaimRow(1, 'tid', `${long}, tenant-2`);
    await page.locator('#tab-connection').click(); // the answer brings the tab back
    await page.locator('#save').click();
    const tidRow = claimRows().nth(1);
    await tidRow.locator('.field-error').waitFor({ state: 'visible' });
    assert.equal(await tidRow.locator('[data-field="values"]').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.locator('#tab-provisioning').getAttribute('aria-selected'), 'true');
    assert.equal(await page.evaluate(() => document.activeElement?.id), await tidRow.locator('[data-field="values"]').getAttribute('id'));
    assert.notEqual((await tidRow.locator('.field-error').textContent()).trim(), '');
    assert.equal(await claimRows().first().locator('.field-error').isVisible(), false, 'not on the other row');
    assert.match(await page.locator('#form-error').textContent(), /Fix the highlighted fields/);
    assert.equal(fs.readFileSync(daemon.oidcPath, 'utf8'), before, 'nothing is saved');
    await fillClaimRow(1, 'tid', 'tenant-1, tenant-2');

    // A role the server does not know, put into the request on its way: /role_mapping/1/role.
    await page.route('**/api/settings/sso', async (route) => {
      const request = route.request();
      if (request.method() !== 'PUT') return route.continue();
      const body = request.postDataJSON();
      body.role_mapping[1].role = 'superuser';
      return route.continue({ postData: JSON.stringify(body) });
    });
    const answered = page.waitForResponse((r) => r.request().method() === 'PUT' && new URL(r.url()).pathname === '/api/settings/sso');
    await page.locator('#save').click();
    const response = await answered;
    assert.equal(response.status(), 422);
    const answer = await response.json();
    assert.equal(answer.error, 'invalid_config');
    assert.ok(answer.details.some((d) => d.pointer === '/role_mapping/1/role'), `pointers: ${answer.details.map((d) => d.pointer)}`);
    await page.unroute('**/api/settings/sso');
    const second = mappingRows().nth(1);
    await second.locator('.field-error').waitFor({ state: 'visible' });
    assert.equal(await second.locator('[data-field="role"]').getAttribute('aria-invalid'), 'true');
    assert.equal(await second.locator('[data-field="group"]').getAttribute('aria-invalid'), null);
    assert.equal(await mappingRows().first().locator('.field-error').isVisible(), false);
    assert.equal(await page.evaluate(() => document.activeElement?.id), await second.locator('[data-field="role"]').getAttribute('id'));
    await screenshot(page, SUITE, 'server-422-on-row');

    // /allowed_email_domains/1 names the entry.
    await page.route('**/api/settings/sso', (route) =>
      route.request().method() === 'PUT'
        ? route.fulfill({
            status: 422,
            contentType: 'application/json',
            body: JSON.stringify({
              error: 'invalid_config',
              message: 'the SSO settings are not valid: see details',
              details: [{ pointer: '/allowed_email_domains/1', message: 'does not match the domain pattern' }],
            }),
          })
        : route.continue(),
    );
    await page.locator('#save').click();
    await eventually(async () => assert.equal(await errorOf('err-allowed_email_domains'), '"example.org": does not match the domain pattern'));
    assert.equal(await page.getByLabel('Allowed email domains').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'sso-allowed-email-domains');
    await page.unroute('**/api/settings/sso');
    assert.equal(fs.readFileSync(daemon.oidcPath, 'utf8'), before, 'nothing is saved');
    for (const colorScheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme });
      await assertAccessible(page, `User Provisioning with errors (${colorScheme})`);
    }
    await page.emulateMedia({ colorScheme: 'light' });

    // Discard brings back what is saved, without the errors.
    await page.getByLabel('Name claim', { exact: true }).fill('nickname');
    await page.locator('#discard').click();
    await eventually(async () => assert.equal(await page.locator('#sso-form').getAttribute('data-dirty'), 'false'));
    assert.equal(await page.locator('.rule-row .field-error:visible').count(), 0);
    assert.equal(await page.locator('#sso-form [aria-invalid="true"]').count(), 0);
    assert.equal(await page.getByLabel('Name claim', { exact: true }).inputValue(), FILLED.name_claim);
    assertNoPageErrors(page);
  });

  step('the page fits a 360 px wide screen with rows', async () => {
    const small = await newPage(browser, { viewport: { width: 360, height: 740 } });
    await signIn(small, daemon.url, 'admin', daemon.password, '/settings/sso');
    await small.locator('#app[data-ready="true"]').waitFor();
    await small.locator('#tab-provisioning').click();
    await small.locator('#role-mapping-list li.rule-row').first().waitFor();
    await assertNoHorizontalOverflow(small);
    await small.locator('#role-mapping').scrollIntoViewIfNeeded();
    await screenshot(small, SUITE, 'provisioning-360px');
    assertNoPageErrors(small);
    await small.context().close();
  }, { critical: false });

  step('Check with my account: enabled for a saved, enabled, ready configuration; a navigation to ?preview=1', async () => {
    await page.locator('#tab-provisioning').click();
    const button = page.getByRole('button', { name: 'Check with my account' });
    await eventually(async () => assert.equal(await button.isEnabled(), true));
    assert.match(await page.locator('#preview-sso-hint').textContent(), /claims.*without|Nobody is signed in/);
    assert.match(await page.locator('#preview-sso-hint').textContent(), /save your changes first/);
    assert.equal((await page.locator('#preview-sso-note').textContent()).trim(), '');

    // Unsaved changes: still enabled, and the page says they are not used.
    await page.getByLabel('Name claim', { exact: true }).fill('nickname');
    await eventually(async () => assert.match(await page.locator('#preview-sso-note').textContent(), /unsaved changes/));
    await page.locator('#discard').click();
    await eventually(async () => assert.equal((await page.locator('#preview-sso-note').textContent()).trim(), ''));

    // A normal navigation (not a fetch) to the preview login, with the admin's session.
    const navigated = page.waitForRequest((r) => new URL(r.url()).pathname === '/auth/oidc/login');
    await button.click();
    const request = await navigated;
    assert.equal(request.isNavigationRequest(), true);
    assert.equal(new URL(request.url()).search, '?preview=1');
    // This suite's provider issues no tokens: the sign-in ends on the server's error page.
    await page.waitForURL((u) => u.pathname === '/auth/oidc/callback');
    await page.waitForLoadState('load');
    assert.ok(idp.requests.includes('/authorize'), 'the browser went to the identity provider');
    await screenshot(page, SUITE, 'preview-navigation');

    // Back on the settings page. SSO turned off and saved: the check is not offered.
    await page.goto(`${daemon.url}/settings/sso`);
    await page.locator('#app[data-ready="true"]').waitFor();
    await page.getByRole('switch', { name: 'Enable SSO' }).uncheck();
    await save();
    await page.locator('#tab-provisioning').click();
    await eventually(async () => assert.equal(await button.isDisabled(), true));
    assert.match(await page.locator('#preview-sso-note').textContent(), /Enable SSO/);
    assert.deepEqual(pick(readDisk(), NEW_FIELDS), FILLED, 'the fields are kept');
    await page.locator('#tab-connection').click();
    await page.getByRole('switch', { name: 'Enable SSO' }).check();
    await save();
    await page.locator('#tab-provisioning').click();
    await eventually(async () => assert.equal(await button.isEnabled(), true), { timeoutMs: 20_000 });
    assertNoPageErrors(page);
  });

  step('clearing the fields leaves them out of oidc.json', async () => {
    for (const label of ['Email claim', 'Name claim', 'Username claim', 'Groups claim']) {
      await page.getByLabel(label, { exact: true }).fill('');
    }
    await page.getByLabel('Allowed email domains').fill('');
    await page.getByLabel('Allowed groups').fill('  \n');
    while ((await claimRows().count()) > 0) await claimRows().first().locator('[data-row-action="remove"]').click();
    // A row left empty counts as no row.
    await mappingRows().nth(0).locator('[data-row-action="remove"]').click();
    await mappingRows().nth(0).locator('[data-row-action="remove"]').click();
    await fillMappingRow(0, '', '');
    assert.ok(await page.locator('#required-claims-empty').isVisible());
    const sent = page.waitForRequest((r) => r.method() === 'PUT' && new URL(r.url()).pathname === '/api/settings/sso');
    await save();
    const body = (await sent).postDataJSON();
    for (const key of ['username_claim', 'required_claims', 'allowed_email_domains', 'allowed_groups', 'role_mapping']) {
      assert.equal(body[key], null, `${key} sent as null`);
    }
    for (const key of ['email_claim', 'name_claim', 'groups_claim']) assert.equal(key in body, false, `${key} not sent`);
    const onDisk = readDisk();
    assert.deepEqual(pick(onDisk, NEW_FIELDS), {}, 'none of the fields is in oidc.json');
    assert.equal(onDisk.client_secret, CLIENT_SECRET);
    const api = await (await page.request.get(`${daemon.url}/api/settings/sso`)).json();
    assert.equal(api.config.access_managed_by_provider, false);
    assert.equal(api.config.groups_claim, 'groups', 'the default is answered');
    assert.equal(await mappingRows().count(), 0, 'the form re-renders from the answer');
    assertNoPageErrors(page);
  });
});

describe('People & Access: access managed by the identity provider', () => {
  const step = sequence(test);
  let daemon;
  let browser;
  let page;
  const row = (username) => page.locator(`#users-body tr[data-username="${username}"]`);

  before(async () => {
    daemon = await startDaemon('people-managed');
    browser = await launchBrowser();
    page = await newPage(browser);
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
  });

  step('a user with access_managed_by_provider is shown read-only, with the note', async () => {
    await signIn(page, daemon.url, 'admin', daemon.password, '/people');
    await page.locator('#app[data-ready="true"]').waitFor();
    for (const [username, role] of [
      ['mia', 'developer'],
      ['noah', 'viewer'],
    ]) {
      const created = await page.evaluate(
        ([u, r]) => window.CF.api('POST', '/api/users', { username: u, email: `${u}@example.com`, name: u.toUpperCase(), role: r }),
        [username, role],
      );
      assert.equal(created.username, username);
    }
    const listed = await (await page.request.get(`${daemon.url}/api/users`)).json();
    assert.ok(listed.users.every((u) => u.access_managed_by_provider === false), 'no role_mapping: nobody is managed');

    // As the server answers once role_mapping is set and mia signed in with SSO.
    await page.route('**/api/users', async (route) => {
      const response = await route.fetch();
      const body = await response.json();
      for (const u of body.users) if (u.username === 'mia') u.access_managed_by_provider = true;
      return route.fulfill({ response, json: body });
    });
    await page.reload();
    await page.locator('#app[data-ready="true"]').waitFor();
    const mia = row('mia');
    await mia.waitFor();
    assert.equal(await mia.getAttribute('data-managed'), 'true');
    assert.match(await mia.locator('.access-managed').textContent(), /^Managed by the identity provider \(role_mapping\)/);
    await mia.locator('.access-badges [data-role="developer"]').waitFor();
    assert.equal(await mia.locator('select[data-action="role"]').count(), 0, 'no access select');
    assert.equal(await mia.locator('[data-action="apply-access"]').count(), 0, 'no Apply');
    assert.equal(await mia.locator('[data-action="toggle-disabled"]').count(), 1, 'Disable is still offered');
    assert.equal(await row('noah').getAttribute('data-managed'), 'false');
    assert.equal(await page.getByLabel('Access for noah', { exact: true }).inputValue(), 'viewer');
    await screenshot(page, SUITE, 'people-managed');
    for (const colorScheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme });
      await assertAccessible(page, `People & Access with a managed user (${colorScheme})`);
    }
    await page.emulateMedia({ colorScheme: 'light' });

    // The PATCH answer carries the flag too (as the server answers for a managed user): the row
    // stays read-only.
    await page.route('**/api/users/mia', async (route) => {
      const response = await route.fetch();
      const body = await response.json();
      body.access_managed_by_provider = true;
      return route.fulfill({ response, json: body });
    });
    await mia.locator('[data-action="toggle-disabled"]').click();
    await page.locator('#disable-confirm').click();
    await eventually(async () => assert.equal(await row('mia').getAttribute('data-disabled'), 'true'));
    assert.equal(await row('mia').getAttribute('data-managed'), 'true');
    assert.equal(await row('mia').locator('select[data-action="role"]').count(), 0);
    await page.setViewportSize({ width: 360, height: 740 });
    await assertNoHorizontalOverflow(page);
    await page.setViewportSize({ width: 1280, height: 900 });
    assertNoPageErrors(page);
  });

  step('a change answered 409 managed_by_provider shows its message and turns the row read-only', async () => {
    const message = "this user's access comes from the identity provider (role_mapping in oidc.json): change their groups at the provider; the next SSO login applies them";
    await page.route('**/api/users/noah/access', (route) =>
      route.fulfill({ status: 409, contentType: 'application/json', body: JSON.stringify({ error: 'managed_by_provider', message }) }),
    );
    await page.getByLabel('Access for noah', { exact: true }).selectOption('developer');
    await page.getByRole('button', { name: 'Apply access for noah', exact: true }).click();
    await page.locator('#toast-region .toast-error', { hasText: message }).waitFor();
    const noah = row('noah');
    await eventually(async () => assert.equal(await noah.getAttribute('data-managed'), 'true'));
    assert.equal((await noah.locator('.access-managed-refusal').textContent()).trim(), message);
    assert.equal(await noah.locator('select[data-action="role"]').count(), 0);
    assert.equal(await page.evaluate(() => document.activeElement?.classList.contains('access-managed')), true, 'the focus goes to the note');
    await noah.locator('.access-badges [data-role="viewer"]').waitFor();
    const server = await (await page.request.get(`${daemon.url}/api/users/noah`)).json();
    assert.deepEqual(server.access.map((a) => a.role), ['viewer'], 'nothing changed');
    await screenshot(page, SUITE, 'people-409');
    assertNoPageErrors(page);
  });
});
