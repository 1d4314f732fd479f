// The extension driven by a malicious server: what reaches the notifications, the browser opener,
// the clipboard and SecretStorage.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { messages, showAccount, signInWithPassword, signInWithSso, signOut } from '../../src/auth';
import { addProfile, openProfileManager } from '../../src/manager';
import { StatusController } from '../../src/status';
import { FakeServer, FakeStatusItem, testEnv } from '../helpers/fakes';
import { COMMAND_LINK, HOSTILE, labelProblems, notificationProblems, TERMINAL_ESCAPE } from '../helpers/hostile';

const SERVER = 'https://coder.test';

async function setup(serverUrl = SERVER) {
  const server = new FakeServer();
  const env = testEnv(server.fetch);
  const profile = await env.profiles.add({ name: 'work', serverUrl });
  return { server, ...env, profile };
}

/** A server that puts hostile text into every string it sends. */
function makeHostile(server: FakeServer): void {
  server.config.display_name = HOSTILE;
  server.user = {
    ...server.user,
    username: HOSTILE,
    name: HOSTILE,
    email: HOSTILE,
    access: [{ role: HOSTILE, scope: HOSTILE }],
  };
  // Same origin, hostile path: it passes the origin check and is shown when the browser fails.
  server.deviceCode.verification_uri = `${SERVER}/device/${COMMAND_LINK}`;
}

function assertHarmless(texts: string[], check: (t: string) => string[]): void {
  const bad = texts.map((t) => ({ t, problems: check(t) })).filter((x) => x.problems.length > 0);
  assert.deepEqual(bad, [], 'server text reached the UI unescaped');
}

describe('hostile server: server text in the UI', () => {
  test('no server string reaches a notification, progress, label or the status bar unescaped', async () => {
    const { server, ui, profiles, profile, deps } = await setup();
    makeHostile(server);

    // SSO sign-in; the browser cannot be opened, so the address is shown and the code copied.
    ui.onOpenExternal = () => false;
    ui.answer = (s) => (s.items.includes(messages.copyCode) ? messages.copyCode : undefined);
    server.override = (req) =>
      req.path === '/api/auth/device/token' && ui.clipboard !== '' && server.tokenReplies.length === 0
        ? (server.approveNextPoll(), undefined)
        : undefined;
    const signedIn = await signInWithSso(deps);
    assert.equal(signedIn.ok, true);
    assert.equal(ui.clipboard, 'BCDF-GHJK', 'only the checked user code reaches the clipboard');
    server.override = () => undefined;
    ui.answer = () => undefined;

    // Who am I; the manager; the status bar.
    await showAccount(deps);
    await openProfileManager(deps);
    const item = new FakeStatusItem();
    await new StatusController(item, profiles, { fetch: server.fetch }).refresh();
    assert.equal(item.text.includes('$(account)'), true);

    // Error messages of every kind.
    server.tokenReplies.push({ status: 400, json: { error: 'invalid_grant', message: HOSTILE } });
    assert.equal((await signInWithSso(deps)).ok, false);
    server.override = (req) =>
      req.path === '/api/auth/device/code' ? { status: 400, json: { error: 'bad_request', message: HOSTILE } } : undefined;
    assert.equal((await signInWithSso(deps)).ok, false);
    server.override = (req) =>
      req.path === '/api/auth/device/code' ? { status: 302, headers: { location: COMMAND_LINK } } : undefined;
    assert.equal((await signInWithSso(deps)).ok, false);
    server.override = (req) =>
      req.path === '/api/auth/login' ? { status: 403, json: { error: 'local_auth_disabled', message: HOSTILE } } : undefined;
    ui.inputs.push('johndoe', 'pw');
    assert.equal((await signInWithPassword(deps)).ok, false);
    server.override = (req) =>
      req.path === '/api/auth/login' ? { status: 500, json: { error: 'internal', message: HOSTILE } } : undefined;
    ui.inputs.push('johndoe', 'pw');
    assert.equal((await signInWithPassword(deps)).ok, false);
    server.override = (req) =>
      req.method === 'DELETE' ? { status: 500, json: { error: 'internal', message: HOSTILE } } : undefined;
    assert.equal((await signOut(deps, profile)).ok, false);
    server.override = () => undefined;

    // A new profile on a server that answers with an error, and one whose display name is hostile.
    const broken = new FakeServer();
    broken.override = () => ({ status: 500, json: { error: 'internal', message: HOSTILE } });
    deps.fetch = broken.fetch;
    ui.inputs.push('https://broken.test', 'broken');
    await addProfile(deps);
    deps.fetch = server.fetch;
    ui.inputs.push('https://other.test', 'other');
    await addProfile(deps);

    const texts = ui.notificationTexts();
    assertHarmless(texts, notificationProblems);
    // The tooltip's line breaks are the extension's own.
    assertHarmless([...ui.labelTexts(), item.text, ...String(item.tooltip).split('\n')], labelProblems);
    // The hostile texts did reach the UI, defused but otherwise as sent: this test saw every path above.
    const defused = texts.filter((t) => t.includes('[Click] (command:workbench.action.terminal.sendSequence?'));
    assert.ok(defused.length >= 10, `only ${defused.length} defused server texts:\n${texts.join('\n')}`);
    assert.ok(!texts.some((t) => t.includes('\\')), `no backslash escapes:\n${texts.join('\n')}`);
    // The address to open by hand stays a working address: "(" percent-encoded, not spaced out.
    assert.ok(texts.some((t) => t.startsWith('Open https://coder.test/device/[Click]%28command:')), texts.join('\n'));
    assert.ok(!texts.some((t) => t.includes(TERMINAL_ESCAPE)));
  });

  test('a hostile user code is neither shown nor copied; nothing is opened or stored', async () => {
    const { server, ui, profiles, profile, deps } = await setup();
    server.deviceCode.user_code = `BCDF-GHJK\nrm -rf ~\n${COMMAND_LINK}`;
    ui.onOpenExternal = () => false;
    ui.answer = () => messages.copyCode;
    server.approveNextPoll();
    const result = await signInWithSso(deps);
    assert.equal(result.ok === false && result.reason, 'untrusted');
    assert.deepEqual(ui.opened, []);
    assert.equal(ui.clipboard, '');
    assert.equal(await profiles.getApiKey(profile.id), undefined);
    assert.ok(!server.fetch.calls.some((c) => c.path === '/api/auth/device/token'), 'no poll');
    assert.match(ui.errors()[0], /sent a sign-in code that is not letters, digits and dashes/);
    assertHarmless(ui.notificationTexts(), notificationProblems);
  });
});

describe('hostile server: verification addresses', () => {
  for (const [what, patch, problem] of [
    [
      'a complete address on another origin',
      { verification_uri_complete: 'https://evil.test/device?user_code=BCDF-GHJK' },
      /that is not on its own origin \(https:\/\/coder.test\): "https:\/\/evil\.test\/device\?user_code=BCDF-GHJK"\. Sign-in stopped/,
    ],
    ['a plain address on another origin', { verification_uri: 'https://evil.test/device' }, /not on its own origin/],
    ['a look-alike host', { verification_uri_complete: 'https://coder.test.evil.test/device' }, /not on its own origin/],
    ['http on an https server', { verification_uri_complete: 'http://coder.test/device' }, /not on its own origin/],
    ['a command: address', { verification_uri_complete: 'command:workbench.action.terminal.new' }, /not a web address \(command\)/],
    ['a javascript: address', { verification_uri: 'javascript:alert(1)' }, /not a web address \(javascript\)/],
    ['no URL at all', { verification_uri_complete: '/device' }, /not a URL/],
  ] as const) {
    test(`${what} is refused: nothing opened, shown, copied or stored`, async () => {
      const { server, ui, profiles, profile, deps } = await setup();
      Object.assign(server.deviceCode, patch);
      server.approveNextPoll();
      ui.answer = () => messages.copyCode;
      const result = await signInWithSso(deps);
      assert.equal(result.ok === false && result.reason, 'untrusted');
      assert.deepEqual(ui.opened, []);
      assert.equal(ui.clipboard, '');
      assert.equal(await profiles.getApiKey(profile.id), undefined);
      assert.ok(!server.fetch.calls.some((c) => c.path === '/api/auth/device/token'), 'no poll');
      assert.equal(ui.errors().length, 1);
      assert.match(ui.errors()[0], problem);
      assert.ok(!ui.progress[0].reports.some((r) => r.includes('BCDF-GHJK')), 'the code is not shown either');
      assertHarmless(ui.notificationTexts(), notificationProblems);
    });
  }

  test('http on loopback is accepted on the same loopback origin', async () => {
    const { server, ui, profiles, profile, deps } = await setup('http://127.0.0.1:8080');
    Object.assign(server.deviceCode, {
      verification_uri: 'http://127.0.0.1:8080/device',
      verification_uri_complete: 'http://127.0.0.1:8080/device?user_code=BCDF-GHJK',
    });
    const key = server.approveNextPoll();
    const result = await signInWithSso(deps);
    assert.equal(result.ok, true);
    assert.deepEqual(ui.opened, ['http://127.0.0.1:8080/device?user_code=BCDF-GHJK']);
    assert.equal(await profiles.getApiKey(profile.id), key);
    assert.match(ui.progress[0].reports.at(-1) ?? '', /^Sign in to http:\/\/127.0.0.1:8080: check that the page shows the code BCDF-GHJK/);
  });

  test('a loopback server sending localhost for 127.0.0.1 is another origin', async () => {
    const { server, ui, deps } = await setup('http://127.0.0.1:8080');
    Object.assign(server.deviceCode, {
      verification_uri: 'http://localhost:8080/device',
      verification_uri_complete: 'http://localhost:8080/device?user_code=BCDF-GHJK',
    });
    const result = await signInWithSso(deps);
    assert.equal(result.ok === false && result.reason, 'untrusted');
    assert.deepEqual(ui.opened, []);
  });

  test('a plain-http profile off loopback gets no verification page opened', async () => {
    const { server, ui, deps } = await setup('http://coder.lan');
    Object.assign(server.deviceCode, {
      verification_uri: 'http://coder.lan/device',
      verification_uri_complete: 'http://coder.lan/device?user_code=BCDF-GHJK',
    });
    const result = await signInWithSso(deps);
    assert.equal(result.ok === false && result.reason, 'untrusted');
    assert.match(ui.errors()[0], /that is not https/);
    assert.deepEqual(ui.opened, []);
  });

  test('the code prompt names the server origin, before the browser opens', async () => {
    const { server, ui, deps } = await setup();
    server.approveNextPoll();
    await signInWithSso(deps);
    const prompt = ui.events.findIndex((e) => e === 'report:Sign in to https://coder.test: check that the page shows the code BCDF-GHJK (10:00 left)');
    const opened = ui.events.indexOf('open:https://coder.test/device?user_code=BCDF-GHJK');
    assert.ok(prompt >= 0 && opened > prompt, ui.events.join('\n'));
  });
});

describe('hostile server: a key only goes to the profile it was made for', () => {
  test('SSO: the profile pointed at another server while polling; the key is discarded and revoked at the first', async () => {
    const { server, ui, clock, profiles, profile, secrets, deps } = await setup();
    server.tokenReplies.push(server.tokenError('authorization_pending'));
    const key = server.approveNextPoll();
    clock.onSleep = () => {
      if (clock.sleeps.length === 1) void profiles.update(profile.id, { serverUrl: 'https://b.test' });
    };
    const result = await signInWithSso(deps);
    assert.deepEqual(result, {
      ok: false,
      reason: 'profile_changed',
      message: messages.profileChanged('work', SERVER, true),
    });
    assert.equal(profiles.get(profile.id)?.serverUrl, 'https://b.test');
    assert.equal(await profiles.getApiKey(profile.id), undefined);
    assert.equal(secrets.data.size, 0);
    assert.ok(!server.keys.has(key), 'revoked where it came from');
    const del = server.fetch.calls.find((c) => c.method === 'DELETE');
    assert.equal(del?.origin, SERVER);
    assert.ok(!server.fetch.calls.some((c) => c.origin === 'https://b.test'), 'the key never went to the new server');
    assert.deepEqual(ui.warnings(), [messages.profileChanged('work', SERVER, true)]);
    assert.ok(!ui.infos().some((t) => t.startsWith('Signed in')));
  });

  test('SSO: the profile was removed while polling; nothing is stored', async () => {
    const { server, clock, profiles, profile, secrets, deps } = await setup();
    const key = server.approveNextPoll();
    clock.onSleep = () => void profiles.remove(profile.id);
    const result = await signInWithSso(deps, profile);
    assert.equal(result.ok === false && result.reason, 'profile_changed');
    assert.equal(secrets.data.size, 0);
    assert.ok(!server.keys.has(key));
  });

  test('SSO: a rename while polling keeps the key', async () => {
    const { server, clock, profiles, profile, deps } = await setup();
    const key = server.approveNextPoll();
    clock.onSleep = () => void profiles.update(profile.id, { name: 'renamed' });
    const result = await signInWithSso(deps);
    assert.equal(result.ok, true);
    assert.equal(await profiles.getApiKey(profile.id), key);
  });

  test('password: the profile changed server during the sign-in; the key is discarded and revoked', async () => {
    const { server, ui, profiles, profile, secrets, deps } = await setup();
    // The sign-in started against the profile as it was; it then moved to another server.
    const started = { ...profile };
    await profiles.update(profile.id, { serverUrl: 'https://b.test' });
    ui.inputs.push('johndoe', 'pw');
    const result = await signInWithPassword(deps, started);
    assert.ok(server.fetch.calls.some((c) => c.origin === SERVER && c.path === '/api/auth/login'));
    assert.equal(result.ok === false && result.reason, 'profile_changed');
    assert.equal(secrets.data.size, 0);
    assert.equal(server.keys.size, 0, 'the new key was revoked at the first server');
    assert.deepEqual(ui.warnings(), [messages.profileChanged('work', SERVER, true)]);
  });

  test('a key that cannot be revoked is still discarded, and the message says so', async () => {
    const { server, ui, clock, profiles, profile, secrets, deps } = await setup();
    const key = server.approveNextPoll();
    clock.onSleep = () => {
      void profiles.update(profile.id, { serverUrl: 'https://b.test' });
      server.override = (req) => (req.path === '/api/keys' ? 'unreachable' : undefined);
    };
    const result = await signInWithSso(deps);
    assert.equal(result.ok === false && result.reason, 'profile_changed');
    assert.equal(secrets.data.size, 0);
    assert.ok(server.keys.has(key));
    assert.deepEqual(ui.warnings(), [messages.profileChanged('work', SERVER, false)]);
  });
});
