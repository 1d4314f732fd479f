// Browser flows against the daemon's pages and the provider's scripted login form.

import { screenshot } from './harness.mjs';

const NAV_TIMEOUT = 20000;

/**
 * What the page shows now: { url, daemon, provider, networkError, whoami, h1, text, hasLoginLink }.
 * `whoami` is the text of `.whoami` or null; `text` the body's visible text.
 */
export async function pageState(page, daemon, idp) {
  const url = page.url();
  const state = { url, daemon: false, provider: false, networkError: url.startsWith('chrome-error:'), whoami: null, h1: null, text: '', hasLoginLink: false };
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return state;
  }
  state.daemon = parsed.origin === daemon.origin;
  state.provider = Boolean(idp && parsed.origin === new URL(idp.issuer).origin);
  if (state.networkError) return state;
  state.text = (await page.locator('body').innerText({ timeout: 5000 }).catch(() => '')) || '';
  if ((await page.locator('.whoami').count()) > 0) {
    state.whoami = (await page.locator('.whoami').first().innerText()).trim();
  }
  if ((await page.locator('h1').count()) > 0) {
    state.h1 = (await page.locator('h1').first().innerText()).trim();
  }
  state.hasLoginLink = (await page.locator('a[href="/login"], a[href^="/login?"], a[href$="/login"]').count()) > 0;
  return state;
}

/**
 * Signs in through SSO: opens `start` (default `/login`), clicks `#sso-login`, fills the provider's
 * form with `login`/`password` when it shows (a provider session may skip it), and waits until the
 * browser is back on the daemon. Returns the final pageState plus `sawProviderForm` and
 * `providerUrl` (the provider page the form was on).
 */
export async function ssoLogin(page, daemon, idp, { login, password = 'secret', start = '/login', shot } = {}) {
  await page.goto(`${daemon.base}${start}`, { timeout: NAV_TIMEOUT });
  const button = page.locator('#sso-login');
  if ((await button.count()) === 0) {
    if (shot) await screenshot(page, `${shot}-no-sso-button`);
    throw new Error(`no #sso-login on ${page.url()}`);
  }
  const startUrl = page.url();
  // The button leads to /auth/oidc/login, then to the provider (its form), or straight back to the
  // daemon (provider session, or an error page).
  await Promise.all([
    page
      .waitForURL((u) => u.toString() !== startUrl, {
        timeout: NAV_TIMEOUT,
        waitUntil: 'load',
      })
      .catch(() => {}),
    button.click({ timeout: NAV_TIMEOUT }).catch((err) => {
      // A navigation to a closed port fails the click's wait in some versions; the page state says.
      if (!/net::ERR_|Navigation/.test(String(err))) throw err;
    }),
  ]);
  await page.waitForLoadState('load', { timeout: NAV_TIMEOUT }).catch(() => {});
  let sawProviderForm = false;
  let providerUrl = null;
  const here = new URL(page.url().startsWith('chrome-error:') ? 'about:blank' : page.url());
  if (idp && here.origin === new URL(idp.issuer).origin) {
    providerUrl = page.url();
    if (shot) await screenshot(page, `${shot}-1-provider-form`);
    if ((await page.locator('#idp-login').count()) > 0) {
      sawProviderForm = true;
      await page.fill('#login', login);
      await page.fill('#password', password);
      await Promise.all([
        page.waitForURL((u) => u.origin === daemon.origin, { timeout: NAV_TIMEOUT, waitUntil: 'load' }),
        page.click('#submit'),
      ]);
    }
  }
  const state = await pageState(page, daemon, idp);
  if (shot) await screenshot(page, `${shot}-2-landed`);
  return { ...state, sawProviderForm, providerUrl };
}

/** GET /api/me with the browser context's cookies: { status, body }. */
export async function browserMe(context, daemon) {
  const response = await context.request.get(`${daemon.base}/api/me`, { failOnStatusCode: false, maxRedirects: 0 });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = await response.text().catch(() => null);
  }
  return { status: response.status(), body };
}
