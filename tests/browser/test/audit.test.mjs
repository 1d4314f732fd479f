// The audit trail page in real Chromium against the real coder-server: events produced through
// the API (a refused and an accepted password login, users created) show up with their actor,
// subject, reason and IP; the area filter asks the server, "Failures only" filters in the page,
// "Load older" pages backwards, Refresh picks up new events; only a server_admin gets the page.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  ASSETS_FROM_DISK,
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
import { REPO, startDaemon } from '../lib/daemon.mjs';

const SUITE = 'audit';
const CAROL = { username: 'carol', email: 'carol@example.com', name: 'Carol Example', role: 'developer', password: 'carol-Pa55word!' };
const DAVE = { username: 'dave', email: 'dave@example.com', name: 'Dave Example', role: 'viewer' };

describe('Audit trail', () => {
  const step = sequence(test);
  let daemon;
  let browser;
  let page;
  let apiKey;

  before(async () => {
    daemon = await startDaemon('audit');
    browser = await launchBrowser();
    page = await newPage(browser);
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
  });

  async function post(pathname, body, headers = {}) {
    return fetch(`${daemon.url}${pathname}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  }

  async function createUser(user) {
    const response = await post('/api/users', user, { Authorization: `Bearer ${apiKey}` });
    assert.equal(response.status, 201, `create ${user.username}: ${await response.text()}`);
  }

  /** The trail as the API has it (the admin browser's session). */
  async function apiEvents(query = '') {
    const response = await page.request.get(`${daemon.url}/api/audit${query}`);
    assert.equal(response.status(), 200);
    return response.json();
  }

  const rows = () => page.locator('#audit-body tr[data-kind]');
  const cell = (row, col) => row.locator(`td[data-col="${col}"]`);

  async function ready() {
    await page.locator('#app[data-ready="true"]').waitFor();
    await page.locator('#audit-table:not([aria-busy])').waitFor();
  }

  async function rowAttrs() {
    return rows().evaluateAll((trs) => trs.map((tr) => ({ id: Number(tr.dataset.id), kind: tr.dataset.kind, outcome: tr.dataset.outcome })));
  }

  step('the binary serves this audit page (not a stale build)', async () => {
    if (ASSETS_FROM_DISK) return;
    const served = await (await fetch(`${daemon.url}/assets/audit.js`)).text();
    const onDisk = fs.readFileSync(path.join(REPO, 'assets', 'audit.js'), 'utf8');
    assert.ok(served === onDisk, 'target/debug/coder-server embeds another assets/audit.js: run `cargo build` (or ASSETS_FROM_DISK=1 while developing)');
  });

  step('events are produced: a refused and an accepted password login, a user created', async () => {
    const refused = await post('/api/auth/login', { username: 'admin', password: 'not-the-password' });
    assert.equal(refused.status, 401);
    const accepted = await post('/api/auth/login', { username: 'admin', password: daemon.password, key_name: 'audit test' });
    assert.equal(accepted.status, 200);
    apiKey = (await accepted.json()).api_key;
    assert.match(apiKey, /^cf_/);
    await createUser(CAROL);
  });

  step('the admin opens /audit and sees the events with actor, subject, reason and IP', async () => {
    await signIn(page, daemon.url, 'admin', daemon.password, '/audit');
    await ready();
    await page.getByRole('heading', { name: 'Audit trail', level: 1 }).waitFor();
    assert.equal(await page.locator('.topnav a[href="/audit"]').getAttribute('aria-current'), 'page');
    assert.equal(await page.locator('#audit-table caption').count(), 1, 'the table has a caption');
    assert.equal(await page.locator('#audit-table thead th[scope="col"]').count(), 7);

    const refused = page.locator('#audit-body tr[data-kind="login.local"][data-outcome="failure"]').first();
    await refused.waitFor();
    assert.equal((await cell(refused, 'actor').textContent()).trim(), 'admin');
    assert.equal((await cell(refused, 'ip').textContent()).trim(), '127.0.0.1');
    assert.equal((await cell(refused, 'reason').textContent()).trim(), 'wrong username or password');
    assert.match(await cell(refused, 'kind').textContent(), /Password sign-in/);
    assert.equal((await cell(refused, 'outcome').textContent()).replace(/\W/g, ''), 'Failure', 'the outcome is written, not only coloured');

    const accepted = page.locator('#audit-body tr[data-kind="login.local"][data-outcome="success"]');
    assert.ok((await accepted.count()) >= 2, 'the API login and the browser sign-in');
    assert.equal((await cell(accepted.first(), 'actor').textContent()).trim(), 'admin');
    assert.equal((await cell(accepted.first(), 'ip').textContent()).trim(), '127.0.0.1');
    assert.equal((await cell(accepted.first(), 'outcome').textContent()).replace(/\W/g, ''), 'Success');

    const created = page.locator('#audit-body tr[data-kind="user.created"]').first();
    assert.equal((await cell(created, 'actor').textContent()).trim(), 'admin');
    assert.equal((await cell(created, 'subject').textContent()).trim(), 'carol');
    assert.match(await cell(created, 'reason').textContent(), /developer/);

    // Every row is the API's event, newest first; the time is local with the ISO value kept.
    const { events } = await apiEvents();
    const shown = await rowAttrs();
    assert.deepEqual(shown, events.map((e) => ({ id: e.id, kind: e.kind, outcome: e.outcome })));
    for (const event of events) {
      const row = page.locator(`#audit-body tr[data-id="${event.id}"]`);
      const time = cell(row, 'time').locator('time');
      assert.equal(await time.getAttribute('datetime'), event.at);
      assert.equal(await time.getAttribute('title'), event.at);
      assert.notEqual((await time.textContent()).trim(), event.at, 'shown in local time');
      for (const col of ['actor', 'subject', 'reason', 'ip']) {
        const text = (await cell(row, col).textContent()).trim();
        assert.equal(text, event[col] ?? '—none', `${event.kind} #${event.id} ${col}`);
      }
    }
    await screenshot(page, SUITE, 'all');
    assertNoPageErrors(page);
  });

  step('the area filter narrows to sign-ins (asked of the server, kept in the URL)', async () => {
    const all = (await rowAttrs()).length;
    await page.getByLabel('Area').selectOption('login');
    await ready();
    await eventually(async () => {
      const shown = await rowAttrs();
      assert.ok(shown.length > 0 && shown.length < all, `${shown.length} of ${all} rows`);
      assert.ok(shown.every((r) => r.kind.startsWith('login.')), JSON.stringify(shown));
    });
    assert.equal(new URL(page.url()).searchParams.get('kind'), 'login');
    const { events } = await apiEvents('?kind=login');
    assert.deepEqual((await rowAttrs()).map((r) => r.id), events.map((e) => e.id));
    assert.match(await page.locator('#audit-caption').textContent(), /Sign-ins/);
    await screenshot(page, SUITE, 'sign-ins');
    assertNoPageErrors(page);
  });

  step('"Failures only" shows only failures, from the keyboard too', async () => {
    const checkbox = page.getByLabel('Failures only');
    await checkbox.focus();
    await page.keyboard.press('Space');
    assert.equal(await checkbox.isChecked(), true);
    await eventually(async () => {
      const shown = await rowAttrs();
      assert.ok(shown.length >= 1, 'the refused login is shown');
      assert.ok(shown.every((r) => r.outcome === 'failure' && r.kind.startsWith('login.')), JSON.stringify(shown));
    });
    assert.equal(new URL(page.url()).searchParams.get('failures'), '1');
    assert.match(await page.locator('#audit-count').textContent(), /failure/);
    await screenshot(page, SUITE, 'sign-in-failures');

    // The setting survives a reload (URL state).
    await page.reload();
    await ready();
    assert.equal(await page.getByLabel('Failures only').isChecked(), true);
    assert.equal(await page.getByLabel('Area').inputValue(), 'login');
    assert.ok((await rowAttrs()).every((r) => r.outcome === 'failure'));

    // No failed People event: the empty state says so.
    await page.getByLabel('Area').selectOption('user');
    await ready();
    await page.locator('#audit-empty').waitFor();
    assert.equal(await rows().count(), 0);
    assert.match(await page.locator('#audit-empty').textContent(), /No failed people events/);
    await screenshot(page, SUITE, 'empty');

    await page.getByLabel('Failures only').uncheck();
    await eventually(async () => {
      const shown = await rowAttrs();
      assert.ok(shown.some((r) => r.kind === 'user.created' && r.outcome === 'success'), JSON.stringify(shown));
    });
    await page.getByLabel('Area').selectOption('');
    await ready();
    assert.equal(new URL(page.url()).search, '');
    assertNoPageErrors(page);
  });

  step('Refresh picks up new events', async () => {
    await createUser(DAVE);
    assert.equal(await page.locator('#audit-body tr[data-kind="user.created"]', { hasText: 'dave' }).count(), 0);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.locator('#audit-body tr[data-kind="user.created"]', { hasText: 'dave' }).waitFor();
    const shown = await rowAttrs();
    assert.equal(shown[0].kind, 'user.created', 'newest first');
    assertNoPageErrors(page);
  });

  step('"Load older" pages backwards with next_before until the beginning', async () => {
    const { events: all } = await apiEvents();
    assert.ok(all.length > 4, `${all.length} events`);
    await page.goto(`${daemon.url}/audit?limit=3`);
    await ready();
    assert.equal((await rowAttrs()).length, 3);
    const older = page.locator('#audit-load-older');
    assert.equal(await older.isVisible(), true);
    assert.equal(await page.locator('#audit-end').isVisible(), false);
    await older.focus();
    let pages = 1;
    while (await older.isVisible()) {
      await page.keyboard.press('Enter');
      pages += 1;
      await eventually(async () => assert.equal((await rowAttrs()).length, Math.min(3 * pages, all.length)));
      await ready();
      assert.ok(pages < 50, 'Load older ends');
    }
    assert.deepEqual((await rowAttrs()).map((r) => r.id), all.map((e) => e.id), 'every event once, newest first');
    await page.locator('#audit-end').waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'audit-end', 'the focus stays on the page');
    await screenshot(page, SUITE, 'loaded-older');
    assertNoPageErrors(page);
  });

  step('the page passes axe (WCAG AA), light and dark', async () => {
    await page.goto(`${daemon.url}/audit`);
    await ready();
    for (const colorScheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme });
      await assertAccessible(page, `Audit trail (${colorScheme})`);
    }
    await screenshot(page, SUITE, 'all-dark');
    await page.emulateMedia({ colorScheme: 'light' });
    await page.getByLabel('Failures only').check();
    await assertAccessible(page, 'Audit trail, failures only');
    await page.getByLabel('Area').selectOption('device');
    await ready();
    await page.locator('#audit-empty').waitFor();
    await assertAccessible(page, 'Audit trail, empty');
  }, { critical: false });

  step('the page fits a 360 px wide screen', async () => {
    await page.setViewportSize({ width: 360, height: 740 });
    await page.goto(`${daemon.url}/audit`);
    await ready();
    await assertNoHorizontalOverflow(page);
    await screenshot(page, SUITE, 'all-360px');
    await page.getByLabel('Failures only').check();
    await assertNoHorizontalOverflow(page);
    await page.setViewportSize({ width: 1280, height: 900 });
    assertNoPageErrors(page);
  }, { critical: false });

  step('a non-admin gets 403, a signed-out browser is sent to sign in', async () => {
    const other = await newPage(browser);
    try {
      await signIn(other, daemon.url, CAROL.username, CAROL.password, '/');
      assert.equal(await other.locator('.topnav a[href="/audit"]').count(), 0, 'no Audit link for a developer');
      const response = await other.goto(`${daemon.url}/audit`);
      assert.equal(response.status(), 403);
      await other.getByRole('heading', { name: 'Not allowed' }).waitFor();
      assert.equal(await other.locator('#audit-table').count(), 0);
      const api = await other.request.get(`${daemon.url}/api/audit`);
      assert.equal(api.status(), 403);
      await screenshot(other, SUITE, 'forbidden');
      assertNoPageErrors(other);
    } finally {
      await other.context().close();
    }
    const anonymous = await fetch(`${daemon.url}/audit`, { redirect: 'manual' });
    assert.equal(anonymous.status, 303);
    assert.equal(anonymous.headers.get('location'), '/login?return_to=%2Faudit');
    assert.equal((await fetch(`${daemon.url}/api/audit`)).status, 401);
  }, { critical: false });
});
