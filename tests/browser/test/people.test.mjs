// People & Access in real Chromium against the real coder-server: add users, change a user's
// access, disable and enable a user; each change is checked through the API and by signing in.
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

  step('disable a user, then enable them again', async () => {
    await page.getByRole('button', { name: 'Disable alice' }).click();
    await toast('alice is disabled');
    await row('alice').locator('.badge-disabled').waitFor();
    assert.equal(await row('alice').getAttribute('data-disabled'), 'true');
    assert.equal((await apiUser('alice')).disabled, true);
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
    assertNoPageErrors(page);
  }, { critical: false });
});
