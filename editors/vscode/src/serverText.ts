// Text that came from a server, made safe to show in the editor.
//
// VS Code turns `[label](command:...)` in a notification (information, warning, error, progress)
// into a link that runs the command, and renders `$(icon)` in labels and the status bar. A server
// decides its error messages, user names, display name and verification address, so none of them
// reaches the UI as is: messages use fixed texts with the server's values through
// `quoteServerText` / `escapeServerText`; labels (quick pick, status bar, buttons) use
// `labelServerText`.

/** Characters longer server texts are shortened to (an ellipsis marks the cut). */
export const MAX_SERVER_TEXT = 200;

/**
 * C0 and C1 controls, DEL, and the invisible characters that reorder or hide text: bidi marks,
 * embeddings, overrides and isolates (U+200E/F, U+202A-E, U+2066-9, U+061C), zero-width
 * characters, line/paragraph separators and the BOM.
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/** Markdown punctuation that can start emphasis, code, headings, lists, HTML or a link; and `"`. */
const MARKDOWN = new Set(['\\', '`', '*', '_', '{', '}', '[', ']', '(', ')', '#', '+', '-', '.', '!', '<', '>', '|', '"']);

/** A character that can end a URI scheme (`command`, `https`, `vscode-insiders`, `a+b.c`). */
const SCHEME_CHAR = /[A-Za-z0-9+.\-]/;

/**
 * Control and invisible characters removed (whitespace controls become a space), shortened to
 * `max` characters with an ellipsis. No escaping: for plain-text places only.
 */
export function cleanServerText(text: unknown, max = MAX_SERVER_TEXT): string {
  const s = String(text ?? '')
    .replace(/[\t\n\v\f\r\u0085\u2028\u2029]+/g, ' ')
    .replace(CONTROL, '');
  const chars = Array.from(s);
  return chars.length > max ? `${chars.slice(0, Math.max(0, max - 1)).join('')}…` : s;
}

/**
 * A server text for markdown-capable UI text (notifications, progress): cleaned as by
 * `cleanServerText`, every markdown punctuation character backslash-escaped, and the colon of
 * anything that looks like a URI scheme (`command:`, `https:`) escaped, so no link can form.
 */
export function escapeServerText(text: unknown, max = MAX_SERVER_TEXT): string {
  const chars = Array.from(cleanServerText(text, max));
  let out = '';
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (MARKDOWN.has(c)) out += `\\${c}`;
    else if (c === ':' && i > 0 && SCHEME_CHAR.test(chars[i - 1])) out += '\\:';
    else out += c;
  }
  return out;
}

/** `escapeServerText` in double quotes: a server's value inside one of the extension's sentences. */
export function quoteServerText(text: unknown, max = MAX_SERVER_TEXT): string {
  return `"${escapeServerText(text, max)}"`;
}

/**
 * A server text for a label that renders `$(icon)` but no links (quick pick items, buttons, the
 * status bar): cleaned, and `$(` escaped the way VS Code's `escapeIcons` does.
 */
export function labelServerText(text: unknown, max = MAX_SERVER_TEXT): string {
  return cleanServerText(text, max).replace(/\$\(/g, '\\$(');
}
