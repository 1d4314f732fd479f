// Fakes of the editor (Ui, Memento, SecretStorage, status item), of time, and of the server's
// HTTP API, for tests that run without an editor or a server.

import { CancelledError, FetchLike } from '../../src/client';
import type { Clock } from '../../src/deviceFlow';
import type { Deps } from '../../src/auth';
import { ProfileStore } from '../../src/profiles';
import type {
  CancellationToken,
  InputOptions,
  Memento,
  PickItem,
  PickOptions,
  Progress,
  ProgressOptions,
  SecretStorage,
  StatusItem,
  Ui,
} from '../../src/ui';

export class MemoryMemento implements Memento {
  readonly data = new Map<string, unknown>();
  get<T>(key: string): T | undefined {
    const value = this.data.get(key);
    return value === undefined ? undefined : (JSON.parse(JSON.stringify(value)) as T);
  }
  async update(key: string, value: unknown): Promise<void> {
    if (value === undefined) this.data.delete(key);
    else this.data.set(key, JSON.parse(JSON.stringify(value)));
  }
  /** Everything stored, as the editor would persist it. */
  dump(): string {
    return JSON.stringify([...this.data]);
  }
}

export class MemorySecrets implements SecretStorage {
  readonly data = new Map<string, string>();
  async get(key: string): Promise<string | undefined> {
    return this.data.get(key);
  }
  async store(key: string, value: string): Promise<void> {
    this.data.set(key, value);
  }
  async delete(key: string): Promise<void> {
    this.data.delete(key);
  }
}

export class FakeStatusItem implements StatusItem {
  text = '';
  tooltip: string | object | undefined;
  command: string | object | undefined;
  shown = false;
  show(): void {
    this.shown = true;
  }
}

class FakeToken implements CancellationToken {
  isCancellationRequested = false;
  private listeners: Array<() => void> = [];
  onCancellationRequested(listener: () => void) {
    this.listeners.push(listener);
    return { dispose: () => (this.listeners = this.listeners.filter((l) => l !== listener)) };
  }
  cancel(): void {
    if (this.isCancellationRequested) return;
    this.isCancellationRequested = true;
    for (const l of [...this.listeners]) l();
  }
}

export interface Shown {
  level: 'info' | 'warning' | 'modal' | 'error';
  text: string;
  items: string[];
}

/** A scripted user: answers queued up front, everything shown recorded in `events`. */
export class FakeUi implements Ui {
  readonly shown: Shown[] = [];
  /** Ordered log: "progress:<title>", "report:<message>", "open:<url>", "pick", "input:<prompt>", "<level>:<text>". */
  readonly events: string[] = [];
  /** Answers of showInputBox, in order; undefined = the user pressed Escape. */
  readonly inputs: Array<string | undefined> = [];
  readonly inputRequests: InputOptions[] = [];
  /** Choosers of showQuickPick, in order; none left = Escape. */
  readonly picks: Array<(items: PickItem[]) => PickItem | undefined> = [];
  readonly pickRequests: Array<{ items: PickItem[]; options?: PickOptions }> = [];
  /** The answer to a message with buttons (default: dismissed). */
  answer: (shown: Shown) => string | undefined = () => undefined;
  /** What openExternal does; default: the browser opened. */
  onOpenExternal: (url: string) => boolean | Promise<boolean> = () => true;
  readonly opened: string[] = [];
  readonly progress: Array<{ options: ProgressOptions; reports: string[] }> = [];
  clipboard = '';
  private tokens: FakeToken[] = [];

  private async show(level: Shown['level'], text: string, items: string[]): Promise<string | undefined> {
    const shown = { level, text, items };
    this.shown.push(shown);
    this.events.push(`${level}:${text}`);
    return this.answer(shown);
  }
  showInformationMessage(message: string, ...items: string[]) {
    return this.show('info', message, items);
  }
  showWarningMessage(message: string, ...items: string[]) {
    return this.show('warning', message, items);
  }
  showModalWarning(message: string, ...items: string[]) {
    return this.show('modal', message, items);
  }
  showErrorMessage(message: string, ...items: string[]) {
    return this.show('error', message, items);
  }
  async showQuickPick<T extends PickItem>(items: T[], options?: PickOptions): Promise<T | undefined> {
    this.events.push('pick');
    this.pickRequests.push({ items, options });
    const chooser = this.picks.shift();
    return chooser ? (chooser(items) as T | undefined) : undefined;
  }
  async showInputBox(options: InputOptions): Promise<string | undefined> {
    this.events.push(`input:${options.prompt ?? ''}`);
    this.inputRequests.push(options);
    const value = this.inputs.shift();
    if (value !== undefined && options.validateInput) {
      const error = options.validateInput(value);
      if (error) throw new Error(`the scripted input "${value}" is invalid: ${error}`);
    }
    return value;
  }
  async withProgress<R>(options: ProgressOptions, task: (p: Progress, t: CancellationToken) => Promise<R>): Promise<R> {
    this.events.push(`progress:${options.title}`);
    const record = { options, reports: [] as string[] };
    this.progress.push(record);
    const token = new FakeToken();
    this.tokens.push(token);
    try {
      return await task(
        {
          report: (v) => {
            if (v.message !== undefined) {
              record.reports.push(v.message);
              this.events.push(`report:${v.message}`);
            }
          },
        },
        token,
      );
    } finally {
      this.tokens = this.tokens.filter((t) => t !== token);
    }
  }
  /** The user clicks Cancel on every running progress notification. */
  cancelProgress(): void {
    for (const t of this.tokens) t.cancel();
  }
  async openExternal(url: string): Promise<boolean> {
    this.events.push(`open:${url}`);
    this.opened.push(url);
    return this.onOpenExternal(url);
  }
  async copyToClipboard(text: string): Promise<void> {
    this.clipboard = text;
  }
  errors(): string[] {
    return this.shown.filter((s) => s.level === 'error').map((s) => s.text);
  }
  infos(): string[] {
    return this.shown.filter((s) => s.level === 'info').map((s) => s.text);
  }
  warnings(): string[] {
    return this.shown.filter((s) => s.level === 'warning').map((s) => s.text);
  }
  /**
   * Every text VS Code would render with links: messages of all levels, and progress
   * notifications as VS Code shows them: the title alone, then `<title>: <message>` per report
   * (progressService.ts, withNotificationProgress).
   */
  notificationTexts(): string[] {
    return [
      ...this.shown.map((s) => s.text),
      ...this.progress.flatMap((p) => [p.options.title, ...p.reports.map((r) => `${p.options.title}: ${r}`)]),
    ];
  }
  /** Every label-like text: buttons, quick pick items, input titles and prompts. */
  labelTexts(): string[] {
    return [
      ...this.shown.flatMap((s) => s.items),
      ...this.pickRequests.flatMap((r) => [
        r.options?.title,
        ...r.items.flatMap((i) => [i.label, i.description, i.detail]),
      ]),
      ...this.inputRequests.flatMap((r) => [r.title, r.prompt]),
    ].filter((t): t is string => typeof t === 'string');
  }
}

/** Virtual time: sleep returns at once and moves the clock. */
export class FakeClock implements Clock {
  t = 1_700_000_000_000;
  readonly sleeps: number[] = [];
  /** Called inside each sleep (after the clock moved), e.g. to cancel. */
  onSleep: (ms: number) => void = () => {};
  now(): number {
    return this.t;
  }
  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw new CancelledError();
    this.sleeps.push(ms);
    this.t += ms;
    this.onSleep(ms);
    await new Promise((r) => setImmediate(r));
    if (signal?.aborted) throw new CancelledError();
  }
}

export interface FakeRequest {
  method: string;
  /** e.g. `https://coder.test`: which server the request went to. */
  origin: string;
  path: string;
  headers: Record<string, string>;
  body: any;
}

export type FakeReply =
  | { status?: number; json?: unknown; text?: string; headers?: Record<string, string> }
  | 'unreachable'
  | 'hang';

export function networkError(): TypeError {
  const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
  return new TypeError('fetch failed', { cause });
}

/** A fetch that hands each request to `handler` (no network). */
export function fakeFetch(handler: (req: FakeRequest) => FakeReply | Promise<FakeReply>): FetchLike & {
  calls: FakeRequest[];
} {
  const calls: FakeRequest[] = [];
  const fn = async (url: string, init: RequestInit): Promise<Response> => {
    const u = new URL(url);
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => (headers[k] = v));
    const req: FakeRequest = {
      method: init.method ?? 'GET',
      origin: u.origin,
      path: u.pathname + u.search,
      headers,
      body: typeof init.body === 'string' ? JSON.parse(init.body) : undefined,
    };
    calls.push(req);
    const signal = init.signal ?? undefined;
    if (signal?.aborted) throw new DOMException('aborted', 'AbortError');
    const reply = await handler(req);
    if (reply === 'unreachable') throw networkError();
    if (reply === 'hang') {
      return new Promise<Response>((_, reject) => {
        signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
      });
    }
    const body = reply.text ?? (reply.json === undefined ? null : JSON.stringify(reply.json));
    const status = reply.status ?? 200;
    return new Response(status === 204 ? null : body, {
      status,
      headers: { 'content-type': 'application/json', ...(reply.headers ?? {}) },
    });
  };
  return Object.assign(fn, { calls });
}

/** An in-memory model of the CoderFlow API the extension uses. */
export class FakeServer {
  config = {
    sso_enabled: true,
    display_name: 'Sign in with Acme',
    allow_local_auth: true,
    login_url: 'https://coder.test/auth/oidc/login',
  };
  deviceCode = {
    device_code: 'dc-secret',
    user_code: 'BCDF-GHJK',
    verification_uri: 'https://coder.test/device',
    verification_uri_complete: 'https://coder.test/device?user_code=BCDF-GHJK',
    expires_in: 600,
    interval: 5,
  };
  /** Replies of the token endpoint, in order; none left = authorization_pending. */
  tokenReplies: FakeReply[] = [];
  /** Keys by secret. */
  keys = new Map<string, { id: string; name: string; prefix: string; username: string }>();
  /** Secrets of keys that have expired: they answer 401 `key_expired` (contract section 9). */
  expired = new Set<string>();
  user = {
    username: 'johndoe',
    email: 'john.doe@company.com',
    name: 'John Doe',
    source: 'sso',
    disabled: false,
    created_at: '2026-01-01T00:00:00Z',
    access: [{ role: 'developer', scope: 'environment:*' }],
  };
  /** When set, every request fails at the network level. */
  down = false;
  /** Per-path override, consulted first. */
  override: (req: FakeRequest) => FakeReply | undefined = () => undefined;
  private next = 1;
  readonly fetch = fakeFetch((req) => this.handle(req));

  /** Issues a key as the server would (`cf_` + random) and returns its secret. */
  issueKey(name = 'test'): string {
    const n = this.next++;
    const secret = `cf_${n}${'x'.repeat(40)}${n}`;
    this.keys.set(secret, { id: `id${n}`, name, prefix: secret.slice(0, 8), username: this.user.username });
    return secret;
  }

  /** The next poll answers 200 with a fresh key; returns the key. */
  approveNextPoll(): string {
    const apiKey = this.issueKey('VS Code device');
    this.tokenReplies.push({ json: { api_key: apiKey, user: this.user } });
    return apiKey;
  }

  tokenError(error: string, extra: object = {}): FakeReply {
    return { status: 400, json: { error, message: `${error} message`, ...extra } };
  }

  private bearer(req: FakeRequest) {
    const key = req.headers.authorization?.replace(/^Bearer /, '');
    return key === undefined ? undefined : this.keys.get(key) ? key : undefined;
  }

  private unauthenticated(): FakeReply {
    return { status: 401, json: { error: 'unauthenticated', message: 'sign in first' } };
  }

  handle(req: FakeRequest): FakeReply {
    if (this.down) return 'unreachable';
    const o = this.override(req);
    if (o) return o;
    const bearer = req.headers.authorization?.replace(/^Bearer /, '');
    if (bearer !== undefined && this.expired.has(bearer)) {
      return { status: 401, json: { error: 'key_expired', message: 'the API key has expired' } };
    }
    const route = `${req.method} ${req.path}`;
    if (route === 'GET /api/auth/oidc/config') return { json: this.config };
    if (route === 'POST /api/auth/device/code') return { json: this.deviceCode };
    if (route === 'POST /api/auth/device/token') {
      return this.tokenReplies.shift() ?? this.tokenError('authorization_pending');
    }
    if (route === 'POST /api/auth/login') {
      if (!this.config.allow_local_auth) {
        return { status: 403, json: { error: 'local_auth_disabled', message: 'local login is disabled' } };
      }
      if (req.body?.username !== 'johndoe' || req.body?.password !== 'pw') {
        return { status: 401, json: { error: 'invalid_credentials', message: 'wrong username or password' } };
      }
      return { json: { api_key: this.issueKey(req.body.key_name), user: this.user } };
    }
    if (route === 'GET /api/me') {
      return this.bearer(req) ? { json: this.user } : this.unauthenticated();
    }
    if (route === 'GET /api/keys') {
      if (!this.bearer(req)) return this.unauthenticated();
      return {
        json: {
          keys: [...this.keys.values()].map((k) => ({
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            created_at: '2026-01-01T00:00:00Z',
            last_used_at: null,
          })),
        },
      };
    }
    const del = /^DELETE \/api\/keys\/([^/]+)$/.exec(route);
    if (del) {
      if (!this.bearer(req)) return this.unauthenticated();
      const id = decodeURIComponent(del[1]);
      for (const [secret, k] of this.keys) {
        if (k.id === id) {
          this.keys.delete(secret);
          return { status: 204 };
        }
      }
      return { status: 404, json: { error: 'not_found', message: 'no such key' } };
    }
    return { status: 404, json: { error: 'not_found', message: 'no such route' } };
  }
}

export interface TestEnv {
  ui: FakeUi;
  clock: FakeClock;
  state: MemoryMemento;
  secrets: MemorySecrets;
  profiles: ProfileStore;
  deps: Deps;
}

/** Deps wired to fakes; `fetch` is a fake server's or the real one. */
export function testEnv(fetch?: FetchLike, clock: Clock = new FakeClock()): TestEnv {
  const ui = new FakeUi();
  const state = new MemoryMemento();
  const secrets = new MemorySecrets();
  let n = 0;
  const profiles = new ProfileStore(state, secrets, () => `p${++n}`);
  const deps: Deps = {
    ui,
    profiles,
    clock,
    fetch,
    clientName: 'VS Code',
    keyName: () => 'VS Code (test)',
    timeoutMs: 5_000,
  };
  return { ui, clock: clock as FakeClock, state, secrets, profiles, deps };
}
