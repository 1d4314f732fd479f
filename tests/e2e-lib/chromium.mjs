// Headless Debian Chromium through playwright-core (which never downloads a browser), and
// full-page screenshots, for the end-to-end suites (tests/browser, tests/interop).
//
// No npm dependency of its own: each suite passes the `chromium` object of its own playwright-core.
import fs from 'node:fs';
import path from 'node:path';

// Flags from shared/guides/REAL-IDP.md: without them Chromium's background connections are
// refused many times a second on a closed network. Playwright adds --headless (unless headed)
// and a fresh temporary --user-data-dir itself.
export const CHROMIUM_FLAGS = [
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The Chromium binary: `$<envVar>`, else Debian's /usr/bin/chromium. */
export function chromiumPath(envVar) {
  return process.env[envVar] || '/usr/bin/chromium';
}

/**
 * Launches `executablePath` with CHROMIUM_FLAGS. `noSandbox` (default: when running as root, where
 * Chromium's sandbox does not start) adds --no-sandbox; `extraArgs` go before the flags; the rest
 * of the options go to `chromium.launch`.
 */
export async function launchChromium(
  chromium,
  { executablePath, envVar, headless = true, noSandbox = isRoot(), extraArgs = [], ...launchOptions },
) {
  if (!fs.existsSync(executablePath)) {
    throw new Error(`Chromium not found at ${executablePath}: apt-get install -y chromium, or set ${envVar}`);
  }
  const args = [...(noSandbox ? ['--no-sandbox'] : []), ...extraArgs, ...CHROMIUM_FLAGS];
  return chromium.launch({ executablePath, headless, args, ...launchOptions });
}

function isRoot() {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Saves a full-page PNG as `<dir>/<name>.png` (creating `dir`); returns its path. */
export async function saveScreenshot(page, dir, name, options = {}) {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true, ...options });
  return file;
}
