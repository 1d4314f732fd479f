// Starts a real `coder-server` for the end-to-end tests.
//
// The binary is $CODER_SERVER_BIN, else <repo>/target/debug/coder-server. CODER_E2E=0 skips
// the real-server tests; otherwise a missing binary fails them with a message saying what to do.

import { ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The repository root: the nearest folder above this file with a Cargo.toml. */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (existsSync(path.join(dir, 'Cargo.toml'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return path.resolve(__dirname, '..', '..', '..', '..', '..');
    dir = parent;
  }
}

export function serverBinary(): string {
  return process.env.CODER_SERVER_BIN || path.join(repoRoot(), 'target', 'debug', 'coder-server');
}

/** A reason to skip the real-server tests (CODER_E2E=0), or false to run them. */
export function e2eSkip(): string | false {
  return process.env.CODER_E2E === '0' ? 'CODER_E2E=0: real-server tests skipped' : false;
}

/** Throws a clear error when the binary is missing (the tests must fail, not skip). */
export function requireBinary(): string {
  const bin = serverBinary();
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    throw new Error(
      `coder-server binary not found (or not executable) at ${bin}. Build it with ` +
        '`cargo build --bin coder-server` at the repository root, or point CODER_SERVER_BIN at it. ' +
        'Set CODER_E2E=0 to skip the real-server tests while developing.',
    );
  }
  return bin;
}

export interface Daemon {
  url: string;
  adminPassword: string;
  setupDir: string;
  dataDir: string;
  /** Everything the daemon wrote to stderr so far. */
  log(): string;
  /** Writes `oidc.json` into the setup repository. */
  writeOidc(config: object): void;
  /** Polls GET /api/auth/oidc/config until `ready` holds. */
  waitForConfig(ready: (config: any) => boolean, timeoutMs?: number): Promise<any>;
  stop(): Promise<void>;
}

export async function startDaemon(extraArgs: string[] = [], timeoutMs = 30_000): Promise<Daemon> {
  const bin = requireBinary();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'coderflow-vscode-e2e-'));
  const setupDir = path.join(tmp, 'setup');
  const dataDir = path.join(tmp, 'data');
  const child: ChildProcess = spawn(
    bin,
    ['serve', '--setup-repo', setupDir, '--data-dir', dataDir, '--listen', '127.0.0.1:0', ...extraArgs],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info' } },
  );
  let stderr = '';
  child.stdout?.resume();
  child.stderr?.setEncoding('utf8');
  let exited: string | undefined;

  const started = new Promise<{ url: string; adminPassword: string }>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`coder-server did not report "listening on" within ${timeoutMs} ms; stderr:\n${stderr}`)),
      timeoutMs,
    );
    const check = () => {
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)?.[1];
      const password = /initial admin password \(user "admin"\): (\S+)/.exec(stderr)?.[1];
      if (url && password) {
        clearTimeout(timer);
        resolve({ url, adminPassword: password });
      }
    };
    child.stderr?.on('data', (chunk: string) => {
      stderr += chunk;
      check();
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${bin}: ${e.message}`));
    });
    child.on('exit', (code, signal) => {
      exited = `exit code ${code}, signal ${signal}`;
      clearTimeout(timer);
      reject(new Error(`coder-server exited during start-up (${exited}); stderr:\n${stderr}`));
    });
  });

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(timer);
    }
    rmSync(tmp, { recursive: true, force: true });
  };

  let info: { url: string; adminPassword: string };
  try {
    info = await started;
  } catch (e) {
    await stop();
    throw e;
  }

  return {
    ...info,
    setupDir,
    dataDir,
    log: () => stderr,
    writeOidc(config: object) {
      writeFileSync(path.join(setupDir, 'oidc.json'), JSON.stringify(config, null, 2), { mode: 0o600 });
    },
    async waitForConfig(ready, waitMs = 10_000) {
      const deadline = Date.now() + waitMs;
      let last: unknown;
      while (Date.now() < deadline) {
        if (exited) throw new Error(`coder-server exited (${exited}); stderr:\n${stderr}`);
        const response = await fetch(`${info.url}/api/auth/oidc/config`);
        last = await response.json();
        if (ready(last)) return last;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`the daemon did not apply oidc.json within ${waitMs} ms; last config ${JSON.stringify(last)}; stderr:\n${stderr}`);
    },
    stop,
  };
}
