// Settings → Single Sign-On in real Chromium against the real coder-server.
//
// One daemon and one signed-in admin page for the whole file; the tests run in order and build on
// each other: configure → test connection → save → link by email → a new issuer needs the secret
// again → /login shows SSO → failed SSO sign-ins show a reference, and the administrator their
// cause under Recent sign-in failures → edits of oidc.json on disk show up → SSO-only mode →
// Remove SSO.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
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

const SUITE = 'sso';
const CLIENT_ID = 'coderflow-browser-test';
// `: & +` must survive (client_secret_basic form-encodes them).
const CLIENT_SECRET = 'br0wser:secret&with+chars';
const DISPLAY_NAME = 'Sign in with Test IdP';
// What the browser's error page and the settings page show: `SSO-` and six of these characters.
const REFERENCE_RE = /SSO-[A-HJKMNP-Z2-9]{6}/g;

describe('Settings → Single Sign-On', () => {
  const step = sequence(test);
  let daemon;
  let idp;
  let browser;
  let page; // the admin's settings page, kept open (it polls) through the whole file

  before(async () => {
    idp = await startIdp({ clientSecret: CLIENT_SECRET });
    daemon = await startDaemon('sso-settings');
    browser = await launchBrowser();
    page = await newPage(browser);
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
    await idp?.close();
  });

  /** /login as a stranger sees it: a fresh context, no cookies. */
  async function freshLogin() {
    const fresh = await newPage(browser);
    await fresh.goto(`${daemon.url}/login`);
    return fresh;
  }

  /**
   * A stranger clicks the SSO button on /login; the test provider sends the browser straight back
   * to the callback, which fails. Answers the error page (left open), its status, heading and text,
   * and the one reference it shows.
   */
  async function failedSsoSignIn() {
    const fresh = await freshLogin();
    const answered = fresh.waitForResponse((r) => new URL(r.url()).pathname === '/auth/oidc/callback');
    await fresh.locator('#sso-login').click();
    const response = await answered;
    await fresh.waitForLoadState('load');
    const heading = (await fresh.locator('h1').first().textContent()).trim();
    const text = await fresh.locator('body').innerText();
    const references = [...new Set(text.match(REFERENCE_RE) || [])];
    assert.equal(references.length, 1, `one reference on the error page: ${text}`);
    return { page: fresh, status: response.status(), heading, text, reference: references[0] };
  }

  /** The settings page's entry for `reference`, once a poll has brought it. */
  async function failureEntry(reference) {
    const item = page.locator(`#recent-failures-list li.failure[data-reference="${reference}"]`);
    await item.waitFor({ state: 'visible', timeout: 20_000 });
    return {
      item,
      kind: await item.getAttribute('data-kind'),
      badge: (await item.locator('.failure-kind').textContent()).trim(),
      shownReference: (await item.locator('.failure-reference code').textContent()).trim(),
      cause: (await item.locator('.failure-cause').textContent()).trim(),
      hints: await item.locator('.failure-hint').allTextContents(),
      datetime: await item.locator('time.failure-time').getAttribute('datetime'),
      time: (await item.locator('time.failure-time').textContent()).trim(),
    };
  }

  /**
   * Waits for a toast with `text` that no earlier call has waited for: a toast lasts 4 s, so an
   * earlier step's "SSO settings saved" may still be up when the next save is clicked.
   */
  async function toast(text) {
    const item = page.locator('#toast-region .toast:not([data-test-seen])', { hasText: text }).first();
    await item.waitFor({ state: 'visible' });
    await item.evaluate((node) => node.setAttribute('data-test-seen', ''));
  }

  step('the admin signs in on /login and opens the settings page', async () => {
    await page.goto(`${daemon.url}/login`);
    await page.locator('#local-login-form').waitFor();
    assert.equal(await page.locator('#sso-login').count(), 0, 'no SSO button before SSO is configured');
    await screenshot(page, SUITE, 'login-local-only');

    await signIn(page, daemon.url, 'admin', daemon.password, '/settings/sso');
    assert.equal(new URL(page.url()).pathname, '/settings/sso');
    await page.locator('#app[data-ready="true"]').waitFor();
    await page.getByRole('heading', { name: 'Single Sign-On', level: 1 }).waitFor();
    // Nothing configured yet: SSO off, nothing to remove, the redirect URI to register is shown.
    assert.equal(await page.getByRole('switch', { name: 'Enable SSO' }).isChecked(), false);
    assert.equal(await page.locator('#remove-sso').isDisabled(), true);
    const redirect = await page.locator('#redirect-uri').inputValue();
    assert.match(redirect, /^http:\/\/127\.0\.0\.1:\d+\/auth\/oidc\/callback$/);
    assert.equal(redirect, `${daemon.url}/auth/oidc/callback`);
    assert.equal(await page.locator('#provider-state').getAttribute('data-state'), 'disabled');
    // No SSO sign-in has failed yet: the empty state, and the note that the list is kept in memory.
    await page.getByRole('heading', { name: 'Recent sign-in failures', level: 2 }).waitFor();
    assert.equal((await page.locator('#recent-failures-empty').textContent()).trim(), 'No failed sign-ins since the server started.');
    assert.equal(await page.locator('#recent-failures li.failure').count(), 0);
    assert.match(await page.locator('#recent-failures-note').textContent(), /Kept in memory for the last 20 failures/);
    await screenshot(page, SUITE, 'settings-empty');
    assertNoPageErrors(page);
  });

  step('the redirect URI has a working Copy button', async () => {
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: daemon.url });
    await page.locator('#copy-redirect-uri').click();
    await page.locator('#copy-redirect-uri', { hasText: 'Copied' }).waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(copied, `${daemon.url}/auth/oidc/callback`);
  }, { critical: false });

  step('tabs work with the keyboard', async () => {
    await page.locator('#tab-connection').focus();
    await page.keyboard.press('ArrowRight');
    assert.equal(await page.locator('#tab-provisioning').getAttribute('aria-selected'), 'true');
    assert.ok(await page.locator('#panel-provisioning').isVisible());
    assert.ok(await page.locator('#panel-connection').isHidden());
    await page.keyboard.press('Home');
    assert.equal(await page.locator('#tab-connection').getAttribute('aria-selected'), 'true');
    assert.ok(await page.locator('#panel-connection').isVisible());
  }, { critical: false });

  step('choosing a provider fills its issuer template', async () => {
    await page.getByLabel('Identity provider', { exact: true }).selectOption('entra');
    await page.getByLabel('Directory (tenant) ID').fill('contoso-tenant-id');
    assert.equal(await page.getByLabel('Issuer URL').inputValue(), 'https://login.microsoftonline.com/contoso-tenant-id/v2.0');
    await page.getByLabel('Identity provider', { exact: true }).selectOption('okta');
    await page.getByLabel('Okta domain').fill('example.okta.com');
    assert.equal(await page.getByLabel('Issuer URL').inputValue(), 'https://example.okta.com/oauth2/default');
    await page.getByLabel('Identity provider', { exact: true }).selectOption('google');
    assert.ok(await page.locator('#field-tenant').isHidden());
    assert.equal(await page.getByLabel('Issuer URL').inputValue(), 'https://accounts.google.com');
    // A pasted issuer picks its provider.
    await page.getByLabel('Issuer URL').fill('https://login.microsoftonline.com/another-tenant/v2.0');
    await page.getByLabel('Issuer URL').blur();
    assert.equal(await page.getByLabel('Identity provider', { exact: true }).inputValue(), 'entra');
    assert.equal(await page.getByLabel('Directory (tenant) ID').inputValue(), 'another-tenant');
  }, { critical: false });

  step('a rejected value is shown beside its field (422 by pointer)', async () => {
    await page.getByRole('switch', { name: 'Enable SSO' }).check();
    await page.getByLabel('Identity provider', { exact: true }).selectOption('custom');
    await page.getByLabel('Client ID').fill(CLIENT_ID);
    await page.getByLabel('Client Secret').fill(CLIENT_SECRET);
    // http:// is only allowed for a loopback host: the server's schema refuses this one.
    await page.getByLabel('Issuer URL').fill('http://idp.example.com');
    await page.locator('#save').click();
    await page.locator('#err-issuer').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#sso-issuer').getAttribute('aria-invalid'), 'true');
    assert.notEqual((await page.locator('#err-issuer').textContent()).trim(), '');
    assert.equal(fs.existsSync(daemon.oidcPath), false, 'an invalid configuration is not written');
    await screenshot(page, SUITE, 'field-error');
  });

  step('Test Connection against an unreachable issuer shows a failed check with a hint', async () => {
    await page.getByLabel('Issuer URL').fill('http://127.0.0.1:9/unreachable');
    await page.locator('#test-connection').click();
    await page.locator('#test-summary').waitFor({ timeout: 30_000 });
    assert.equal(await page.locator('#test-summary').getAttribute('data-ok'), 'false');
    const failed = page.locator('#test-results li.check-fail');
    assert.ok((await failed.count()) >= 1);
    await page.locator('#test-results li.check-fail[data-check="discovery"] .check-hint').waitFor();
  }, { critical: false });

  step('fill the Connection tab for the running identity provider; Test Connection passes', async () => {
    await page.getByLabel('Issuer URL').fill(idp.issuer);
    await page.getByLabel('Display name').fill(DISPLAY_NAME);
    await page.getByLabel('Scopes').fill('openid, profile email');
    assert.equal(await page.locator('#sso-form').getAttribute('data-dirty'), 'true');
    assert.equal(await page.locator('#err-issuer').isHidden(), true);

    await page.getByRole('button', { name: 'Test Connection' }).click();
    await page.locator('#test-summary').waitFor();
    await eventually(async () => {
      assert.equal(await page.locator('#test-running').count(), 0);
    });
    const checks = await page.locator('#test-results li.check').evaluateAll((items) =>
      items.map((li) => ({ name: li.dataset.check, ok: li.classList.contains('check-ok'), text: li.textContent })),
    );
    const failed = checks.filter((c) => !c.ok);
    assert.deepEqual(failed, [], 'every check passes');
    const names = checks.map((c) => c.name);
    for (const name of ['discovery', 'issuer', 'jwks']) assert.ok(names.includes(name), `check ${name} is shown: ${names}`);
    assert.equal(await page.locator('#test-summary').getAttribute('data-ok'), 'true');
    assert.ok(idp.requests.includes('/.well-known/openid-configuration'), 'the server asked the identity provider');
    await screenshot(page, SUITE, 'test-connection-ok');
    assertNoPageErrors(page);
  });

  step('Save writes oidc.json and applies it; the form re-renders from the answer', async () => {
    await page.locator('#tab-provisioning').click();
    await page.getByRole('radio', { name: 'Viewer' }).check();
    await page.locator('#tab-connection').click();
    await page.locator('#save').click();
    await toast('SSO settings saved');

    assert.equal(await page.locator('#sso-form').getAttribute('data-dirty'), 'false');
    assert.equal(await page.getByLabel('Client Secret').inputValue(), '', 'the secret is never sent back');
    assert.equal(await page.getByLabel('Client Secret').getAttribute('placeholder'), '•••••• (unchanged)');
    assert.equal(await page.getByLabel('Scopes').inputValue(), 'openid profile email');
    assert.equal(await page.locator('#remove-sso').isDisabled(), false);

    const onDisk = JSON.parse(fs.readFileSync(daemon.oidcPath, 'utf8'));
    assert.equal(onDisk.enabled, true);
    assert.equal(onDisk.client_id, CLIENT_ID);
    assert.equal(onDisk.client_secret, CLIENT_SECRET);
    assert.equal(onDisk.issuer, idp.issuer);
    assert.equal(onDisk.display_name, DISPLAY_NAME);
    assert.equal(onDisk.default_role, 'viewer');
    assert.deepEqual(onDisk.scopes, ['openid', 'profile', 'email']);
    const mode = fs.statSync(daemon.oidcPath).mode & 0o777;
    assert.equal(mode, 0o600, `oidc.json mode is ${mode.toString(8)}`);

    // The provider becomes ready in the background (discovery + JWKS from the Node IdP).
    await eventually(async () => {
      assert.equal(await page.locator('#provider-state').getAttribute('data-state'), 'ready');
    }, { timeoutMs: 20_000, message: 'provider state' });
    await screenshot(page, SUITE, 'saved');
    assertNoPageErrors(page);
  });

  step('"Link existing users by email" saves into oidc.json; trust_provider shows a warning', async () => {
    const readDisk = () => JSON.parse(fs.readFileSync(daemon.oidcPath, 'utf8'));
    await page.locator('#tab-provisioning').click();
    const select = page.getByLabel('Link existing users by email', { exact: true });
    const warning = page.locator('#link-by-email-warning');
    assert.equal(await select.inputValue(), 'verified', 'the default');
    const options = await select.locator('option').evaluateAll((list) => list.map((o) => o.value));
    assert.deepEqual(options, ['verified', 'never', 'trust_provider']);
    const hint = await page.locator('#sso-link-by-email-hint').textContent();
    assert.match(hint, /email_verified: true/);
    assert.match(hint, /Never/);
    assert.match(hint, /Entra ID/);
    assert.ok(await warning.isHidden(), 'no warning for the default');
    assert.equal('link_by_email' in readDisk(), false, 'the default is not written');

    await select.selectOption('trust_provider');
    await warning.waitFor({ state: 'visible' });
    assert.match(await warning.textContent(), /takes over the CoderFlow user/);
    assert.match(await select.getAttribute('aria-describedby'), /link-by-email-warning/, 'the warning describes the select');
    assert.equal(await page.locator('#sso-form').getAttribute('data-dirty'), 'true');
    for (const colorScheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme });
      await assertAccessible(page, `settings, link_by_email warning (${colorScheme})`);
    }
    await page.emulateMedia({ colorScheme: 'light' });
    await screenshot(page, SUITE, 'link-by-email-trust-provider');
    await page.locator('#save').click();
    await toast('SSO settings saved');
    assert.equal(readDisk().link_by_email, 'trust_provider');
    assert.equal(await page.locator('#sso-form').getAttribute('data-dirty'), 'false');
    assert.equal(await select.inputValue(), 'trust_provider', 'the form re-renders from the answer');
    assert.ok(await warning.isVisible(), 'the warning stays while trust_provider is saved');
    const api = await (await page.request.get(`${daemon.url}/api/settings/sso`)).json();
    assert.equal(api.config.link_by_email, 'trust_provider');

    await select.selectOption('never');
    assert.ok(await warning.isHidden());
    assert.doesNotMatch(await select.getAttribute('aria-describedby'), /link-by-email-warning/);
    await page.locator('#save').click();
    await eventually(() => assert.equal(readDisk().link_by_email, 'never'));
    await eventually(async () => assert.equal(await page.locator('#sso-form').getAttribute('data-dirty'), 'false'));

    // Back to the default: the field leaves the file, which is in the guide's form again.
    await select.selectOption('verified');
    await page.locator('#save').click();
    await eventually(() => assert.equal('link_by_email' in readDisk(), false));
    await eventually(async () => assert.equal(await page.locator('#sso-form').getAttribute('data-dirty'), 'false'));
    assert.equal(await select.inputValue(), 'verified');
    assert.equal(readDisk().client_secret, CLIENT_SECRET, 'the saved secret is kept');
    await page.locator('#tab-connection').click();
    assertNoPageErrors(page);
  });

  step('a new issuer or client ID needs the client secret again: shown beside the field, not saved', async () => {
    const before = fs.readFileSync(daemon.oidcPath, 'utf8');
    assert.equal(await page.getByLabel('Client Secret').inputValue(), '');

    await page.getByLabel('Issuer URL').fill('http://127.0.0.1:9/another-issuer');
    await page.locator('#save').click();
    const error = page.locator('#err-client_secret');
    await error.waitFor({ state: 'visible' });
    assert.match(await error.textContent(), /client secret again/);
    assert.equal(await page.locator('#sso-client-secret').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'sso-client-secret', 'the focus goes to the secret');
    await screenshot(page, SUITE, 'new-issuer-needs-secret');
    assert.equal(fs.readFileSync(daemon.oidcPath, 'utf8'), before, 'nothing is saved');

    // The server refuses it too (422 pointing at /client_secret), whatever the page checks.
    const refused = await page.evaluate(async (issuer) => {
      try {
        await window.CF.api('PUT', '/api/settings/sso', { enabled: true, client_id: 'coderflow-browser-test', issuer });
        return null;
      } catch (err) {
        return { status: err.status, code: err.code, pointers: err.details.map((d) => d.pointer) };
      }
    }, 'http://127.0.0.1:9/another-issuer');
    assert.deepEqual(refused && { status: refused.status, code: refused.code }, { status: 422, code: 'invalid_config' });
    assert.ok(refused.pointers.includes('/client_secret'), `pointers: ${refused.pointers}`);
    assert.equal(fs.readFileSync(daemon.oidcPath, 'utf8'), before, 'nothing is saved');

    // The same for a new client ID with the old issuer.
    await page.getByLabel('Issuer URL').fill(idp.issuer);
    await page.getByLabel('Client ID').fill('another-client');
    await page.locator('#save').click();
    await error.waitFor({ state: 'visible' });
    assert.equal(fs.readFileSync(daemon.oidcPath, 'utf8'), before, 'nothing is saved');

    // Discard brings the saved values back and clears the error.
    await page.locator('#discard').click();
    await eventually(async () => assert.equal(await page.locator('#sso-form').getAttribute('data-dirty'), 'false'));
    assert.equal(await page.getByLabel('Client ID').inputValue(), CLIENT_ID);
    assert.equal(await page.getByLabel('Issuer URL').inputValue(), idp.issuer);
    assert.ok(await error.isHidden());
    assertNoPageErrors(page);
  });

  step('the settings page and /login pass axe (WCAG AA), light and dark', async () => {
    for (const colorScheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme });
      await page.locator('#tab-connection').click();
      await assertAccessible(page, `settings, Connection tab (${colorScheme})`);
      await page.locator('#tab-provisioning').click();
      await assertAccessible(page, `settings, User Provisioning tab (${colorScheme})`);
      const fresh = await newPage(browser, { colorScheme });
      await fresh.goto(`${daemon.url}/login`);
      await assertAccessible(fresh, `/login (${colorScheme})`);
      await fresh.context().close();
    }
    await screenshot(page, SUITE, 'provisioning-dark');
    await page.emulateMedia({ colorScheme: 'light' });
    await page.locator('#tab-connection').click();
  }, { critical: false });

  step('the SSO button appears on /login without a restart', async () => {
    const fresh = await freshLogin();
    const button = fresh.locator('#sso-login');
    await button.waitFor();
    assert.equal((await button.textContent()).trim(), DISPLAY_NAME);
    assert.match(await button.getAttribute('href'), /^\/auth\/oidc\/login(\?|$)/);
    assert.ok(await fresh.locator('#local-login-form').isVisible(), 'local login is still allowed');
    await screenshot(fresh, SUITE, 'login-with-sso');
    await fresh.setViewportSize({ width: 360, height: 740 });
    await assertNoHorizontalOverflow(fresh);
    await screenshot(fresh, SUITE, 'login-with-sso-360px');
    assertNoPageErrors(fresh);
    await fresh.context().close();
  });

  step('a sign-in whose code the provider refuses: "Answer rejected", without a hint', async () => {
    // The right client secret (with its `: & +`) reaches the token endpoint, which refuses only
    // the code: this test provider issues no tokens.
    const failed = await failedSsoSignIn();
    assert.equal(failed.status, 502);
    assert.equal(failed.heading, 'Sign-in failed');
    assertNoPageErrors(failed.page);
    await failed.page.context().close();

    const entry = await failureEntry(failed.reference);
    assert.equal(entry.kind, 'rejected');
    assert.equal(entry.badge, 'Answer rejected');
    assert.match(entry.cause, /token endpoint refused the request: `invalid_grant` \(this test provider issues no tokens\)/);
    assert.deepEqual(entry.hints, [], 'no hint when the server gives none');
    assert.ok(idp.requests.includes('/token'), 'the server asked the token endpoint');
    assertNoPageErrors(page);
  }, { critical: false });

  step('a client secret the provider no longer accepts: the person gets a reference, the administrator the cause', async () => {
    // The secret was rotated at the provider; oidc.json still has the old one.
    idp.clientSecret = 'rotated-at-the-provider';
    try {
      const failed = await failedSsoSignIn();
      assert.equal(failed.status, 502);
      assert.equal(failed.heading, 'Single sign-on is not set up correctly');
      assert.match(failed.text, new RegExp(`give them the reference ${failed.reference}`));
      assert.doesNotMatch(failed.text, /invalid_client|client secret/i, 'the cause is for the administrator only');
      await screenshot(failed.page, SUITE, 'sso-failure-configuration-error-page');
      await assertAccessible(failed.page, 'SSO error page');
      assertNoPageErrors(failed.page);
      await failed.page.context().close();

      const entry = await failureEntry(failed.reference);
      assert.equal(entry.shownReference, failed.reference);
      assert.equal(entry.kind, 'configuration');
      assert.equal(entry.badge, 'Configuration problem');
      assert.match(entry.cause, /`invalid_client`/);
      assert.match(entry.cause, /Client authentication failed/);
      assert.equal(entry.hints.length, 1);
      assert.match(entry.hints[0], /^How to fix: .*check client_id and client_secret/);
      const at = Date.parse(entry.datetime);
      assert.ok(Math.abs(Date.now() - at) < 120_000, `the failure's time ${entry.datetime} is now`);
      assert.notEqual(entry.time, '');
      assert.notEqual(entry.time, entry.datetime, 'the time is shown formatted');

      // The page shows what the API answers, newest first.
      const api = await (await page.request.get(`${daemon.url}/api/settings/sso`)).json();
      assert.equal(api.recent_failures[0].reference, failed.reference);
      assert.equal(api.recent_failures[0].kind, 'configuration');
      assert.ok(await page.locator('#recent-failures-empty').count() === 0, 'no empty state beside failures');
      await page.locator('#recent-failures').scrollIntoViewIfNeeded();
      await screenshot(page, SUITE, 'recent-failures-configuration');
      assertNoPageErrors(page);
    } finally {
      idp.clientSecret = CLIENT_SECRET;
    }
  }, { critical: false });

  step('a sign-in the provider refuses (access_denied) is listed first; its text stays text; axe passes', async () => {
    const description = '<img src=x onerror="alert(1)"> User is not assigned to this application';
    idp.authorizeError = { error: 'access_denied', error_description: description };
    try {
      const failed = await failedSsoSignIn();
      assert.equal(failed.status, 400);
      assert.equal(failed.heading, 'Sign-in was not completed');
      assert.ok(failed.text.includes(description), 'the error page shows the description as text');
      assert.equal(await failed.page.locator('img').count(), 0);
      assertNoPageErrors(failed.page);
      await failed.page.context().close();

      const entry = await failureEntry(failed.reference);
      assert.equal(entry.kind, 'refused');
      assert.equal(entry.badge, 'Refused by a rule');
      assert.ok(entry.cause.includes(`\`access_denied\`: ${description}`), `cause: ${entry.cause}`);
      assert.equal(await page.locator('#recent-failures img').count(), 0, 'server text is never HTML');
      assert.equal(entry.hints.length, 1);
      assert.match(entry.hints[0], /redirect URI/);

      const order = await page.locator('#recent-failures-list li.failure').evaluateAll((items) => items.map((li) => li.dataset.kind));
      assert.deepEqual(order, ['refused', 'configuration', 'rejected'], 'newest first');
      for (const colorScheme of ['light', 'dark']) {
        await page.emulateMedia({ colorScheme });
        await assertAccessible(page, `settings with recent sign-in failures (${colorScheme})`);
      }
      await page.emulateMedia({ colorScheme: 'light' });
      await page.locator('#recent-failures').scrollIntoViewIfNeeded();
      await screenshot(page, SUITE, 'recent-failures');
      assertNoPageErrors(page);
    } finally {
      idp.authorizeError = null;
    }
  }, { critical: false });

  step('an invalid oidc.json on disk shows up in the banner; the last good config stays live', async () => {
    writeFileAtomic(daemon.oidcPath, `{\n  "enabled": true,\n  "client_id": "${CLIENT_ID}",\n  "issuer": \n}\n`);
    const banner = page.locator('#banner-file-error');
    await banner.waitFor({ state: 'visible', timeout: 20_000 });
    assert.match(await page.locator('#file-error-location').textContent(), /line \d+/);
    assert.ok(await page.locator('#reload-from-file').isVisible());
    await screenshot(page, SUITE, 'banner-invalid-file');

    const fresh = await freshLogin();
    assert.equal((await fresh.locator('#sso-login').textContent()).trim(), DISPLAY_NAME);
    await fresh.context().close();

    // Reload from file does not make it valid: the page says so and the banner stays.
    await page.locator('#reload-from-file').click();
    await toast(/rejected|unchanged/);
    assert.ok(await banner.isVisible());
  });

  step('a valid edit of oidc.json on disk shows up in the form', async () => {
    const edited = {
      enabled: true,
      display_name: 'Sign in from disk',
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      issuer: idp.issuer,
      scopes: ['openid', 'profile', 'email'],
      auto_provision: false,
      default_role: 'developer',
      allow_local_auth: true,
    };
    writeFileAtomic(daemon.oidcPath, JSON.stringify(edited, null, 2) + '\n');
    await eventually(async () => {
      assert.equal(await page.getByLabel('Display name').inputValue(), 'Sign in from disk');
    }, { timeoutMs: 20_000, message: 'display name in the form' });
    await page.locator('#banner-file-error').waitFor({ state: 'detached' });
    await page.locator('#tab-provisioning').click();
    assert.equal(await page.getByRole('switch', { name: 'Auto-provisioning' }).isChecked(), false);
    assert.equal(await page.getByRole('radio', { name: 'Developer' }).isChecked(), true);
    assert.equal(await page.getByLabel('Link existing users by email', { exact: true }).inputValue(), 'verified', 'a file without link_by_email: the default');
    await screenshot(page, SUITE, 'form-from-disk');

    const fresh = await freshLogin();
    assert.equal((await fresh.locator('#sso-login').textContent()).trim(), 'Sign in from disk');
    await fresh.context().close();
    assertNoPageErrors(page);
  });

  step('an oidc.json tracked by git shows the warning banner until it is untracked', async (t) => {
    const git = (...args) => spawnSync('git', ['-C', daemon.setupDir, ...args], { encoding: 'utf8' });
    if (spawnSync('git', ['--version']).status !== 0) return t.skip('git is not installed');
    if (!fs.existsSync(path.join(daemon.setupDir, '.git'))) return t.skip('the setup repository is not a git work tree');
    const added = git('add', '-f', 'oidc.json');
    assert.equal(added.status, 0, added.stderr);
    const text = fs.readFileSync(daemon.oidcPath, 'utf8');
    writeFileAtomic(daemon.oidcPath, text.trimEnd() + '\n\n'); // new bytes: a reload, which checks git
    const banner = page.locator('#banner-git-tracked');
    await banner.waitFor({ state: 'visible', timeout: 20_000 });
    assert.match(await banner.textContent(), /git rm --cached oidc\.json/);
    assert.match(await banner.textContent(), /rotate the client secret/);
    await screenshot(page, SUITE, 'banner-git-tracked');

    const removed = git('rm', '--cached', '--force', '--quiet', 'oidc.json');
    assert.equal(removed.status, 0, removed.stderr);
    writeFileAtomic(daemon.oidcPath, text);
    await banner.waitFor({ state: 'detached', timeout: 20_000 });
  }, { critical: false });

  step('turning off local login asks about the lockout risk; Save anyway hides the form on /login', async () => {
    await page.locator('#tab-provisioning').click();
    await page.getByRole('switch', { name: 'Allow local login' }).uncheck();
    assert.ok(await page.locator('#local-auth-warning').isVisible());
    assert.match(await page.locator('#local-auth-warning').textContent(), /Ensure at least one admin user can authenticate via SSO before disabling local auth/);
    await page.locator('#save').click();

    const dialog = page.locator('#lockout-dialog');
    await dialog.waitFor({ state: 'visible' });
    assert.equal(await dialog.evaluate((d) => d.open), true);
    await screenshot(page, SUITE, 'lockout-dialog');
    assert.equal(JSON.parse(fs.readFileSync(daemon.oidcPath, 'utf8')).allow_local_auth, true, 'nothing saved before confirming');

    await page.getByRole('button', { name: 'Save anyway' }).click();
    await toast('SSO settings saved');
    assert.equal(await dialog.evaluate((d) => d.open), false);
    assert.equal(JSON.parse(fs.readFileSync(daemon.oidcPath, 'utf8')).allow_local_auth, false);
    assert.equal(await page.getByRole('switch', { name: 'Allow local login' }).isChecked(), false);

    const fresh = await freshLogin();
    await fresh.locator('#sso-login').waitFor();
    assert.equal(await fresh.locator('#local-login-form').count(), 0, 'no local form in SSO-only mode');
    assert.equal(await fresh.locator('#password').count(), 0);
    await fresh.getByText('Local login is disabled').waitFor();
    await screenshot(fresh, SUITE, 'login-sso-only');
    await fresh.context().close();
  });

  step('Remove SSO, after confirming, deletes oidc.json and brings local login back', async () => {
    await page.locator('#tab-connection').click();
    await page.locator('#remove-sso').click();
    const dialog = page.locator('#remove-dialog');
    await dialog.waitFor({ state: 'visible' });
    await screenshot(page, SUITE, 'remove-dialog');
    // Cancel first: nothing happens.
    await page.locator('#remove-cancel').click();
    assert.equal(await dialog.evaluate((d) => d.open), false);
    assert.ok(fs.existsSync(daemon.oidcPath));

    await page.locator('#remove-sso').click();
    await page.locator('#remove-confirm').click();
    await toast('SSO removed');
    await eventually(() => assert.equal(fs.existsSync(daemon.oidcPath), false));
    assert.equal(await page.getByRole('switch', { name: 'Enable SSO' }).isChecked(), false);
    assert.equal(await page.locator('#remove-sso').isDisabled(), true);
    await eventually(async () => {
      assert.equal(await page.locator('#provider-state').getAttribute('data-state'), 'disabled');
    });
    await screenshot(page, SUITE, 'removed');

    const fresh = await freshLogin();
    await fresh.locator('#local-login-form').waitFor();
    assert.equal(await fresh.locator('#sso-login').count(), 0);
    await signIn(fresh, daemon.url, 'admin', daemon.password, '/settings/sso');
    await fresh.context().close();
    assertNoPageErrors(page);
  });

  step('the settings page fits a 360 px wide screen', async () => {
    const small = await newPage(browser, { viewport: { width: 360, height: 740 } });
    await signIn(small, daemon.url, 'admin', daemon.password, '/settings/sso');
    await small.locator('#app[data-ready="true"]').waitFor();
    // The failures of earlier steps outlive Remove SSO (kept in memory): long causes wrap too.
    await small.locator('#recent-failures li.failure').first().waitFor();
    await assertNoHorizontalOverflow(small);
    await screenshot(small, SUITE, 'settings-360px');
    await small.locator('#tab-provisioning').click();
    await assertNoHorizontalOverflow(small);
    await screenshot(small, SUITE, 'settings-provisioning-360px');
    assertNoPageErrors(small);
    await small.context().close();
  }, { critical: false });
});
