// Polling for the end-to-end suites: one retry loop, in the two flavours the tests use.
import { setTimeout as sleep } from 'node:timers/promises';

export { sleep };

/**
 * Calls `fn` every `intervalMs` until it returns a value `accept` takes, and returns that value.
 * After `timeoutMs`, throws what `onTimeout(last)` returns; `last` is the last value (or the
 * error `fn` threw, with `threw` true).
 */
export async function poll(fn, { timeoutMs, intervalMs, accept = () => true, onTimeout }) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await fn();
      if (accept(value)) return value;
      last = { value, threw: false };
    } catch (err) {
      last = { value: err, threw: true };
    }
    if (Date.now() > deadline) throw onTimeout(last);
    await sleep(intervalMs);
  }
}

/** Retries `fn` (an async assertion) until it passes or `timeoutMs` runs out, then throws its last error. */
export function eventually(fn, { timeoutMs = 15_000, intervalMs = 250, message } = {}) {
  return poll(fn, {
    timeoutMs,
    intervalMs,
    onTimeout: ({ value: lastError }) => {
      if (message) lastError.message = `${message}: ${lastError.message}`;
      return lastError;
    },
  });
}

/** Polls `fn` until it returns a truthy value; throws with the last value or error after `timeout` ms. */
export function waitFor(fn, { timeout = 10000, interval = 50, what = 'condition' } = {}) {
  return poll(fn, {
    timeoutMs: timeout,
    intervalMs: interval,
    accept: Boolean,
    onTimeout: ({ value: last }) => {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      return new Error(`timed out after ${timeout} ms waiting for ${what}; last: ${detail}`);
    },
  });
}
