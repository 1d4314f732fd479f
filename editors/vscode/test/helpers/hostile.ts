// What a malicious server sends, and how to tell that it reached the UI only as harmless text.

/** VS Code's notification link syntax (src/vs/base/common/linkedText.ts, LINK_REGEX). */
export const VSCODE_LINK = /\[([^\]]+)\]\(((?:https?:\/\/|command:|file:)[^\)\s]+)(?: (["'])(.+?)(\3))?\)/i;

/**
 * The links VS Code would make of a notification text: the message prepared as
 * `NotificationViewItem.parseNotificationMessage` does (cut to 1000 characters, line breaks to
 * spaces, trimmed), then every match of `LINK_REGEX`, as `parseLinkedText` finds them.
 */
export function vscodeLinks(text: string): string[] {
  let message = text.length > 1000 ? `${text.substring(0, 1000)}...` : text;
  message = message.replace(/(\r\n|\n|\r)/gm, ' ').trim();
  return [...message.matchAll(new RegExp(VSCODE_LINK.source, 'gi'))].map((m) => m[0]);
}
/** A link that, clicked in a notification, types into the terminal. */
export const COMMAND_LINK = '[Click](command:workbench.action.terminal.sendSequence?%7B%22text%22%3A%22rm%22%7D)';
/** A terminal title escape sequence. */
export const TERMINAL_ESCAPE = '\u001b]0;x\u0007';
/** Control, DEL, C1 and bidi / invisible characters that must never reach the UI. */
export const UNSAFE_CHAR = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
/** A server value with all of the above, and a right-to-left override. */
export const HOSTILE = `${COMMAND_LINK}${TERMINAL_ESCAPE}\u202egnp.exe`;

/** Problems of a markdown-capable UI text (notification, progress), or [] when it is harmless. */
export function notificationProblems(text: string): string[] {
  const problems: string[] = [];
  for (const link of vscodeLinks(text)) problems.push(`forms a VS Code link: ${link}`);
  // Stricter than the pattern: no link of any scheme can form without "](".
  if (text.includes('](')) problems.push('contains "]("');
  if (UNSAFE_CHAR.test(text)) problems.push('contains a control or bidi character');
  return problems;
}

/** Problems of a label (quick pick, button, status bar): no control characters, no server icons. */
export function labelProblems(text: string): string[] {
  const problems: string[] = [];
  if (UNSAFE_CHAR.test(text)) problems.push('contains a control or bidi character');
  return problems;
}
