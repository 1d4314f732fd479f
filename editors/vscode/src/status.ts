// The status bar item: the active profile's signed-in user, from `GET /api/me`.

import { ApiError, FetchLike, UnreachableError, User } from './client';
import { clientFor, describeAccess } from './auth';
import type { ProfileStore } from './profiles';
import type { StatusItem } from './ui';

export type StatusState =
  | { kind: 'no_profile' }
  | { kind: 'signed_out'; profile: string }
  | { kind: 'signed_in'; profile: string; user: User }
  | { kind: 'key_rejected'; profile: string }
  | { kind: 'unreachable'; profile: string; detail: string }
  | { kind: 'error'; profile: string; detail: string };

export const MANAGE_COMMAND = 'coderflow.manageProfiles';

export class StatusController {
  private generation = 0;
  state: StatusState = { kind: 'no_profile' };

  constructor(
    private readonly item: StatusItem,
    private readonly profiles: ProfileStore,
    private readonly deps: { fetch?: FetchLike; timeoutMs?: number } = {},
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
    }
    return state;
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
      case 'signed_in':
        this.item.text = `$(account) ${s.user.username}`;
        this.item.tooltip =
          `CoderFlow profile ${s.profile} (${server})\n` +
          `Signed in as ${s.user.username}${s.user.name ? ` (${s.user.name})` : ''}` +
          `${s.user.email ? ` <${s.user.email}>` : ''}\n` +
          `Access: ${describeAccess(s.user)}`;
        break;
      case 'key_rejected':
        this.item.text = `$(warning) CoderFlow: sign in again`;
        this.item.tooltip = `CoderFlow profile ${s.profile} (${server}): the server no longer accepts the stored API key.`;
        break;
      case 'unreachable':
        this.item.text = `$(debug-disconnect) CoderFlow: ${s.profile}`;
        this.item.tooltip = `CoderFlow profile ${s.profile}: cannot reach ${server} (${s.detail}).`;
        break;
      case 'error':
        this.item.text = `$(warning) CoderFlow: ${s.profile}`;
        this.item.tooltip = `CoderFlow profile ${s.profile} (${server}): ${s.detail}`;
        break;
    }
  }
}
