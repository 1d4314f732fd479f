import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cleanServerText, escapeServerText, labelServerText, MAX_SERVER_TEXT, quoteServerText } from '../../src/serverText';
import { COMMAND_LINK, TERMINAL_ESCAPE, UNSAFE_CHAR, VSCODE_LINK } from '../helpers/hostile';

describe('server text', () => {
  test('quoteServerText: a command link cannot form, and the text is quoted', () => {
    const quoted = quoteServerText(COMMAND_LINK);
    assert.equal(
      quoted,
      '"\\[Click\\]\\(command\\:workbench\\.action\\.terminal\\.sendSequence?%7B%22text%22%3A%22rm%22%7D\\)"',
    );
    assert.doesNotMatch(quoted, VSCODE_LINK);
    assert.ok(!quoted.includes(']('));
    assert.doesNotMatch(quoted, /command:/i);
  });

  test('link forms with other schemes, titles and nesting do not survive either', () => {
    for (const hostile of [
      '[x](https://evil.test "title")',
      '[x](file:///etc/passwd)',
      '[[x]](command:a)',
      '<command:a>',
      'see COMMAND:workbench.action.quit',
      '[x]\u200b(command:a)',
      '[x](comm\u0000and:a)',
      '[x](vscode://ext/path)',
    ]) {
      const escaped = escapeServerText(hostile);
      assert.doesNotMatch(escaped, VSCODE_LINK, hostile);
      assert.ok(!escaped.includes(']('), `${hostile} -> ${escaped}`);
      assert.doesNotMatch(escaped, /[a-z0-9+.-]:/i, `${hostile} -> ${escaped}`);
    }
  });

  test('every markdown punctuation character is backslash-escaped', () => {
    assert.equal(escapeServerText('\\`*_{}[]()#+-.!<>|"'), '\\\\\\`\\*\\_\\{\\}\\[\\]\\(\\)\\#\\+\\-\\.\\!\\<\\>\\|\\"');
    assert.equal(escapeServerText('johndoe'), 'johndoe');
    assert.equal(escapeServerText('12 : 30'), '12 : 30', 'a colon after a space starts no scheme');
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
