// Real Debian Chromium through playwright-core (no browser download), plus the helpers the tests
// share: screenshots, signing in, page-error capture and polling assertions.
//
// Env: CHROMIUM_BIN (default /usr/bin/chromium), HEADED=1 to watch (needs a display).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { chromiumPath, launchChromium, saveScreenshot } from '../../e2e-lib/chromium.mjs';
import { REPO } from './daemon.mjs';

export { eventually } from '../../e2e-lib/poll.mjs';
export const CHROMIUM_BIN = chromiumPath('CHROMIUM_BIN');
export const SCREENSHOT_DIR = path.join(REPO, 'target', 'browser-screenshots');
/**
 * ASSETS_FROM_DISK=1: the browser gets /assets/* from the working tree's assets/ instead of the
 * copies embedded in the binary, to try a page's script or stylesheet without rebuilding. Only
 * for development: a real run tests what the binary serves.
 */
export const ASSETS_FROM_DISK = process.env.ASSETS_FROM_DISK === '1';
// The URL name of an asset whose file is named differently (see src/http/assets.rs).
const ASSET_FILES = { 'settings-sso.js': 'settings.js' };

/** Chromium with the flags of ../../e2e-lib/chromium.mjs (and --no-sandbox as root). */
export function launchBrowser() {
  return launchChromium(chromium, { executablePath: CHROMIUM_BIN, envVar: 'CHROMIUM_BIN', headless: process.env.HEADED !== '1' });
}

/** A fresh context (own cookie jar) and page that records script errors and CSP violations. */
export async function newPage(browser, { viewport = { width: 1280, height: 900 }, ...options } = {}) {
  const context = await browser.newContext({ viewport, ...options });
  if (ASSETS_FROM_DISK) {
    await context.route(/\/assets\/[A-Za-z0-9._-]+$/, (route) => {
      const name = new URL(route.request().url()).pathname.split('/').pop();
      const file = path.join(REPO, 'assets', ASSET_FILES[name] || name);
      if (!fs.existsSync(file)) return route.continue();
      const contentType = name.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8';
      return route.fulfill({ status: 200, contentType, body: fs.readFileSync(file, 'utf8') });
    });
  }
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.errors = [];
  page.on('pageerror', (err) => page.errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    // A 4xx answer the page expects (422, 409, a missing favicon) is logged as "Failed to load
    // resource"; anything else at error level (a CSP violation, an exception) is a bug.
    if (msg.type() === 'error' && !/Failed to load resource/.test(msg.text())) page.errors.push(`console: ${msg.text()}`);
  });
  return page;
}

export function assertNoPageErrors(page) {
  assert.deepEqual(page.errors, [], `the page logged errors:\n${page.errors.join('\n')}`);
}

let shotCount = 0;
const cleaned = new Set();
/** Saves a full-page PNG as target/browser-screenshots/<suite>-<NN>-<name>.png. */
export async function screenshot(page, suite, name) {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  if (!cleaned.has(suite)) {
    cleaned.add(suite);
    for (const file of fs.readdirSync(SCREENSHOT_DIR)) {
      if (file.startsWith(`${suite}-`) && file.endsWith('.png')) fs.rmSync(path.join(SCREENSHOT_DIR, file));
    }
  }
  shotCount += 1;
  return saveScreenshot(page, SCREENSHOT_DIR, `${suite}-${String(shotCount).padStart(2, '0')}-${name}`);
}

/**
 * Signs in on /login with the local form and ends on `target` (a path).
 * Fails with the page's error text when the login is refused.
 */
export async function signIn(page, baseUrl, username, password, target = '/') {
  await page.goto(`${baseUrl}/login?return_to=${encodeURIComponent(target)}`);
  await page.locator('#username').fill(username);
  await page.locator('#password').fill(password);
  // Success and refusal both navigate (303 to the target, or the login page again with an error).
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.locator('#local-login').click()]);
  if (new URL(page.url()).pathname === '/login') {
    const alert = await page.locator('.alert-error').allTextContents();
    throw new Error(`sign-in as ${username} was refused: ${alert.join(' ').trim() || '(no error shown)'}`);
  }
  if (new URL(page.url()).pathname !== target) await page.goto(`${baseUrl}${target}`);
}

/** The page is no wider than its viewport (nothing scrolls sideways at 360 px). */
export async function assertNoHorizontalOverflow(page) {
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  assert.ok(scrollWidth <= innerWidth, `page is ${scrollWidth}px wide in a ${innerWidth}px viewport`);
}

const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * Runs axe-core (WCAG 2.x A and AA rules) on the page as it is now and fails listing every
 * violation. Injected through the DevTools protocol, so the page's CSP does not block it.
 */
export async function assertAccessible(page, what) {
  // Colours are only final once transitions (e.g. after a colour-scheme switch) have ended.
  await page.evaluate(() =>
    Promise.race([
      Promise.all(
        document
          .getAnimations()
          .filter((a) => a.effect?.getTiming().iterations !== Infinity)
          .map((a) => a.finished.catch(() => {})),
      ),
      new Promise((resolve) => setTimeout(resolve, 2000)),
    ]),
  );
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
      resultTypes: ['violations'],
    });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')}: ${n.failureSummary.replace(/\s+/g, ' ')}`),
    }));
  });
  const text = violations.map((v) => `${v.impact} ${v.id}: ${v.help}\n    ${v.nodes.join('\n    ')}`).join('\n');
  assert.deepEqual(violations.map((v) => v.id), [], `${what}: accessibility violations:\n${text}`);
}

/**
 * For a file whose tests build on each other: `step(name, fn)` is `test(name, fn)`, except that
 * once a step marked critical (the default) failed, the later steps are skipped instead of each
 * waiting for its own timeout.
 */
export function sequence(test) {
  let broken = null;
  return function step(name, fn, { critical = true } = {}) {
    test(name, async (t) => {
      if (broken) return t.skip(`an earlier step failed: ${broken}`);
      try {
        return await fn(t);
      } catch (err) {
        if (critical) broken = name;
        throw err;
      }
    });
  };
}
