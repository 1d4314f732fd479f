// A real PostgreSQL for the end-to-end suites: Debian's server programs, a cluster made with
// `initdb` in a temporary folder of its own (owned by the `postgres` user when running as root,
// since initdb refuses root), listening on 127.0.0.1 (a free port) and on a Unix socket in that
// folder, trust authentication for the role `coderflow`. `stop()` ends the server by its PID
// (SIGTERM, SIGKILL after a few seconds) and removes the folder. The Rust tests' equivalent is
// tests/it/support/postgres.rs.
//
// Plain ES module with no npm dependency.
//
// Env: POSTGRES_BINDIR (default: the highest version under /usr/lib/postgresql/<ver>/bin).
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { stopProcess } from './daemon.mjs';
import { sleep } from './poll.mjs';

const run = promisify(execFile);
const ROLE = 'coderflow';

/** The folder of initdb/postgres/pg_isready/psql: $POSTGRES_BINDIR, else Debian's newest. */
export function postgresBinDir() {
  if (process.env.POSTGRES_BINDIR) return process.env.POSTGRES_BINDIR;
  const root = '/usr/lib/postgresql';
  const versions = (fs.existsSync(root) ? fs.readdirSync(root) : [])
    .filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  if (versions.length === 0) {
    throw new Error(`PostgreSQL's server programs are missing (no ${root}/<ver>/bin/initdb): apt-get install -y postgresql`);
  }
  return path.join(root, versions[0], 'bin');
}

/** uid/gid of Debian's `postgres` user. */
function postgresUser() {
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('running as root needs the `postgres` user of Debian\'s postgresql package');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Makes and starts a cluster. Resolves once `pg_isready` answers, with
 * { port, dir, pid, url(db), createDatabase(name), psql(db, sql), logTail(), stop() }.
 * `logFile`: where the server's output goes too (it is always kept in memory for errors).
 */
export async function startPostgres({ logFile = null, timeoutMs = 30_000 } = {}) {
  const bin = postgresBinDir();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coderflow-pg-'));
  // As root, every server program runs as `postgres` (the uid/gid options: the child's PID is the
  // program itself, so stopping by PID reaches the postmaster, not a wrapper).
  const owner = process.getuid?.() === 0 ? postgresUser() : null;
  const as = owner ? { uid: owner.uid, gid: owner.gid } : {};
  const env = { ...process.env, HOME: dir, LC_ALL: 'C' };
  let child = null;
  let output = '';
  const log = logFile ? fs.createWriteStream(logFile, { flags: 'a' }) : null;
  const onExit = () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', onExit);

  const handle = {
    dir,
    port: null,
    get pid() {
      return child?.pid ?? null;
    },
    url(db) {
      return `postgres://${ROLE}@127.0.0.1:${handle.port}/${db}?sslmode=disable`;
    },
    logTail(chars = 3000) {
      return output.slice(-chars);
    },
    /** Runs `sql` with psql on database `db` (over TCP); its output, trimmed. */
    async psql(db, sql) {
      const { stdout } = await run(
        path.join(bin, 'psql'),
        ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(handle.port), '-U', ROLE, '-d', db, '-c', sql],
        { env, timeout: 15_000 },
      );
      return stdout.trim();
    },
    /** CREATE DATABASE `name`; its URL. */
    async createDatabase(name) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`database name ${name}`);
      await handle.psql('postgres', `CREATE DATABASE ${name}`);
      return handle.url(name);
    },
    /** SIGTERM to the server, SIGKILL after `graceMs`; then removes the folder. */
    async stop(graceMs = 5_000) {
      try {
        if (child) await stopProcess(child, graceMs);
      } finally {
        process.removeListener('exit', onExit);
        log?.end();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };

  try {
    if (owner) fs.chownSync(dir, owner.uid, owner.gid);
    const data = path.join(dir, 'data');
    try {
      await run(
        path.join(bin, 'initdb'),
        ['-D', data, '-U', ROLE, '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
        { ...as, cwd: dir, env, timeout: 60_000 },
      );
    } catch (err) {
      throw new Error(`initdb failed: ${err.stderr || err.message}`);
    }
    handle.port = await freePort();
    child = spawn(
      path.join(bin, 'postgres'),
      ['-D', data, '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-p', String(handle.port), '-c', 'fsync=off', '-c', 'full_page_writes=off'],
      { ...as, cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding('utf8');
      stream.on('data', (text) => {
        output += text;
        log?.write(text);
      });
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`postgres exited (${child.exitCode ?? child.signalCode}) before it answered:\n${handle.logTail()}`);
      }
      const ready = await run(path.join(bin, 'pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(handle.port), '-U', ROLE, '-d', 'postgres'], {
        env,
        timeout: 5_000,
      }).then(
        () => true,
        () => false,
      );
      if (ready) break;
      if (Date.now() > deadline) throw new Error(`postgres did not answer within ${timeoutMs} ms:\n${handle.logTail()}`);
      await sleep(100);
    }
  } catch (err) {
    await handle.stop(1_000).catch(() => {});
    throw err;
  }
  return handle;
}
