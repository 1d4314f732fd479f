import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MANAGE_COMMAND, StatusController } from '../../src/status';
import { FakeServer, FakeStatusItem, testEnv } from '../helpers/fakes';

async function setup() {
  const server = new FakeServer();
  const env = testEnv(server.fetch);
  const item = new FakeStatusItem();
  const status = new StatusController(item, env.profiles, { fetch: server.fetch });
  return { server, item, status, ...env };
}

describe('status bar item', () => {
  test('no profile: invites to add one; shown, opens the manager', async () => {
    const { item, status } = await setup();
    assert.equal((await status.refresh()).kind, 'no_profile');
    assert.equal(item.shown, true);
    assert.equal(item.command, MANAGE_COMMAND);
    assert.match(item.text, /CoderFlow/);
  });

  test('signed in: shows the user from /api/me', async () => {
    const { server, item, status, profiles } = await setup();
    const p = await profiles.add({ name: 'work', serverUrl: 'http://coder.test' });
    assert.equal((await status.refresh()).kind, 'signed_out');
    assert.match(item.text, /sign in/);
    await profiles.setApiKey(p.id, server.issueKey());
    assert.equal((await status.refresh()).kind, 'signed_in');
    assert.equal(item.text, '$(account) johndoe');
    assert.match(String(item.tooltip), /Signed in as johndoe \(John Doe\) <john.doe@company.com>/);
    assert.match(String(item.tooltip), /developer \(environment:\*\)/);
  });

  test('a revoked key and an unreachable server show as such', async () => {
    const { server, item, status, profiles } = await setup();
    const p = await profiles.add({ name: 'work', serverUrl: 'http://coder.test' });
    await profiles.setApiKey(p.id, 'cf_unknown');
    assert.equal((await status.refresh()).kind, 'key_rejected');
    assert.match(item.text, /sign in again/);
    server.down = true;
    assert.equal((await status.refresh()).kind, 'unreachable');
    assert.match(String(item.tooltip), /cannot reach http:\/\/coder.test/);
  });
});
