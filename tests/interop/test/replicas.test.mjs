// Two coder-server replicas behind a real load balancer: Debian's HAProxy, round robin with no
// stickiness, in front of two daemons that share one real PostgreSQL (started here) and one setup
// folder (the shared-volume topology). Headless Chromium does everything through the load
// balancer's URL: SSO with node-oidc-provider, the admin settings page, sign-out.
//
// Which replica served a request: HAProxy adds `X-Served-By: a|b` to every answer (see
// ../../e2e-lib/haproxy.mjs); each daemon logs every request it answers (`request ... path=...`,
// at debug level for coderflow::http); HAProxy's stats count requests per server. The scenario
// checks all three agree that both replicas served this browser session.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

import { spawnProvider } from '../provider.mjs';
import {
  CODER_SERVER_BIN,
  freePort,
  http,
  launchBrowser,
  makeTmp,
  removeTmp,
  screenshot,
  waitFor,
} from '../lib/harness.mjs';
import { browserMe, ssoLogin } from '../lib/flows.mjs';
import { PASSWORD_RE, spawnDaemon, writeFileAtomic } from '../../e2e-lib/daemon.mjs';
import { SERVED_BY, startHaproxy } from '../../e2e-lib/haproxy.mjs';
import { startPostgres } from '../../e2e-lib/postgres.mjs';

const NAME = 'm. two replicas behind HAProxy (round robin, one PostgreSQL): SSO, admin settings, sign-out';
const REPLICAS = ['a', 'b'];
const CLIENT = { client_id: 'coderflow-interop-lb', client_secret: 'lb-s3cr:et&with+chars' };
const DISPLAY_NAME = 'Sign in with Interop IdP';
const ACCOUNTS = [{ sub: 'm-rita', email: 'rita@example.com', email_verified: true, name: 'Rita Replica' }];
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;
// The daemon's per-request line (src/http/mod.rs, debug level, target coderflow::http).
const REQUEST_LINE = /\brequest\b.*\bmethod=(\S+) path="?([^"\s]+)"? status=(\d+)/;
const run = promisify(execFile);

/** Paths of the browser's pages and assets (not the API, not the probes). */
function isPagePath(p) {
  return !p.startsWith('/api/') && !['/healthz', '/readyz', '/metrics'].includes(p);
}

/** The requests a replica logged: [{ method, path, status }]. */
function loggedRequests(daemon) {
  return daemon.output
    .replace(ANSI, '')
    .split('\n')
    .map((line) => REQUEST_LINE.exec(line))
    .filter(Boolean)
    .map(([, method, p, status]) => ({ method, path: p, status: Number(status) }));
}

test(NAME, { timeout: 120_000 }, async () => {
  const slug = 'm';
  const tmp = makeTmp('coderflow-interop-replicas-');
  const cleanups = [];
  const replicas = {};
  let lb;
  let failed = false;
  const t0 = Date.now();
  try {
    // PostgreSQL, the provider, replica A (creates the setup repository and the admin), replica B
    // (joins), then HAProxy in front of both.
    const pg = await startPostgres({ logFile: path.join(tmp, 'postgres.log') });
    cleanups.push(() => pg.stop());
    const databaseUrl = await pg.createDatabase('coderflow_replicas');

    const lbPort = await freePort();
    const base = `http://127.0.0.1:${lbPort}`;
    const idp = await spawnProvider(
      { accounts: ACCOUNTS, clients: [{ ...CLIENT, redirect_uris: [`${base}/auth/oidc/callback`] }] },
      { name: 'idp-m', logFile: path.join(tmp, 'idp-m.log') },
    );
    cleanups.push(() => idp.dispose());

    const setupDir = path.join(tmp, 'setup');
    const args = [
      '--public-url', base,
      '--database-url', databaseUrl,
      '--trusted-proxies', '127.0.0.1/32',
      '--device-poll-interval', '1',
    ];
    const env = { NO_COLOR: '1', RUST_LOG: `${process.env.RUST_LOG || 'info'},coderflow::http=debug` };
    for (const name of REPLICAS) {
      const daemon = await spawnDaemon({
        tmp,
        setupDir,
        dataDir: path.join(tmp, `data-${name}`),
        args,
        env,
        logFile: path.join(tmp, `replica-${name}.log`),
        timeoutMs: 30_000,
        waitForPassword: name === 'a',
      });
      cleanups.push(() => daemon.stop());
      replicas[name] = daemon;
    }
    const adminPassword = replicas.a.password;
    assert.ok(adminPassword, 'replica A (empty database) printed the first admin password');
    assert.equal(replicas.b.password, null, 'replica B (joining) printed no admin password');

    lb = await startHaproxy({
      dir: tmp,
      port: lbPort,
      servers: REPLICAS.map((name) => ({ name, address: new URL(replicas[name].url).host })),
      logFile: path.join(tmp, 'haproxy.log'),
    });
    cleanups.push(() => lb.stop());
    console.error(
      `# interop m: LB ${base} -> a ${replicas.a.url}, b ${replicas.b.url}; ${databaseUrl}; work dir ${tmp} (${Date.now() - t0} ms)`,
    );

    // oidc.json in the shared setup folder; each replica (asked directly) serves it.
    writeFileAtomic(
      path.join(setupDir, 'oidc.json'),
      `${JSON.stringify(
        {
          enabled: true,
          display_name: DISPLAY_NAME,
          issuer: idp.issuer,
          ...CLIENT,
          scopes: ['openid', 'profile', 'email'],
          auto_provision: true,
          default_role: 'developer',
          allow_local_auth: true,
        },
        null,
        2,
      )}\n`,
    );
    for (const name of REPLICAS) {
      await waitFor(
        async () => {
          const pub = await http(`${replicas[name].url}/api/auth/oidc/config`);
          return pub.status === 200 && pub.body.sso_enabled === true && pub.body.display_name === DISPLAY_NAME;
        },
        { timeout: 15_000, what: `replica ${name} serves oidc.json` },
      );
    }

    // Chromium, one context; every answer of the LB it gets is recorded with the replica that made it.
    const browser = await launchBrowser();
    cleanups.push(() => browser.close());
    const context = await browser.newContext();
    const seen = []; // { method, path, status, servedBy }
    context.on('response', (r) => {
      const u = new URL(r.url());
      if (u.origin !== base) return;
      seen.push({ method: r.request().method(), path: u.pathname, status: r.status(), servedBy: r.headers()[SERVED_BY] || null });
    });
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    const lbView = { base, origin: base };

    /**
     * Makes `request` (which answers { status, servedBy, ... }) until both replicas answered it
     * (at least twice, at most 8 times). When the same replica answered twice in a row, one extra
     * request to the LB shifts the round robin (a page load is several requests: its count can be
     * even).
     */
    async function onBoth(what, request) {
      const answers = [];
      for (let i = 0; i < 8; i += 1) {
        const answer = await request();
        assert.ok(REPLICAS.includes(answer.servedBy), `${what}: served by ${answer.servedBy}`);
        answers.push(answer);
        const by = new Set(answers.map((a) => a.servedBy));
        if (answers.length >= 2 && by.size === REPLICAS.length) return answers;
        if (answers.length >= 2 && answers.at(-1).servedBy === answers.at(-2).servedBy) await fetch(`${base}/healthz`);
      }
      assert.fail(`${what}: never served by both replicas: ${JSON.stringify(answers.map((a) => a.servedBy))}`);
    }

    // 1. SSO through the LB: /login, the provider's form, back, signed in.
    const sso = await ssoLogin(page, lbView, idp, { login: 'rita@example.com', shot: slug });
    assert.ok(sso.sawProviderForm, `went through the provider's form; ended on ${sso.url}:\n${sso.text.slice(0, 300)}`);
    assert.ok(sso.daemon, `back on the LB's origin: ${sso.url}`);
    assert.equal(sso.whoami, 'rita', `signed in after SSO; page says:\n${sso.text.slice(0, 400)}`);
    const me = await browserMe(context, lbView);
    assert.equal(me.status, 200, `GET /api/me with the browser's cookies: ${JSON.stringify(me.body)}`);
    assert.equal(me.body.username, 'rita');
    assert.equal(me.body.source, 'sso');
    const ssoHops = seen.filter((s) => s.path.startsWith('/auth/oidc/')).map((s) => `${s.path} by ${s.servedBy}`);
    console.error(`# interop m: SSO ${ssoHops.join(', ')}`);

    // 2. The home page, signed in, on both replicas.
    await onBoth('GET / signed in', async () => {
      const response = await page.goto(`${base}/`);
      assert.equal(response.status(), 200);
      assert.equal((await page.locator('.whoami').innerText()).trim(), 'rita', `GET / by ${response.headers()[SERVED_BY]}`);
      return { servedBy: response.headers()[SERVED_BY] };
    });

    // 3. /settings/sso: 403 for a developer; server_admin (set in the database with the CLI) -> the page on both.
    await onBoth('GET /settings/sso as developer', async () => {
      const response = await page.goto(`${base}/settings/sso`);
      assert.equal(response.status(), 403, `a developer gets 403 (by ${response.headers()[SERVED_BY]})`);
      return { servedBy: response.headers()[SERVED_BY] };
    });
    const childEnv = { ...process.env };
    for (const key of Object.keys(childEnv)) if (key.startsWith('CODERFLOW_')) delete childEnv[key];
    const setRole = await run(
      CODER_SERVER_BIN,
      ['set-role', '--database-url', databaseUrl, '--username', 'rita', '--role', 'server_admin'],
      { cwd: tmp, env: childEnv, timeout: 30_000 },
    );
    assert.match(setRole.stdout, /now has role server_admin/, `set-role: ${setRole.stdout}${setRole.stderr}`);
    await onBoth('GET /settings/sso as server_admin', async () => {
      const response = await page.goto(`${base}/settings/sso`);
      const servedBy = response.headers()[SERVED_BY];
      assert.equal(response.status(), 200, `the settings page for a server_admin (by ${servedBy})`);
      await page.locator('#app[data-ready="true"]').waitFor({ timeout: 15_000 });
      await page.getByRole('heading', { name: 'Single Sign-On', level: 1 }).waitFor({ timeout: 15_000 });
      assert.equal(await page.locator('#redirect-uri').inputValue(), `${base}/auth/oidc/callback`, `redirect URI (by ${servedBy})`);
      return { servedBy };
    });
    await screenshot(page, `${slug}-3-settings`);

    // 4. GET /api/settings/sso with the browser's session, answered by both replicas. (A replica
    // may list itself a moment after it started: a list shorter than 2 is asked again for 10 s.)
    const settingsOnBoth = () =>
      onBoth('GET /api/settings/sso', async () => {
        const r = await context.request.get(`${base}/api/settings/sso`, { failOnStatusCode: false, maxRedirects: 0 });
        const servedBy = r.headers()[SERVED_BY];
        assert.equal(r.status(), 200, `GET /api/settings/sso by ${servedBy}: ${await r.text()}`);
        const body = await r.json();
        assert.equal(body.config?.issuer, idp.issuer, `the configuration (by ${servedBy})`);
        assert.equal(body.status?.provider?.state, 'ready', `the provider is ready (by ${servedBy}): ${JSON.stringify(body.status)}`);
        return { servedBy, body };
      });
    let settingsAnswers = await settingsOnBoth();
    const short = (answers) => answers.some((a) => Array.isArray(a.body.replicas) && a.body.replicas.length < 2);
    if (short(settingsAnswers)) {
      await waitFor(
        async () => {
          settingsAnswers = await settingsOnBoth();
          return !short(settingsAnswers);
        },
        { timeout: 10_000, interval: 500, what: 'both replicas listed' },
      ).catch(() => {});
    }

    // 5. Sign out through the LB; then pages that need a session go to /login, on both replicas,
    // with the browser's (cleared) cookies and with the old session cookie replayed.
    const oldCookie = (await context.cookies(base)).map((c) => `${c.name}=${c.value}`).join('; ');
    await Promise.all([
      page.waitForURL((u) => u.pathname === '/login', { timeout: 20_000 }),
      page.locator('nav form[action="/logout"] button[type="submit"]').click(),
    ]);
    await screenshot(page, `${slug}-5-signed-out`);
    const logout = seen.filter((s) => s.method === 'POST' && s.path === '/logout');
    assert.equal(logout.at(-1)?.status, 303, `POST /logout: ${JSON.stringify(logout)}`);
    assert.equal((await browserMe(context, lbView)).status, 401, 'no session after sign-out');

    for (const pathname of ['/', '/settings/sso']) {
      await onBoth(`GET ${pathname} after sign-out (browser)`, async () => {
        const r = await context.request.get(`${base}${pathname}`, { failOnStatusCode: false, maxRedirects: 0 });
        const servedBy = r.headers()[SERVED_BY];
        assert.equal(r.status(), 303, `${pathname} after sign-out (by ${servedBy})`);
        assert.equal(new URL(r.headers().location, base).pathname, '/login', `${pathname} -> ${r.headers().location} (by ${servedBy})`);
        return { servedBy };
      });
      await onBoth(`GET ${pathname} with the old session cookie`, async () => {
        const r = await fetch(`${base}${pathname}`, { headers: { cookie: oldCookie }, redirect: 'manual' });
        const servedBy = r.headers.get(SERVED_BY);
        assert.equal(r.status, 303, `${pathname} with the ended session's cookie (by ${servedBy})`);
        assert.equal(new URL(r.headers.get('location'), base).pathname, '/login', `(by ${servedBy})`);
        return { servedBy };
      });
    }
    await onBoth('GET /api/me with the old session cookie', async () => {
      const r = await fetch(`${base}/api/me`, { headers: { cookie: oldCookie } });
      assert.equal(r.status, 401, `GET /api/me with the ended session's cookie (by ${r.headers.get(SERVED_BY)})`);
      return { servedBy: r.headers.get(SERVED_BY) };
    });
    const back = await page.goto(`${base}/`);
    assert.equal(new URL(page.url()).pathname, '/login', `the browser is sent to /login (by ${back.headers()[SERVED_BY]})`);

    // 6. Both replicas served this browser session: by the LB's header, each daemon's own log and
    // HAProxy's counters; nothing answered 5xx or without the header (i.e. not through a replica).
    const byReplica = Object.fromEntries(REPLICAS.map((n) => [n, seen.filter((s) => s.servedBy === n)]));
    for (const name of REPLICAS) {
      assert.ok(byReplica[name].length > 0, `the browser got answers from replica ${name}`);
    }
    const bad = seen.filter((s) => s.status >= 500 || !s.servedBy);
    assert.deepEqual(bad, [], 'no 5xx and no answer without X-Served-By through the LB');
    assert.deepEqual(pageErrors, [], 'no script errors');
    const counts = {};
    await waitFor(
      () => {
        for (const name of REPLICAS) {
          const pages = loggedRequests(replicas[name]).filter((r) => isPagePath(r.path));
          const browserPages = byReplica[name].filter((s) => isPagePath(s.path));
          counts[name] = { logged: pages.length, browser: browserPages.length };
          if (!(browserPages.length > 0 && pages.length >= browserPages.length)) return false;
        }
        return true;
      },
      { timeout: 3000, what: `each replica's log has the page requests the LB says it served: ${JSON.stringify(counts)}` },
    );
    const stats = await lb.stats();
    for (const name of REPLICAS) assert.ok(stats[name].requests > 0, `HAProxy counted requests for ${name}: ${JSON.stringify(stats)}`);
    console.error(
      `# interop m: browser answers by replica ${JSON.stringify(Object.fromEntries(REPLICAS.map((n) => [n, byReplica[n].length])))}, ` +
        `page requests (in the daemon's log / seen by the browser) ${JSON.stringify(counts)}, HAProxy requests ${JSON.stringify(
          Object.fromEntries(REPLICAS.map((n) => [n, stats[n].requests])),
        )}`,
    );

    // 7. Replica B never printed an admin password.
    assert.ok(!PASSWORD_RE.test(replicas.b.output.replace(ANSI, '')), 'replica B printed no initial admin password');

    // 8. Checked last, and reported together (one may be work in progress): GET /api/settings/sso
    // lists both replicas (id, version, config_sha256, last_seen) whichever answers, and the local
    // admin password works through the LB on both replicas.
    const pending = [];
    const check = async (what, fn) => {
      try {
        await fn();
      } catch (err) {
        pending.push(`${what}: ${err.message}`);
      }
    };
    console.error(`# interop m: replicas (by ${settingsAnswers[0].servedBy}): ${JSON.stringify(settingsAnswers[0].body.replicas)}`);
    await check('replicas in GET /api/settings/sso', async () => {
      for (const { servedBy, body } of settingsAnswers) {
        assert.ok(Array.isArray(body.replicas), `(by ${servedBy}) no \`replicas\` list; keys: ${Object.keys(body).join(', ')}`);
        const list = body.replicas;
        assert.equal(list.length, 2, `(by ${servedBy}) 2 entries: ${JSON.stringify(list)}`);
        for (const r of list) {
          for (const field of ['id', 'version', 'config_sha256', 'last_seen']) {
            assert.ok(r[field] !== undefined && r[field] !== null && r[field] !== '', `(by ${servedBy}) entry has ${field}: ${JSON.stringify(r)}`);
          }
        }
        assert.equal(new Set(list.map((r) => r.id)).size, 2, `(by ${servedBy}) two distinct ids: ${JSON.stringify(list)}`);
        assert.equal(new Set(list.map((r) => r.config_sha256)).size, 1, `(by ${servedBy}) one oidc.json: ${JSON.stringify(list)}`);
        // Where an entry says its address and whether it is the answering replica: they are ours,
        // and the one answering is the one HAProxy named.
        const address = (name) => new URL(replicas[name].url).host;
        if (list.every((r) => r.listen)) {
          assert.deepEqual(list.map((r) => r.listen).sort(), REPLICAS.map(address).sort(), `(by ${servedBy}) listen addresses`);
        }
        if (list.every((r) => typeof r.this === 'boolean' && r.listen)) {
          assert.deepEqual(list.filter((r) => r.this).map((r) => r.listen), [address(servedBy)], `(by ${servedBy}) \`this\` is the answering replica`);
        }
      }
    });
    await check('local admin login through the LB', () =>
      onBoth('POST /api/auth/login as admin', async () => {
        const r = await http(`${base}/api/auth/login`, { method: 'POST', body: { username: 'admin', password: adminPassword } });
        const servedBy = r.headers.get(SERVED_BY);
        assert.equal(r.status, 200, `(by ${servedBy}) ${JSON.stringify(r.body)}`);
        return { servedBy };
      }),
    );
    assert.deepEqual(pending, [], 'the last checks');
    console.error(`# interop m: done in ${Date.now() - t0} ms`);
  } catch (err) {
    failed = true;
    // (node's report shows the error's stack, made before anything is added to its message.)
    for (const name of REPLICAS) {
      if (!replicas[name]) continue;
      // Without HAProxy's health checks (one a second), the rest of the log's tail.
      const lines = replicas[name].output.split('\n').filter((l) => !/path="?\/readyz/.test(l));
      console.error(`--- replica ${name} log (tail, without /readyz) ---\n${lines.slice(-25).join('\n')}`);
    }
    if (lb) console.error(`--- haproxy log (tail) ---\n${lb.logTail(15)}`);
    throw err;
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    if (!failed && !process.env.INTEROP_KEEP_TMP) removeTmp(tmp);
    else console.error(`# interop m: kept ${tmp} (replica-a.log, replica-b.log, haproxy.log, postgres.log, idp-m.log)`);
  }
});
