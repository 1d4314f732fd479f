import assert from 'node:assert/strict';
import * as net from 'node:net';
import { describe, test } from 'node:test';
import {
  ApiError,
  CancelledError,
  CoderFlowClient,
  normalizeServerUrl,
  ProtocolError,
  UnreachableError,
} from '../../src/client';
import { fakeFetch, FakeServer } from '../helpers/fakes';

describe('normalizeServerUrl', () => {
  test('drops trailing slashes and keeps a path', () => {
    assert.equal(normalizeServerUrl(' https://coder.example.com/ '), 'https://coder.example.com');
    assert.equal(normalizeServerUrl('http://127.0.0.1:8080/coder//'), 'http://127.0.0.1:8080/coder');
  });
  test('refuses what is not an http(s) server address', () => {
    assert.throws(() => normalizeServerUrl('coder.example.com'), /not a URL/);
    assert.throws(() => normalizeServerUrl('ftp://coder.example.com'), /https:\/\//);
    assert.throws(() => normalizeServerUrl('https://u:p@coder.example.com'), /user name or password/);
    assert.throws(() => normalizeServerUrl('https://coder.example.com/?x=1'), /query/);
  });
});

describe('CoderFlowClient', () => {
  test('reads the public SSO configuration', async () => {
    const server = new FakeServer();
    const client = new CoderFlowClient('http://coder.test/', { fetch: server.fetch });
    const config = await client.oidcConfig();
    assert.deepEqual(config, server.config);
    assert.equal(server.fetch.calls[0].path, '/api/auth/oidc/config');
  });

  test('SSO off means local login allowed, whatever the answer says', async () => {
    const fetch = fakeFetch(() => ({
      json: { sso_enabled: false, display_name: 'Sign in with SSO', allow_local_auth: false, login_url: null },
    }));
    const config = await new CoderFlowClient('http://coder.test', { fetch }).oidcConfig();
    assert.equal(config.allow_local_auth, true);
    assert.equal(config.login_url, null);
  });

  test('sends JSON with a content type, and the key as a bearer token', async () => {
    const server = new FakeServer();
    const client = new CoderFlowClient('http://coder.test', { fetch: server.fetch });
    const code = await client.requestDeviceCode('VS Code');
    assert.equal(code.user_code, 'BCDF-GHJK');
    const call = server.fetch.calls[0];
    assert.equal(call.method, 'POST');
    assert.equal(call.path, '/api/auth/device/code');
    assert.equal(call.headers['content-type'], 'application/json');
    assert.deepEqual(call.body, { client_name: 'VS Code' });

    const key = server.issueKey();
    const me = await client.me(key);
    assert.equal(me.username, 'johndoe');
    assert.equal(server.fetch.calls[1].headers.authorization, `Bearer ${key}`);
  });

  test('maps the token endpoint answers', async () => {
    const server = new FakeServer();
    const client = new CoderFlowClient('http://coder.test', { fetch: server.fetch });
    server.tokenReplies.push(
      server.tokenError('slow_down', { interval: 10 }),
      server.tokenError('slow_down'),
      server.tokenError('access_denied'),
      server.tokenError('expired_token'),
      server.tokenError('invalid_grant'),
    );
    const key = server.approveNextPoll();
    assert.deepEqual(await client.pollDeviceToken('dc'), { kind: 'slow_down', interval: 10 });
    assert.deepEqual(await client.pollDeviceToken('dc'), { kind: 'slow_down', interval: undefined });
    assert.deepEqual(await client.pollDeviceToken('dc'), { kind: 'access_denied', message: 'access_denied message' });
    assert.deepEqual(await client.pollDeviceToken('dc'), { kind: 'expired_token', message: 'expired_token message' });
    assert.deepEqual(await client.pollDeviceToken('dc'), { kind: 'invalid_grant', message: 'invalid_grant message' });
    const approved = await client.pollDeviceToken('dc');
    assert.equal(approved.kind, 'approved');
    assert.equal(approved.kind === 'approved' && approved.signedIn.api_key, key);
    assert.deepEqual(await client.pollDeviceToken('dc'), { kind: 'authorization_pending' });
    assert.deepEqual(server.fetch.calls[0].body, { device_code: 'dc' });
  });

  test('error answers become ApiError with code, message and Retry-After', async () => {
    const fetch = fakeFetch(() => ({
      status: 429,
      json: { error: 'rate_limited', message: 'slow down' },
      headers: { 'retry-after': '30' },
    }));
    const client = new CoderFlowClient('http://coder.test', { fetch });
    await assert.rejects(client.login('a', 'b', 'k'), (e: unknown) => {
      assert.ok(e instanceof ApiError);
      assert.equal(e.status, 429);
      assert.equal(e.code, 'rate_limited');
      assert.equal(e.message, 'slow down');
      assert.equal(e.retryAfter, 30);
      return true;
    });
  });

  test('a non-JSON error answer still gives a readable error', async () => {
    const fetch = fakeFetch(() => ({ status: 502, text: '<html>bad gateway</html>' }));
    await assert.rejects(new CoderFlowClient('http://coder.test', { fetch }).oidcConfig(), (e: unknown) => {
      assert.ok(e instanceof ApiError);
      assert.equal(e.code, 'http_502');
      assert.match(e.message, /HTTP 502/);
      return true;
    });
  });

  test('a 200 that is not the API is a protocol error', async () => {
    const fetch = fakeFetch(() => ({ text: '<html>a web page</html>' }));
    await assert.rejects(new CoderFlowClient('http://coder.test', { fetch }).oidcConfig(), ProtocolError);
    const fetch2 = fakeFetch(() => ({ json: { hello: 1 } }));
    await assert.rejects(new CoderFlowClient('http://coder.test', { fetch: fetch2 }).oidcConfig(), /sso_enabled/);
  });

  test('a redirect is reported, not followed', async () => {
    const fetch = fakeFetch(() => ({ status: 301, headers: { location: 'https://coder.test/api/me' } }));
    await assert.rejects(new CoderFlowClient('http://coder.test', { fetch }).me('cf_x'), /redirects to https:\/\/coder.test/);
  });

  test('a network failure is UnreachableError with the cause', async () => {
    const fetch = fakeFetch(() => 'unreachable');
    await assert.rejects(new CoderFlowClient('http://coder.test', { fetch }).oidcConfig(), (e: unknown) => {
      assert.ok(e instanceof UnreachableError);
      assert.match(e.detail, /ECONNREFUSED/);
      return true;
    });
  });

  test('a server that does not answer times out as unreachable', async () => {
    const fetch = fakeFetch(() => 'hang');
    const client = new CoderFlowClient('http://coder.test', { fetch, timeoutMs: 50 });
    await assert.rejects(client.oidcConfig(), (e: unknown) => e instanceof UnreachableError && /no answer/.test(e.detail));
  });

  test('aborting the signal cancels a request', async () => {
    const fetch = fakeFetch(() => 'hang');
    const controller = new AbortController();
    const pending = new CoderFlowClient('http://coder.test', { fetch }).oidcConfig(controller.signal);
    setTimeout(() => controller.abort(), 10);
    await assert.rejects(pending, CancelledError);
  });

  test('a real closed port is unreachable (global fetch)', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const client = new CoderFlowClient(`http://127.0.0.1:${port}`);
    await assert.rejects(client.oidcConfig(), (e: unknown) => {
      assert.ok(e instanceof UnreachableError, String(e));
      assert.match(e.message, new RegExp(`cannot reach http://127.0.0.1:${port}`));
      assert.match(e.detail, /ECONNREFUSED/);
      return true;
    });
  });

  test('lists keys and deletes one by id (encoded)', async () => {
    const server = new FakeServer();
    const key = server.issueKey();
    const client = new CoderFlowClient('http://coder.test', { fetch: server.fetch });
    const keys = await client.listKeys(key);
    assert.equal(keys.length, 1);
    assert.ok(key.startsWith(keys[0].prefix));
    await client.deleteKey(key, keys[0].id);
    assert.equal(server.keys.size, 0);
    server.override = (req) => (req.method === 'DELETE' ? { status: 204 } : undefined);
    await client.deleteKey(key, 'a/b');
    assert.equal(server.fetch.calls.at(-1)?.path, '/api/keys/a%2Fb');
  });
});
