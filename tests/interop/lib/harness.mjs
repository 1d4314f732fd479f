// The interop harness: the real coder-server and coder binaries, a headless Chromium, and helpers
// to configure SSO through the setup repository's oidc.json. The daemon, Chromium and polling
// helpers it shares with tests/browser are in ../../e2e-lib/.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromiumPath, launchChromium, saveScreenshot } from '../../e2e-lib/chromium.mjs';
import { REPO, SERVER_BIN, requireBinary, spawnDaemon, writeFileAtomic } from '../../e2e-lib/daemon.mjs';
import { sleep, waitFor } from '../../e2e-lib/poll.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const INTEROP_DIR = path.resolve(HERE, '..');
export const REPO_ROOT = REPO;
export const CODER_SERVER_BIN = SERVER_BIN;
export const CODER_BIN = process.env.CODER_BIN || path.join(REPO_ROOT, 'target', 'debug', 'coder');
export const CHROMIUM_PATH = chromiumPath('CHROMIUM_PATH');
export const SCREENSHOT_DIR = process.env.INTEROP_SCREENSHOTS || path.join(REPO_ROOT, 'target', 'interop-screenshots');

export { sleep, waitFor };

/** A port that was free a moment ago: bind 0, read it, close. */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export function makeTmp(prefix = 'coderflow-interop-') {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** fetch against the daemon: { status, body (parsed JSON or text), headers }. */
export async function http(url, { method = 'GET', body, key, headers = {}, redirect = 'manual' } = {}) {
  const init = { method, redirect, headers: { ...headers } };
  if (key) init.headers.authorization = `Bearer ${key}`;
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const response = await fetch(url, init);
  const text = await response.text();
  let parsed = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

/**
 * Starts `coder-server serve` on a port chosen by the caller (the redirect URI must be registered at
 * the provider before the daemon runs), with `--public-url` and `--device-poll-interval`. Resolves
 * when the daemon printed its address and the first-start admin password (../../e2e-lib/daemon.mjs),
 * /healthz answers and an admin API key was obtained.
 */
export async function startDaemon({ tmp, port, extraArgs = [], env = {} }) {
  const base = `http://127.0.0.1:${port}`;
  const logFile = path.join(tmp, 'daemon.log');
  const args = ['--public-url', base, '--device-poll-interval', process.env.INTEROP_DEVICE_POLL_INTERVAL || '1', ...extraArgs];
  const daemon = await spawnDaemon({ tmp, listen: `127.0.0.1:${port}`, args, env, logFile, timeoutMs: 30000 });
  const adminPassword = daemon.password;
  await waitFor(async () => (await http(`${base}/healthz`)).status === 200, {
    timeout: 15000,
    what: 'GET /healthz',
  });

  const login = await http(`${base}/api/auth/login`, {
    method: 'POST',
    body: { username: 'admin', password: adminPassword, key_name: 'interop-admin' },
  });
  if (login.status !== 200 || !login.body?.api_key) {
    throw new Error(`admin login failed: ${login.status} ${JSON.stringify(login.body)}`);
  }

  // The shared handle (child, output, exited, logTail(), stop()) plus what the scenarios use.
  return Object.assign(daemon, {
    base,
    origin: base,
    port,
    tmp,
    setupRepo: daemon.setupDir,
    logFile,
    adminPassword,
    adminKey: login.body.api_key,
    /** GET/POST... as admin. */
    admin(pathname, opts = {}) {
      return http(`${base}${pathname}`, { ...opts, key: daemon.adminKey });
    },
  });
}

const OIDC_DEFAULTS = {
  display_name: 'Sign in with SSO',
  scopes: ['openid', 'profile', 'email'],
  auto_provision: true,
  default_role: 'developer',
  allow_local_auth: true,
};

let warnedNoSettingsApi = false;

/**
 * Writes `<setup>/oidc.json` the way an editor does (temp file, rename) and waits until the daemon
 * serves it: the public config matches, and (as admin) GET /api/settings/sso shows the same config,
 * no error, and — when `provider` is 'ready' — `status.provider.state` "ready".
 */
export async function configureSso(daemon, config, { provider = 'ready', timeout = 15000 } = {}) {
  mkdirSync(daemon.setupRepo, { recursive: true });
  const file = path.join(daemon.setupRepo, 'oidc.json');
  const text = `${JSON.stringify(config, null, 2)}\n`;
  const current = existsSync(file) ? readFileSync(file, 'utf8') : null;
  if (current !== text) writeFileAtomic(file, text);
  const want = { ...OIDC_DEFAULTS, ...config };
  return waitFor(
    async () => {
      const pub = await http(`${daemon.base}/api/auth/oidc/config`);
      if (pub.status !== 200) return { step: 'public config', status: pub.status };
      const p = pub.body;
      const wantDisplay = want.enabled ? want.display_name : p.display_name;
      if (p.sso_enabled !== want.enabled || p.display_name !== wantDisplay || p.allow_local_auth !== want.allow_local_auth) {
        return false;
      }
      const settings = await daemon.admin('/api/settings/sso');
      if (settings.status === 404 || settings.status === 405) {
        if (!warnedNoSettingsApi) {
          warnedNoSettingsApi = true;
          console.error('# interop: GET /api/settings/sso is missing; waiting on the public config only');
        }
        await sleep(300);
        return p;
      }
      if (settings.status !== 200) return false;
      const s = settings.body;
      if (!s.config) return false;
      for (const field of ['enabled', 'issuer', 'client_id', 'auto_provision', 'default_role', 'allow_local_auth']) {
        if (JSON.stringify(s.config[field]) !== JSON.stringify(want[field])) return false;
      }
      if (s.status?.error) return false;
      if (provider === 'ready' && want.enabled && s.status?.provider?.state !== 'ready') return false;
      return s;
    },
    { timeout, interval: 50, what: `oidc.json applied (${JSON.stringify({ issuer: config.issuer, provider })})` },
  );
}

/** Runs the `coder` CLI to completion: { code, stdout, stderr }. */
export async function runCoder(args, { env = {}, timeout = 30000, input } = {}) {
  const child = spawnCoder(args, { env });
  if (input !== undefined) child.stdin.end(input);
  else child.stdin.end();
  return child.done(timeout);
}

/** Starts the `coder` CLI; the handle accumulates output: { child, output(), waitForOutput(re), done(timeout) }. */
export function spawnCoder(args, { env = {} } = {}) {
  requireBinary(CODER_BIN, 'coder', 'CODER_BIN');
  const cleanEnv = { ...process.env };
  for (const name of ['CODER_URL', 'DISPLAY', 'WAYLAND_DISPLAY', 'BROWSER']) delete cleanEnv[name];
  const child = spawn(CODER_BIN, args, { env: { ...cleanEnv, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let result = null;
  child.stdout.on('data', (c) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c) => {
    stderr += c.toString();
  });
  const exit = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      result = { code, signal };
      resolve();
    });
  });
  return {
    child,
    stdin: child.stdin,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    async waitForOutput(re, timeout = 15000) {
      return waitFor(
        () => {
          const m = (stdout + '\n' + stderr).match(re);
          if (m) return m;
          if (result) throw new Error(`coder exited (${result.code ?? result.signal}) first:\n${stdout}\n${stderr}`);
          return false;
        },
        { timeout, interval: 50, what: `coder output ${re}` },
      );
    },
    async done(timeout = 30000) {
      const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
      await exit;
      clearTimeout(timer);
      return { code: result.code, signal: result.signal, stdout, stderr };
    },
    kill() {
      if (!result) child.kill('SIGTERM');
    },
  };
}

/** Headless Chromium through playwright-core; launch() gives it a fresh temporary user-data-dir. */
export async function launchBrowser() {
  const { chromium } = await import('playwright-core');
  return launchChromium(chromium, {
    executablePath: CHROMIUM_PATH,
    envVar: 'CHROMIUM_PATH',
    noSandbox: true, // root or not
    extraArgs: ['--headless'],
    timeout: 30000,
  });
}

/** A full-page PNG in SCREENSHOT_DIR; null when it could not be taken (never fails a scenario). */
export async function screenshot(page, name) {
  try {
    return await saveScreenshot(page, SCREENSHOT_DIR, name.replace(/[^A-Za-z0-9_.-]+/g, '_'), { timeout: 5000 });
  } catch {
    return null;
  }
}

export function removeTmp(dir) {
  rmSync(dir, { recursive: true, force: true });
}
