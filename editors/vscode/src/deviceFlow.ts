// The device-login polling loop (RFC 8628 section 3.4/3.5), free of any editor API.

import {
  ApiError,
  CancelledError,
  CoderFlowClient,
  DeviceCode,
  ProtocolError,
  SignedIn,
  UnreachableError,
} from './client';

/** Time, injectable so tests need not wait. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms`; rejects with CancelledError as soon as `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(new CancelledError());
      const onAbort = () => {
        clearTimeout(timer);
        reject(new CancelledError());
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

export type PollOutcome =
  | { kind: 'approved'; signedIn: SignedIn }
  | { kind: 'denied'; message: string }
  | { kind: 'expired'; message: string }
  | { kind: 'invalid_grant'; message: string }
  | { kind: 'cancelled' }
  | { kind: 'unreachable'; message: string }
  | { kind: 'error'; message: string };

export interface PollTick {
  /** Seconds until the code expires (by the client's clock). */
  secondsLeft: number;
  /** The current polling interval, seconds. */
  interval: number;
}

/** RFC 8628: the interval when the server gives none, and the step `slow_down` adds. */
export const DEFAULT_INTERVAL_S = 5;
export const SLOW_DOWN_STEP_S = 5;
/** Network failures in a row that end polling as "unreachable". */
export const MAX_NETWORK_FAILURES = 3;

/**
 * Polls the token endpoint until the code is approved, denied, expired or the signal aborts.
 * Waits `interval` before each poll; `slow_down` sets the interval to the one the server gives, or
 * adds 5 s when it gives none. Never polls faster than the current interval.
 */
export async function pollForToken(
  client: CoderFlowClient,
  code: DeviceCode,
  clock: Clock,
  signal: AbortSignal,
  onTick: (tick: PollTick) => void = () => {},
): Promise<PollOutcome> {
  let interval = positive(code.interval) ?? DEFAULT_INTERVAL_S;
  const deadline = clock.now() + Math.max(0, code.expires_in) * 1000;
  const secondsLeft = () => Math.max(0, Math.ceil((deadline - clock.now()) / 1000));
  let failures = 0;
  let lastFailure = '';
  let pastDeadlinePolls = 0;

  onTick({ secondsLeft: secondsLeft(), interval });
  for (;;) {
    try {
      await clock.sleep(interval * 1000, signal);
    } catch {
      return { kind: 'cancelled' };
    }
    if (signal.aborted) return { kind: 'cancelled' };
    if (clock.now() >= deadline) pastDeadlinePolls += 1;

    let result;
    try {
      result = await client.pollDeviceToken(code.device_code, signal);
    } catch (e) {
      if (e instanceof CancelledError || signal.aborted) return { kind: 'cancelled' };
      if (e instanceof UnreachableError || (e instanceof ApiError && (e.status >= 500 || e.status === 429))) {
        // Transient: a restart or a proxy hiccup must not lose the sign-in. Give up after a few.
        failures += 1;
        lastFailure = e.message;
        if (failures >= MAX_NETWORK_FAILURES) {
          return e instanceof UnreachableError
            ? { kind: 'unreachable', message: e.message }
            : { kind: 'error', message: `${e.message} (HTTP ${(e as ApiError).status})` };
        }
        if (pastDeadlinePolls > 0) return { kind: 'expired', message: `the code expired (${lastFailure})` };
        onTick({ secondsLeft: secondsLeft(), interval });
        continue;
      }
      if (e instanceof ApiError || e instanceof ProtocolError) return { kind: 'error', message: e.message };
      return { kind: 'error', message: String(e) };
    }
    failures = 0;

    switch (result.kind) {
      case 'approved':
        return { kind: 'approved', signedIn: result.signedIn };
      case 'access_denied':
        return { kind: 'denied', message: result.message };
      case 'expired_token':
        return { kind: 'expired', message: result.message };
      case 'invalid_grant':
        return { kind: 'invalid_grant', message: result.message };
      case 'slow_down':
        interval = positive(result.interval) ?? interval + SLOW_DOWN_STEP_S;
        break;
      case 'authorization_pending':
        // One poll after the deadline gives the server the last word; a second one is ours.
        if (pastDeadlinePolls > 0) {
          return { kind: 'expired', message: 'the code expired before it was approved' };
        }
        break;
    }
    onTick({ secondsLeft: secondsLeft(), interval });
  }
}

function positive(n: unknown): number | undefined {
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : undefined;
}
