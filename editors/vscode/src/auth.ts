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
import { escapeServerAddress, escapeServerText, labelServerText, quoteServerText } from './serverText';
import { checkVerificationUrl, isPlausibleUserCode, originOf } from './trust';
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
  | 'untrusted'
  | 'profile_changed'
  | 'cancelled'
  | 'unreachable'
  | 'error';

export type SignInResult = { ok: true; user: User } | { ok: false; reason: FailureReason; message: string };

/**
 * The texts users see, in one place (the tests check them). `server` is the profile's URL (typed
 * by the user); every other value came from the server and goes through `quoteServerText` here.
 */
export const messages = {
  noProfile: 'Add a CoderFlow server profile first (CoderFlow: Add Profile).',
  signedIn: (server: string, user: User) => `Signed in to ${server} as ${quoteServerText(user.username)}.`,
  ssoDisabled: (server: string) => `SSO is not enabled on ${server}. Ask an administrator, or sign in with a password.`,
  localAuthDisabled: (server: string, ssoLabel: string) =>
    `Password sign-in is disabled on ${server}: use ${quoteServerText(ssoLabel)}.`,
  denied: (server: string) => `Sign-in to ${server} was denied in the browser. No API key was stored.`,
  expired: (server: string) =>
    `The sign-in code for ${server} expired before it was approved. Run "Sign in with SSO" again and approve the code within the time shown.`,
  invalidGrant: (server: string, detail: string) =>
    `${server} refused the sign-in code (${quoteServerText(detail)}). Run "Sign in with SSO" again.`,
  unreachable: (server: string, detail: string) =>
    `Cannot reach the CoderFlow server at ${server} (${quoteServerText(detail)}). Check the profile's server URL and your network.`,
  cancelled: 'CoderFlow sign-in cancelled.',
  noDeviceLogin: (server: string) =>
    `${server} does not offer device sign-in (POST /api/auth/device/code: not found). Update coder-server, or sign in with a password.`,
  invalidCredentials: 'Wrong username or password.',
  rateLimited: (retryAfter?: number) =>
    `Too many sign-in attempts: wait ${retryAfter ? `${retryAfter} s` : 'a moment'} and try again.`,
  failed: (server: string, detail: string) => `CoderFlow: signing in to ${server} failed: ${quoteServerText(detail)}`,
  /** `userCode` passed `isPlausibleUserCode` (letters, digits, dashes): shown as is. */
  enterCode: (origin: string, userCode: string, secondsLeft: number) =>
    `Sign in to ${origin}: check that the page shows the code ${userCode} (${clockText(secondsLeft)} left)`,
  /** `url` passed `checkVerificationUrl`: its origin is the profile's; the rest is escaped. */
  openManually: (url: URL, userCode: string) =>
    `Open ${url.origin}${escapeServerAddress(url.pathname + url.search + url.hash)} in a browser and enter the code ${userCode}.`,
  untrustedVerificationUrl: (server: string, problem: string, address: string) =>
    `${server} sent a verification address that is ${problem}: ${quoteServerText(address)}. ` +
    'Sign-in stopped; nothing was opened or stored.',
  untrustedUserCode: (server: string, userCode: string) =>
    `${server} sent a sign-in code that is not letters, digits and dashes: ${quoteServerText(userCode)}. ` +
    'Sign-in stopped; nothing was opened or stored.',
  profileChanged: (name: string, server: string, revoked: boolean) =>
    `The profile ${name} no longer points at ${server} (it was edited or removed during the sign-in), so the new ` +
    `API key was not stored${revoked ? ' and was revoked on that server' : ''}. Sign in again if you still want to.`,
  notSignedIn: (server: string) => `Not signed in to ${server}.`,
  signedOut: (server: string) => `Signed out of ${server}: the API key was revoked on the server and removed from VS Code.`,
  keyAlreadyInvalid: (server: string) =>
    `Signed out of ${server}: the server no longer accepted the key, so it was only removed from VS Code.`,
  keyExpiredSignedOut: (server: string) =>
    `Signed out of ${server}: the API key had expired, so it was only removed from VS Code.`,
  revokeFailed: (server: string, detail: string) =>
    `Could not revoke the API key on ${server} (${quoteServerText(detail)}). Remove it from VS Code anyway? It stays valid on the server until it is revoked there.`,
  keyNotListed: (server: string) => `${server} does not list the stored API key among your keys`,
  keyRejected: (name: string, server: string) =>
    `The API key of ${name} is no longer accepted by ${server} (revoked?). Sign in again.`,
  keyExpired: (name: string, server: string) => `The API key of ${name} for ${server} has expired. Sign in again.`,
  account: (name: string, server: string, user: User) =>
    `${name} (${server}): signed in as ${quoteServerText(user.username)}` +
    (user.name ? `, name ${quoteServerText(user.name)}` : '') +
    (user.email ? `, e-mail ${quoteServerText(user.email)}` : '') +
    ` · access ${quoteServerText(describeAccess(user))}`,
  howToSignIn: (server: string) => `Sign in to ${server} again`,
  removeLocally: 'Remove from VS Code',
  copyCode: 'Copy Code',
  signIn: 'Sign in',
  password: 'Sign in with password',
};

/** An expired key: the server answers 401 `key_expired` (contract section 9). */
export function isKeyExpired(e: unknown): boolean {
  return e instanceof ApiError && e.status === 401 && e.code === 'key_expired';
}

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

/** The profile still exists and still points at the server `started` (a sign-in) was made for. */
function stillPointsAt(deps: Deps, started: Profile): boolean {
  return deps.profiles.get(started.id)?.serverUrl === started.serverUrl;
}

/**
 * Stores a new key for the profile; a key it replaces is revoked on the server, best effort.
 * A key belongs to the server it came from: when the profile was removed or pointed at another
 * server while the sign-in ran, the key is not kept (it is revoked where it came from, best
 * effort) and the user is told. Answers undefined when the key was stored, else the failure.
 */
async function storeKey(deps: Deps, profile: Profile, apiKey: string): Promise<SignInResult | undefined> {
  let stored = false;
  if (stillPointsAt(deps, profile)) {
    const previous = await deps.profiles.getApiKey(profile.id);
    if (stillPointsAt(deps, profile)) {
      await deps.profiles.setApiKey(profile.id, apiKey);
      stored = stillPointsAt(deps, profile);
      // Changed while the secret was written: take it back out.
      if (!stored && (await deps.profiles.getApiKey(profile.id)) === apiKey) {
        await deps.profiles.deleteApiKey(profile.id);
      }
      if (stored && previous && previous !== apiKey) {
        await revoke(clientFor(deps, profile), previous).catch(() => undefined);
      }
    }
  }
  if (stored) return undefined;
  const revoked = await revoke(clientFor(deps, profile), apiKey).then(
    () => true,
    () => false,
  );
  const message = messages.profileChanged(profile.name, profile.serverUrl, revoked);
  await deps.ui.showWarningMessage(message);
  return { ok: false, reason: 'profile_changed', message };
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

  const origin = originOf(server);
  let outcome: PollOutcome | { kind: 'untrusted'; message: string };
  try {
    outcome = await deps.ui.withProgress(
      { title: `CoderFlow: ${escapeServerText(config.display_name)}`, cancellable: true },
      async (progress, token) => {
        const controller = new AbortController();
        const subscription = token.onCancellationRequested(() => controller.abort());
        if (token.isCancellationRequested) controller.abort();
        try {
          progress.report({ message: `asking ${server} for a sign-in code…` });
          const code = await client.requestDeviceCode(deps.clientName, controller.signal);
          // Nothing the server sent is opened, shown or copied before it is checked.
          if (!isPlausibleUserCode(code.user_code)) {
            return { kind: 'untrusted' as const, message: messages.untrustedUserCode(server, code.user_code) };
          }
          const pages: URL[] = [];
          for (const address of [code.verification_uri_complete, code.verification_uri]) {
            const check = checkVerificationUrl(address, server);
            if (!check.ok) {
              const message = messages.untrustedVerificationUrl(server, check.problem, address);
              return { kind: 'untrusted' as const, message };
            }
            pages.push(check.url);
          }
          const [complete, manual] = pages;
          // The code is on screen before the browser opens, so the user can compare the two.
          progress.report({ message: messages.enterCode(origin, code.user_code, code.expires_in) });
          void deps.ui
            .openExternal(complete.href)
            .catch(() => false)
            .then(async (opened) => {
              if (opened || controller.signal.aborted) return;
              const choice = await deps.ui.showInformationMessage(
                messages.openManually(manual, code.user_code),
                messages.copyCode,
              );
              if (choice === messages.copyCode) await deps.ui.copyToClipboard(code.user_code);
            })
            .catch(() => undefined);
          return await pollForToken(client, code, deps.clock, controller.signal, (tick) =>
            progress.report({ message: messages.enterCode(origin, code.user_code, tick.secondsLeft) }),
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
      const refused = await storeKey(deps, profile, outcome.signedIn.api_key);
      if (refused) return refused;
      const user = outcome.signedIn.user;
      void deps.ui.showInformationMessage(messages.signedIn(server, user));
      return { ok: true, user };
    }
    case 'untrusted':
      return failWith(deps, 'untrusted', outcome.message);
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
    const refused = await storeKey(deps, profile, signedIn.api_key);
    if (refused) return refused;
    void deps.ui.showInformationMessage(messages.signedIn(server, signedIn.user));
    return { ok: true, user: signedIn.user };
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return failWith(deps, 'invalid_credentials', messages.invalidCredentials);
    if (e instanceof ApiError && e.code === 'local_auth_disabled') {
      deps.onConfig?.(profile, { ...config, allow_local_auth: false });
      return failWith(deps, 'local_auth_disabled', messages.localAuthDisabled(server, config.display_name));
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
      void deps.ui.showInformationMessage(
        isKeyExpired(e) ? messages.keyExpiredSignedOut(server) : messages.keyAlreadyInvalid(server),
      );
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
    void deps.ui.showInformationMessage(messages.account(profile.name, profile.serverUrl, user));
    return user;
  } catch (e) {
    if (isKeyExpired(e)) {
      await notifyKeyExpired(deps, profile);
      return undefined;
    }
    if (e instanceof ApiError && e.status === 401) {
      await deps.ui.showErrorMessage(messages.keyRejected(profile.name, profile.serverUrl));
      return undefined;
    }
    await fail(deps, profile.serverUrl, e);
    return undefined;
  }
}

/**
 * Tells the user that the profile's key expired, with a "Sign in" button that signs in again
 * (SSO or password, whichever the server offers; both: the user picks).
 */
export async function notifyKeyExpired(deps: Deps, profile: Profile): Promise<SignInResult | undefined> {
  const choice = await deps.ui.showWarningMessage(messages.keyExpired(profile.name, profile.serverUrl), messages.signIn);
  if (choice !== messages.signIn) return undefined;
  const current = deps.profiles.get(profile.id);
  if (!current) return undefined;
  return signInAgain(deps, current);
}

/** Signs in to the profile with the method the server offers; asks when it offers both. */
export async function signInAgain(deps: Deps, profile: Profile): Promise<SignInResult> {
  let config: OidcConfig;
  try {
    config = await readConfig(deps, profile);
  } catch (e) {
    return fail(deps, profile.serverUrl, e);
  }
  if (config.sso_enabled && config.allow_local_auth) {
    const sso = labelServerText(config.display_name);
    const picked = await deps.ui.showQuickPick([{ label: sso }, { label: messages.password }], {
      title: messages.howToSignIn(profile.serverUrl),
    });
    if (!picked) return { ok: false, reason: 'cancelled', message: messages.cancelled };
    return picked.label === sso ? signInWithSso(deps, profile, config) : signInWithPassword(deps, profile, config);
  }
  return config.sso_enabled ? signInWithSso(deps, profile, config) : signInWithPassword(deps, profile, config);
}
