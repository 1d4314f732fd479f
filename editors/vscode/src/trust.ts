// What the extension accepts from a server before it opens, shows or copies it: the verification
// address (https, or http on loopback, and on the server's own origin) and the user code. Also
// which server URLs travel unencrypted.

/** A loopback host as the URL parser writes it: 127.0.0.0/8, [::1] or localhost. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The URL is `https:`, or `http:` on a loopback host. */
export function isSecureUrl(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname));
}

/**
 * A server URL whose requests would travel unencrypted over a network: `http:` on a host that is
 * not loopback. Passwords and API keys sent there can be read and changed on the way.
 */
export function isInsecureServerUrl(serverUrl: string): boolean {
  try {
    const url = new URL(serverUrl);
    return url.protocol === 'http:' && !isLoopbackHost(url.hostname);
  } catch {
    return false;
  }
}

/** The origin of a (normalised) server URL, e.g. `https://coder.example.com`. */
export function originOf(serverUrl: string): string {
  return new URL(serverUrl).origin;
}

export type UrlCheck = { ok: true; url: URL } | { ok: false; problem: string };

/**
 * Checks an address the server sent for the user's browser (`verification_uri`,
 * `verification_uri_complete`): it must parse, carry no credentials, be https (or http on
 * loopback) and be on the origin of the profile's server URL. `problem` completes the sentence
 * "the server sent a verification address that is …".
 */
export function checkVerificationUrl(raw: string, serverUrl: string): UrlCheck {
  const origin = originOf(serverUrl);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, problem: 'not a URL' };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    return { ok: false, problem: `not a web address (${url.protocol.replace(/:$/, '')})` };
  }
  if (url.origin !== origin) {
    return { ok: false, problem: `not on its own origin (${origin})` };
  }
  if (!isSecureUrl(url)) {
    return { ok: false, problem: 'not https (http is accepted only on this computer: localhost, 127.0.0.1, [::1])' };
  }
  if (url.username || url.password) {
    return { ok: false, problem: 'carrying a user name or password' };
  }
  return { ok: true, url };
}

/** Longest user code accepted (CoderFlow sends 9 characters: `XXXX-XXXX`). */
export const MAX_USER_CODE = 32;

/**
 * A user code the extension may show and put on the clipboard: letters and digits in groups
 * joined by single dashes, nothing else (no spaces, newlines or punctuation to paste elsewhere).
 */
export function isPlausibleUserCode(code: string): boolean {
  return code.length > 0 && code.length <= MAX_USER_CODE && /^[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*$/.test(code);
}
