// Starts the real `coder-server serve` on 127.0.0.1:0 in a fresh temporary folder, reads the bound
// address and the first-start admin password from its stderr, and stops it again (the shared
// ../../e2e-lib/daemon.mjs does the work).
//
// Env: CODER_SERVER_BIN (default <repo>/target/debug/coder-server), RUST_LOG (default "info"),
// KEEP_TMP=1 keeps the temporary folder. The daemon's stderr is saved to
// <repo>/target/browser-logs/<name>.log.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO, SERVER_BIN, requireBinary, spawnDaemon } from '../../e2e-lib/daemon.mjs';

export { REPO, SERVER_BIN, writeFileAtomic } from '../../e2e-lib/daemon.mjs';
const LOG_DIR = path.join(REPO, 'target', 'browser-logs');

/**
 * Starts a daemon. Resolves once both the listen address and the admin password were seen (only
 * the address with `waitForPassword: false`: a replica joining a database that has its admin).
 * @param {string} name used for the temporary folder and the log file
 * @param {{timeoutMs?: number, args?: string[], waitForPassword?: boolean}} [options] `args`: more
 *   `serve` flags, e.g. `['--database-url', url]`
 */
export async function startDaemon(name, { timeoutMs = 60_000, args = [], waitForPassword = true } = {}) {
  requireBinary(SERVER_BIN, 'coder-server', 'CODER_SERVER_BIN');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `cf-browser-${name}-`));
  fs.mkdirSync(LOG_DIR, { recursive: true });
  const logPath = path.join(LOG_DIR, `${name}.log`);
  let daemon;
  try {
    daemon = await spawnDaemon({ tmp, args, env: { NO_COLOR: '1' }, logFile: logPath, timeoutMs, waitForPassword });
  } catch (err) {
    if (process.env.KEEP_TMP !== '1') fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  const { url, password, setupDir, dataDir, child } = daemon;

  async function stop() {
    await daemon.stop();
    if (process.env.KEEP_TMP !== '1') fs.rmSync(tmp, { recursive: true, force: true });
  }

  return { url, password, tmp, setupDir, dataDir, oidcPath: path.join(setupDir, 'oidc.json'), logPath, child, stop };
}
