// Settings → Single Sign-On where the deployment, not the page, decides: a setup repository the
// daemon cannot write (a Kubernetes ConfigMap mount, a checkout kept by git-sync) and several
// replicas sharing one PostgreSQL whose oidc.json files differ.
//
// Read-only: one daemon (the built-in sled store, so one replica: nothing about replicas is
// shown); its setup folder is made unwritable (`chattr +i` as root, whom mode bits do not stop;
// `chmod 555` otherwise) and always made writable again in a `finally`.
// Replicas: a real PostgreSQL (../../e2e-lib/postgres.mjs) and two daemons on it, each with its
// own setup and data folders and a different oidc.json; once the second gets the first's bytes,
// the warning goes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startPostgres } from '../../e2e-lib/postgres.mjs';
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
import { REPO, startDaemon, writeFileAtomic } from '../lib/daemon.mjs';

const SUITE = 'replicas';
const AS_ROOT = process.getuid?.() === 0;

/** A valid oidc.json (the provider is never reached: port 9 on loopback answers nothing). */
function oidcJson(displayName) {
  const config = {
    enabled: true,
    display_name: displayName,
    client_id: 'coderflow-replicas-test',
    client_secret: 'replicas-s3cret',
    issuer: 'http://127.0.0.1:9/',
    scopes: ['openid', 'profile', 'email'],
    auto_provision: true,
    default_role: 'developer',
    allow_local_auth: true,
  };
  return JSON.stringify(config, null, 2) + '\n';
}

const sha256 = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');

async function openSettings(page) {
  await page.locator('#app[data-ready="true"]').waitFor();
}

/** Every control of the SSO form: [{ id, disabled }] (tabs and buttons apart). */
function formControls(page) {
  return page.locator('#sso-form input, #sso-form select').evaluateAll((nodes) => nodes.map((n) => ({ id: n.id, disabled: n.disabled })));
}

describe('Settings → Single Sign-On: a read-only setup repository', () => {
  const step = sequence(test);
  let daemon;
  let browser;
  let page;
  // Undoes the lock; null while the folder is writable.
  let unlock = null;

  /** Makes the setup folder unwritable for the daemon; returns the function that undoes it. */
  function lockSetupDir() {
    const dir = daemon.setupDir;
    if (AS_ROOT) {
      const locked = spawnSync('chattr', ['+i', dir], { encoding: 'utf8' });
      assert.equal(locked.status, 0, `chattr +i ${dir}: ${locked.stderr || locked.error}`);
      unlock = () => {
        const undone = spawnSync('chattr', ['-i', dir], { encoding: 'utf8' });
        assert.equal(undone.status, 0, `chattr -i ${dir}: ${undone.stderr || undone.error}`);
      };
    } else {
      const mode = fs.statSync(dir).mode & 0o7777;
      fs.chmodSync(dir, 0o555);
      unlock = () => fs.chmodSync(dir, mode | 0o700);
    }
    const undo = () => {
      if (!unlock) return;
      const done = unlock;
      unlock = null;
      done();
    };
    return undo;
  }

  before(async () => {
    daemon = await startDaemon('sso-read-only');
    writeFileAtomic(daemon.oidcPath, oidcJson('Sign in from git'));
    browser = await launchBrowser();
    page = await newPage(browser);
  });

  after(async () => {
    // Normally undone by the test already; never leave a folder nobody can remove.
    if (unlock) {
      try {
        unlock();
      } catch (err) {
        console.error(`could not make ${daemon.setupDir} writable again: ${err.message}`);
      }
    }
    await browser?.close();
    await daemon?.stop();
  });

  step('one replica (the built-in store): editable form, no replicas section, no banners', async () => {
    await signIn(page, daemon.url, 'admin', daemon.password, '/settings/sso');
    await openSettings(page);
    await eventually(async () => assert.equal(await page.getByLabel('Display name').inputValue(), 'Sign in from git'));

    const api = await (await page.request.get(`${daemon.url}/api/settings/sso`)).json();
    assert.equal(api.setup_repo_writable, true);
    assert.equal(api.config_sha256, sha256(fs.readFileSync(daemon.oidcPath)), 'config_sha256 is the file\'s SHA-256');
    assert.equal(api.replicas.length, 1, `one replica: ${JSON.stringify(api.replicas)}`);
    const [me] = api.replicas;
    assert.equal(me.this, true);
    assert.equal(me.same_config, true);
    assert.equal(me.config_sha256, api.config_sha256);
    assert.ok(Math.abs(Date.now() - Date.parse(me.last_seen)) < 60_000, `last_seen ${me.last_seen} is now`);

    assert.ok(await page.locator('#replicas').isHidden(), 'no replicas section with one replica');
    assert.equal(await page.locator('#banner-replicas-differ').count(), 0);
    assert.equal(await page.locator('#banner-read-only').count(), 0);
    assert.equal(await page.locator('#sso-form').getAttribute('data-read-only'), 'false');
    assert.deepEqual((await formControls(page)).filter((c) => c.disabled), [], 'every control is enabled');
    assert.equal(await page.locator('#save').isDisabled(), false);
    assert.equal(await page.locator('#remove-sso').isDisabled(), false);
    assertNoPageErrors(page);
  });

  step('a read-only setup repository: banner, disabled form, 409 setup_repo_read_only; editable again once writable', async () => {
    const before = fs.readFileSync(daemon.oidcPath, 'utf8');
    const undo = lockSetupDir();
    try {
      // The page still thinks the folder writable (the GET answers are patched): a Save is
      // refused with 409, whose message shows like other save errors, and the page turns read-only.
      const isSettingsGet = (route) => route.request().method() === 'GET';
      const patch = async (route) => {
        if (!isSettingsGet(route)) return route.continue();
        const response = await route.fetch();
        const body = await response.json();
        return route.fulfill({ response, json: { ...body, setup_repo_writable: true } });
      };
      const settingsApi = (url) => url.pathname === '/api/settings/sso';
      await page.route(settingsApi, patch);
      await page.getByLabel('Display name').fill('Edited in the browser');
      const answered = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/settings/sso' && r.request().method() === 'PUT');
      await page.locator('#save').click();
      assert.equal((await answered).status(), 409);
      await page.locator('#form-error .alert-error').waitFor({ state: 'visible' });
      assert.match(await page.locator('#form-error').textContent(), /setup repository is read-only on this server/);
      await page.locator('#banner-read-only').waitFor({ state: 'visible' });
      assert.equal(await page.locator('#save').isDisabled(), true);
      assert.equal(await page.locator('#sso-display-name').isDisabled(), true);
      assert.equal(fs.readFileSync(daemon.oidcPath, 'utf8'), before, 'nothing is written');
      await screenshot(page, SUITE, 'read-only-save-refused');
      // The unsaved edit can still be discarded.
      await page.locator('#discard').click();
      assert.equal(await page.getByLabel('Display name').inputValue(), 'Sign in from git');
      await page.unroute(settingsApi, patch);

      // A fresh load: the GET answer says read-only.
      await page.goto(`${daemon.url}/settings/sso`);
      await openSettings(page);
      const api = await (await page.request.get(`${daemon.url}/api/settings/sso`)).json();
      assert.equal(api.setup_repo_writable, false);
      const banner = page.locator('#banner-read-only');
      await banner.waitFor({ state: 'visible' });
      assert.equal(await banner.getAttribute('role'), 'alert');
      assert.match(await banner.textContent(), /setup repository is read-only on this server/);
      assert.match(await banner.textContent(), /setup repository's git/);
      assert.match(await banner.textContent(), /every replica picks it up/);
      assert.equal(await page.locator('#sso-form').getAttribute('data-read-only'), 'true');
      const controls = await formControls(page);
      assert.ok(controls.length >= 10, `the form's controls: ${controls.map((c) => c.id)}`);
      assert.deepEqual(controls.filter((c) => !c.disabled), [], 'every control is disabled');
      assert.equal(await page.locator('#save').isDisabled(), true);
      assert.equal(await page.locator('#remove-sso').isDisabled(), true);
      assert.equal(await page.locator('#test-connection').isDisabled(), false, 'Test Connection changes nothing: it stays');
      assert.equal(await page.locator('#tab-provisioning').isDisabled(), false);
      assert.equal(await page.getByLabel('Display name').inputValue(), 'Sign in from git', 'the form shows the file');
      await screenshot(page, SUITE, 'read-only');
      for (const colorScheme of ['light', 'dark']) {
        await page.emulateMedia({ colorScheme });
        await assertAccessible(page, `settings, read-only (${colorScheme})`);
      }
      await page.emulateMedia({ colorScheme: 'light' });

      // The API refuses too, whatever the page shows.
      const refused = await page.evaluate(async (body) => {
        const headers = {
          'Content-Type': 'application/json',
          'X-CSRF-Token': document.querySelector('meta[name="csrf-token"]').getAttribute('content'),
        };
        const put = await fetch('/api/settings/sso', { method: 'PUT', headers, body: JSON.stringify(body) });
        const del = await fetch('/api/settings/sso', { method: 'DELETE', headers });
        return { put: { status: put.status, body: await put.json() }, del: { status: del.status, body: await del.json() } };
      }, JSON.parse(oidcJson('Written by fetch')));
      for (const [what, answer] of Object.entries(refused)) {
        assert.equal(answer.status, 409, `${what}: ${JSON.stringify(answer.body)}`);
        assert.equal(answer.body.error, 'setup_repo_read_only', what);
        assert.match(answer.body.message, /read-only/, what);
      }
      assert.equal(fs.readFileSync(daemon.oidcPath, 'utf8'), before, 'oidc.json is unchanged');
      assertNoPageErrors(page);
    } finally {
      undo();
    }

    await page.reload();
    await openSettings(page);
    await eventually(async () => assert.equal(await page.locator('#sso-form').getAttribute('data-read-only'), 'false'));
    assert.equal(await page.locator('#banner-read-only').count(), 0);
    assert.deepEqual((await formControls(page)).filter((c) => c.disabled), [], 'every control is enabled again');
    assert.equal(await page.locator('#save').isDisabled(), false);
    assert.equal(await page.locator('#remove-sso').isDisabled(), false);
    assertNoPageErrors(page);
  });
});

describe('Settings → Single Sign-On: replicas with different oidc.json files', () => {
  const step = sequence(test);
  let pg;
  let first;
  let second;
  let browser;
  let page;
  let ids; // { first, second } replica ids, from the GET answer

  before(async () => {
    const logDir = path.join(REPO, 'target', 'browser-logs');
    fs.mkdirSync(logDir, { recursive: true });
    const logFile = path.join(logDir, 'sso-replicas-postgres.log');
    fs.rmSync(logFile, { force: true });
    pg = await startPostgres({ logFile });
    const url = await pg.createDatabase('coderflow_browser');
    // Only the first creates the admin; the second joins the database that has it.
    first = await startDaemon('sso-replicas-a', { args: ['--database-url', url] });
    second = await startDaemon('sso-replicas-b', { args: ['--database-url', url], waitForPassword: false });
    writeFileAtomic(first.oidcPath, oidcJson('Sign in (replica A)'));
    writeFileAtomic(second.oidcPath, oidcJson('Sign in (replica B)'));
    browser = await launchBrowser();
    page = await newPage(browser);
  });

  after(async () => {
    await browser?.close();
    await second?.stop();
    await first?.stop();
    await pg?.stop();
  });

  step('the settings page lists both replicas and names the one whose oidc.json differs', async () => {
    await signIn(page, first.url, 'admin', first.password, '/settings/sso');
    await openSettings(page);
    // Each daemon records its configuration's hash after every reload (and every 10 s).
    const api = await eventually(async () => {
      const answer = await (await page.request.get(`${first.url}/api/settings/sso`)).json();
      assert.equal(answer.replicas.length, 2, JSON.stringify(answer.replicas));
      assert.equal(answer.config_sha256, sha256(fs.readFileSync(first.oidcPath)));
      assert.deepEqual(answer.replicas.map((r) => r.same_config).sort(), [false, true], JSON.stringify(answer.replicas));
      return answer;
    }, { timeoutMs: 15_000, message: 'both replicas with their configurations' });
    const mine = api.replicas.find((r) => r.this);
    const other = api.replicas.find((r) => !r.this);
    assert.ok(mine && other, JSON.stringify(api.replicas));
    ids = { first: mine.id, second: other.id };
    assert.equal(other.same_config, false);
    assert.equal(other.config_sha256, sha256(fs.readFileSync(second.oidcPath)));
    assert.equal(mine.listen, new URL(first.url).host);
    assert.equal(other.listen, new URL(second.url).host);

    const list = page.locator('#replicas-list li.replica');
    await eventually(async () => {
      assert.ok(await page.locator('#replicas').isVisible());
      assert.equal(await list.count(), 2);
      assert.equal(await page.locator(`#replicas-list li[data-replica-id="${ids.second}"]`).getAttribute('data-same-config'), 'false');
    }, { message: 'the replicas section' });
    const here = page.locator(`#replicas-list li[data-replica-id="${ids.first}"]`);
    assert.equal(await here.getAttribute('data-this'), 'true');
    assert.equal((await here.locator('.replica-this').textContent()).trim(), 'This replica');
    assert.equal((await here.locator('.replica-hash').textContent()).trim(), mine.config_sha256.slice(0, 12));
    assert.equal(await here.locator('time.replica-last-seen').getAttribute('datetime'), mine.last_seen);
    assert.match(await here.locator('.replica-version').textContent(), new RegExp(`Version ${mine.version.replace(/\./g, '\\.')}`));
    const there = page.locator(`#replicas-list li[data-replica-id="${ids.second}"]`);
    assert.equal(await there.getAttribute('data-this'), 'false');
    assert.equal(await there.locator('.replica-this').count(), 0);
    assert.equal((await there.locator('.replica-hash').textContent()).trim(), other.config_sha256.slice(0, 12));
    assert.equal(await there.locator('.replica-differs').count(), 1);

    const banner = page.locator('#banner-replicas-differ');
    await banner.waitFor({ state: 'visible' });
    assert.equal(await banner.getAttribute('role'), 'alert');
    assert.deepEqual(
      await banner.locator('#replicas-differ-list li').evaluateAll((items) => items.map((li) => li.dataset.replicaId)),
      [ids.second],
      'the banner names the replica that differs, not this one',
    );
    assert.ok((await banner.textContent()).includes(ids.second));
    assert.match(await banner.textContent(), /same oidc\.json/);
    assert.equal(await page.locator('#banner-read-only').count(), 0);
    await page.locator('#replicas').scrollIntoViewIfNeeded();
    await screenshot(page, SUITE, 'replicas-differ');
    for (const colorScheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme });
      await assertAccessible(page, `settings with two replicas (${colorScheme})`);
    }
    await page.emulateMedia({ colorScheme: 'light' });
    assertNoPageErrors(page);
  });

  step('the replicas fit a 360 px wide screen', async () => {
    const small = await newPage(browser, { viewport: { width: 360, height: 740 } });
    await signIn(small, first.url, 'admin', first.password, '/settings/sso');
    await openSettings(small);
    await small.locator('#replicas-list li.replica').nth(1).waitFor();
    await assertNoHorizontalOverflow(small);
    await small.locator('#replicas').scrollIntoViewIfNeeded();
    await screenshot(small, SUITE, 'replicas-360px');
    assertNoPageErrors(small);
    await small.context().close();
  }, { critical: false });

  step('once the second replica has the same oidc.json, the warning goes', async () => {
    writeFileAtomic(second.oidcPath, fs.readFileSync(first.oidcPath, 'utf8'));
    await eventually(async () => {
      await page.reload();
      await openSettings(page);
      await page.locator('#replicas-list li.replica').nth(1).waitFor();
      assert.equal(await page.locator('#banner-replicas-differ').count(), 0, 'the differ banner is gone');
    }, { timeoutMs: 10_000, intervalMs: 500, message: 'the replicas agree' });
    const states = await page.locator('#replicas-list li.replica').evaluateAll((items) => items.map((li) => li.dataset.sameConfig));
    assert.deepEqual(states, ['true', 'true']);
    assert.equal(await page.locator('#replicas-list .replica-differs').count(), 0);
    const hashes = await page.locator('#replicas-list .replica-hash').allTextContents();
    assert.equal(new Set(hashes.map((h) => h.trim())).size, 1, `one hash: ${hashes}`);
    await screenshot(page, SUITE, 'replicas-agree');
    assertNoPageErrors(page);
  });
});
