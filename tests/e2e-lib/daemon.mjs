// The real `coder-server serve` for the end-to-end suites (tests/browser, tests/interop): started
// with a setup repository and a data directory under a temporary folder the caller made, on
// 127.0.0.1 (port 0 or a given one). Resolves once the daemon printed both the bound address
// (`listening on http://127.0.0.1:PORT`) and the first-start admin password (or only the address,
// with `waitForPassword: false`: a replica joining a database that already has its admin); stops
// it again.
//
// Plain ES module with no npm dependency, imported by relative path from both suites.
//
// Env: CODER_SERVER_BIN (default <repo>/target/debug/coder-server), RUST_LOG (default "info").
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SERVER_BIN = process.env.CODER_SERVER_BIN || path.join(REPO, 'target', 'debug', 'coder-server');

// Variables the daemon reads instead of its flags: never inherited from the caller's shell.
const DAEMON_ENV = ['CODERFLOW_SETUP_REPO', 'CODERFLOW_DATA_DIR', 'CODERFLOW_LISTEN', 'CODERFLOW_PUBLIC_URL'];
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;
const LISTEN_RE = /listening on[^\n]*?(http:\/\/127\.0\.0\.1:\d+)/;
const ADDRESS_RE = /http:\/\/127\.0\.0\.1:\d+/;
export const PASSWORD_RE = /initial admin password \(user "admin"\): (\S+)/;

/** Fails with a hint when a binary under test is missing. */
export function requireBinary(file, name, envVar) {
  if (!fs.existsSync(file)) {
    throw new Error(`${name} binary not found at ${file}: run \`cargo build\` first or set ${envVar}`);
  }
}

/**
 * Starts `coder-server serve --setup-repo <tmp>/setup --data-dir <tmp>/data --listen <listen>
 * ...args` (`setupDir`, `dataDir`: other folders, e.g. one setup repository shared by replicas
 * with a data directory each). Both output streams go to `logFile` (when given) and to `output`.
 * Resolves with { url, password, setupDir, dataDir, child, output, exited, logTail(), stop() }
 * once the address and (unless `waitForPassword` is false) the admin password were printed;
 * `password` is null while none was printed. Rejects (and kills the daemon) when it exits first
 * or `timeoutMs` runs out.
 */
export async function spawnDaemon({
  tmp,
  listen = '127.0.0.1:0',
  args = [],
  env = {},
  logFile = null,
  timeoutMs = 60_000,
  setupDir = path.join(tmp, 'setup'),
  dataDir = path.join(tmp, 'data'),
  waitForPassword = true,
}) {
  requireBinary(SERVER_BIN, 'coder-server', 'CODER_SERVER_BIN');
  const childEnv = { ...process.env };
  for (const key of DAEMON_ENV) delete childEnv[key];
  const child = spawn(
    SERVER_BIN,
    ['serve', '--setup-repo', setupDir, '--data-dir', dataDir, '--listen', listen, ...args],
    { env: { ...childEnv, RUST_LOG: process.env.RUST_LOG || 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const log = logFile ? fs.createWriteStream(logFile) : null;

  let output = '';
  let exited = null;
  let url = null;
  let password = null;
  let settle;
  const ready = new Promise((resolve, reject) => {
    settle = { resolve, reject };
  });
  const tail = () => output.slice(-4000);
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding('utf8');
    let buffer = '';
    stream.on('data', (text) => {
      log?.write(text);
      output += text;
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
      }
      if (url && (password || !waitForPassword)) settle.resolve();
    });
  }
  child.once('exit', (code, signal) => {
    exited = { code, signal };
    settle.reject(new Error(`coder-server exited early (code ${code}, signal ${signal}); output:\n${tail()}`));
  });
  child.once('error', (err) => settle.reject(err));
  const timer = setTimeout(() => {
    const what = waitForPassword ? 'its address and admin password' : 'its address';
    settle.reject(new Error(`coder-server did not report ${what} within ${timeoutMs} ms; output:\n${tail()}`));
  }, timeoutMs);
  try {
    await ready;
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  } finally {
    clearTimeout(timer);
  }

  return {
    url,
    /** The first-start admin password, once printed (null when this daemon printed none). */
    get password() {
      return password;
    },
    setupDir,
    dataDir,
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
    async stop() {
      await stopProcess(child, 10_000);
      log?.end();
    },
  };
}

/** SIGTERM, SIGKILL after `graceMs`; resolves once the process is gone (at once if it already is). */
export async function stopProcess(child, graceMs = 10_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Writes `text` to `file` the way editors do: a temporary file in the same folder, then rename. */
export function writeFileAtomic(file, text) {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, text, { mode: 0o600 });
  fs.renameSync(tmp, file);
}
