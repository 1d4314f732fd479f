import '../helpers/useVscodeStub';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import * as path from 'node:path';
import { describe, test, beforeEach } from 'node:test';
import { activate, COMMANDS, vscodeUi } from '../../src/extension';
import { messages } from '../../src/auth';
import { MemoryMemento, MemorySecrets } from '../helpers/fakes';
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
