// An expired key answers 401 `key_expired` (contract section 9): told apart from a revoked key,
// with a "Sign in" button that signs in again.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { messages, notifyKeyExpired, showAccount, signOut } from '../../src/auth';
import { StatusController } from '../../src/status';
import type { Profile } from '../../src/profiles';
import { FakeServer, FakeStatusItem, testEnv } from '../helpers/fakes';

const SERVER = 'https://coder.test';

async function setup() {
  const server = new FakeServer();
  const env = testEnv(server.fetch);
  const profile = await env.profiles.add({ name: 'work', serverUrl: SERVER });
  const expiredKey = server.issueKey('old');
  server.expired.add(expiredKey);
  await env.profiles.setApiKey(profile.id, expiredKey);
  return { server, ...env, profile, expiredKey };
}

describe('expired API key (401 key_expired)', () => {
  test('the status bar says the key expired, apart from a revoked key, and tells once', async () => {
    const { server, profiles, profile, expiredKey } = await setup();
    const item = new FakeStatusItem();
    const told: Profile[] = [];
    const status = new StatusController(item, profiles, { fetch: server.fetch, onKeyExpired: (p) => told.push(p) });

    assert.deepEqual(await status.refresh(), { kind: 'key_expired', profile: 'work', profileId: profile.id });
    assert.equal(item.text, '$(warning) CoderFlow: key expired, sign in again');
    assert.match(String(item.tooltip), /the API key has expired\. Click to sign in again/);
    await status.refresh();
    assert.deepEqual(told, [profile], 'one notification, not one per refresh');

    // A revoked key is another state, and a key expiring again later is told again.
    server.expired.delete(expiredKey);
    server.keys.delete(expiredKey);
    assert.equal((await status.refresh()).kind, 'key_rejected');
    assert.match(item.text, /sign in again/);
    assert.doesNotMatch(item.text, /expired/);
    server.keys.set(expiredKey, { id: 'idx', name: 'old', prefix: expiredKey.slice(0, 8), username: 'johndoe' });
    server.expired.add(expiredKey);
    await status.refresh();
    assert.equal(told.length, 2);
  });

  test('the notification says to sign in again; its "Sign in" button runs the sign-in', async () => {
    const { server, ui, profiles, profile, expiredKey, deps } = await setup();
    server.config.allow_local_auth = false;
    ui.answer = (s) => (s.items.includes(messages.signIn) ? messages.signIn : undefined);
    const fresh = server.approveNextPoll();

    const result = await notifyKeyExpired(deps, profile);

    assert.equal(result?.ok, true);
    assert.deepEqual(ui.shown[0], { level: 'warning', text: messages.keyExpired('work', SERVER), items: [messages.signIn] });
    assert.equal(ui.shown[0].text, 'The API key of work for https://coder.test has expired. Sign in again.');
    assert.equal(ui.progress.length, 1, 'the SSO sign-in ran');
    assert.equal(await profiles.getApiKey(profile.id), fresh);
    assert.notEqual(fresh, expiredKey);
  });

  test('"Sign in" lets the user choose when the server offers SSO and password', async () => {
    const { server, ui, profiles, profile, deps } = await setup();
    ui.answer = (s) => (s.items.includes(messages.signIn) ? messages.signIn : undefined);
    ui.picks.push((items) => items.find((i) => i.label === messages.password));
    ui.inputs.push('johndoe', 'pw');
    const result = await notifyKeyExpired(deps, profile);
    assert.equal(result?.ok, true);
    assert.deepEqual(
      ui.pickRequests[0].items.map((i) => i.label),
      ['Sign in with Acme', messages.password],
    );
    const key = await profiles.getApiKey(profile.id);
    assert.ok(key && server.keys.has(key) && !server.expired.has(key));
  });

  test('dismissing the notification does nothing', async () => {
    const { server, ui, deps, profile } = await setup();
    assert.equal(await notifyKeyExpired(deps, profile), undefined);
    assert.deepEqual(ui.progress, []);
    assert.ok(!server.fetch.calls.some((c) => c.path === '/api/auth/device/code'));
  });

  test('Show account with an expired key: the key-expired notification, not "revoked?"', async () => {
    const { ui, deps } = await setup();
    assert.equal(await showAccount(deps), undefined);
    assert.deepEqual(ui.shown, [{ level: 'warning', text: messages.keyExpired('work', SERVER), items: [messages.signIn] }]);
    assert.ok(!ui.notificationTexts().some((t) => t.includes('revoked')));
  });

  test('Sign out with an expired key removes it locally and says it had expired', async () => {
    const { ui, profiles, profile, deps } = await setup();
    assert.deepEqual(await signOut(deps), { ok: true, revoked: false });
    assert.equal(await profiles.getApiKey(profile.id), undefined);
    assert.deepEqual(ui.infos(), [messages.keyExpiredSignedOut(SERVER)]);
  });
});
