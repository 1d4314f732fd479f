import '../helpers/useVscodeStub';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import * as path from 'node:path';
import { describe, test, beforeEach } from 'node:test';
import { activate, COMMANDS, vscodeUi } from '../../src/extension';
import { messages } from '../../src/auth';
import { ProfileStore, secretKey } from '../../src/profiles';
import { FakeServer, MemoryMemento, MemorySecrets } from '../helpers/fakes';
import { COMMAND_LINK, notificationProblems } from '../helpers/hostile';
import { recorded } from '../helpers/vscodeStub';

const root = path.resolve(__dirname, '..', '..', '..');
const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

function context() {
  const secrets = Object.assign(new MemorySecrets(), { onDidChange: () => ({ dispose() {} }) });
  return { subscriptions: [] as Array<{ dispose(): void }>, globalState: new MemoryMemento(), secrets };
}

describe('extension activation (vscode stubbed)', () => {
  beforeEach(() => recorded.reset());

  test('registers exactly the commands package.json contributes', () => {
    const ctx = context();
    activate(ctx as any);
    const contributed = manifest.contributes.commands.map((c: { command: string }) => c.command).sort();
    assert.deepEqual([...recorded.commands.keys()].sort(), contributed);
    assert.deepEqual(Object.values(COMMANDS).sort(), contributed);
    for (const entry of manifest.contributes.menus.commandPalette) assert.ok(contributed.includes(entry.command));
    for (const d of ctx.subscriptions) d.dispose();
  });

  test('shows a status bar item that opens the profile manager', async () => {
    const ctx = context();
    const api = activate(ctx as any);
    await api.status.refresh();
    assert.equal(recorded.statusItems.length, 1);
    const item = recorded.statusItems[0];
    assert.equal(item.shown, true);
    assert.equal(item.command, 'coderflow.manageProfiles');
    assert.match(item.text, /CoderFlow/);
    for (const d of ctx.subscriptions) d.dispose();
  });

  test('a command runs its flow through the vscode API', async () => {
    const ctx = context();
    activate(ctx as any);
    await recorded.commands.get('coderflow.signInWithSso')?.();
    assert.deepEqual(recorded.messages, [{ level: 'error', text: messages.noProfile, items: [] }]);
    for (const d of ctx.subscriptions) d.dispose();
  });

  test('an expired key: the status bar says so, and the notification\'s "Sign in" signs in again', async () => {
    const server = new FakeServer();
    server.config.allow_local_auth = false;
    server.deviceCode.interval = 0.01;
    const ctx = context();
    const profiles = new ProfileStore(ctx.globalState, ctx.secrets);
    const profile = await profiles.add({ name: 'work', serverUrl: 'https://coder.test' });
    const expiredKey = server.issueKey('old');
    server.expired.add(expiredKey);
    await profiles.setApiKey(profile.id, expiredKey);
    const fresh = server.approveNextPoll();
    // The user clicks "Sign in" when the test says so.
    let click: (answer: string) => void = () => assert.fail('no notification');
    recorded.messageAnswer = (level, _text, items) =>
      level === 'warning' && items.includes(messages.signIn) ? new Promise((resolve) => (click = resolve)) : undefined;

    const realFetch = globalThis.fetch;
    globalThis.fetch = ((url: string, init: RequestInit) => server.fetch(url, init)) as typeof fetch;
    try {
      const api = activate(ctx as any);
      await waitFor(() => recorded.messages.length > 0);
      assert.equal(api.status.state.kind, 'key_expired');
      assert.equal(recorded.statusItems[0].text, '$(warning) CoderFlow: key expired, sign in again');
      assert.deepEqual(recorded.messages, [
        { level: 'warning', text: messages.keyExpired('work', 'https://coder.test'), items: [messages.signIn] },
      ]);
      assert.deepEqual(recorded.opened, []);

      click(messages.signIn);
      await waitFor(() => ctx.secrets.data.get(secretKey(profile.id)) === fresh);
      assert.deepEqual(recorded.opened, ['https://coder.test/device?user_code=BCDF-GHJK']);
      await api.status.refresh();
      assert.equal(recorded.statusItems[0].text, '$(account) johndoe');
      for (const d of ctx.subscriptions) d.dispose();
    } finally {
      globalThis.fetch = realFetch;
    }
  });

  test('an unexpected error is shown defused: no link can form, the text is otherwise as thrown', async () => {
    const ctx = context();
    const api = activate(ctx as any);
    await api.status.refresh();
    // Storage that fails with a text of unknown origin: the command handler's catch shows it.
    ctx.globalState.get = () => {
      throw new Error(COMMAND_LINK);
    };
    await recorded.commands.get('coderflow.switchProfile')?.();
    const errors = recorded.messages.filter((m) => m.level === 'error');
    assert.equal(errors.length, 1);
    assert.deepEqual(notificationProblems(errors[0].text), []);
    assert.equal(errors[0].text, `CoderFlow: ${COMMAND_LINK.replace('](', '] (')}`);
    for (const d of ctx.subscriptions) d.dispose();
  });

  test('the quick pick adapter keeps separators and returns the original item', async () => {
    const items = [{ label: 'Profiles', separator: true }, { label: 'one', action: 1 }];
    recorded.pickAnswer = (mapped) => mapped[1];
    const picked = await vscodeUi().showQuickPick(items);
    assert.equal(picked, items[1]);
    assert.equal(recorded.quickPicks[0].items[0].kind, -1);
  });

  test('the manifest points at the built entry point and pins engines to the @types/vscode version', () => {
    assert.equal(manifest.main, './out/src/extension.js');
    assert.ok(existsSync(path.join(root, manifest.main)));
    assert.equal(manifest.engines.vscode, `^${manifest.devDependencies['@types/vscode']}`);
    assert.ok(manifest.activationEvents.includes('onStartupFinished'));
  });
});

async function waitFor(condition: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out; messages: ${JSON.stringify(recorded.messages)}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
