// Sign in (SSO device login, password), sign out and "who am I", for one profile.
// Every dependency comes in through `Deps`, so these flows run in tests without an editor.

import {
  ApiError,
  CancelledError,
  CoderFlowClient,
  FetchLike,
  OidcConfig,
  ProtocolError,
  UnreachableError,
  User,
} from './client';
import { Clock, pollForToken, PollOutcome } from './deviceFlow';
import type { Profile, ProfileStore } from './profiles';
import type { Ui } from './ui';

export interface Deps {
  ui: Ui;
  profiles: ProfileStore;
  clock: Clock;
  /** Defaults to the global fetch. */
  fetch?: FetchLike;
  /** Milliseconds one request may take. */
  timeoutMs?: number;
  /** Sent as `client_name` with a device-code request; shown on the server's approval page. */
  clientName: string;
  /** The name of a key made by password sign-in. */
  keyName(): string;
  /** Told the server's public SSO configuration whenever a flow reads it (undefined: unreachable). */
  onConfig?(profile: Profile, config: OidcConfig | undefined): void;
}

export type FailureReason =
  | 'no_profile'
  | 'sso_disabled'
  | 'local_auth_disabled'
  | 'denied'
  | 'expired'
  | 'invalid_grant'
  | 'invalid_credentials'
  | 'rate_limited'
  | 'cancelled'
  | 'unreachable'
  | 'error';

export type SignInResult = { ok: true; user: User } | { ok: false; reason: FailureReason; message: string };

/** The texts users see, in one place (the tests check them). */
export const messages = {
  noProfile: 'Add a CoderFlow server profile first (CoderFlow: Add Profile).',
  signedIn: (server: string, user: User) => `Signed in to ${server} as ${user.username}.`,
  ssoDisabled: (server: string) => `SSO is not enabled on ${server}. Ask an administrator, or sign in with a password.`,
  localAuthDisabled: (server: string, ssoLabel: string) =>
    `Password sign-in is disabled on ${server}: use "${ssoLabel}".`,
  denied: (server: string) => `Sign-in to ${server} was denied in the browser. No API key was stored.`,
  expired: (server: string) =>
    `The sign-in code for ${server} expired before it was approved. Run "Sign in with SSO" again and approve the code within the time shown.`,
  invalidGrant: (server: string, detail: string) =>
    `${server} refused the sign-in code (${detail}). Run "Sign in with SSO" again.`,
  unreachable: (server: string, detail: string) =>
    `Cannot reach the CoderFlow server at ${server} (${detail}). Check the profile's server URL and your network.`,
  cancelled: 'CoderFlow sign-in cancelled.',
  noDeviceLogin: (server: string) =>
    `${server} does not offer device sign-in (POST /api/auth/device/code: not found). Update coder-server, or sign in with a password.`,
  invalidCredentials: 'Wrong username or password.',
  rateLimited: (retryAfter?: number) =>
    `Too many sign-in attempts: wait ${retryAfter ? `${retryAfter} s` : 'a moment'} and try again.`,
  failed: (server: string, detail: string) => `CoderFlow: signing in to ${server} failed: ${detail}`,
  enterCode: (userCode: string, secondsLeft: number) =>
    `Confirm code ${userCode} in your browser (${clockText(secondsLeft)} left)`,
  openManually: (uri: string, userCode: string) => `Open ${uri} in a browser and enter the code ${userCode}.`,
  notSignedIn: (server: string) => `Not signed in to ${server}.`,
  signedOut: (server: string) => `Signed out of ${server}: the API key was revoked on the server and removed from VS Code.`,
  keyAlreadyInvalid: (server: string) =>
    `Signed out of ${server}: the server no longer accepted the key, so it was only removed from VS Code.`,
  revokeFailed: (server: string, detail: string) =>
    `Could not revoke the API key on ${server} (${detail}). Remove it from VS Code anyway? It stays valid on the server until it is revoked there.`,
  keyNotListed: (server: string) => `${server} does not list the stored API key among your keys`,
  removeLocally: 'Remove from VS Code',
  copyCode: 'Copy Code',
};

export function clockText(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

export function clientFor(deps: Pick<Deps, 'fetch' | 'timeoutMs'>, profile: Profile): CoderFlowClient {
  return new CoderFlowClient(profile.serverUrl, { fetch: deps.fetch, timeoutMs: deps.timeoutMs });
}

/** Reads the server's public SSO configuration, telling `deps.onConfig`. Throws the client's errors. */
export async function readConfig(deps: Deps, profile: Profile, signal?: AbortSignal): Promise<OidcConfig> {
  try {
    const config = await clientFor(deps, profile).oidcConfig(signal);
    deps.onConfig?.(profile, config);
    return config;
  } catch (e) {
    deps.onConfig?.(profile, undefined);
    throw e;
  }
}

function resolveProfile(deps: Deps, profile?: Profile): Profile | undefined {
  return profile ?? deps.profiles.active();
}

/** Turns a thrown client error into a failure, shown to the user. */
async function fail(deps: Deps, server: string, e: unknown): Promise<SignInResult> {
  let result: SignInResult;
  if (e instanceof CancelledError) {
    result = { ok: false, reason: 'cancelled', message: messages.cancelled };
    await deps.ui.showInformationMessage(result.message);
    return result;
  }
  if (e instanceof UnreachableError) {
    result = { ok: false, reason: 'unreachable', message: messages.unreachable(server, e.detail) };
  } else if (e instanceof ApiError && e.status === 429) {
    result = { ok: false, reason: 'rate_limited', message: messages.rateLimited(e.retryAfter) };
  } else if (e instanceof ApiError || e instanceof ProtocolError) {
    result = { ok: false, reason: 'error', message: messages.failed(server, e.message) };
  } else {
    result = { ok: false, reason: 'error', message: messages.failed(server, String(e)) };
  }
  await deps.ui.showErrorMessage(result.message);
  return result;
}

/** Stores a new key for the profile; a key it replaces is revoked on the server, best effort. */
async function storeKey(deps: Deps, profile: Profile, apiKey: string): Promise<void> {
  const previous = await deps.profiles.getApiKey(profile.id);
  await deps.profiles.setApiKey(profile.id, apiKey);
  if (previous && previous !== apiKey) {
    await revoke(clientFor(deps, profile), previous).catch(() => undefined);
  }
}

/**
 * "Sign in with SSO": device code, browser, polling (cancellable progress), key stored in
 * SecretStorage. `config` saves a request when the caller has just read it.
 */
export async function signInWithSso(deps: Deps, profileArg?: Profile, config?: OidcConfig): Promise<SignInResult> {
  const profile = resolveProfile(deps, profileArg);
  if (!profile) {
    await deps.ui.showErrorMessage(messages.noProfile);
    return { ok: false, reason: 'no_profile', message: messages.noProfile };
  }
  const server = profile.serverUrl;
  const client = clientFor(deps, profile);
  try {
    config = config ?? (await readConfig(deps, profile));
  } catch (e) {
    return fail(deps, server, e);
  }
  if (!config.sso_enabled) {
    const message = messages.ssoDisabled(server);
    await deps.ui.showErrorMessage(message);
    return { ok: false, reason: 'sso_disabled', message };
  }

  let outcome: PollOutcome;
  try {
    outcome = await deps.ui.withProgress(
      { title: `CoderFlow: ${config.display_name}`, cancellable: true },
      async (progress, token) => {
        const controller = new AbortController();
        const subscription = token.onCancellationRequested(() => controller.abort());
        if (token.isCancellationRequested) controller.abort();
        try {
          progress.report({ message: `asking ${server} for a sign-in code…` });
          const code = await client.requestDeviceCode(deps.clientName, controller.signal);
          // The code is on screen before the browser opens, so the user can compare the two.
          progress.report({ message: messages.enterCode(code.user_code, code.expires_in) });
          void deps.ui
            .openExternal(code.verification_uri_complete)
            .catch(() => false)
            .then(async (opened) => {
              if (opened || controller.signal.aborted) return;
              const choice = await deps.ui.showInformationMessage(
                messages.openManually(code.verification_uri, code.user_code),
                messages.copyCode,
              );
              if (choice === messages.copyCode) await deps.ui.copyToClipboard(code.user_code);
            })
            .catch(() => undefined);
          return await pollForToken(client, code, deps.clock, controller.signal, (tick) =>
            progress.report({ message: messages.enterCode(code.user_code, tick.secondsLeft) }),
          );
        } finally {
          subscription.dispose();
        }
      },
    );
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      return failWith(deps, 'error', messages.noDeviceLogin(server));
    }
    return fail(deps, server, e);
  }

  switch (outcome.kind) {
    case 'approved': {
      await storeKey(deps, profile, outcome.signedIn.api_key);
      const user = outcome.signedIn.user;
      void deps.ui.showInformationMessage(messages.signedIn(server, user));
      return { ok: true, user };
    }
    case 'cancelled':
      return fail(deps, server, new CancelledError());
    case 'denied':
      return failWith(deps, 'denied', messages.denied(server));
    case 'expired':
      return failWith(deps, 'expired', messages.expired(server));
    case 'invalid_grant':
      return failWith(deps, 'invalid_grant', messages.invalidGrant(server, outcome.message));
    case 'unreachable':
      return failWith(deps, 'unreachable', messages.unreachable(server, outcome.message));
    case 'error':
      return failWith(deps, 'error', messages.failed(server, outcome.message));
  }
}

async function failWith(deps: Deps, reason: FailureReason, message: string): Promise<SignInResult> {
  await deps.ui.showErrorMessage(message);
  return { ok: false, reason, message };
}

/** "Sign in with password": only while the server allows local login. */
export async function signInWithPassword(deps: Deps, profileArg?: Profile, config?: OidcConfig): Promise<SignInResult> {
  const profile = resolveProfile(deps, profileArg);
  if (!profile) return failWith(deps, 'no_profile', messages.noProfile);
  const server = profile.serverUrl;
  try {
    config = config ?? (await readConfig(deps, profile));
  } catch (e) {
    return fail(deps, server, e);
  }
  if (!config.allow_local_auth) {
    return failWith(deps, 'local_auth_disabled', messages.localAuthDisabled(server, config.display_name));
  }
  const username = await deps.ui.showInputBox({
    title: `Sign in to ${server}`,
    prompt: 'Username',
    validateInput: (v) => (v.trim() === '' ? 'Enter your username' : undefined),
  });
  if (username === undefined) return { ok: false, reason: 'cancelled', message: messages.cancelled };
  const password = await deps.ui.showInputBox({
    title: `Sign in to ${server}`,
    prompt: `Password of ${username.trim()}`,
    password: true,
  });
  if (password === undefined) return { ok: false, reason: 'cancelled', message: messages.cancelled };

  try {
    const signedIn = await clientFor(deps, profile).login(username.trim(), password, deps.keyName());
    await storeKey(deps, profile, signedIn.api_key);
    void deps.ui.showInformationMessage(messages.signedIn(server, signedIn.user));
    return { ok: true, user: signedIn.user };
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return failWith(deps, 'invalid_credentials', messages.invalidCredentials);
    if (e instanceof ApiError && e.code === 'local_auth_disabled') {
      deps.onConfig?.(profile, { ...config, allow_local_auth: false });
      return failWith(deps, 'local_auth_disabled', e.message);
    }
    return fail(deps, server, e);
  }
}

/** Finds the stored key among the user's keys (by prefix) and deletes it on the server. */
async function revoke(client: CoderFlowClient, apiKey: string): Promise<void> {
  const keys = await client.listKeys(apiKey);
  const match = keys
    .filter((k) => k.prefix !== '' && apiKey.startsWith(k.prefix))
    .sort((a, b) => b.prefix.length - a.prefix.length)[0];
  if (!match) throw new ProtocolError(messages.keyNotListed(client.baseUrl));
  try {
    await client.deleteKey(apiKey, match.id);
  } catch (e) {
    // Already gone (a concurrent sign-out): revoked all the same.
    if (!(e instanceof ApiError && e.status === 404)) throw e;
  }
}

export type SignOutResult =
  | { ok: true; revoked: boolean }
  | { ok: false; reason: 'no_profile' | 'not_signed_in' | 'kept'; message: string };

/** Revokes the profile's key on the server, then deletes it from SecretStorage. */
export async function signOut(deps: Deps, profileArg?: Profile): Promise<SignOutResult> {
  const profile = resolveProfile(deps, profileArg);
  if (!profile) {
    await deps.ui.showErrorMessage(messages.noProfile);
    return { ok: false, reason: 'no_profile', message: messages.noProfile };
  }
  const server = profile.serverUrl;
  const apiKey = await deps.profiles.getApiKey(profile.id);
  if (!apiKey) {
    const message = messages.notSignedIn(server);
    void deps.ui.showInformationMessage(message);
    return { ok: false, reason: 'not_signed_in', message };
  }
  try {
    await revoke(clientFor(deps, profile), apiKey);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      await deps.profiles.deleteApiKey(profile.id);
      void deps.ui.showInformationMessage(messages.keyAlreadyInvalid(server));
      return { ok: true, revoked: false };
    }
    const detail = e instanceof UnreachableError ? e.detail : e instanceof Error ? e.message : String(e);
    const choice = await deps.ui.showModalWarning(messages.revokeFailed(server, detail), messages.removeLocally);
    if (choice !== messages.removeLocally) {
      return { ok: false, reason: 'kept', message: messages.revokeFailed(server, detail) };
    }
    await deps.profiles.deleteApiKey(profile.id);
    return { ok: true, revoked: false };
  }
  await deps.profiles.deleteApiKey(profile.id);
  void deps.ui.showInformationMessage(messages.signedOut(server));
  return { ok: true, revoked: true };
}

/** A one-line description of a user's access, e.g. "server_admin (server)". */
export function describeAccess(user: User): string {
  if (user.access.length === 0) return 'no access bindings';
  return user.access.map((b) => (b.scope ? `${b.role} (${b.scope})` : b.role)).join(', ');
}

/** "Show account": who the active profile's key belongs to. */
export async function showAccount(deps: Deps, profileArg?: Profile): Promise<User | undefined> {
  const profile = resolveProfile(deps, profileArg);
  if (!profile) {
    await deps.ui.showErrorMessage(messages.noProfile);
    return undefined;
  }
  const apiKey = await deps.profiles.getApiKey(profile.id);
  if (!apiKey) {
    void deps.ui.showInformationMessage(messages.notSignedIn(profile.serverUrl));
    return undefined;
  }
  try {
    const user = await clientFor(deps, profile).me(apiKey);
    const name = user.name ? `${user.name} ` : '';
    const email = user.email ? `<${user.email}> ` : '';
    void deps.ui.showInformationMessage(
      `${profile.name} (${profile.serverUrl}): signed in as ${user.username} — ${name}${email}· ${describeAccess(user)}`,
    );
    return user;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      await deps.ui.showErrorMessage(
        `The API key of ${profile.name} is no longer accepted by ${profile.serverUrl} (revoked?). Sign in again.`,
      );
      return undefined;
    }
    await fail(deps, profile.serverUrl, e);
    return undefined;
  }
}
