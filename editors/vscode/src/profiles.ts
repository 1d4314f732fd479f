// Server profiles: name and server URL in globalState, the API key in SecretStorage only.

import { randomUUID } from 'node:crypto';
import { normalizeServerUrl } from './client';
import type { Memento, SecretStorage } from './ui';

export interface Profile {
  /** Stable id; the secret's key derives from it, so renaming keeps the key. */
  id: string;
  name: string;
  serverUrl: string;
}

interface StoredState {
  profiles: Profile[];
  activeId: string | undefined;
}

/** The globalState key of the profiles (no secret in there). */
export const STATE_KEY = 'coderflow.profiles';

/** The SecretStorage key of a profile's API key. */
export function secretKey(profileId: string): string {
  return `coderflow.apiKey.${profileId}`;
}

export class ProfileStore {
  private readonly listeners: Array<() => void> = [];

  constructor(
    private readonly state: Memento,
    private readonly secrets: SecretStorage,
    private readonly newId: () => string = randomUUID,
  ) {}

  /** Calls `listener` after every change of profiles, the active profile or a key. */
  onDidChange(listener: () => void): { dispose(): void } {
    this.listeners.push(listener);
    return {
      dispose: () => {
        const i = this.listeners.indexOf(listener);
        if (i >= 0) this.listeners.splice(i, 1);
      },
    };
  }

  list(): Profile[] {
    return this.read().profiles.map((p) => ({ ...p }));
  }

  get(id: string): Profile | undefined {
    return this.list().find((p) => p.id === id);
  }

  active(): Profile | undefined {
    const { profiles, activeId } = this.read();
    const found = profiles.find((p) => p.id === activeId);
    return found ? { ...found } : undefined;
  }

  /** Adds a profile; the first one becomes active. Throws an Error fit for the user when invalid. */
  async add(input: { name: string; serverUrl: string }): Promise<Profile> {
    const current = this.read();
    const profile: Profile = {
      id: this.newId(),
      name: this.checkName(input.name, current.profiles),
      serverUrl: normalizeServerUrl(input.serverUrl),
    };
    await this.write({
      profiles: [...current.profiles, profile],
      activeId: current.activeId ?? profile.id,
    });
    return { ...profile };
  }

  /**
   * Renames a profile or changes its server. A key belongs to one server: changing the server URL
   * deletes the stored key (`keyDropped`), which the caller should have revoked first.
   */
  async update(id: string, input: { name?: string; serverUrl?: string }): Promise<{ profile: Profile; keyDropped: boolean }> {
    const current = this.read();
    const old = current.profiles.find((p) => p.id === id);
    if (!old) throw new Error('no such profile');
    const others = current.profiles.filter((p) => p.id !== id);
    const profile: Profile = {
      id,
      name: input.name === undefined ? old.name : this.checkName(input.name, others),
      serverUrl: input.serverUrl === undefined ? old.serverUrl : normalizeServerUrl(input.serverUrl),
    };
    const keyDropped = profile.serverUrl !== old.serverUrl && (await this.secrets.get(secretKey(id))) !== undefined;
    if (profile.serverUrl !== old.serverUrl) await this.secrets.delete(secretKey(id));
    await this.write({
      profiles: current.profiles.map((p) => (p.id === id ? profile : p)),
      activeId: current.activeId,
    });
    return { profile: { ...profile }, keyDropped };
  }

  /** Removes a profile and its key; the active profile moves to the first remaining one. */
  async remove(id: string): Promise<void> {
    const current = this.read();
    const profiles = current.profiles.filter((p) => p.id !== id);
    await this.secrets.delete(secretKey(id));
    await this.write({
      profiles,
      activeId: current.activeId === id ? profiles[0]?.id : current.activeId,
    });
  }

  async setActive(id: string): Promise<void> {
    const current = this.read();
    if (!current.profiles.some((p) => p.id === id)) throw new Error('no such profile');
    await this.write({ ...current, activeId: id });
  }

  async getApiKey(id: string): Promise<string | undefined> {
    const key = await this.secrets.get(secretKey(id));
    return key === '' ? undefined : key;
  }

  async setApiKey(id: string, apiKey: string): Promise<void> {
    await this.secrets.store(secretKey(id), apiKey);
    this.changed();
  }

  async deleteApiKey(id: string): Promise<void> {
    await this.secrets.delete(secretKey(id));
    this.changed();
  }

  private checkName(name: string, others: Profile[]): string {
    const trimmed = name.trim();
    if (trimmed === '') throw new Error('a profile needs a name');
    if (others.some((p) => p.name.toLowerCase() === trimmed.toLowerCase())) {
      throw new Error(`a profile named "${trimmed}" already exists`);
    }
    return trimmed;
  }

  private read(): StoredState {
    const stored = this.state.get<Partial<StoredState>>(STATE_KEY);
    const profiles = Array.isArray(stored?.profiles)
      ? stored.profiles.filter(
          (p): p is Profile =>
            typeof p?.id === 'string' && typeof p.name === 'string' && typeof p.serverUrl === 'string',
        )
      : [];
    const activeId = typeof stored?.activeId === 'string' ? stored.activeId : undefined;
    return { profiles, activeId };
  }

  private async write(next: StoredState): Promise<void> {
    // Only id, name and URL are written: nothing secret ever reaches globalState.
    await this.state.update(STATE_KEY, {
      profiles: next.profiles.map(({ id, name, serverUrl }) => ({ id, name, serverUrl })),
      activeId: next.activeId,
    });
    this.changed();
  }

  private changed(): void {
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch {
        // A listener's failure is not the store's.
      }
    }
  }
}
