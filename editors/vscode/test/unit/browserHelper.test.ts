// The e2e tests' "browser" reads hidden inputs with regexes: check it on the usual HTML variants.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { attributes, findForm, hiddenInputs } from '../helpers/browser';

describe('e2e browser helper', () => {
  const page = `<html><body>
    <a href="/auth/oidc/login">Sign in with Acme</a>
    <form method="post" action="/login" id='local-login-form' class="x">
      <input type="hidden" name="csrf_token" value="abc&amp;def">
      <input name="return_to" value="/device?user_code=BCDF-GHJK" type="hidden" />
      <input type=text name=username>
      <input type="password" name="password">
    </form>
    <form method="post" action="/device/approve"><input type="hidden" value="t2" name="csrf_token"><input type="hidden" name="user_code" value="BCDF-GHJK"><button>Approve</button></form>
    <form method="post" action="/device/deny"><input type="hidden" name="csrf_token" value="t3"></form>
  </body></html>`;

  test('finds the login form by id and reads its hidden inputs in any attribute order', () => {
    const form = findForm(page, (a) => a.id === 'local-login-form');
    assert.ok(form);
    assert.deepEqual(hiddenInputs(form), { csrf_token: 'abc&def', return_to: '/device?user_code=BCDF-GHJK' });
  });

  test('finds forms by action', () => {
    assert.deepEqual(hiddenInputs(findForm(page, (a) => a.action === '/device/approve') ?? ''), {
      csrf_token: 't2',
      user_code: 'BCDF-GHJK',
    });
    assert.deepEqual(hiddenInputs(findForm(page, (a) => a.action === '/device/deny') ?? ''), { csrf_token: 't3' });
  });

  test('parses unquoted and single-quoted attributes', () => {
    assert.deepEqual(attributes(`<input type=hidden name='a' value="b">`), { type: 'hidden', name: 'a', value: 'b' });
  });
});
