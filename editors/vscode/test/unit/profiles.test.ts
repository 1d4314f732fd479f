import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ProfileStore, secretKey, STATE_KEY } from '../../src/profiles';
import { MemoryMemento, MemorySecrets } from '../helpers/fakes';

function store() {
  const state = new MemoryMemento();
  const secrets = new MemorySecrets();
  let n = 0;
  return { state, secrets, profiles: new ProfileStore(state, secrets, () => `id${++n}`) };
}

describe('ProfileStore', () => {
  test('the first profile becomes active; others do not', async () => {
    const { profiles } = store();
    const a = await profiles.add({ name: 'a', serverUrl: 'https://a.test/' });
    await profiles.add({ name: 'b', serverUrl: 'https://b.test' });
    assert.equal(profiles.active()?.id, a.id);
    assert.equal(a.serverUrl, 'https://a.test');
  });

  test('keys go to SecretStorage, never to globalState', async () => {
    const { state, secrets, profiles } = store();
    const a = await profiles.add({ name: 'a', serverUrl: 'https://a.test' });
    await profiles.setApiKey(a.id, 'cf_secret');
    assert.equal(secrets.data.get(secretKey(a.id)), 'cf_secret');
    assert.ok(!state.dump().includes('cf_secret'));
    assert.deepEqual(state.get(STATE_KEY), { profiles: [{ id: 'id1', name: 'a', serverUrl: 'https://a.test' }], activeId: 'id1' });
  });

  test('changing the server URL drops the key; renaming keeps it', async () => {
    const { profiles } = store();
    const a = await profiles.add({ name: 'a', serverUrl: 'https://a.test' });
    await profiles.setApiKey(a.id, 'cf_secret');
    assert.deepEqual((await profiles.update(a.id, { name: 'A2' })).keyDropped, false);
    assert.equal(await profiles.getApiKey(a.id), 'cf_secret');
    assert.deepEqual((await profiles.update(a.id, { serverUrl: 'https://other.test' })).keyDropped, true);
    assert.equal(await profiles.getApiKey(a.id), undefined);
  });

  test('removing the active profile deletes its key and activates the next', async () => {
    const { secrets, profiles } = store();
    const a = await profiles.add({ name: 'a', serverUrl: 'https://a.test' });
    const b = await profiles.add({ name: 'b', serverUrl: 'https://b.test' });
    await profiles.setApiKey(a.id, 'cf_a');
    await profiles.remove(a.id);
    assert.equal(profiles.active()?.id, b.id);
    assert.equal(secrets.data.size, 0);
  });

  test('names must be non-empty and unique (case-insensitive)', async () => {
    const { profiles } = store();
    await profiles.add({ name: 'Work', serverUrl: 'https://a.test' });
    await assert.rejects(profiles.add({ name: ' work ', serverUrl: 'https://b.test' }), /already exists/);
    await assert.rejects(profiles.add({ name: '  ', serverUrl: 'https://b.test' }), /needs a name/);
    await assert.rejects(profiles.add({ name: 'x', serverUrl: 'b.test' }), /not a URL/);
  });

  test('tells listeners about changes', async () => {
    const { profiles } = store();
    let changes = 0;
    profiles.onDidChange(() => changes++);
    const a = await profiles.add({ name: 'a', serverUrl: 'https://a.test' });
    await profiles.setApiKey(a.id, 'k');
    await profiles.deleteApiKey(a.id);
    assert.equal(changes, 3);
  });
});
