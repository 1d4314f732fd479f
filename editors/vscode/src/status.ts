// The status bar item: the active profile's signed-in user, from `GET /api/me`.

import { ApiError, FetchLike, UnreachableError, User } from './client';
import { clientFor, describeAccess, isKeyExpired } from './auth';
import type { Profile, ProfileStore } from './profiles';
import { labelServerText } from './serverText';
import type { StatusItem } from './ui';

export type StatusState =
  | { kind: 'no_profile' }
  | { kind: 'signed_out'; profile: string }
  | { kind: 'signed_in'; profile: string; user: User }
  | { kind: 'key_rejected'; profile: string }
  | { kind: 'key_expired'; profile: string; profileId: string }
  | { kind: 'unreachable'; profile: string; detail: string }
  | { kind: 'error'; profile: string; detail: string };

export const MANAGE_COMMAND = 'coderflow.manageProfiles';

export interface StatusDeps {
  fetch?: FetchLike;
  timeoutMs?: number;
  /** Called once when the active profile's key is found expired (until its state changes). */
  onKeyExpired?(profile: Profile): void;
}

export class StatusController {
  private generation = 0;
  /** The profile whose expired key `onKeyExpired` was told about. */
  private expiredTold: string | undefined;
  state: StatusState = { kind: 'no_profile' };

  constructor(
    private readonly item: StatusItem,
    private readonly profiles: ProfileStore,
    private readonly deps: StatusDeps = {},
  ) {
    item.command = MANAGE_COMMAND;
    this.render();
    item.show();
  }

  /** Re-reads the active profile and its user; the latest call wins when calls overlap. */
  async refresh(): Promise<StatusState> {
    const generation = ++this.generation;
    const state = await this.compute();
    if (generation === this.generation) {
      this.state = state;
      this.render();
      this.tellExpired(state);
    }
    return state;
  }

  private tellExpired(state: StatusState): void {
    if (state.kind !== 'key_expired') {
      this.expiredTold = undefined;
      return;
    }
    if (this.expiredTold === state.profileId) return;
    this.expiredTold = state.profileId;
    const profile = this.profiles.get(state.profileId);
    if (profile) this.deps.onKeyExpired?.(profile);
  }

  private async compute(): Promise<StatusState> {
    const profile = this.profiles.active();
    if (!profile) return { kind: 'no_profile' };
    const apiKey = await this.profiles.getApiKey(profile.id);
    if (!apiKey) return { kind: 'signed_out', profile: profile.name };
    try {
      const user = await clientFor(this.deps, profile).me(apiKey);
      return { kind: 'signed_in', profile: profile.name, user };
    } catch (e) {
      if (isKeyExpired(e)) return { kind: 'key_expired', profile: profile.name, profileId: profile.id };
      if (e instanceof ApiError && e.status === 401) return { kind: 'key_rejected', profile: profile.name };
      if (e instanceof UnreachableError) return { kind: 'unreachable', profile: profile.name, detail: e.detail };
      return { kind: 'error', profile: profile.name, detail: e instanceof Error ? e.message : String(e) };
    }
  }

  private render(): void {
    const s = this.state;
    const server = this.profiles.active()?.serverUrl ?? '';
    switch (s.kind) {
      case 'no_profile':
        this.item.text = '$(account) CoderFlow';
        this.item.tooltip = 'CoderFlow: no server profile. Click to add one.';
        break;
      case 'signed_out':
        this.item.text = `$(sign-in) CoderFlow: sign in`;
        this.item.tooltip = `CoderFlow profile ${s.profile} (${server}): not signed in. Click to sign in.`;
        break;
      case 'signed_in': {
        // The status bar renders $(icons) but no links; the server's values are cleaned.
        const user = s.user;
        this.item.text = `$(account) ${labelServerText(user.username, 40)}`;
        this.item.tooltip =
          `CoderFlow profile ${s.profile} (${server})\n` +
          `Signed in as ${labelServerText(user.username)}${user.name ? ` (${labelServerText(user.name)})` : ''}` +
          `${user.email ? ` <${labelServerText(user.email)}>` : ''}\n` +
          `Access: ${labelServerText(describeAccess(user))}`;
        break;
      }
      case 'key_rejected':
        this.item.text = `$(warning) CoderFlow: sign in again`;
        this.item.tooltip = `CoderFlow profile ${s.profile} (${server}): the server no longer accepts the stored API key.`;
        break;
      case 'key_expired':
        this.item.text = `$(warning) CoderFlow: key expired, sign in again`;
        this.item.tooltip = `CoderFlow profile ${s.profile} (${server}): the API key has expired. Click to sign in again.`;
        break;
      case 'unreachable':
        this.item.text = `$(debug-disconnect) CoderFlow: ${s.profile}`;
        this.item.tooltip = `CoderFlow profile ${s.profile}: cannot reach ${server} (${labelServerText(s.detail)}).`;
        break;
      case 'error':
        this.item.text = `$(warning) CoderFlow: ${s.profile}`;
        this.item.tooltip = `CoderFlow profile ${s.profile} (${server}): ${labelServerText(s.detail)}`;
        break;
    }
  }
}
