// The interop harness: the real coder-server and coder binaries, a headless Chromium, and helpers
// to configure SSO through the setup repository's oidc.json.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const INTEROP_DIR = path.resolve(HERE, '..');
export const REPO_ROOT = path.resolve(INTEROP_DIR, '..', '..');
export const CODER_SERVER_BIN = process.env.CODER_SERVER_BIN || path.join(REPO_ROOT, 'target', 'debug', 'coder-server');
export const CODER_BIN = process.env.CODER_BIN || path.join(REPO_ROOT, 'target', 'debug', 'coder');
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const SCREENSHOT_DIR = process.env.INTEROP_SCREENSHOTS || path.join(REPO_ROOT, 'target', 'interop-screenshots');

/** The flags Chromium needs on these machines (root, closed network). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--headless',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export { sleep };

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

/** Polls `fn` until it returns a truthy value; throws with the last value or error after `timeout` ms. */
export async function waitFor(fn, { timeout = 10000, interval = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeout} ms waiting for ${what}; last: ${detail}`);
    }
    await sleep(interval);
  }
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
 * the provider before the daemon runs). Resolves when /healthz answers and the first-start admin
 * password has been read from stderr.
 */
export async function startDaemon({ tmp, port, extraArgs = [], env = {} }) {
  if (!existsSync(CODER_SERVER_BIN)) {
    throw new Error(`coder-server binary not found at ${CODER_SERVER_BIN}: run \`cargo build\` first or set CODER_SERVER_BIN`);
  }
  const base = `http://127.0.0.1:${port}`;
  const setupRepo = path.join(tmp, 'setup');
  const dataDir = path.join(tmp, 'data');
  const logFile = path.join(tmp, 'daemon.log');
  const args = [
    'serve',
    '--setup-repo', setupRepo,
    '--data-dir', dataDir,
    '--listen', `127.0.0.1:${port}`,
    '--public-url', base,
    '--device-poll-interval', process.env.INTEROP_DEVICE_POLL_INTERVAL || '1',
    ...extraArgs,
  ];
  const cleanEnv = { ...process.env };
  for (const name of ['CODERFLOW_SETUP_REPO', 'CODERFLOW_DATA_DIR', 'CODERFLOW_LISTEN', 'CODERFLOW_PUBLIC_URL']) {
    delete cleanEnv[name];
  }
  const child = spawn(CODER_SERVER_BIN, args, {
    env: { ...cleanEnv, RUST_LOG: process.env.RUST_LOG || 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let exited = null;
  const onData = (chunk) => {
    const text = chunk.toString();
    output += text;
    appendFileSync(logFile, text);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  child.once('exit', (code, signal) => {
    exited = { code, signal };
  });

  const adminPassword = await waitFor(
    () => {
      if (exited) throw new Error(`coder-server exited (${exited.code ?? exited.signal}):\n${output}`);
      const m = output.match(/^initial admin password \(user "admin"\): (\S+)\s*$/m);
      return m && m[1];
    },
    { timeout: 30000, interval: 50, what: 'the initial admin password on stderr' },
  ).catch((err) => {
    child.kill('SIGKILL');
    throw err;
  });
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

  const daemon = {
    base,
    origin: base,
    port,
    tmp,
    setupRepo,
    dataDir,
    logFile,
    adminPassword,
    adminKey: login.body.api_key,
    child,
    get output() {
      return output;
    },
    get exited() {
      return exited;
    },
    logTail(lines = 40) {
      return output.split('\n').slice(-lines).join('\n');
    },
    /** GET/POST... as admin. */
    admin(pathname, opts = {}) {
      return http(`${base}${pathname}`, { ...opts, key: daemon.adminKey });
    },
    async stop() {
      if (exited) return;
      const done = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      await done;
      clearTimeout(timer);
    },
  };
  return daemon;
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
  if (current !== text) {
    const temp = path.join(daemon.setupRepo, `.oidc.json.interop-${process.pid}`);
    writeFileSync(temp, text, { mode: 0o600 });
    renameSync(temp, file);
  }
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
  if (!existsSync(CODER_BIN)) {
    throw new Error(`coder binary not found at ${CODER_BIN}: run \`cargo build\` first or set CODER_BIN`);
  }
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
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`Chromium not found at ${CHROMIUM_PATH}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  }
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS, timeout: 30000 });
}

export async function screenshot(page, name) {
  try {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    const file = path.join(SCREENSHOT_DIR, `${name.replace(/[^A-Za-z0-9_.-]+/g, '_')}.png`);
    await page.screenshot({ path: file, fullPage: true, timeout: 5000 });
    return file;
  } catch {
    return null;
  }
}

export function removeTmp(dir) {
  rmSync(dir, { recursive: true, force: true });
}
