import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  cleanServerText,
  escapeServerAddress,
  escapeServerText,
  labelServerText,
  MAX_SERVER_TEXT,
  quoteServerText,
} from '../../src/serverText';
import { COMMAND_LINK, TERMINAL_ESCAPE, UNSAFE_CHAR, vscodeLinks } from '../helpers/hostile';

describe('server text', () => {
  test('the check is live: VS Code would make links of the raw hostile texts', () => {
    assert.deepEqual(vscodeLinks(`see ${COMMAND_LINK} now`), [COMMAND_LINK]);
    assert.equal(vscodeLinks('[x](https://evil.test "title") and [y](file:///etc/passwd)').length, 2);
    assert.deepEqual(vscodeLinks('[x]\n(command:a)'), [], 'a line break becomes a space, which breaks the link');
  });

  test('quoteServerText: a command link cannot form, and the text is quoted', () => {
    const quoted = quoteServerText(COMMAND_LINK);
    assert.equal(quoted, '"[Click] (command:workbench.action.terminal.sendSequence?%7B%22text%22%3A%22rm%22%7D)"');
    assert.deepEqual(vscodeLinks(quoted), []);
    assert.ok(!quoted.includes(']('));
  });

  test('link forms with other schemes, titles, nesting and hidden characters do not survive either', () => {
    for (const hostile of [
      '[x](https://evil.test "title")',
      "[x](https://evil.test 'title')",
      '[x](file:///etc/passwd)',
      '[x](HTTP://EVIL.TEST)',
      '[[x]](command:a)',
      '[x]((command:a)',
      '[x]](command:a)',
      '[x](](command:a)',
      '[a](command:x)[b](command:y)',
      '[x]\u200b(command:a)',
      '[x]\u202e(command:a)',
      '[x]\u0000(command:a)',
      '[x]\r\n(command:a)',
      '[x](comm\u0000and:a)',
      '[x](vscode://ext/path)',
    ]) {
      for (const shown of [escapeServerText(hostile), quoteServerText(hostile), `CoderFlow: ${escapeServerText(hostile)}`]) {
        assert.deepEqual(vscodeLinks(shown), [], `${JSON.stringify(hostile)} -> ${shown}`);
        assert.ok(!shown.includes(']('), `${JSON.stringify(hostile)} -> ${shown}`);
      }
    }
  });

  test('ordinary text is shown unchanged: no backslashes, which VS Code would show as they are', () => {
    for (const plain of [
      'john.doe@company.com',
      'developer (environment:*)',
      'server_admin (server:*), developer (environment:staging)',
      'Sign in with Acme! #1 <SSO> | a_b *c* `d` {e} +f -g',
      'see https://docs.example.com/help, or command:foo',
      'array[0] (zero)',
      'C:\\Users\\x',
      '12 : 30',
      'Jöhn Dœ 😀',
    ]) {
      assert.equal(escapeServerText(plain), plain);
      assert.equal(quoteServerText(plain), `"${plain}"`);
    }
    assert.equal(escapeServerText('[Click](command:a)'), '[Click] (command:a)', 'only "](" gets a space');
  });

  test('escapeServerAddress: the "(" of "](" percent-encoded, so the address still works', () => {
    assert.equal(escapeServerAddress('/device?user_code=BCDF-GHJK'), '/device?user_code=BCDF-GHJK');
    assert.equal(escapeServerAddress('/device/[Click](command:a)'), '/device/[Click]%28command:a)');
    assert.deepEqual(vscodeLinks(`Open https://coder.test${escapeServerAddress('/[x](https://evil.test)')} in a browser`), []);
  });

  test('control characters, C1, DEL and bidi overrides are removed; line breaks become spaces', () => {
    assert.equal(cleanServerText(`a${TERMINAL_ESCAPE}b`), 'a]0;xb');
    assert.equal(cleanServerText('a\u0085b\u009bc\u007fd'), 'a bcd');
    assert.equal(cleanServerText('user\u202egnp.exe\u2066\u2069\u200e\u200f\u061c\ufeff'), 'usergnp.exe');
    assert.equal(cleanServerText('line one\r\nline two\tend'), 'line one line two end');
    assert.doesNotMatch(quoteServerText(`${TERMINAL_ESCAPE}\u202e`), UNSAFE_CHAR);
  });

  test('long texts are shortened with an ellipsis, by characters, not UTF-16 units', () => {
    const long = 'x'.repeat(1000);
    assert.equal(cleanServerText(long).length, MAX_SERVER_TEXT);
    assert.ok(cleanServerText(long).endsWith('…'));
    const emoji = '😀'.repeat(300);
    const cut = cleanServerText(emoji);
    assert.equal(Array.from(cut).length, MAX_SERVER_TEXT);
    assert.doesNotMatch(cut, /[\ud800-\udbff](?![\udc00-\udfff])/, 'no lone surrogate');
    assert.equal(cleanServerText('short'), 'short');
  });

  test('labelServerText: cleaned, $(icons) escaped as VS Code escapes them, nothing else changed', () => {
    assert.equal(labelServerText('Sign in with $(verified) Acme'), 'Sign in with \\$(verified) Acme');
    assert.equal(labelServerText(`john.doe${TERMINAL_ESCAPE}`), 'john.doe]0;x');
    assert.equal(labelServerText('x'.repeat(100), 40).length, 40);
  });

  test('not a string: made one', () => {
    assert.equal(quoteServerText(undefined), '""');
    assert.equal(escapeServerText(42), '42');
  });
});
