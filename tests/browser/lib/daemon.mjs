// Starts the real `coder-server serve` on 127.0.0.1:0 in a fresh temporary folder, reads the bound
// address and the first-start admin password from its stderr, and stops it again.
//
// Env: CODER_SERVER_BIN (default <repo>/target/debug/coder-server), RUST_LOG (default "info"),
// KEEP_TMP=1 keeps the temporary folder. The daemon's stderr is saved to
// <repo>/target/browser-logs/<name>.log.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const SERVER_BIN = process.env.CODER_SERVER_BIN || path.join(REPO, 'target', 'debug', 'coder-server');
const LOG_DIR = path.join(REPO, 'target', 'browser-logs');

const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;
const LISTEN_RE = /listening on[^\n]*?(http:\/\/127\.0\.0\.1:\d+)/;
const ADDRESS_RE = /http:\/\/127\.0\.0\.1:\d+/;
const PASSWORD_RE = /initial admin password \(user "admin"\): (\S+)/;

/**
 * Starts a daemon. Resolves once both the listen address and the admin password were seen.
 * @param {string} name used for the temporary folder and the log file
 */
export async function startDaemon(name, { timeoutMs = 60_000 } = {}) {
  if (!fs.existsSync(SERVER_BIN)) {
    throw new Error(`coder-server binary not found at ${SERVER_BIN}: run \`cargo build\` first or set CODER_SERVER_BIN`);
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `cf-browser-${name}-`));
  const setupDir = path.join(tmp, 'setup');
  const dataDir = path.join(tmp, 'data');
  fs.mkdirSync(LOG_DIR, { recursive: true });
  const logPath = path.join(LOG_DIR, `${name}.log`);
  const log = fs.createWriteStream(logPath);

  const env = { ...process.env, NO_COLOR: '1', RUST_LOG: process.env.RUST_LOG || 'info' };
  for (const key of ['CODERFLOW_SETUP_REPO', 'CODERFLOW_DATA_DIR', 'CODERFLOW_LISTEN', 'CODERFLOW_PUBLIC_URL']) delete env[key];
  const child = spawn(
    SERVER_BIN,
    ['serve', '--setup-repo', setupDir, '--data-dir', dataDir, '--listen', '127.0.0.1:0'],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout.pipe(log, { end: false });

  let url = null;
  let password = null;
  let stderrTail = '';
  let buffer = '';
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`coder-server did not report its address and admin password within ${timeoutMs} ms; stderr:\n${stderrTail}`));
    }, timeoutMs);
    child.stderr.on('data', (chunk) => {
      log.write(chunk);
      const text = chunk.toString('utf8');
      stderrTail = (stderrTail + text).slice(-4000);
      buffer += text;
      let newline;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline).replace(ANSI, '');
        buffer = buffer.slice(newline + 1);
        if (!url) {
          const m = LISTEN_RE.exec(line) || (line.includes('listening on') ? ADDRESS_RE.exec(line) : null);
          if (m) url = m[1] || m[0];
        }
        if (!password) {
          const m = PASSWORD_RE.exec(line);
          if (m) password = m[1];
        }
        if (url && password) {
          clearTimeout(timer);
          resolve();
        }
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`coder-server exited early (code ${code}, signal ${signal}); stderr:\n${stderrTail}`));
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  try {
    await ready;
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }

  async function stop() {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    log.end();
    if (process.env.KEEP_TMP !== '1') fs.rmSync(tmp, { recursive: true, force: true });
  }

  return { url, password, tmp, setupDir, dataDir, oidcPath: path.join(setupDir, 'oidc.json'), logPath, child, stop };
}

/** Writes `text` to `file` the way editors do: a temporary file in the same folder, then rename. */
export function writeFileAtomic(file, text) {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, text, { mode: 0o600 });
  fs.renameSync(tmp, file);
}
