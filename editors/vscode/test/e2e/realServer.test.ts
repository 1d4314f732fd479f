// The extension's sign-in flows against a real coder-server (see test/helpers/daemon.ts).
// The device code is approved or denied by a scripted "browser" (test/helpers/browser.ts) when
// the flow calls openExternal, exactly where VS Code would open the user's browser.
//
// CODER_E2E=0 skips this file; a missing binary fails it with a message saying what to do.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { describeAccess, messages, showAccount, signInWithPassword, signInWithSso, signOut } from '../../src/auth';
import { ApiError, CoderFlowClient } from '../../src/client';
import { realClock } from '../../src/deviceFlow';
import { labels, managerItems } from '../../src/manager';
import { Browser } from '../helpers/browser';
import { Daemon, e2eSkip, startDaemon } from '../helpers/daemon';
import { testEnv } from '../helpers/fakes';

const skip = e2eSkip();
const ACME = {
  enabled: true,
  display_name: 'Sign in with Acme',
  client_id: 'x',
  client_secret: 'y',
  issuer: 'http://127.0.0.1:9/',
};
const OPTIONS = { timeout: 60_000, skip };

/** A fresh "VS Code" (fake editor UI, stubbed SecretStorage, real fetch and clock) with one profile. */
async function editorFor(daemon: Daemon) {
  const env = testEnv(undefined, realClock);
  const profile = await env.profiles.add({ name: 'e2e', serverUrl: daemon.url });
  return { ...env, profile };
}

/**
 * Runs "Sign in with SSO"; when the extension opens the browser, the scripted browser signs in
 * as admin and approves or denies the code (or does nothing).
 */
async function ssoSignIn(daemon: Daemon, decision: 'approve' | 'deny' | 'ignore') {
  const editor = await editorFor(daemon);
  const browser = new Browser(daemon.url);
  let browserError: unknown;
  let browserDone: Promise<void> = Promise.resolve();
  editor.ui.onOpenExternal = (url) => {
    if (decision !== 'ignore') {
      browserDone = (async () => {
        await browser.login('admin', daemon.adminPassword);
        await browser.decide(url, decision);
      })().catch((e) => {
        browserError = e;
        editor.ui.cancelProgress();
      });
    }
    return true;
  };
  const started = Date.now();
  const result = await signInWithSso(editor.deps);
  await browserDone;
  if (browserError) throw browserError;
  return { ...editor, result, seconds: (Date.now() - started) / 1000 };
}

function describeFailure(editor: { ui: { shown: unknown[] } }, daemon: Daemon): string {
  return `UI: ${JSON.stringify(editor.ui.shown)}\n--- coder-server stderr (tail) ---\n${daemon.log().slice(-3000)}`;
}

describe('real coder-server: SSO device sign-in', () => {
  let daemon: Daemon;

  before(async () => {
    if (skip) return;
    daemon = await startDaemon(['--device-poll-interval', '1']);
    daemon.writeOidc({ ...ACME, allow_local_auth: true });
    await daemon.waitForConfig((c) => c.sso_enabled === true && c.allow_local_auth === true);
  });

  after(async () => {
    await daemon?.stop();
  });

  test('SSO sign-in stores a key in SecretStorage that works on /api/me', OPTIONS, async () => {
    const editor = await ssoSignIn(daemon, 'approve');
    assert.ok(editor.result.ok, `${JSON.stringify(editor.result)}\n${describeFailure(editor, daemon)}`);
    assert.equal(editor.result.user.username, 'admin');

    const key = await editor.profiles.getApiKey(editor.profile.id);
    if (!key?.startsWith('cf_')) assert.fail(`stored key: ${key}`);
    assert.equal(editor.secrets.data.size, 1);
    assert.ok(!editor.state.dump().includes(key), 'the key must not be in globalState');
    assert.ok(editor.ui.opened[0].startsWith(`${daemon.url}/device`), `opened ${editor.ui.opened[0]}`);
    assert.match(editor.ui.progress[0].options.title, /Sign in with Acme/);
    assert.ok(editor.ui.infos().includes(`Signed in to ${daemon.url} as "admin".`), JSON.stringify(editor.ui.infos()));

    const client = new CoderFlowClient(daemon.url);
    const me = await client.me(key);
    assert.equal(me.username, 'admin');
    assert.ok(me.access.some((b) => b.role === 'server_admin'));
    const listed = (await client.listKeys(key)).find((k) => key.startsWith(k.prefix));
    assert.ok(listed, 'the new key is among the user keys');
    assert.match(listed.name, /VS Code/, 'device keys are named after the client');

    // "Show account" shows the server's values as sent (the first admin's e-mail is generated,
    // admin-…@localhost.invalid; roles read like "server_admin (…)"): no escapes, no links.
    assert.equal((await showAccount(editor.deps))?.username, 'admin');
    const account = editor.ui.infos().at(-1) ?? '';
    assert.equal(account, messages.account('e2e', daemon.url, me));
    assert.ok(account.includes(`access "${describeAccess(me)}"`), account);
    if (me.email) assert.ok(account.includes(`e-mail "${me.email}"`), account);
    assert.ok(!account.includes('\\'), account);
  });

  test('sign-out revokes the key on the server and deletes it from SecretStorage', OPTIONS, async () => {
    const editor = await ssoSignIn(daemon, 'approve');
    assert.ok(editor.result.ok, `${JSON.stringify(editor.result)}\n${describeFailure(editor, daemon)}`);
    const key = await editor.profiles.getApiKey(editor.profile.id);
    if (!key) assert.fail('no key stored');

    const out = await signOut(editor.deps);
    assert.deepEqual(out, { ok: true, revoked: true }, describeFailure(editor, daemon));
    assert.equal(await editor.profiles.getApiKey(editor.profile.id), undefined);
    assert.equal(editor.secrets.data.size, 0);
    await assert.rejects(new CoderFlowClient(daemon.url).me(key), (e: unknown) => e instanceof ApiError && e.status === 401);
  });

  test('denied in the browser ends cleanly with the denied message', OPTIONS, async () => {
    const editor = await ssoSignIn(daemon, 'deny');
    assert.deepEqual(
      editor.result,
      { ok: false, reason: 'denied', message: messages.denied(daemon.url) },
      describeFailure(editor, daemon),
    );
    assert.deepEqual(editor.ui.errors(), [messages.denied(daemon.url)]);
    assert.equal(editor.secrets.data.size, 0);
    assert.ok(editor.seconds < 30, `took ${editor.seconds} s`);
  });

  test('password sign-in works while local login is allowed', OPTIONS, async () => {
    const editor = await editorFor(daemon);
    assert.ok(labelsOf(await managerItems(editor.deps)).includes(labels.password));
    editor.ui.inputs.push('admin', daemon.adminPassword);
    const result = await signInWithPassword(editor.deps);
    assert.ok(result.ok, `${JSON.stringify(result)}\n${describeFailure(editor, daemon)}`);
    const key = await editor.profiles.getApiKey(editor.profile.id);
    assert.equal((await new CoderFlowClient(daemon.url).me(key ?? '')).username, 'admin');
  });

  test('the password option is hidden while local login is disabled', OPTIONS, async () => {
    daemon.writeOidc({ ...ACME, allow_local_auth: false });
    await daemon.waitForConfig((c) => c.sso_enabled === true && c.allow_local_auth === false);
    const editor = await editorFor(daemon);

    const items = labelsOf(await managerItems(editor.deps));
    assert.ok(items.includes(labels.sso('Sign in with Acme')), items.join('\n'));
    assert.ok(!items.includes(labels.password), items.join('\n'));

    const result = await signInWithPassword(editor.deps);
    assert.equal(result.ok === false && result.reason, 'local_auth_disabled');
    assert.deepEqual(editor.ui.inputRequests, [], 'no credentials asked for');
    // And the server agrees.
    await assert.rejects(
      new CoderFlowClient(daemon.url).login('admin', daemon.adminPassword, 'x'),
      (e: unknown) => e instanceof ApiError && e.status === 403 && e.code === 'local_auth_disabled',
    );
  });
});

describe('real coder-server: expired device code', () => {
  let daemon: Daemon;

  before(async () => {
    if (skip) return;
    daemon = await startDaemon(['--device-code-ttl', '2', '--device-poll-interval', '1']);
    daemon.writeOidc(ACME);
    await daemon.waitForConfig((c) => c.sso_enabled === true);
  });

  after(async () => {
    await daemon?.stop();
  });

  test('a code nobody approves expires cleanly with the expired message', OPTIONS, async () => {
    const editor = await ssoSignIn(daemon, 'ignore');
    assert.deepEqual(
      editor.result,
      { ok: false, reason: 'expired', message: messages.expired(daemon.url) },
      describeFailure(editor, daemon),
    );
    assert.deepEqual(editor.ui.errors(), [messages.expired(daemon.url)]);
    assert.equal(editor.secrets.data.size, 0);
    assert.ok(editor.seconds < 20, `took ${editor.seconds} s`);
  });
});

function labelsOf(items: Array<{ label: string; separator?: boolean }>): string[] {
  return items.filter((i) => !i.separator).map((i) => i.label);
}
