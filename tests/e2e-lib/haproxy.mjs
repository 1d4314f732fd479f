// A real load balancer for the end-to-end suites: Debian's HAProxy in the foreground (`-db`), HTTP
// mode, round robin over the given servers with no stickiness (no cookie, no stick table), health
// checks on GET /readyz. Every answer carries the name of the server that made it in
// `X-Served-By` (set by HAProxy), so a client sees which replica served each request; the log
// (one line a request, `option httplog`) goes to stdout and `logFile`; a stats socket in the
// folder answers `show stat` (stats()). `stop()` ends it by its PID.
//
// Plain ES module with no npm dependency.
//
// Env: HAPROXY_BIN (default: `haproxy` on PATH, else /usr/sbin/haproxy).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { stopProcess } from './daemon.mjs';
import { sleep } from './poll.mjs';

export const SERVED_BY = 'x-served-by';

export function haproxyBin() {
  if (process.env.HAPROXY_BIN) return process.env.HAPROXY_BIN;
  try {
    return execFileSync('sh', ['-c', 'command -v haproxy'], { encoding: 'utf8' }).trim() || '/usr/sbin/haproxy';
  } catch {
    return '/usr/sbin/haproxy';
  }
}

/** The configuration: frontend on 127.0.0.1:`port`, backend `replicas` with `servers` [{name, address}]. */
export function haproxyConfig({ port, servers, socket, checkPath = '/readyz' }) {
  return `global
  log stdout format raw local0 info
  maxconn 512
  stats socket ${socket} mode 600 level admin

defaults
  mode http
  log global
  option httplog
  option forwardfor
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 10s

frontend lb
  bind 127.0.0.1:${port}
  http-request set-header X-Forwarded-Proto http
  default_backend replicas

backend replicas
  balance roundrobin
  option httpchk GET ${checkPath}
  http-check expect status 200
  http-response set-header X-Served-By %s
${servers.map((s) => `  server ${s.name} ${s.address} check inter 1s fall 2 rise 1`).join('\n')}
`;
}

/** Sends one command to the stats socket; its answer. */
function socketCommand(socket, command) {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(socket);
    let answer = '';
    conn.setEncoding('utf8');
    conn.on('data', (d) => {
      answer += d;
    });
    conn.on('end', () => resolve(answer));
    conn.on('error', reject);
    conn.write(`${command}\n`);
  });
}

/**
 * Writes `<dir>/haproxy.cfg`, checks it (`haproxy -c`), runs `haproxy -f <cfg> -db` and resolves
 * once the frontend accepts connections and every server passed its health check, with
 * { url, port, configFile, child, output, stats(), logTail(), stop() }.
 */
export async function startHaproxy({ dir, port, servers, logFile = null, timeoutMs = 15_000 }) {
  const bin = haproxyBin();
  if (!fs.existsSync(bin)) throw new Error(`haproxy not found at ${bin}: apt-get install -y haproxy, or set HAPROXY_BIN`);
  const configFile = path.join(dir, 'haproxy.cfg');
  const socket = path.join(dir, 'haproxy.sock');
  fs.writeFileSync(configFile, haproxyConfig({ port, servers, socket }));
  try {
    execFileSync(bin, ['-c', '-q', '-f', configFile], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new Error(`haproxy -c refused ${configFile}: ${err.stderr || err.message}`);
  }
  const child = spawn(bin, ['-f', configFile, '-db'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = logFile ? fs.createWriteStream(logFile) : null;
  let output = '';
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding('utf8');
    stream.on('data', (text) => {
      output += text;
      log?.write(text);
    });
  }
  const onExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', onExit);

  const handle = {
    url: `http://127.0.0.1:${port}`,
    port,
    configFile,
    child,
    get output() {
      return output;
    },
    logTail(lines = 30) {
      return output.split('\n').slice(-lines).join('\n');
    },
    /** `show stat` of the backend's servers: { <name>: { status, check, sessions, requests } }. */
    async stats() {
      const csv = await socketCommand(socket, 'show stat');
      const [header, ...rows] = csv.trim().split('\n');
      const cols = header.replace(/^# /, '').split(',');
      const result = {};
      for (const row of rows) {
        const f = Object.fromEntries(row.split(',').map((v, i) => [cols[i], v]));
        if (f.pxname !== 'replicas' || f.svname === 'BACKEND') continue;
        result[f.svname] = {
          status: f.status,
          check: f.check_status,
          sessions: Number(f.stot || 0),
          requests: f.req_tot === '' || f.req_tot === undefined ? null : Number(f.req_tot),
        };
      }
      return result;
    },
    async stop(graceMs = 5_000) {
      await stopProcess(child, graceMs);
      process.removeListener('exit', onExit);
      log?.end();
    },
  };

  try {
    const deadline = Date.now() + timeoutMs;
    let last = null;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`haproxy exited (${child.exitCode ?? child.signalCode}):\n${handle.logTail()}`);
      }
      last = await handle.stats().catch((err) => ({ error: err.message }));
      if (servers.every((s) => last[s.name]?.status === 'UP' && /^L7OK/.test(last[s.name]?.check || ''))) break;
      if (Date.now() > deadline) {
        throw new Error(`haproxy: servers not all up within ${timeoutMs} ms: ${JSON.stringify(last)}\n${handle.logTail()}`);
      }
      await sleep(100);
    }
  } catch (err) {
    await handle.stop(1_000).catch(() => {});
    throw err;
  }
  return handle;
}
