// The only module that imports `vscode`: it adapts the editor's API to the interfaces in `ui.ts`
// and registers the commands and the status bar item.

import * as os from 'node:os';
import * as vscode from 'vscode';
import { Deps, notifyKeyExpired, signInWithPassword, signInWithSso, signOut, showAccount } from './auth';
import { realClock } from './deviceFlow';
import { addProfile, editProfile, openProfileManager, removeProfile, switchProfile } from './manager';
import { ProfileStore } from './profiles';
import { escapeServerText } from './serverText';
import { StatusController } from './status';
import type { PickItem, Ui } from './ui';

/** The commands this extension contributes (package.json lists the same). */
export const COMMANDS = {
  manageProfiles: 'coderflow.manageProfiles',
  addProfile: 'coderflow.addProfile',
  editProfile: 'coderflow.editProfile',
  removeProfile: 'coderflow.removeProfile',
  switchProfile: 'coderflow.switchProfile',
  signInWithSso: 'coderflow.signInWithSso',
  signInWithPassword: 'coderflow.signInWithPassword',
  signOut: 'coderflow.signOut',
  showAccount: 'coderflow.showAccount',
} as const;

export function vscodeUi(): Ui {
  return {
    showInformationMessage: (message, ...items) => Promise.resolve(vscode.window.showInformationMessage(message, ...items)),
    showWarningMessage: (message, ...items) => Promise.resolve(vscode.window.showWarningMessage(message, ...items)),
    showModalWarning: (message, ...items) =>
      Promise.resolve(vscode.window.showWarningMessage(message, { modal: true }, ...items)),
    showErrorMessage: (message, ...items) => Promise.resolve(vscode.window.showErrorMessage(message, ...items)),
    showQuickPick: async <T extends PickItem>(items: T[], options?: { title?: string; placeHolder?: string }) => {
      const mapped = items.map((item, index) => ({
        label: item.label,
        description: item.description,
        detail: item.detail,
        kind: item.separator ? vscode.QuickPickItemKind.Separator : vscode.QuickPickItemKind.Default,
        index,
      }));
      const picked = await vscode.window.showQuickPick(mapped, {
        title: options?.title,
        placeHolder: options?.placeHolder,
        matchOnDescription: true,
      });
      return picked === undefined ? undefined : items[picked.index];
    },
    showInputBox: (options) =>
      Promise.resolve(
        vscode.window.showInputBox({
          title: options.title,
          prompt: options.prompt,
          placeHolder: options.placeHolder,
          value: options.value,
          password: options.password,
          ignoreFocusOut: true,
          validateInput: options.validateInput ? (v) => options.validateInput?.(v) : undefined,
        }),
      ),
    withProgress: (options, task) =>
      Promise.resolve(
        vscode.window.withProgress(
          { location: vscode.ProgressLocation.Notification, title: options.title, cancellable: options.cancellable },
          (progress, token) => task(progress, token),
        ),
      ),
    openExternal: (url) => Promise.resolve(vscode.env.openExternal(vscode.Uri.parse(url))),
    copyToClipboard: (text) => Promise.resolve(vscode.env.clipboard.writeText(text)),
  };
}

export interface ExtensionApi {
  deps: Deps;
  status: StatusController;
}

export function activate(context: vscode.ExtensionContext): ExtensionApi {
  const profiles = new ProfileStore(context.globalState, context.secrets);
  const item = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 100);
  context.subscriptions.push(item);

  const deps: Deps = {
    ui: vscodeUi(),
    profiles,
    clock: realClock,
    clientName: 'VS Code',
    keyName: () => `VS Code (${os.hostname()}) ${new Date().toISOString()}`,
    onConfig: (profile, config) => {
      if (profile.id !== profiles.active()?.id) return;
      // Hide the palette entries the server does not offer (the commands re-check anyway).
      void vscode.commands.executeCommand('setContext', 'coderflow.ssoDisabled', config ? !config.sso_enabled : false);
      void vscode.commands.executeCommand(
        'setContext',
        'coderflow.localAuthDisabled',
        config ? !config.allow_local_auth : false,
      );
    },
  };
  // An expired key (401 key_expired): a notification with a "Sign in" button, once per profile.
  const status = new StatusController(item, profiles, {
    onKeyExpired: (profile) => void notifyKeyExpired(deps, profile).catch(() => undefined),
  });
  const refresh = () => void status.refresh();

  const register = (id: string, run: () => Promise<unknown>) =>
    context.subscriptions.push(
      vscode.commands.registerCommand(id, async () => {
        try {
          await run();
        } catch (e) {
          // Its origin is unknown: it may carry a server's text, so it is escaped like one.
          void vscode.window.showErrorMessage(`CoderFlow: ${escapeServerText(e instanceof Error ? e.message : String(e))}`);
        }
      }),
    );
  register(COMMANDS.manageProfiles, () => openProfileManager(deps));
  register(COMMANDS.addProfile, () => addProfile(deps));
  register(COMMANDS.editProfile, () => editProfile(deps));
  register(COMMANDS.removeProfile, () => removeProfile(deps));
  register(COMMANDS.switchProfile, () => switchProfile(deps));
  register(COMMANDS.signInWithSso, () => signInWithSso(deps));
  register(COMMANDS.signInWithPassword, () => signInWithPassword(deps));
  register(COMMANDS.signOut, () => signOut(deps));
  register(COMMANDS.showAccount, () => showAccount(deps));

  context.subscriptions.push(profiles.onDidChange(refresh));
  // Another window may sign in or out: secrets are shared between windows.
  context.subscriptions.push(context.secrets.onDidChange(refresh));
  context.subscriptions.push(vscode.window.onDidChangeWindowState((s) => s.focused && refresh()));
  refresh();
  return { deps, status };
}

export function deactivate(): void {}
