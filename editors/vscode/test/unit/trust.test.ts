import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkVerificationUrl, isInsecureServerUrl, isLoopbackHost, isPlausibleUserCode } from '../../src/trust';

const problem = (raw: string, server: string) => {
  const check = checkVerificationUrl(raw, server);
  return check.ok ? undefined : check.problem;
};

describe('trust: verification addresses', () => {
  test('https on the server origin is accepted, path and query included', () => {
    const check = checkVerificationUrl('https://coder.example.com/device?user_code=BCDF-GHJK', 'https://coder.example.com');
    assert.ok(check.ok);
    assert.equal(check.ok && check.url.href, 'https://coder.example.com/device?user_code=BCDF-GHJK');
    // A server under a path prefix: same origin.
    assert.ok(checkVerificationUrl('https://coder.example.com/coder/device', 'https://coder.example.com/coder').ok);
    assert.ok(checkVerificationUrl('https://coder.example.com:443/device', 'https://coder.example.com').ok);
  });

  test('another origin is refused, saying which origin was expected', () => {
    for (const raw of [
      'https://evil.test/device',
      'https://coder.example.com.evil.test/device',
      'https://coder.example.com:8443/device',
      'https://coder.example.com@evil.test/device',
      'http://coder.example.com/device',
    ]) {
      assert.equal(problem(raw, 'https://coder.example.com'), 'not on its own origin (https://coder.example.com)', raw);
    }
  });

  test('schemes other than http(s), and non-URLs, are refused', () => {
    assert.equal(problem('command:workbench.action.quit', 'https://coder.example.com'), 'not a web address (command)');
    assert.equal(problem('javascript:alert(1)', 'https://coder.example.com'), 'not a web address (javascript)');
    assert.equal(problem('file:///etc/passwd', 'https://coder.example.com'), 'not a web address (file)');
    assert.equal(problem('/device', 'https://coder.example.com'), 'not a URL');
    assert.equal(problem('', 'https://coder.example.com'), 'not a URL');
  });

  test('http only on loopback, and on the same loopback origin', () => {
    assert.ok(checkVerificationUrl('http://127.0.0.1:8080/device', 'http://127.0.0.1:8080').ok);
    assert.ok(checkVerificationUrl('http://localhost:8080/device', 'http://localhost:8080').ok);
    assert.ok(checkVerificationUrl('http://[::1]:8080/device', 'http://[::1]:8080').ok);
    assert.match(problem('http://localhost:8080/device', 'http://127.0.0.1:8080') ?? '', /not on its own origin/);
    // A profile the user kept on plain http over the network: its verification page is still refused.
    assert.match(problem('http://coder.lan/device', 'http://coder.lan') ?? '', /^not https/);
  });

  test('credentials in the address are refused', () => {
    assert.equal(problem('https://u:p@coder.example.com/device', 'https://coder.example.com'), 'carrying a user name or password');
  });
});

describe('trust: hosts, server URLs, user codes', () => {
  test('loopback hosts', () => {
    for (const h of ['localhost', 'LOCALHOST', '127.0.0.1', '127.1.2.3', '[::1]']) assert.ok(isLoopbackHost(h), h);
    for (const h of ['localhost.evil.test', '128.0.0.1', '127.0.0.1.evil.test', '::1', '10.0.0.1', 'coder.test']) {
      assert.ok(!isLoopbackHost(h), h);
    }
    // The URL parser's spellings of 127.0.0.1 count too.
    assert.ok(isLoopbackHost(new URL('http://127.1/').hostname));
    assert.ok(isLoopbackHost(new URL('http://0x7f.0.0.1/').hostname));
  });

  test('http off loopback is insecure; https and loopback http are not', () => {
    assert.ok(isInsecureServerUrl('http://coder.example.com'));
    assert.ok(isInsecureServerUrl('http://10.0.0.5:8080'));
    assert.ok(!isInsecureServerUrl('https://coder.example.com'));
    assert.ok(!isInsecureServerUrl('http://127.0.0.1:8080'));
    assert.ok(!isInsecureServerUrl('http://localhost:8080'));
    assert.ok(!isInsecureServerUrl('http://[::1]:8080'));
  });

  test('user codes: letters and digits in dash-joined groups only', () => {
    for (const c of ['BCDF-GHJK', 'bcdfghjk', 'ABC-123-XYZ']) assert.ok(isPlausibleUserCode(c), c);
    for (const c of ['', 'BCDF GHJK', 'BCDF-GHJK\nrm -rf ~\n', '[x](command:a)', '-BCDF', 'BCDF--GHJK', 'A'.repeat(33), 'BCDF\u202eKJHG']) {
      assert.ok(!isPlausibleUserCode(c), JSON.stringify(c));
    }
  });
});
