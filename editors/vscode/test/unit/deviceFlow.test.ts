import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CoderFlowClient } from '../../src/client';
import { MAX_NETWORK_FAILURES, pollForToken, realClock } from '../../src/deviceFlow';
import { FakeClock, FakeServer } from '../helpers/fakes';

function setup() {
  const server = new FakeServer();
  const client = new CoderFlowClient('http://coder.test', { fetch: server.fetch });
  const clock = new FakeClock();
  const polls = () => server.fetch.calls.filter((c) => c.path === '/api/auth/device/token').length;
  return { server, client, clock, polls };
}

describe('pollForToken', () => {
  test('waits the interval before every poll, until approved', async () => {
    const { server, client, clock, polls } = setup();
    server.tokenReplies.push(server.tokenError('authorization_pending'), server.tokenError('authorization_pending'));
    const key = server.approveNextPoll();
    const outcome = await pollForToken(client, server.deviceCode, clock, new AbortController().signal);
    assert.equal(outcome.kind, 'approved');
    assert.equal(outcome.kind === 'approved' && outcome.signedIn.api_key, key);
    assert.deepEqual(clock.sleeps, [5000, 5000, 5000]);
    assert.equal(polls(), 3);
  });

  test('honours the interval the server gives', async () => {
    const { server, client, clock } = setup();
    server.approveNextPoll();
    await pollForToken(client, { ...server.deviceCode, interval: 2 }, clock, new AbortController().signal);
    assert.deepEqual(clock.sleeps, [2000]);
  });

  test('defaults to 5 s when the interval is missing or nonsense', async () => {
    const { server, client, clock } = setup();
    server.approveNextPoll();
    await pollForToken(client, { ...server.deviceCode, interval: 0 }, clock, new AbortController().signal);
    assert.deepEqual(clock.sleeps, [5000]);
  });

  test('slow_down with an interval takes that interval', async () => {
    const { server, client, clock } = setup();
    server.tokenReplies.push(server.tokenError('slow_down', { interval: 12 }), server.tokenError('authorization_pending'));
    server.approveNextPoll();
    await pollForToken(client, { ...server.deviceCode, interval: 2 }, clock, new AbortController().signal);
    assert.deepEqual(clock.sleeps, [2000, 12000, 12000]);
  });

  test('slow_down without an interval adds 5 s, and again on each slow_down', async () => {
    const { server, client, clock } = setup();
    server.tokenReplies.push(server.tokenError('slow_down'), server.tokenError('slow_down'));
    server.approveNextPoll();
    const ticks: number[] = [];
    await pollForToken(client, { ...server.deviceCode, interval: 1 }, clock, new AbortController().signal, (t) =>
      ticks.push(t.interval),
    );
    assert.deepEqual(clock.sleeps, [1000, 6000, 11000]);
    assert.deepEqual(ticks, [1, 6, 11]);
  });

  test('reports the time left', async () => {
    const { server, client, clock } = setup();
    server.tokenReplies.push(server.tokenError('authorization_pending'));
    server.approveNextPoll();
    const left: number[] = [];
    await pollForToken(client, { ...server.deviceCode, expires_in: 60, interval: 5 }, clock, new AbortController().signal, (t) =>
      left.push(t.secondsLeft),
    );
    assert.deepEqual(left, [60, 55]);
  });

  for (const [error, kind] of [
    ['access_denied', 'denied'],
    ['expired_token', 'expired'],
    ['invalid_grant', 'invalid_grant'],
  ] as const) {
    test(`${error} ends polling as ${kind}`, async () => {
      const { server, client, clock, polls } = setup();
      server.tokenReplies.push(server.tokenError('authorization_pending'), server.tokenError(error));
      const outcome = await pollForToken(client, server.deviceCode, clock, new AbortController().signal);
      assert.deepEqual(outcome, { kind, message: `${error} message` });
      assert.equal(polls(), 2);
    });
  }

  test('gives up as expired when the server still says pending after expires_in', async () => {
    const { server, client, clock, polls } = setup();
    const outcome = await pollForToken(client, { ...server.deviceCode, expires_in: 12, interval: 5 }, clock, new AbortController().signal);
    assert.equal(outcome.kind, 'expired');
    // Polls at 5 s and 10 s are in time; the one at 15 s is past the deadline and the last.
    assert.equal(polls(), 3);
  });

  test('rides out a short outage while polling', async () => {
    const { server, client, clock } = setup();
    let n = 0;
    server.override = (req) => (req.path === '/api/auth/device/token' && n++ < MAX_NETWORK_FAILURES - 1 ? 'unreachable' : undefined);
    server.approveNextPoll();
    const outcome = await pollForToken(client, server.deviceCode, clock, new AbortController().signal);
    assert.equal(outcome.kind, 'approved');
  });

  test('a server that stays unreachable ends polling as unreachable', async () => {
    const { server, client, clock, polls } = setup();
    server.down = true;
    const outcome = await pollForToken(client, server.deviceCode, clock, new AbortController().signal);
    assert.equal(outcome.kind, 'unreachable');
    assert.match(outcome.kind === 'unreachable' ? outcome.message : '', /cannot reach http:\/\/coder.test: .*ECONNREFUSED/);
    assert.equal(polls(), MAX_NETWORK_FAILURES);
  });

  test('an unexpected error answer ends polling with its message', async () => {
    const { server, client, clock } = setup();
    server.tokenReplies.push({ status: 400, json: { error: 'bad_request', message: 'the body is wrong' } });
    const outcome = await pollForToken(client, server.deviceCode, clock, new AbortController().signal);
    assert.deepEqual(outcome, { kind: 'error', message: 'the body is wrong' });
  });

  test('cancelling during the wait stops at once, with no further poll', async () => {
    const { server, client, clock, polls } = setup();
    const controller = new AbortController();
    clock.onSleep = () => {
      if (clock.sleeps.length === 2) controller.abort();
    };
    const outcome = await pollForToken(client, server.deviceCode, clock, controller.signal);
    assert.deepEqual(outcome, { kind: 'cancelled' });
    assert.equal(polls(), 1);
  });

  test('cancelling during a poll request stops too', async () => {
    const { server, client, clock } = setup();
    const controller = new AbortController();
    server.override = (req) => {
      if (req.path === '/api/auth/device/token') {
        setTimeout(() => controller.abort(), 5);
        return 'hang';
      }
      return undefined;
    };
    const outcome = await pollForToken(client, server.deviceCode, clock, controller.signal);
    assert.deepEqual(outcome, { kind: 'cancelled' });
  });

  test('the real clock sleeps and can be aborted', async () => {
    const started = Date.now();
    await realClock.sleep(30);
    assert.ok(Date.now() - started >= 25);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 10);
    await assert.rejects(realClock.sleep(10_000, controller.signal), /cancelled/);
  });
});
