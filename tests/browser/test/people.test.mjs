// People & Access in real Chromium against the real coder-server: add users, change a user's
// access, list and revoke a user's API keys, disable and enable a user; each change is checked
// through the API and by signing in (or by using the API key).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  assertAccessible,
  assertNoHorizontalOverflow,
  assertNoPageErrors,
  launchBrowser,
  newPage,
  screenshot,
  sequence,
  signIn,
} from '../lib/browser.mjs';
import { startDaemon } from '../lib/daemon.mjs';

const SUITE = 'people';
const ALICE = { username: 'alice', email: 'alice@example.com', name: 'Alice Example', password: 'alice-Pa55word!' };
const BOB = { username: 'bob', email: 'bob@example.com', name: 'Bob Example' };

describe('People & Access', () => {
  const step = sequence(test);
  let daemon;
  let browser;
  let page;

  before(async () => {
    daemon = await startDaemon('people');
    browser = await launchBrowser();
    page = await newPage(browser);
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
  });

  const row = (username) => page.locator(`#users-body tr[data-username="${username}"]`);

  async function toast(text) {
    await page.locator('#toast-region .toast', { hasText: text }).first().waitFor({ state: 'visible' });
  }

  async function apiUser(username) {
    const response = await page.request.get(`${daemon.url}/api/users/${username}`);
    assert.equal(response.status(), 200);
    return response.json();
  }

  /** A new API key of `username` from `POST /api/auth/login`: {id, key}. */
  async function createKey(username, password, keyName) {
    const response = await fetch(`${daemon.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ username, password, key_name: keyName }),
    });
    const text = await response.text();
    assert.equal(response.status, 200, `login for a key of ${username}: ${text}`);
    const body = JSON.parse(text);
    assert.match(body.api_key, /^cf_/);
    return { id: body.key_id, key: body.api_key };
  }

  /** The status `GET /api/me` answers with the API key `key` (no cookie). */
  async function meStatus(key) {
    const response = await fetch(`${daemon.url}/api/me`, { headers: { Authorization: `Bearer ${key}`, Accept: 'application/json' } });
    await response.arrayBuffer();
    return response.status;
  }

  const keysDialog = () => page.locator('#user-keys-dialog');

  /** Opens the API keys dialog of `username` and waits for its list. */
  async function openKeys(username) {
    await page.getByRole('button', { name: `API keys of ${username}`, exact: true }).click();
    await keysDialog().waitFor({ state: 'visible' });
    await page.locator(`#user-keys-dialog[data-username="${username}"][data-loaded="true"]`).waitFor();
    assert.equal((await page.locator('#user-keys-title').textContent()).trim(), `API keys of ${username}`);
  }

  async function closeKeys(username) {
    await page.locator('#user-keys-close').click();
    await keysDialog().waitFor({ state: 'hidden' });
    const focused = await page.evaluate(() => document.activeElement?.getAttribute('aria-label'));
    assert.equal(focused, `API keys of ${username}`, 'the focus goes back to the Keys button');
  }

  /** Tries the local login in a fresh context; returns the error shown, or null when signed in. */
  async function tryLogin(username, password) {
    const fresh = await newPage(browser);
    try {
      await signIn(fresh, daemon.url, username, password, '/');
      return null;
    } catch (err) {
      await screenshot(fresh, SUITE, `login-refused-${username}`);
      return err.message;
    } finally {
      await fresh.context().close();
    }
  }

  step('the admin opens People & Access and sees themselves', async () => {
    await signIn(page, daemon.url, 'admin', daemon.password, '/people');
    await page.locator('#app[data-ready="true"]').waitFor();
    await page.getByRole('heading', { name: 'People & Access', level: 1 }).waitFor();
    const admin = row('admin');
    await admin.waitFor();
    await admin.locator('.access-badges [data-role="server_admin"]').waitFor();
    assert.equal(await admin.locator('[data-action="toggle-disabled"]').count(), 0, 'no way to disable yourself');
    assert.equal(await page.getByLabel('Access for admin', { exact: true }).inputValue(), 'server_admin');
    await screenshot(page, SUITE, 'list');
    assertNoPageErrors(page);
  });

  step('Add user creates a local user and an SSO-only user', async () => {
    await page.getByLabel('Username').fill(ALICE.username);
    await page.getByLabel('Email').fill(ALICE.email);
    await page.getByLabel('Name', { exact: true }).fill(ALICE.name);
    await page.locator('#new-role').selectOption('developer');
    await page.getByLabel('Password (optional)').fill(ALICE.password);
    await page.getByRole('button', { name: 'Add user' }).click();
    await toast('User alice added');
    await row('alice').waitFor();
    assert.equal(await row('alice').locator('[data-field="email"]').textContent(), ALICE.email);
    assert.equal(await row('alice').locator('[data-field="name"]').textContent(), ALICE.name);
    await row('alice').locator('.access-badges [data-role="developer"]').waitFor();
    assert.equal(await page.getByLabel('Username').inputValue(), '', 'the form is cleared');

    await page.getByLabel('Username').fill(BOB.username);
    await page.getByLabel('Email').fill(BOB.email);
    await page.getByLabel('Name', { exact: true }).fill(BOB.name);
    await page.locator('#new-role').selectOption('viewer');
    await page.getByRole('button', { name: 'Add user' }).click();
    await toast('User bob added');
    await row('bob').locator('.access-badges [data-role="viewer"]').waitFor();
    assert.equal(await row('bob').locator('.badge-sso, .badge-local').count(), 1, 'a sign-in source badge');

    // A duplicate is refused with a visible error.
    await page.getByLabel('Username').fill(ALICE.username);
    await page.getByLabel('Email').fill('other@example.com');
    await page.getByLabel('Name', { exact: true }).fill('Other');
    await page.getByRole('button', { name: 'Add user' }).click();
    await page.locator('#add-user-error .alert-error').waitFor();
    await screenshot(page, SUITE, 'added');

    assert.equal(await tryLogin(ALICE.username, ALICE.password), null, 'alice can sign in with her password');
  });

  step("change a user's access", async () => {
    const select = page.getByLabel('Access for alice', { exact: true });
    const apply = page.getByRole('button', { name: 'Apply access for alice' });
    assert.equal(await apply.isDisabled(), true, 'nothing to apply yet');
    await select.selectOption('environment_admin');
    assert.equal(await apply.isDisabled(), false);
    await apply.click();
    await toast('Access for alice is now Environment Admin');
    await row('alice').locator('.access-badges [data-role="environment_admin"]').waitFor();
    assert.equal(await row('alice').locator('.access-badges [data-role="developer"]').count(), 0);

    const alice = await apiUser('alice');
    assert.deepEqual(alice.access, [{ role: 'environment_admin', scope: 'environment:*' }]);

    // Server Admin binds at server scope.
    await page.getByLabel('Access for bob', { exact: true }).selectOption('server_admin');
    await page.getByRole('button', { name: 'Apply access for bob' }).click();
    await toast('Access for bob is now Server Admin');
    assert.deepEqual((await apiUser('bob')).access, [{ role: 'server_admin', scope: 'server' }]);

    await page.reload();
    await page.locator('#app[data-ready="true"]').waitFor();
    assert.equal(await page.getByLabel('Access for alice', { exact: true }).inputValue(), 'environment_admin', 'the change is stored');
    await screenshot(page, SUITE, 'access-changed');
    assertNoPageErrors(page);
  });

  let ciKey; // alice's key that stays after the revocation, until she is disabled

  step("a user's API keys are listed, and a revoked key stops working", async () => {
    // A user without keys: the empty state.
    await openKeys('bob');
    await page.locator('#user-keys-empty').waitFor();
    assert.equal((await page.locator('#user-keys-empty').textContent()).trim(), 'No API keys');
    assert.equal(await page.locator('#user-keys-table').count(), 0);
    await closeKeys('bob');

    const laptop = await createKey(ALICE.username, ALICE.password, 'alice laptop');
    ciKey = await createKey(ALICE.username, ALICE.password, 'alice ci');
    assert.equal(await meStatus(laptop.key), 200, 'the laptop key works before it is revoked');
    assert.equal(await meStatus(ciKey.key), 200);

    await openKeys('alice');
    const rows = page.locator('#user-keys-body tr[data-key-id]');
    assert.equal(await rows.count(), 2);
    const laptopRow = page.locator(`#user-keys-body tr[data-key-id="${laptop.id}"]`);
    assert.equal((await laptopRow.locator('[data-col="name"]').textContent()).trim(), 'alice laptop');
    assert.match(await laptopRow.locator('[data-col="prefix"]').textContent(), /cf_/);
    assert.match(await laptopRow.locator('[data-col="created"]').textContent(), /\d/);
    assert.match(await laptopRow.locator('[data-col="last-used"]').textContent(), /\d/, 'used by GET /api/me');
    // The key list as the API answers it agrees.
    const listed = await (await page.request.get(`${daemon.url}/api/users/alice/keys`)).json();
    // Keys from `POST /api/auth/login` live --cli-key-days (contract section 9): a date, or "never".
    const expiresAt = listed.keys.find((k) => String(k.id) === String(laptop.id))?.expires_at ?? null;
    const expires = (await laptopRow.locator('[data-col="expires"]').textContent()).trim();
    if (expiresAt === null) assert.equal(expires, 'never');
    else assert.equal(await laptopRow.locator('[data-col="expires"] time').getAttribute('datetime'), String(expiresAt));
    assert.deepEqual(listed.keys.map((k) => k.name).sort(), ['alice ci', 'alice laptop']);
    await assertAccessible(page, 'API keys dialog');
    await screenshot(page, SUITE, 'keys-dialog');

    // Revoke asks first; Cancel keeps the key.
    await page.getByRole('button', { name: 'Revoke key alice laptop of alice', exact: true }).click();
    await page.locator('#revoke-key-confirm').waitFor({ state: 'visible' });
    assert.match(await page.locator('#revoke-key-text').textContent(), /Revoke key alice laptop of alice\?/);
    await screenshot(page, SUITE, 'keys-revoke-confirm');
    await page.locator('#revoke-key-no').click();
    assert.ok(await page.locator('#revoke-key-confirm').isHidden());
    assert.equal(await rows.count(), 2);
    assert.equal(await meStatus(laptop.key), 200, 'a cancelled revocation changes nothing');

    await page.getByRole('button', { name: 'Revoke key alice laptop of alice', exact: true }).click();
    await page.getByRole('button', { name: 'Revoke key', exact: true }).click();
    await toast('Key alice laptop of alice revoked');
    await laptopRow.waitFor({ state: 'detached' });
    assert.equal(await rows.count(), 1, 'the list is reloaded without the revoked key');
    await page.locator(`#user-keys-body tr[data-key-id="${ciKey.id}"]`).waitFor();
    assert.ok(await page.locator('#revoke-key-confirm').isHidden());

    assert.equal(await meStatus(laptop.key), 401, 'the revoked key is refused');
    assert.equal(await meStatus(ciKey.key), 200, 'the other key still works');
    const after = await (await page.request.get(`${daemon.url}/api/users/alice/keys`)).json();
    assert.deepEqual(after.keys.map((k) => k.name), ['alice ci']);
    await screenshot(page, SUITE, 'keys-revoked');
    await closeKeys('alice');
    assertNoPageErrors(page);
  });

  step('disable a user (their sessions and API keys end for good), then enable them again', async () => {
    // alice has a browser session and an API key before she is disabled.
    const session = await newPage(browser);
    await signIn(session, daemon.url, ALICE.username, ALICE.password, '/');
    assert.equal((await session.request.get(`${daemon.url}/api/me`)).status(), 200);

    // Disable asks first and says what ends; Cancel changes nothing.
    await page.getByRole('button', { name: 'Disable alice' }).click();
    const dialog = page.locator('#disable-dialog');
    await dialog.waitFor({ state: 'visible' });
    const text = await page.locator('#disable-text').textContent();
    assert.match(text, /sessions/);
    assert.match(text, /API keys/);
    assert.match(text, /for good/);
    await screenshot(page, SUITE, 'disable-dialog');
    await page.locator('#disable-cancel').click();
    assert.equal(await dialog.evaluate((d) => d.open), false);
    assert.equal((await apiUser('alice')).disabled, false, 'cancelled: still enabled');
    assert.equal(await meStatus(ciKey.key), 200);

    await page.getByRole('button', { name: 'Disable alice' }).click();
    await page.locator('#disable-confirm').click();
    await toast('alice is disabled');
    assert.match(
      await page.locator('#toast-region .toast', { hasText: 'alice is disabled' }).first().textContent(),
      /sessions ended and their API keys were revoked/,
    );
    await row('alice').locator('.badge-disabled').waitFor();
    assert.equal(await row('alice').getAttribute('data-disabled'), 'true');
    assert.equal((await apiUser('alice')).disabled, true);
    assert.equal(await meStatus(ciKey.key), 401, "a disabled user's key is refused");
    assert.equal((await session.request.get(`${daemon.url}/api/me`)).status(), 401, "a disabled user's session ended");
    await openKeys('alice');
    await page.locator('#user-keys-empty').waitFor();
    await closeKeys('alice');
    await screenshot(page, SUITE, 'disabled');

    await page.reload();
    await page.locator('#app[data-ready="true"]').waitFor();
    assert.equal(await row('alice').getAttribute('data-disabled'), 'true', 'stored');
    assert.notEqual(await tryLogin(ALICE.username, ALICE.password), null, 'a disabled user cannot sign in');

    await page.getByRole('button', { name: 'Enable alice' }).click();
    await toast('alice is enabled');
    assert.equal(await row('alice').getAttribute('data-disabled'), 'false');
    assert.equal(await row('alice').locator('.badge-disabled').count(), 0);
    assert.equal((await apiUser('alice')).disabled, false);
    assert.equal(await tryLogin(ALICE.username, ALICE.password), null, 'enabled again, alice can sign in');
    assert.equal(await meStatus(ciKey.key), 401, 'enabling does not bring the revoked key back');
    assert.equal((await session.request.get(`${daemon.url}/api/me`)).status(), 401, 'nor the ended session');
    await session.context().close();
    assertNoPageErrors(page);
  });

  step('keyboard only: change access with Tab and arrow keys', async () => {
    const select = page.getByLabel('Access for alice', { exact: true });
    await select.focus();
    await select.selectOption('viewer'); // keyboard selection of a <select> is the browser's own
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => document.activeElement?.getAttribute('aria-label'));
    assert.equal(focused, 'Apply access for alice', 'Apply follows the select in tab order');
    await page.keyboard.press('Enter');
    await toast('Access for alice is now Viewer');
    assert.deepEqual((await apiUser('alice')).access, [{ role: 'viewer', scope: 'environment:*' }]);
  }, { critical: false });

  step('the page passes axe (WCAG AA), light and dark', async () => {
    for (const colorScheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme });
      await assertAccessible(page, `People & Access (${colorScheme})`);
    }
    await screenshot(page, SUITE, 'list-dark');
    await page.emulateMedia({ colorScheme: 'light' });
  }, { critical: false });

  step('the page fits a 360 px wide screen', async () => {
    await page.setViewportSize({ width: 360, height: 740 });
    await page.reload();
    await page.locator('#app[data-ready="true"]').waitFor();
    await assertNoHorizontalOverflow(page);
    await screenshot(page, SUITE, 'list-360px');

    // The keys dialog stacks its table too.
    await createKey('admin', daemon.password, 'admin phone');
    await openKeys('admin');
    await page.locator('#user-keys-body tr[data-key-id]').first().waitFor();
    const dialogBox = await keysDialog().boundingBox();
    assert.ok(dialogBox.x >= 0 && dialogBox.x + dialogBox.width <= 360, `the dialog fits: ${JSON.stringify(dialogBox)}`);
    const overflow = await keysDialog().evaluate((d) => d.scrollWidth - d.clientWidth);
    assert.ok(overflow <= 0, `the dialog scrolls sideways by ${overflow}px`);
    await assertNoHorizontalOverflow(page);
    await screenshot(page, SUITE, 'keys-dialog-360px');
    await closeKeys('admin');
    assertNoPageErrors(page);
  }, { critical: false });
});
