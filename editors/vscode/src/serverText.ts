// Text that came from a server, made safe to show in the editor.
//
// VS Code turns `[label](command:...)` in a notification (information, warning, error, progress)
// into a link that runs the command, and renders `$(icon)` in labels and the status bar. A server
// decides its error messages, user names, display name and verification address, so none of them
// reaches the UI as is: messages use fixed texts with the server's values through
// `quoteServerText` / `escapeServerText`; labels (quick pick, status bar, buttons) use
// `labelServerText`. Both change as little as they can: the user reads the server's text as sent.

/** Characters longer server texts are shortened to (an ellipsis marks the cut). */
export const MAX_SERVER_TEXT = 200;

/**
 * C0 and C1 controls, DEL, and the invisible characters that reorder or hide text: bidi marks,
 * embeddings, overrides and isolates (U+200E/F, U+202A-E, U+2066-9, U+061C), zero-width
 * characters, line/paragraph separators and the BOM.
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

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
 * VS Code's notification link syntax, the only markup a notification or progress text has
 * (`LINK_REGEX` of `parseLinkedText`, src/vs/base/common/linkedText.ts):
 *
 *     /\[([^\]]+)\]\(((?:https?:\/\/|command:|file:)[^\)\s]+)(?: (["'])(.+?)(\3))?\)/gi
 *
 * Every other character, backslashes included, is shown as written (text nodes; no other
 * markdown, no bare-URL links), so backslash escapes would only show up as backslashes.
 * Every link needs `](` with nothing in between; a space there breaks it.
 */
const LINK_JOINT = /\]\(/g;

/**
 * A server text for notification and progress texts: cleaned as by `cleanServerText`, and a space
 * put into every `](`, so no `[label](command:...)` link can form. Nothing else changes
 * (`john.doe@company.com`, `developer (environment:*)` stay as they are).
 *
 * The text around it must not end with `]` or start with `(` (or a link could form across the
 * joint): `quoteServerText` puts it in quotes; the other callers put it after `CoderFlow: ` at the
 * end of a message or progress title (VS Code adds `: ` and the progress message after a title).
 */
export function escapeServerText(text: unknown, max = MAX_SERVER_TEXT): string {
  return cleanServerText(text, max).replace(LINK_JOINT, '] (');
}

/**
 * The path, query and fragment of a checked address on the server's origin, for a notification
 * that asks the user to open it: cleaned, and the `(` of every `](` percent-encoded instead of
 * spaced out (`]%28`), so no link can form and the address still works when typed or copied.
 * It follows the origin (a path starts with `/`) and is followed by a space.
 */
export function escapeServerAddress(text: unknown, max = MAX_SERVER_TEXT): string {
  return cleanServerText(text, max).replace(LINK_JOINT, ']%28');
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
