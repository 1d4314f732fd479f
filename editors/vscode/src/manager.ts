// The profile manager: one quick pick with the profiles and the active profile's actions, and the
// add / edit / remove / switch flows.

import { normalizeServerUrl, OidcConfig, UnreachableError } from './client';
import { Deps, messages, readConfig, signInWithPassword, signInWithSso, signOut, showAccount } from './auth';
import type { Profile } from './profiles';
import { labelServerText, quoteServerText } from './serverText';
import { isInsecureServerUrl } from './trust';
import type { PickItem } from './ui';

export type ManagerAction =
  | { kind: 'switch'; profile: Profile }
  | { kind: 'sso'; config: OidcConfig }
  | { kind: 'password'; config: OidcConfig }
  | { kind: 'signOut' }
  | { kind: 'account' }
  | { kind: 'retry' }
  | { kind: 'add' }
  | { kind: 'edit' }
  | { kind: 'remove' };

export interface ManagerItem extends PickItem {
  action?: ManagerAction;
}

export const labels = {
  password: '$(key) Sign in with password',
  signOut: '$(sign-out) Sign out',
  account: '$(account) Show account',
  add: '$(add) Add profile…',
  edit: '$(edit) Edit profile…',
  remove: '$(trash) Remove profile…',
  retry: '$(refresh) Retry',
  /** The server's `display_name`: a label renders $(icons), so it is cleaned first. */
  sso: (displayName: string) => `$(sign-in) ${labelServerText(displayName, 80)}`,
};

/** Texts of the profile forms. */
export const profileMessages = {
  insecure: (serverUrl: string) =>
    `${serverUrl} is not encrypted (http:// on a host that is not this computer): your password and ` +
    'API key would travel over the network in clear text, readable and changeable on the way. ' +
    'Use https:// unless you trust every network in between.',
  useHttp: 'Use HTTP Anyway',
  insecureRefused: (serverUrl: string) => `CoderFlow: ${serverUrl} was not saved (unencrypted http://).`,
  notAnswered: (name: string, serverUrl: string, detail: string) =>
    `Profile ${name} added, but ${serverUrl} did not answer (${quoteServerText(detail)}). Check the URL with "Edit profile".`,
};

/**
 * A non-loopback http:// server URL needs the user's explicit yes (a modal warning); true when
 * the URL may be used.
 */
async function confirmInsecure(deps: Deps, serverUrl: string): Promise<boolean> {
  if (!isInsecureServerUrl(serverUrl)) return true;
  const choice = await deps.ui.showModalWarning(profileMessages.insecure(serverUrl), profileMessages.useHttp);
  if (choice === profileMessages.useHttp) return true;
  void deps.ui.showInformationMessage(profileMessages.insecureRefused(serverUrl));
  return false;
}

/**
 * The manager's items. The sign-in options come from the server: "Sign in with SSO" (labelled with
 * its `display_name`) only when `sso_enabled`, "Sign in with password" only when `allow_local_auth`.
 */
export async function managerItems(deps: Deps): Promise<ManagerItem[]> {
  const items: ManagerItem[] = [];
  const profiles = deps.profiles.list();
  const active = deps.profiles.active();

  if (profiles.length > 0) items.push({ label: 'Profiles', separator: true });
  for (const profile of profiles) {
    const isActive = profile.id === active?.id;
    const signedIn = (await deps.profiles.getApiKey(profile.id)) !== undefined;
    items.push({
      label: `${isActive ? '$(check)' : '$(blank)'} ${profile.name}`,
      description: profile.serverUrl,
      detail: `${signedIn ? 'API key stored' : 'not signed in'}${isActive ? ' · active' : ' · select to switch'}`,
      action: isActive ? undefined : { kind: 'switch', profile },
    });
  }

  if (active) {
    items.push({ label: active.name, separator: true });
    const signedIn = (await deps.profiles.getApiKey(active.id)) !== undefined;
    let config: OidcConfig | undefined;
    try {
      config = await readConfig(deps, active);
    } catch (e) {
      const detail = e instanceof UnreachableError ? e.detail : e instanceof Error ? e.message : String(e);
      items.push({
        label: labels.retry,
        description: `cannot reach ${active.serverUrl}`,
        detail: labelServerText(detail),
        action: { kind: 'retry' },
      });
    }
    if (config?.sso_enabled) {
      items.push({
        label: labels.sso(config.display_name),
        description: 'opens the browser; works without a password',
        action: { kind: 'sso', config },
      });
    }
    if (config?.allow_local_auth) {
      items.push({ label: labels.password, action: { kind: 'password', config } });
    }
    if (signedIn) {
      items.push({ label: labels.account, action: { kind: 'account' } });
      items.push({ label: labels.signOut, description: 'revokes the API key on the server', action: { kind: 'signOut' } });
    }
  }

  items.push({ label: 'Manage', separator: true });
  items.push({ label: labels.add, action: { kind: 'add' } });
  if (active) {
    items.push({ label: labels.edit, action: { kind: 'edit' } });
    items.push({ label: labels.remove, action: { kind: 'remove' } });
  }
  return items;
}

/** Shows the manager and runs the chosen action. */
export async function openProfileManager(deps: Deps): Promise<void> {
  for (;;) {
    const items = await managerItems(deps);
    const picked = await deps.ui.showQuickPick(items, {
      title: 'CoderFlow profiles',
      placeHolder: deps.profiles.active() ? 'Switch profile, sign in or out, manage profiles' : 'Add a server profile',
    });
    const action = picked?.action;
    if (!action) return;
    if (action.kind === 'retry') continue;
    await runAction(deps, action);
    return;
  }
}

async function runAction(deps: Deps, action: ManagerAction): Promise<void> {
  const active = deps.profiles.active();
  switch (action.kind) {
    case 'switch':
      await deps.profiles.setActive(action.profile.id);
      return;
    case 'sso':
      await signInWithSso(deps, active, action.config);
      return;
    case 'password':
      await signInWithPassword(deps, active, action.config);
      return;
    case 'signOut':
      await signOut(deps, active);
      return;
    case 'account':
      await showAccount(deps, active);
      return;
    case 'add':
      await addProfile(deps);
      return;
    case 'edit':
      await editProfile(deps, active);
      return;
    case 'remove':
      await removeProfile(deps, active);
      return;
    case 'retry':
      return;
  }
}

function urlError(value: string): string | undefined {
  try {
    normalizeServerUrl(value);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

function nameError(deps: Deps, value: string, exceptId?: string): string | undefined {
  const name = value.trim();
  if (name === '') return 'A profile needs a name';
  const clash = deps.profiles.list().some((p) => p.id !== exceptId && p.name.toLowerCase() === name.toLowerCase());
  return clash ? `A profile named "${name}" already exists` : undefined;
}

/** Adds a profile (name, server URL), makes it active, then offers the server's sign-in options. */
export async function addProfile(deps: Deps): Promise<Profile | undefined> {
  const serverUrl = await deps.ui.showInputBox({
    title: 'Add CoderFlow profile (1/2)',
    prompt: 'Server URL',
    placeHolder: 'https://coder.example.com',
    validateInput: urlError,
  });
  if (serverUrl === undefined) return undefined;
  if (!(await confirmInsecure(deps, normalizeServerUrl(serverUrl)))) return undefined;
  const suggested = (() => {
    try {
      return new URL(normalizeServerUrl(serverUrl)).host;
    } catch {
      return '';
    }
  })();
  const name = await deps.ui.showInputBox({
    title: 'Add CoderFlow profile (2/2)',
    prompt: 'Profile name',
    value: nameError(deps, suggested) ? '' : suggested,
    validateInput: (v) => nameError(deps, v),
  });
  if (name === undefined) return undefined;
  let profile: Profile;
  try {
    profile = await deps.profiles.add({ name, serverUrl });
    await deps.profiles.setActive(profile.id);
  } catch (e) {
    await deps.ui.showErrorMessage(`CoderFlow: ${(e as Error).message}`);
    return undefined;
  }

  let config: OidcConfig;
  try {
    config = await readConfig(deps, profile);
  } catch (e) {
    const detail = e instanceof UnreachableError ? e.detail : (e as Error).message;
    void deps.ui.showWarningMessage(profileMessages.notAnswered(profile.name, profile.serverUrl, detail));
    return profile;
  }
  // Buttons render no links, but the server's display name is cleaned all the same.
  const ssoButton = labelServerText(config.display_name, 80);
  const options = [
    ...(config.sso_enabled ? [ssoButton] : []),
    ...(config.allow_local_auth ? [messages.password] : []),
  ];
  const choice = await deps.ui.showInformationMessage(`Profile ${profile.name} added. Sign in now?`, ...options);
  if (choice === undefined) return profile;
  if (config.sso_enabled && choice === ssoButton) await signInWithSso(deps, profile, config);
  else if (choice === messages.password) await signInWithPassword(deps, profile, config);
  return profile;
}

/** Lets the user pick a profile; with only one there is nothing to pick. */
export async function pickProfile(deps: Deps, title: string): Promise<Profile | undefined> {
  const profiles = deps.profiles.list();
  if (profiles.length === 0) {
    await deps.ui.showErrorMessage(messages.noProfile);
    return undefined;
  }
  if (profiles.length === 1) return profiles[0];
  const activeId = deps.profiles.active()?.id;
  const picked = await deps.ui.showQuickPick(
    profiles.map((p) => ({
      label: `${p.id === activeId ? '$(check)' : '$(blank)'} ${p.name}`,
      description: p.serverUrl,
      profile: p,
    })),
    { title },
  );
  return picked?.profile;
}

/** Switches the active profile. */
export async function switchProfile(deps: Deps): Promise<void> {
  const profiles = deps.profiles.list();
  if (profiles.length === 0) {
    await deps.ui.showErrorMessage(messages.noProfile);
    return;
  }
  const activeId = deps.profiles.active()?.id;
  const picked = await deps.ui.showQuickPick(
    profiles.map((p) => ({
      label: `${p.id === activeId ? '$(check)' : '$(blank)'} ${p.name}`,
      description: p.serverUrl,
      profile: p,
    })),
    { title: 'Switch CoderFlow profile' },
  );
  if (picked) await deps.profiles.setActive(picked.profile.id);
}

/**
 * Renames a profile or changes its server. A new server URL signs the profile out of the old one
 * first (the key is revoked there), since a key belongs to one server.
 */
export async function editProfile(deps: Deps, profileArg?: Profile): Promise<Profile | undefined> {
  const profile = profileArg ?? (await pickProfile(deps, 'Edit CoderFlow profile'));
  if (!profile) return undefined;
  const name = await deps.ui.showInputBox({
    title: `Edit profile ${profile.name} (1/2)`,
    prompt: 'Profile name',
    value: profile.name,
    validateInput: (v) => nameError(deps, v, profile.id),
  });
  if (name === undefined) return undefined;
  const serverUrl = await deps.ui.showInputBox({
    title: `Edit profile ${profile.name} (2/2)`,
    prompt: 'Server URL',
    value: profile.serverUrl,
    validateInput: urlError,
  });
  if (serverUrl === undefined) return undefined;

  const urlChanged = normalizeServerUrl(serverUrl) !== profile.serverUrl;
  if (urlChanged && !(await confirmInsecure(deps, normalizeServerUrl(serverUrl)))) return undefined;
  if (urlChanged && (await deps.profiles.getApiKey(profile.id))) {
    const go = 'Sign Out and Change';
    const choice = await deps.ui.showModalWarning(
      `Changing the server of ${profile.name} signs it out of ${profile.serverUrl} (its API key is revoked there).`,
      go,
    );
    if (choice !== go) return undefined;
    const out = await signOut(deps, profile);
    if (!out.ok) return undefined;
  }
  try {
    const { profile: updated } = await deps.profiles.update(profile.id, { name, serverUrl });
    return updated;
  } catch (e) {
    await deps.ui.showErrorMessage(`CoderFlow: ${(e as Error).message}`);
    return undefined;
  }
}

/** Removes a profile after confirmation; a stored key is revoked on the server first. */
export async function removeProfile(deps: Deps, profileArg?: Profile): Promise<boolean> {
  const profile = profileArg ?? (await pickProfile(deps, 'Remove CoderFlow profile'));
  if (!profile) return false;
  const hasKey = (await deps.profiles.getApiKey(profile.id)) !== undefined;
  const remove = 'Remove';
  const choice = await deps.ui.showModalWarning(
    `Remove the CoderFlow profile ${profile.name} (${profile.serverUrl})?` +
      (hasKey ? ' Its API key is revoked on the server.' : ''),
    remove,
  );
  if (choice !== remove) return false;
  if (hasKey) {
    const out = await signOut(deps, profile);
    if (!out.ok) return false;
  }
  await deps.profiles.remove(profile.id);
  return true;
}
