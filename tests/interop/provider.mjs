// A real OpenID Provider for the interop suite: node-oidc-provider (OpenID Certified) on 127.0.0.1.
//
// Library:
//   import { spawnProvider, generateJwks } from './provider.mjs';
//   const idp = await spawnProvider({ port: 0, accounts, clients, jwks });  // a child process
//   idp.issuer; await idp.restart({ jwks: generateJwks() }); await idp.stop(); await idp.start();
//   (startProvider() runs the same thing in-process and returns { issuer, port, stop() }.)
//
// Command line (prints `issuer: <url>` on stdout when it listens; SIGTERM or end of stdin stops it):
//   node provider.mjs --config provider.json [--port N] [--accounts accounts.json]
//
// Options (the config file holds the same object):
//   host                  "127.0.0.1" (always use 127.0.0.1, never localhost)
//   port                  0 = any free port; give the old port to restart "at the same address"
//   accounts              [{ sub, email?, email_verified?, name?, password?, groups? }]; or
//                         accountsFile. `groups` (an array of strings, or one string) is released
//                         with the `groups` scope, like Okta's or Keycloak's groups claim: at
//                         userinfo (or in the ID token too with conformIdTokenClaims false);
//                         an account without it sends no groups claim at all
//   clients               [{ client_id, client_secret, redirect_uris }] (confidential, code flow,
//                         client_secret_basic); `client` (one object) is accepted too. Optional,
//                         for logout: post_logout_redirect_uris (RP-initiated logout),
//                         backchannel_logout_uri and backchannel_logout_session_required (then
//                         the ID tokens carry `sid` and the logout tokens too)
//   conformIdTokenClaims  true (default): email and name only at userinfo; false: in the ID token too
//   jwks                  { keys: [private JWKs] }; the first signs. Default: one fresh RS256 key.
//   cookieKeys            keys signing the provider's cookies
//   defaultPassword       password of accounts without one ("secret")
//
// The interaction (login + consent) is a plain HTML form at /interaction/<uid> posting `login`
// (the account's sub or email) and `password`; consent for openid/profile/email/groups is granted
// automatically. devInteractions are off. PKCE (S256) is required for every client.
//
// Logout: RP-initiated logout (`end_session_endpoint`, node-oidc-provider's default) asks on a
// plain page (`#logout-yes` "Yes, sign me out", `#logout-no`), then goes to the client's
// registered post_logout_redirect_uri or to a plain "Signed out" page (`#signed-out`). Back-channel
// logout is on: confirming a logout POSTs a logout_token to the backchannel_logout_uri of every
// client of that provider session that registered one; each outcome is logged on stderr as
// `backchannel.success <client_id> <sub> <sid>` or `backchannel.error <client_id> <sub> <sid>: ...`.

import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopProcess } from '../e2e-lib/daemon.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const SUPPORTED_SCOPES = ['openid', 'profile', 'email', 'groups'];

/** A private JWKS of `count` fresh RS256 keys (each with its own kid); the first one signs. */
export function generateJwks(count = 1) {
  const keys = [];
  for (let i = 0; i < count; i += 1) {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = privateKey.export({ format: 'jwk' });
    keys.push({ ...jwk, kid: `k-${randomBytes(6).toString('hex')}`, alg: 'RS256', use: 'sig' });
  }
  return { keys };
}

function normaliseOptions(input = {}) {
  const opts = { ...input };
  opts.host = opts.host || '127.0.0.1';
  opts.port = Number(opts.port ?? 0);
  if (!opts.accounts && opts.accountsFile) {
    opts.accounts = JSON.parse(readFileSync(opts.accountsFile, 'utf8'));
  }
  opts.accounts = opts.accounts || [];
  if (!opts.clients && opts.client) opts.clients = [opts.client];
  opts.clients = opts.clients || [];
  opts.conformIdTokenClaims = opts.conformIdTokenClaims ?? true;
  opts.jwks = opts.jwks || generateJwks(1);
  opts.cookieKeys = opts.cookieKeys || ['interop-cookie-key-1', 'interop-cookie-key-2'];
  opts.defaultPassword = opts.defaultPassword ?? 'secret';
  return opts;
}

function findAccountByLogin(accounts, login) {
  const wanted = String(login || '').trim();
  if (!wanted) return undefined;
  return (
    accounts.find((a) => a.sub === wanted) ||
    accounts.find((a) => a.email && a.email.toLowerCase() === wanted.toLowerCase())
  );
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(uid, clientId, error) {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Interop IdP: sign in</title></head>
<body>
<h1>Interop IdP</h1>
<p>Sign in to continue to <b>${escapeHtml(clientId)}</b>.</p>
${error ? `<p id="error" class="error">${escapeHtml(error)}</p>` : ''}
<form id="idp-login" method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
  <label>Login <input id="login" name="login" type="text" autofocus required></label>
  <label>Password <input id="password" name="password" type="password" required></label>
  <button id="submit" type="submit">Sign in</button>
</form>
</body></html>`;
}

// RP-initiated logout's pages (features.rpInitiatedLogout): `form` is the provider's hidden form
// (id "op.logoutForm", its xsrf field); the buttons submit it, "yes" with `logout=yes`.
async function logoutSource(ctx, form) {
  ctx.type = 'html';
  ctx.body = `<!doctype html>
<html><head><meta charset="utf-8"><title>Interop IdP: sign out</title></head>
<body>
<h1>Do you want to sign out from ${escapeHtml(ctx.host)}?</h1>
${form}
<button id="logout-yes" type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button>
<button id="logout-no" type="submit" form="op.logoutForm">No, stay signed in</button>
</body></html>`;
}

async function postLogoutSuccessSource(ctx) {
  const client = ctx.oidc.client?.clientId;
  ctx.type = 'html';
  ctx.body = `<!doctype html>
<html><head><meta charset="utf-8"><title>Interop IdP: signed out</title></head>
<body><h1 id="signed-out">Signed out</h1><p>Your sign-out${client ? ` with ${escapeHtml(client)}` : ''} was successful.</p></body></html>`;
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, body, type = 'text/html; charset=utf-8') {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

/** A configured node-oidc-provider instance (not listening). */
export async function createProvider(input) {
  const opts = normaliseOptions(input);
  const { default: Provider } = await import('oidc-provider');
  const issuer = `http://${opts.host}:${opts.port}`;
  const accounts = opts.accounts;

  const configuration = {
    clients: opts.clients.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      redirect_uris: c.redirect_uris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: c.token_endpoint_auth_method || 'client_secret_basic',
      ...(c.post_logout_redirect_uris ? { post_logout_redirect_uris: c.post_logout_redirect_uris } : {}),
      ...(c.backchannel_logout_uri ? { backchannel_logout_uri: c.backchannel_logout_uri } : {}),
      ...(c.backchannel_logout_session_required !== undefined
        ? { backchannel_logout_session_required: c.backchannel_logout_session_required }
        : {}),
    })),
    jwks: opts.jwks,
    cookies: { keys: opts.cookieKeys },
    conformIdTokenClaims: opts.conformIdTokenClaims,
    scopes: SUPPORTED_SCOPES,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    responseTypes: ['code'],
    pkce: { required: () => true },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 120,
      IdToken: 3600,
      Interaction: 3600,
      Session: 86400,
      Grant: 86400,
    },
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },
      // The default pages import a web font: these plain ones keep the browser on loopback.
      rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
      backchannelLogout: { enabled: true },
    },
    // node-oidc-provider refuses outgoing requests to special-use addresses (SSRF protection);
    // here every relying party, the back-channel logout URIs included, is on 127.0.0.1.
    async fetch(url, options) {
      delete options.dispatcher;
      return globalThis.fetch(url, options);
    },
    interactions: {
      url(_ctx, interaction) {
        return `/interaction/${interaction.uid}`;
      },
    },
    async findAccount(_ctx, sub) {
      const account = accounts.find((a) => a.sub === sub);
      if (!account) return undefined;
      return {
        accountId: account.sub,
        async claims() {
          const claims = { sub: account.sub };
          if (account.email !== undefined && account.email !== null) claims.email = account.email;
          if (account.email_verified !== undefined) claims.email_verified = account.email_verified;
          if (account.name !== undefined && account.name !== null) claims.name = account.name;
          if (account.groups !== undefined && account.groups !== null) claims.groups = account.groups;
          return claims;
        },
      };
    },
    // Errors as JSON text, easy to read in a screenshot or a log.
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = `<!doctype html><html><head><meta charset="utf-8"><title>IdP error</title></head><body><h1>IdP error</h1><pre id="idp-error">${escapeHtml(JSON.stringify(out, null, 2))}</pre></body></html>`;
    },
  };

  const provider = new Provider(issuer, configuration);
  provider.on('backchannel.success', (_ctx, client, accountId, sid) => {
    process.stderr.write(`backchannel.success ${client.clientId} ${accountId} ${sid}\n`);
  });
  provider.on('backchannel.error', (_ctx, err, client, accountId, sid) => {
    const body = err.response ? ` (${err.response.status})` : '';
    process.stderr.write(`backchannel.error ${client.clientId} ${accountId} ${sid}: ${err.message}${body}\n`);
  });

  async function grantConsent(details, accountId) {
    const requested = String(details.params.scope || 'openid')
      .split(' ')
      .filter((s) => SUPPORTED_SCOPES.includes(s));
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId: details.params.client_id });
    grant.addOIDCScope(requested.join(' '));
    return grant.save();
  }

  // The interaction routes; everything else goes to the provider.
  async function interactions(req, res) {
    const url = new URL(req.url, issuer);
    const match = url.pathname.match(/^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/);
    if (!match) return false;
    const [, uid, isLogin] = match;
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) {
      send(res, 400, '<h1>interaction mismatch</h1>');
      return true;
    }
    if (req.method === 'GET' && !isLogin) {
      if (details.prompt.name === 'login') {
        send(res, 200, loginPage(uid, details.params.client_id));
        return true;
      }
      // consent (or anything else after login): grant openid/profile/email and go on.
      const accountId = details.session?.accountId;
      const grantId = await grantConsent(details, accountId);
      await provider.interactionFinished(
        req,
        res,
        { consent: { grantId } },
        { mergeWithLastSubmission: true },
      );
      return true;
    }
    if (req.method === 'POST' && isLogin) {
      const form = await readForm(req);
      const account = findAccountByLogin(accounts, form.get('login'));
      const expected = account ? (account.password ?? opts.defaultPassword) : undefined;
      if (!account || form.get('password') !== expected) {
        send(res, 200, loginPage(uid, details.params.client_id, 'Invalid login or password.'));
        return true;
      }
      const grantId = await grantConsent(details, account.sub);
      await provider.interactionFinished(
        req,
        res,
        { login: { accountId: account.sub }, consent: { grantId } },
        { mergeWithLastSubmission: false },
      );
      return true;
    }
    send(res, 405, '<h1>method not allowed</h1>');
    return true;
  }

  const callback = provider.callback();
  const handler = (req, res) => {
    interactions(req, res)
      .then((handled) => {
        if (!handled) callback(req, res);
      })
      .catch((err) => {
        if (!res.headersSent) {
          send(res, 400, `<!doctype html><h1>IdP interaction error</h1><pre>${escapeHtml(err.message)}</pre>`);
        } else {
          res.destroy();
        }
      });
  };
  return { provider, handler, issuer, options: opts };
}

/** Runs the provider in this process. Resolves once it listens: { issuer, port, stop() }. */
export async function startProvider(input) {
  const opts = normaliseOptions(input);
  const server = http.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, resolve);
  });
  const port = server.address().port;
  const { handler, issuer } = await createProvider({ ...opts, port });
  server.on('request', handler);
  return {
    issuer,
    port,
    server,
    async stop() {
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Runs the provider as a child process (`node provider.mjs --config <file>`), so that "provider
 * down" is a real closed port. The handle can stop, start and restart it on the same port, with
 * changed options (accounts, jwks, conformIdTokenClaims...).
 */
export async function spawnProvider(input, { logFile, name = 'idp' } = {}) {
  // Keys are made here, once, so that a restart keeps them unless `jwks` is given (rotation).
  let current = { ...input, port: Number(input.port ?? 0), jwks: input.jwks || generateJwks(1) };
  let child = null;
  const dir = mkdtempSync(path.join(tmpdir(), `interop-${name}-`));
  const log = [];
  const handle = {
    issuer: null,
    port: null,
    get options() {
      return current;
    },
    get log() {
      return log.join('');
    },
    get running() {
      return child !== null;
    },
    async start(changes = {}) {
      if (child) throw new Error(`${name} already running`);
      current = { ...current, ...changes };
      if (handle.port !== null) current.port = handle.port;
      const configFile = path.join(dir, 'provider.json');
      writeFileSync(configFile, JSON.stringify(current, null, 2));
      const proc = spawn(process.execPath, [SELF, '--config', configFile, '--exit-with-stdin', 'yes'], {
        cwd: HERE,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      child = proc;
      const onData = (chunk) => {
        const text = chunk.toString();
        log.push(text);
        if (logFile) {
          try {
            writeFileSync(logFile, text, { flag: 'a' });
          } catch {
            /* ignore */
          }
        }
      };
      proc.stderr.on('data', onData);
      const issuer = await new Promise((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`${name} did not start in 15 s:\n${log.join('')}`)), 15000);
        proc.stdout.on('data', (chunk) => {
          onData(chunk);
          out += chunk.toString();
          const m = out.match(/^issuer: (\S+)$/m);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        });
        proc.once('exit', (code, signal) => {
          clearTimeout(timer);
          reject(new Error(`${name} exited (${code ?? signal}) before listening:\n${log.join('')}`));
        });
      });
      proc.once('exit', () => {
        if (child === proc) child = null;
      });
      handle.issuer = issuer;
      handle.port = Number(new URL(issuer).port);
      current.port = handle.port;
      return issuer;
    },
    async stop() {
      const proc = child;
      if (!proc) return;
      await stopProcess(proc, 5000);
      child = null;
    },
    async restart(changes = {}) {
      await handle.stop();
      return handle.start(changes);
    },
    async dispose() {
      await handle.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await handle.start();
  return handle;
}

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    const [key, inline] = a.startsWith('--') ? a.slice(2).split(/=(.*)/s, 2) : [null];
    if (!key) throw new Error(`unexpected argument ${a}`);
    args[key] = inline !== undefined ? inline : argv[++i];
  }
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const config = args.config ? JSON.parse(readFileSync(args.config, 'utf8')) : {};
  if (args.port !== undefined) config.port = Number(args.port);
  if (args.accounts) config.accountsFile = args.accounts;
  if (args['no-conform']) config.conformIdTokenClaims = false;
  const running = await startProvider(config);
  process.stdout.write(`issuer: ${running.issuer}\n`);
  const shutdown = async () => {
    await running.stop();
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  // Run by spawnProvider: the parent's end (or death) closes our stdin; stop then too.
  if (args['exit-with-stdin'] !== undefined) {
    process.stdin.on('end', shutdown);
    process.stdin.resume();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === SELF) {
  main().catch((err) => {
    process.stderr.write(`provider: ${err.stack || err}\n`);
    process.exit(1);
  });
}
