import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  addProfile,
  editProfile,
  labels,
  managerItems,
  openProfileManager,
  profileMessages,
  removeProfile,
  switchProfile,
} from '../../src/manager';
import { STATE_KEY } from '../../src/profiles';
import type { PickItem } from '../../src/ui';
import { FakeServer, testEnv } from '../helpers/fakes';

const labelsOf = (items: PickItem[]) => items.filter((i) => !i.separator).map((i) => i.label);
const pick = (label: string) => (items: PickItem[]) => items.find((i) => i.label === label);

async function setup() {
  const server = new FakeServer();
  const env = testEnv(server.fetch);
  const profile = await env.profiles.add({ name: 'work', serverUrl: 'https://coder.test' });
  return { server, ...env, profile };
}

describe('profile manager items', () => {
  test('SSO enabled and local login allowed: both sign-in options, SSO labelled with display_name', async () => {
    const { deps } = await setup();
    const items = labelsOf(await managerItems(deps));
    assert.ok(items.includes('$(sign-in) Sign in with Acme'), items.join('\n'));
    assert.ok(items.includes(labels.password));
    assert.ok(!items.includes(labels.signOut), 'no sign-out without a key');
  });

  test('local login disabled: the password option is hidden', async () => {
    const { server, deps } = await setup();
    server.config.allow_local_auth = false;
    const items = labelsOf(await managerItems(deps));
    assert.ok(items.includes('$(sign-in) Sign in with Acme'));
    assert.ok(!items.includes(labels.password), items.join('\n'));
  });

  test('SSO disabled: no SSO option', async () => {
    const { server, deps } = await setup();
    server.config.sso_enabled = false;
    const items = labelsOf(await managerItems(deps));
    assert.ok(!items.some((l) => l.includes('Acme')));
    assert.ok(items.includes(labels.password));
  });

  test('signed in: account and sign-out', async () => {
    const { server, profiles, profile, deps } = await setup();
    await profiles.setApiKey(profile.id, server.issueKey());
    const items = labelsOf(await managerItems(deps));
    assert.ok(items.includes(labels.signOut));
    assert.ok(items.includes(labels.account));
  });

  test('server unreachable: a retry entry, no sign-in option', async () => {
    const { server, deps } = await setup();
    server.down = true;
    const items = await managerItems(deps);
    const retry = items.find((i) => i.label === labels.retry);
    assert.match(retry?.description ?? '', /cannot reach https:\/\/coder.test/);
    assert.ok(!labelsOf(items).includes(labels.password));
  });

  test('onConfig hears what the server offers (drives the palette context keys)', async () => {
    const { server, deps } = await setup();
    const seen: unknown[] = [];
    deps.onConfig = (_p, c) => seen.push(c?.allow_local_auth);
    server.config.allow_local_auth = false;
    await managerItems(deps);
    server.down = true;
    await managerItems(deps);
    assert.deepEqual(seen, [false, undefined]);
  });

  test('choosing the SSO item runs the SSO sign-in', async () => {
    const { server, ui, profiles, profile, deps } = await setup();
    const key = server.approveNextPoll();
    ui.picks.push(pick('$(sign-in) Sign in with Acme'));
    await openProfileManager(deps);
    assert.equal(await profiles.getApiKey(profile.id), key);
  });

  test('choosing another profile switches to it', async () => {
    const { ui, profiles, deps } = await setup();
    const other = await profiles.add({ name: 'lab', serverUrl: 'https://lab.test' });
    ui.picks.push((items) => items.find((i) => i.label.endsWith(' lab')));
    await openProfileManager(deps);
    assert.equal(profiles.active()?.id, other.id);
  });
});

describe('profile management', () => {
  test('add: URL then name, becomes active, offers the sign-in options', async () => {
    const server = new FakeServer();
    const { ui, profiles, state, deps } = testEnv(server.fetch);
    ui.inputs.push('https://coder.test/', 'Work');
    const profile = await addProfile(deps);
    assert.deepEqual(profiles.list(), [{ id: 'p1', name: 'Work', serverUrl: 'https://coder.test' }]);
    assert.equal(profiles.active()?.id, profile?.id);
    assert.equal(ui.inputRequests[1].value, 'coder.test', 'the name is suggested from the host');
    assert.deepEqual(ui.shown.at(-1)?.items, ['Sign in with Acme', 'Sign in with password']);
    assert.deepEqual(Object.keys(state.get<object>(STATE_KEY) ?? {}), ['profiles', 'activeId']);
  });

  test('add: invalid URL and duplicate names are refused by the input validation', async () => {
    const { ui, deps } = await setup();
    ui.inputs.push('not a url');
    await assert.rejects(addProfile(deps), /not a URL/);
    ui.inputs.push('https://other.test', 'WORK');
    await assert.rejects(addProfile(deps), /already exists/);
  });

  test('add: the password option is not offered when local login is disabled', async () => {
    const server = new FakeServer();
    server.config.allow_local_auth = false;
    const { ui, deps } = testEnv(server.fetch);
    ui.inputs.push('https://coder.test', 'work');
    await addProfile(deps);
    assert.deepEqual(ui.shown.at(-1)?.items, ['Sign in with Acme']);
  });

  test('edit: rename keeps the key', async () => {
    const { server, ui, profiles, profile, deps } = await setup();
    const key = server.issueKey();
    await profiles.setApiKey(profile.id, key);
    ui.inputs.push('renamed', 'https://coder.test');
    await editProfile(deps);
    assert.equal(profiles.get(profile.id)?.name, 'renamed');
    assert.equal(await profiles.getApiKey(profile.id), key);
    assert.ok(server.keys.has(key));
  });

  test('edit: a new server URL signs out of the old one first', async () => {
    const { server, ui, profiles, profile, deps } = await setup();
    const key = server.issueKey();
    await profiles.setApiKey(profile.id, key);
    ui.inputs.push('work', 'https://new.test');
    ui.answer = (s) => (s.level === 'modal' ? 'Sign Out and Change' : undefined);
    await editProfile(deps);
    assert.equal(profiles.get(profile.id)?.serverUrl, 'https://new.test');
    assert.equal(await profiles.getApiKey(profile.id), undefined);
    assert.ok(!server.keys.has(key), 'revoked on the old server');
  });

  test('edit: declining the sign-out leaves the profile as it was', async () => {
    const { server, ui, profiles, profile, deps } = await setup();
    await profiles.setApiKey(profile.id, server.issueKey());
    ui.inputs.push('work', 'https://new.test');
    await editProfile(deps);
    assert.equal(profiles.get(profile.id)?.serverUrl, 'https://coder.test');
  });

  test('remove: confirmed, revokes the key and deletes the secret', async () => {
    const { server, ui, profiles, profile, secrets, deps } = await setup();
    const key = server.issueKey();
    await profiles.setApiKey(profile.id, key);
    ui.answer = (s) => (s.level === 'modal' ? 'Remove' : undefined);
    assert.equal(await removeProfile(deps), true);
    assert.deepEqual(profiles.list(), []);
    assert.equal(profiles.active(), undefined);
    assert.equal(secrets.data.size, 0);
    assert.ok(!server.keys.has(key));
  });

  test('remove: not confirmed, nothing changes', async () => {
    const { profiles, deps } = await setup();
    assert.equal(await removeProfile(deps), false);
    assert.equal(profiles.list().length, 1);
  });

  test('switch: picks among the profiles', async () => {
    const { ui, profiles, deps } = await setup();
    const lab = await profiles.add({ name: 'lab', serverUrl: 'https://lab.test' });
    ui.picks.push((items) => items[1]);
    await switchProfile(deps);
    assert.equal(profiles.active()?.id, lab.id);
  });

  test('add: a plain-http server off loopback needs a confirmation; cancelled, nothing is added', async () => {
    const server = new FakeServer();
    const { ui, profiles, deps } = testEnv(server.fetch);
    ui.inputs.push('http://coder.example.com', 'work');
    assert.equal(await addProfile(deps), undefined);
    assert.deepEqual(profiles.list(), []);
    assert.equal(ui.shown[0].level, 'modal');
    assert.equal(ui.shown[0].text, profileMessages.insecure('http://coder.example.com'));
    assert.match(ui.shown[0].text, /password and API key would travel over the network in clear text/);
    assert.deepEqual(ui.shown[0].items, [profileMessages.useHttp]);
    assert.equal(ui.inputRequests.length, 1, 'no name asked after the refusal');
    assert.equal(server.fetch.calls.length, 0, 'nothing sent to the server');
  });

  test('add: a plain-http server off loopback is added once confirmed', async () => {
    const { ui, profiles, deps } = testEnv(new FakeServer().fetch);
    ui.inputs.push('http://10.0.0.5:8080', 'lan');
    ui.answer = (s) => (s.level === 'modal' ? profileMessages.useHttp : undefined);
    await addProfile(deps);
    assert.deepEqual(profiles.list().map((p) => p.serverUrl), ['http://10.0.0.5:8080']);
  });

  test('add: https and loopback http need no confirmation', async () => {
    const { ui, profiles, deps } = testEnv(new FakeServer().fetch);
    ui.inputs.push('http://127.0.0.1:8080', 'local', 'http://localhost:8080', 'localhost', 'https://coder.test', 'remote');
    await addProfile(deps);
    await addProfile(deps);
    await addProfile(deps);
    assert.equal(profiles.list().length, 3);
    assert.ok(!ui.shown.some((s) => s.level === 'modal'));
  });

  test('add and edit: a server URL with a user name or password is refused', async () => {
    const { ui, profiles, deps } = await setup();
    ui.inputs.push('https://admin:secret@coder.test');
    await assert.rejects(addProfile(deps), /must not contain a user name or password/);
    ui.inputs.push('work', 'https://admin@coder.test');
    await assert.rejects(editProfile(deps), /must not contain a user name or password/);
    assert.deepEqual(profiles.list().map((p) => p.serverUrl), ['https://coder.test']);
    await assert.rejects(profiles.add({ name: 'x', serverUrl: 'https://u:p@x.test' }), /user name or password/);
  });

  test('edit: moving to a plain-http server off loopback needs a confirmation; cancelled, nothing changes', async () => {
    const { server, ui, profiles, profile, deps } = await setup();
    const key = server.issueKey();
    await profiles.setApiKey(profile.id, key);
    ui.inputs.push('work', 'http://coder.example.com');
    assert.equal(await editProfile(deps), undefined);
    assert.equal(profiles.get(profile.id)?.serverUrl, 'https://coder.test');
    assert.equal(await profiles.getApiKey(profile.id), key, 'still signed in');
    assert.ok(server.keys.has(key), 'not signed out');
    assert.deepEqual(ui.shown.map((s) => s.text), [
      profileMessages.insecure('http://coder.example.com'),
      profileMessages.insecureRefused('http://coder.example.com'),
    ]);
  });

  test('edit: confirmed, the plain-http server is saved', async () => {
    const { ui, profiles, profile, deps } = await setup();
    ui.inputs.push('work', 'http://coder.example.com');
    ui.answer = (s) => (s.level === 'modal' ? profileMessages.useHttp : undefined);
    await editProfile(deps);
    assert.equal(profiles.get(profile.id)?.serverUrl, 'http://coder.example.com');
  });

  test('add: the sign-in buttons show the server display name cleaned, and still work', async () => {
    const server = new FakeServer();
    server.config.display_name = 'Sign in with $(verified) Acme\u202e';
    const { ui, profiles, deps } = testEnv(server.fetch);
    ui.inputs.push('https://coder.test', 'work');
    const key = server.approveNextPoll();
    ui.answer = (s) => s.items[0];
    const profile = await addProfile(deps);
    assert.deepEqual(ui.shown[0].items, ['Sign in with \\$(verified) Acme', 'Sign in with password']);
    assert.equal(await profiles.getApiKey(profile?.id ?? ''), key);
  });
});
