// The one typed client of the CoderFlow server's JSON API. Every request of the extension goes
// through here: the base URL, JSON bodies, the bearer key, timeouts, cancellation and the
// `{"error", "message"}` answers are handled in one place.

/** The `fetch` the client uses (the global one in VS Code; a fake in unit tests). */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

/** `GET /api/auth/oidc/config`. */
export interface OidcConfig {
  sso_enabled: boolean;
  display_name: string;
  allow_local_auth: boolean;
  login_url: string | null;
}

/** `POST /api/auth/device/code`. */
export interface DeviceCode {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  /** Seconds. */
  expires_in: number;
  /** Seconds between two polls. */
  interval: number;
}

export interface AccessBinding {
  role: string;
  scope: string;
}

/** A user, as `GET /api/me` and the sign-in answers give it. */
export interface User {
  username: string;
  email: string;
  name: string;
  source: string;
  disabled: boolean;
  created_at: string;
  access: AccessBinding[];
}

/** `POST /api/auth/login` and an approved `POST /api/auth/device/token`. */
export interface SignedIn {
  api_key: string;
  user: User;
}

/** An entry of `GET /api/keys`. */
export interface KeyInfo {
  id: string;
  name: string;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
}

/** What one poll of `POST /api/auth/device/token` tells. */
export type DeviceTokenResult =
  | { kind: 'approved'; signedIn: SignedIn }
  | { kind: 'authorization_pending' }
  | { kind: 'slow_down'; interval?: number }
  | { kind: 'access_denied' | 'expired_token' | 'invalid_grant'; message: string };

/** The server answered with an error status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    /** The answer's `error` code, or `http_<status>` when the body had none. */
    readonly code: string,
    message: string,
    /** Seconds, from a `Retry-After` header. */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The server could not be reached, or did not answer in time. */
export class UnreachableError extends Error {
  constructor(
    readonly url: string,
    readonly detail: string,
  ) {
    super(`cannot reach ${url}: ${detail}`);
    this.name = 'UnreachableError';
  }
}

/** The server answered something this client does not understand. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** The caller cancelled the request. */
export class CancelledError extends Error {
  constructor() {
    super('cancelled');
    this.name = 'CancelledError';
  }
}

/**
 * Checks and normalises a server URL typed by a user: http or https, no credentials, query or
 * fragment; trailing slashes dropped. Throws an Error with a message fit for the user.
 */
export function normalizeServerUrl(input: string): string {
  const text = input.trim();
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`"${text}" is not a URL: give the server's address, e.g. https://coder.example.com`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`the server URL must start with https:// (or http://), not ${url.protocol}//`);
  }
  if (url.username || url.password) {
    throw new Error('the server URL must not contain a user name or password');
  }
  if (url.search || url.hash) {
    throw new Error('the server URL must not contain a query (?...) or fragment (#...)');
  }
  return url.toString().replace(/\/+$/, '');
}

export interface ClientOptions {
  fetch?: FetchLike;
  /** Milliseconds one request may take. Default 15 s. */
  timeoutMs?: number;
}

export class CoderFlowClient {
  readonly baseUrl: string;
  private readonly fetchFn: FetchLike;
  private readonly timeoutMs: number;

  constructor(serverUrl: string, options: ClientOptions = {}) {
    this.baseUrl = normalizeServerUrl(serverUrl);
    this.fetchFn = options.fetch ?? ((url, init) => fetch(url, init));
    this.timeoutMs = options.timeoutMs ?? 15_000;
  }

  /** `GET /api/auth/oidc/config`: the public SSO configuration. */
  async oidcConfig(signal?: AbortSignal): Promise<OidcConfig> {
    const body = await this.json('GET', '/api/auth/oidc/config', { signal });
    const sso = field(body, 'sso_enabled', 'boolean');
    return {
      sso_enabled: sso,
      display_name: optionalString(body, 'display_name') ?? 'Sign in with SSO',
      // The server always allows local login when SSO is off.
      allow_local_auth: sso ? field(body, 'allow_local_auth', 'boolean') : true,
      login_url: optionalString(body, 'login_url') ?? null,
    };
  }

  /** `POST /api/auth/device/code`. */
  async requestDeviceCode(clientName: string, signal?: AbortSignal): Promise<DeviceCode> {
    const body = await this.json('POST', '/api/auth/device/code', {
      body: { client_name: clientName },
      signal,
    });
    return {
      device_code: field(body, 'device_code', 'string'),
      user_code: field(body, 'user_code', 'string'),
      verification_uri: field(body, 'verification_uri', 'string'),
      verification_uri_complete:
        optionalString(body, 'verification_uri_complete') ?? field(body, 'verification_uri', 'string'),
      expires_in: field(body, 'expires_in', 'number'),
      interval: typeof body.interval === 'number' ? body.interval : 5,
    };
  }

  /**
   * One poll of `POST /api/auth/device/token`. The RFC 8628 answers (400 with a known `error`)
   * are results; any other failure throws.
   */
  async pollDeviceToken(deviceCode: string, signal?: AbortSignal): Promise<DeviceTokenResult> {
    try {
      const body = await this.json('POST', '/api/auth/device/token', {
        body: { device_code: deviceCode },
        signal,
      });
      return { kind: 'approved', signedIn: signedIn(body) };
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 400) throw e;
      switch (e.code) {
        case 'authorization_pending':
          return { kind: 'authorization_pending' };
        case 'slow_down':
          return { kind: 'slow_down', interval: (e as ApiErrorWithBody).body?.interval };
        case 'access_denied':
        case 'expired_token':
        case 'invalid_grant':
          return { kind: e.code, message: e.message };
        default:
          throw e;
      }
    }
  }

  /** `POST /api/auth/login`: local username and password; answers a new API key. */
  async login(username: string, password: string, keyName: string, signal?: AbortSignal): Promise<SignedIn> {
    const body = await this.json('POST', '/api/auth/login', {
      body: { username, password, key_name: keyName },
      signal,
    });
    return signedIn(body);
  }

  /** `GET /api/me`: the user the key belongs to. */
  async me(apiKey: string, signal?: AbortSignal): Promise<User> {
    return user(await this.json('GET', '/api/me', { apiKey, signal }));
  }

  /** `GET /api/keys`: the caller's own keys (never their secrets). */
  async listKeys(apiKey: string, signal?: AbortSignal): Promise<KeyInfo[]> {
    const body = await this.json('GET', '/api/keys', { apiKey, signal });
    if (!Array.isArray(body.keys)) throw new ProtocolError('the server answered GET /api/keys without a "keys" list');
    return body.keys.map((k: Json) => ({
      id: String(field(k, 'id', 'string')),
      name: optionalString(k, 'name') ?? '',
      prefix: field(k, 'prefix', 'string'),
      created_at: optionalString(k, 'created_at') ?? '',
      last_used_at: optionalString(k, 'last_used_at') ?? null,
    }));
  }

  /** `DELETE /api/keys/{id}`: revokes one of the caller's keys. */
  async deleteKey(apiKey: string, id: string, signal?: AbortSignal): Promise<void> {
    await this.json('DELETE', `/api/keys/${encodeURIComponent(id)}`, { apiKey, signal, allowEmpty: true });
  }

  private async json(
    method: string,
    path: string,
    options: { body?: unknown; apiKey?: string; signal?: AbortSignal; allowEmpty?: boolean },
  ): Promise<Json> {
    const url = this.baseUrl + path;
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (options.body !== undefined) headers['Content-Type'] = 'application/json';
    if (options.apiKey !== undefined) headers.Authorization = `Bearer ${options.apiKey}`;

    if (options.signal?.aborted) throw new CancelledError();
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.timeoutMs);
    const onAbort = () => controller.abort();
    options.signal?.addEventListener('abort', onAbort);
    try {
      let response: Response;
      let text: string;
      try {
        response = await this.fetchFn(url, {
          method,
          headers,
          body: options.body === undefined ? undefined : JSON.stringify(options.body),
          signal: controller.signal,
          redirect: 'manual',
        });
        text = await response.text();
      } catch (e) {
        if (options.signal?.aborted) throw new CancelledError();
        if (timedOut) throw new UnreachableError(this.baseUrl, `no answer within ${Math.round(this.timeoutMs / 1000)} s`);
        throw new UnreachableError(this.baseUrl, networkDetail(e));
      }
      let body: Json | undefined;
      if (text.trim() !== '') {
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
      }
      if (response.status >= 200 && response.status < 300) {
        if (body !== undefined && typeof body === 'object' && body !== null) return body;
        if (options.allowEmpty) return {};
        throw new ProtocolError(
          `${method} ${path} answered ${response.status} without JSON: is ${this.baseUrl} a CoderFlow server?`,
        );
      }
      if (response.status >= 300 && response.status < 400) {
        const location = response.headers.get('location');
        throw new ApiError(
          response.status,
          'redirected',
          `${this.baseUrl} redirects${location ? ` to ${location}` : ''}: use the server's final URL in the profile`,
        );
      }
      const code = typeof body?.error === 'string' ? body.error : `http_${response.status}`;
      const message =
        typeof body?.message === 'string' && body.message !== ''
          ? body.message
          : `${method} ${path} answered HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
      const retryAfter = Number(response.headers.get('retry-after'));
      const error = new ApiError(
        response.status,
        code,
        message,
        Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
      ) as ApiErrorWithBody;
      error.body = typeof body === 'object' && body !== null ? body : undefined;
      throw error;
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

type ApiErrorWithBody = ApiError & { body?: Json };

function field<T extends 'string' | 'number' | 'boolean'>(
  body: Json,
  name: string,
  type: T,
): T extends 'string' ? string : T extends 'number' ? number : boolean {
  const value = body?.[name];
  if (typeof value !== type) {
    throw new ProtocolError(`the server's answer has no ${type} "${name}"`);
  }
  return value;
}

function optionalString(body: Json, name: string): string | undefined {
  const value = body?.[name];
  return typeof value === 'string' ? value : undefined;
}

function user(body: Json): User {
  return {
    username: field(body, 'username', 'string'),
    email: optionalString(body, 'email') ?? '',
    name: optionalString(body, 'name') ?? '',
    source: optionalString(body, 'source') ?? '',
    disabled: body?.disabled === true,
    created_at: optionalString(body, 'created_at') ?? '',
    access: Array.isArray(body?.access)
      ? body.access
          .filter((b: Json) => typeof b?.role === 'string')
          .map((b: Json) => ({ role: b.role, scope: typeof b.scope === 'string' ? b.scope : '' }))
      : [],
  };
}

function signedIn(body: Json): SignedIn {
  return { api_key: field(body, 'api_key', 'string'), user: user(body.user) };
}

/** A short reason for a failed fetch: undici hides the useful part in `cause`. */
function networkDetail(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } })?.cause;
  if (cause?.code && cause.message) return cause.message.includes(cause.code) ? cause.message : `${cause.code}: ${cause.message}`;
  if (cause?.message) return cause.message;
  if (e instanceof Error) return e.message;
  return String(e);
}
