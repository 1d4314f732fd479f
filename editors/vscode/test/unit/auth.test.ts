import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { messages, showAccount, signInWithPassword, signInWithSso, signOut } from '../../src/auth';
import { secretKey } from '../../src/profiles';
import { FakeServer, testEnv } from '../helpers/fakes';

const SERVER = 'https://coder.test';

async function setup() {
  const server = new FakeServer();
  const env = testEnv(server.fetch);
  const profile = await env.profiles.add({ name: 'work', serverUrl: SERVER });
  return { server, ...env, profile };
}

describe('Sign in with SSO', () => {
  test('stores the approved key in SecretStorage only, and says who signed in', async () => {
    const { server, ui, secrets, state, profiles, profile, deps } = await setup();
    server.tokenReplies.push(server.tokenError('authorization_pending'));
    const key = server.approveNextPoll();

    const result = await signInWithSso(deps);

    assert.deepEqual(result, { ok: true, user: server.user });
    assert.equal(await profiles.getApiKey(profile.id), key);
    assert.equal(secrets.data.get(secretKey(profile.id)), key);
    assert.ok(!state.dump().includes(key), 'the key must not be in globalState');
    assert.deepEqual(ui.opened, [server.deviceCode.verification_uri_complete]);
    assert.deepEqual(ui.errors(), []);
    assert.ok(ui.infos().includes(messages.signedIn(SERVER, server.user)));
    // The device code request names the client.
    const codeCall = server.fetch.calls.find((c) => c.path === '/api/auth/device/code');
    assert.deepEqual(codeCall?.body, { client_name: 'VS Code' });
  });

  test('shows a cancellable progress titled with the display name, with the code before the browser opens', async () => {
    const { server, ui, deps } = await setup();
    server.approveNextPoll();
    await signInWithSso(deps);
    assert.equal(ui.progress.length, 1);
    assert.deepEqual(ui.progress[0].options, { title: 'CoderFlow: Sign in with Acme', cancellable: true });
    const codeShown = ui.events.findIndex((e) => e.startsWith('report:') && e.includes('BCDF-GHJK'));
    const opened = ui.events.findIndex((e) => e.startsWith('open:'));
    assert.ok(codeShown >= 0 && opened > codeShown, ui.events.join('\n'));
    assert.match(
      ui.progress[0].reports.at(-1) ?? '',
      /^Sign in to https:\/\/coder.test: check that the page shows the code BCDF-GHJK \(\d+:\d\d left\)$/,
    );
  });

  test('when the browser cannot be opened, tells where to go and offers to copy the code', async () => {
    const { server, ui, deps } = await setup();
    ui.onOpenExternal = () => false;
    ui.answer = (s) => (s.text.includes('enter the code') ? messages.copyCode : undefined);
    // Approve only after the copy happened, so the message had its turn.
    server.override = (req) =>
      req.path === '/api/auth/device/token' && ui.clipboard === 'BCDF-GHJK' && server.tokenReplies.length === 0
        ? (server.approveNextPoll(), undefined)
        : undefined;
    const result = await signInWithSso(deps);
    assert.equal(result.ok, true);
    assert.ok(ui.infos().includes(messages.openManually(new URL('https://coder.test/device'), 'BCDF-GHJK')));
    assert.equal(ui.clipboard, 'BCDF-GHJK');
  });

  test('denied in the browser: clear message, nothing stored', async () => {
    const { server, ui, profiles, profile, deps } = await setup();
    server.tokenReplies.push(server.tokenError('access_denied'));
    const result = await signInWithSso(deps);
    assert.deepEqual(result, { ok: false, reason: 'denied', message: messages.denied(SERVER) });
    assert.deepEqual(ui.errors(), [messages.denied(SERVER)]);
    assert.equal(await profiles.getApiKey(profile.id), undefined);
  });

  test('expired code: clear message, nothing stored', async () => {
    const { server, ui, profiles, profile, deps } = await setup();
    server.tokenReplies.push(server.tokenError('expired_token'));
    const result = await signInWithSso(deps);
    assert.equal(result.ok === false && result.reason, 'expired');
    assert.deepEqual(ui.errors(), [messages.expired(SERVER)]);
    assert.equal(await profiles.getApiKey(profile.id), undefined);
  });

  test('unreachable server: clear message before any browser opens', async () => {
    const { server, ui, deps } = await setup();
    server.down = true;
    const result = await signInWithSso(deps);
    assert.equal(result.ok === false && result.reason, 'unreachable');
    assert.equal(ui.errors().length, 1);
    assert.match(ui.errors()[0], /^Cannot reach the CoderFlow server at https:\/\/coder.test \(.*ECONNREFUSED.*\)/);
    assert.deepEqual(ui.opened, []);
  });

  test('server gone while polling: unreachable message', async () => {
    const { server, ui, deps } = await setup();
    server.override = (req) => (req.path === '/api/auth/device/token' ? 'unreachable' : undefined);
    const result = await signInWithSso(deps);
    assert.equal(result.ok === false && result.reason, 'unreachable');
    assert.match(ui.errors()[0], /Cannot reach the CoderFlow server at https:\/\/coder.test/);
  });

  test('cancelling the progress stops polling and stores nothing', async () => {
    const { server, ui, clock, profiles, profile, deps } = await setup();
    clock.onSleep = () => {
      if (clock.sleeps.length === 3) ui.cancelProgress();
    };
    const result = await signInWithSso(deps);
    assert.deepEqual(result, { ok: false, reason: 'cancelled', message: messages.cancelled });
    const polls = server.fetch.calls.filter((c) => c.path === '/api/auth/device/token').length;
    assert.equal(polls, 2);
    assert.equal(await profiles.getApiKey(profile.id), undefined);
    assert.deepEqual(ui.errors(), []);
  });

  test('cancelling while the code is requested', async () => {
    const { server, ui, deps } = await setup();
    server.override = (req) => {
      if (req.path === '/api/auth/device/code') {
        setTimeout(() => ui.cancelProgress(), 5);
        return 'hang';
      }
      return undefined;
    };
    const result = await signInWithSso(deps);
    assert.equal(result.ok === false && result.reason, 'cancelled');
    assert.deepEqual(ui.opened, []);
  });

  test('a server without device sign-in says so', async () => {
    const { server, ui, deps } = await setup();
    server.override = (req) =>
      req.path === '/api/auth/device/code' ? { status: 404, json: { error: 'not_found', message: 'no such route' } } : undefined;
    const result = await signInWithSso(deps);
    assert.equal(result.ok === false && result.reason, 'error');
    assert.deepEqual(ui.errors(), [messages.noDeviceLogin(SERVER)]);
  });

  test('SSO off on the server: says so and does not ask for a code', async () => {
    const { server, ui, deps } = await setup();
    server.config.sso_enabled = false;
    const result = await signInWithSso(deps);
    assert.equal(result.ok === false && result.reason, 'sso_disabled');
    assert.deepEqual(ui.errors(), [messages.ssoDisabled(SERVER)]);
    assert.ok(!server.fetch.calls.some((c) => c.path === '/api/auth/device/code'));
  });

  test('no profile: says to add one', async () => {
    const env = testEnv(new FakeServer().fetch);
    const result = await signInWithSso(env.deps);
    assert.equal(result.ok === false && result.reason, 'no_profile');
    assert.deepEqual(env.ui.errors(), [messages.noProfile]);
  });

  test('signing in again revokes the key it replaces', async () => {
    const { server, profiles, profile, deps } = await setup();
    const first = server.approveNextPoll();
    await signInWithSso(deps);
    const second = server.approveNextPoll();
    await signInWithSso(deps);
    assert.equal(await profiles.getApiKey(profile.id), second);
    assert.ok(!server.keys.has(first), 'the replaced key is revoked');
    assert.ok(server.keys.has(second));
  });
});

describe('Sign in with password', () => {
  test('asks username and password, stores the key', async () => {
    const { server, ui, profiles, profile, deps } = await setup();
    ui.inputs.push('johndoe', 'pw');
    const result = await signInWithPassword(deps);
    assert.equal(result.ok, true);
    const key = await profiles.getApiKey(profile.id);
    assert.ok(key && server.keys.has(key));
    assert.equal(ui.inputRequests[1].password, true);
    const login = server.fetch.calls.find((c) => c.path === '/api/auth/login');
    assert.deepEqual(login?.body, { username: 'johndoe', password: 'pw', key_name: 'VS Code (test)' });
  });

  test('refused without asking while local login is disabled', async () => {
    const { server, ui, deps } = await setup();
    server.config.allow_local_auth = false;
    const result = await signInWithPassword(deps);
    assert.equal(result.ok === false && result.reason, 'local_auth_disabled');
    assert.deepEqual(ui.inputRequests, []);
    assert.deepEqual(ui.errors(), [messages.localAuthDisabled(SERVER, 'Sign in with Acme')]);
  });

  test('403 local_auth_disabled from the login endpoint says so in a fixed text', async () => {
    const { server, ui, deps } = await setup();
    server.override = (req) =>
      req.path === '/api/auth/login'
        ? { status: 403, json: { error: 'local_auth_disabled', message: 'use SSO' } }
        : undefined;
    ui.inputs.push('johndoe', 'pw');
    const result = await signInWithPassword(deps);
    assert.equal(result.ok === false && result.reason, 'local_auth_disabled');
    assert.deepEqual(ui.errors(), [messages.localAuthDisabled(SERVER, 'Sign in with Acme')]);
  });

  test('wrong password and rate limiting have their own messages', async () => {
    const { server, ui, deps } = await setup();
    ui.inputs.push('johndoe', 'wrong');
    const wrong = await signInWithPassword(deps);
    assert.equal(wrong.ok === false && wrong.reason, 'invalid_credentials');
    server.override = (req) =>
      req.path === '/api/auth/login'
        ? { status: 429, json: { error: 'rate_limited', message: 'x' }, headers: { 'retry-after': '20' } }
        : undefined;
    ui.inputs.push('johndoe', 'pw');
    const limited = await signInWithPassword(deps);
    assert.equal(limited.ok === false && limited.reason, 'rate_limited');
    assert.deepEqual(ui.errors(), [messages.invalidCredentials, messages.rateLimited(20)]);
  });

  test('escape at the username prompt cancels quietly', async () => {
    const { ui, deps } = await setup();
    ui.inputs.push(undefined);
    const result = await signInWithPassword(deps);
    assert.equal(result.ok === false && result.reason, 'cancelled');
    assert.deepEqual(ui.errors(), []);
  });
});

describe('Sign out', () => {
  test('revokes the key found by prefix among several, then deletes it from SecretStorage', async () => {
    const { server, ui, profiles, profile, secrets, deps } = await setup();
    const other = server.issueKey('other');
    const key = server.issueKey('mine');
    await profiles.setApiKey(profile.id, key);
    const result = await signOut(deps);
    assert.deepEqual(result, { ok: true, revoked: true });
    assert.ok(!server.keys.has(key));
    assert.ok(server.keys.has(other), 'only the profile key is revoked');
    assert.equal(secrets.data.size, 0);
    const del = server.fetch.calls.find((c) => c.method === 'DELETE');
    assert.equal(del?.path, '/api/keys/id2');
    assert.ok(ui.infos().includes(messages.signedOut(SERVER)));
  });

  test('a key the server no longer accepts is just removed locally', async () => {
    const { ui, profiles, profile, deps } = await setup();
    await profiles.setApiKey(profile.id, 'cf_revoked_elsewhere');
    const result = await signOut(deps);
    assert.deepEqual(result, { ok: true, revoked: false });
    assert.equal(await profiles.getApiKey(profile.id), undefined);
    assert.ok(ui.infos().includes(messages.keyAlreadyInvalid(SERVER)));
  });

  test('server unreachable: asks before removing the key locally', async () => {
    const { server, ui, profiles, profile, deps } = await setup();
    const key = server.issueKey();
    await profiles.setApiKey(profile.id, key);
    server.down = true;
    const kept = await signOut(deps);
    assert.equal(kept.ok, false);
    assert.equal(await profiles.getApiKey(profile.id), key);
    assert.equal(ui.shown.at(-1)?.level, 'modal');
    assert.match(ui.shown.at(-1)?.text ?? '', /Could not revoke the API key on https:\/\/coder.test/);

    ui.answer = (s) => (s.level === 'modal' ? messages.removeLocally : undefined);
    const removed = await signOut(deps);
    assert.deepEqual(removed, { ok: true, revoked: false });
    assert.equal(await profiles.getApiKey(profile.id), undefined);
  });

  test('not signed in: nothing to do', async () => {
    const { server, deps } = await setup();
    const result = await signOut(deps);
    assert.equal(result.ok === false && result.reason, 'not_signed_in');
    assert.equal(server.fetch.calls.length, 0);
  });
});

describe('Show account', () => {
  test('shows the user and access', async () => {
    const { server, ui, profiles, profile, deps } = await setup();
    await profiles.setApiKey(profile.id, server.issueKey());
    const user = await showAccount(deps);
    assert.equal(user?.username, 'johndoe');
    assert.equal(ui.infos()[0], messages.account('work', SERVER, server.user));
    assert.match(ui.infos()[0], /signed in as "johndoe", name "John Doe", e-mail "john\.doe@company\.com" · access ".*developer \(environment:\*\)/);
    assert.ok(!ui.infos()[0].includes('\\'), `no backslash escapes: ${ui.infos()[0]}`);
  });
});
