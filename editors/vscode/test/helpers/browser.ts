// A minimal "browser" for the end-to-end tests: fetch, a cookie jar, and regexes that read the
// hidden inputs of server-rendered forms. It signs in with the local login form and approves or
// denies a device code the way a person would on the /device page.

export class Browser {
  readonly cookies = new Map<string, string>();

  constructor(readonly base: string) {}

  private absolute(url: string): string {
    return new URL(url, this.base).toString();
  }

  private remember(response: Response): void {
    for (const header of response.headers.getSetCookie()) {
      const [pair, ...attributes] = header.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age\s*=\s*(0|-\d+)\s*$/i.test(a));
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  private cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  /** One request, no redirect followed; cookies stored. */
  async request(method: string, url: string, form?: Record<string, string>): Promise<{ response: Response; body: string }> {
    const headers: Record<string, string> = { Accept: 'text/html', 'User-Agent': 'coderflow-vscode-e2e-browser' };
    if (this.cookies.size > 0) headers.Cookie = this.cookieHeader();
    let body: string | undefined;
    if (form) {
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      headers.Origin = new URL(this.base).origin;
      body = new URLSearchParams(form).toString();
    }
    const response = await fetch(this.absolute(url), { method, headers, body, redirect: 'manual' });
    this.remember(response);
    return { response, body: await response.text() };
  }

  /** GET, following redirects (as a browser does), cookies stored on the way. */
  async get(url: string): Promise<{ url: string; status: number; body: string }> {
    let current = this.absolute(url);
    for (let hops = 0; hops < 10; hops++) {
      const { response, body } = await this.request('GET', current);
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        current = new URL(location, current).toString();
        continue;
      }
      return { url: current, status: response.status, body };
    }
    throw new Error(`too many redirects from ${url}`);
  }

  /** POST a form; answers the response without following its redirect. */
  async post(url: string, form: Record<string, string>): Promise<{ status: number; location: string | null; body: string }> {
    const { response, body } = await this.request('POST', url, form);
    return { status: response.status, location: response.headers.get('location'), body };
  }

  /** Signs in with the local login form of GET /login. */
  async login(username: string, password: string): Promise<void> {
    const page = await this.get('/login');
    if (page.status !== 200) throw new Error(`GET /login answered ${page.status}: ${snippet(page.body)}`);
    const form = findForm(page.body, (attrs) => attrs.id === 'local-login-form');
    if (!form) throw new Error(`GET /login has no #local-login-form: ${snippet(page.body)}`);
    const fields: Record<string, string> = { ...hiddenInputs(form), username, password };
    if (!fields.csrf_token) throw new Error(`#local-login-form has no csrf_token: ${snippet(form)}`);
    fields.return_to ??= '/';
    const answer = await this.post('/login', fields);
    if (answer.status !== 303) {
      throw new Error(`POST /login answered ${answer.status}, not 303: ${snippet(answer.body)}`);
    }
    if (!this.cookies.has('cf_session')) throw new Error('POST /login set no cf_session cookie');
  }

  /** Opens the verification URL (signed in) and approves or denies the code shown there. */
  async decide(verificationUrl: string, decision: 'approve' | 'deny'): Promise<void> {
    const page = await this.get(verificationUrl);
    if (page.status !== 200) throw new Error(`GET ${verificationUrl} answered ${page.status}: ${snippet(page.body)}`);
    const action = `/device/${decision}`;
    const form =
      findForm(page.body, (attrs) => (attrs.action ?? '').includes(action)) ??
      findForm(page.body, (attrs) => (attrs.action ?? '').includes('/device/approve'));
    if (!form) throw new Error(`the device page ${page.url} has no ${action} form: ${snippet(page.body)}`);
    const fields = hiddenInputs(form);
    if (!fields.csrf_token) throw new Error(`the device form has no csrf_token: ${snippet(form)}`);
    fields.user_code ??= new URL(verificationUrl).searchParams.get('user_code') ?? '';
    const answer = await this.post(action, fields);
    if (answer.status >= 400) {
      throw new Error(`POST ${action} answered ${answer.status}: ${snippet(answer.body)}`);
    }
  }
}

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > 600 ? `${flat.slice(0, 600)}…` : flat;
}

function decodeEntities(value: string): string {
  return value
    .replace(/&quot;/g, '"')
    .replace(/&#0*39;|&#x0*27;|&apos;/gi, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d) => String.fromCodePoint(Number(d)))
    .replace(/&amp;/g, '&');
}

/** The attributes of one tag, e.g. `<input type="hidden" name="x" value="y">`. */
export function attributes(tag: string): Record<string, string> {
  const attrs: Record<string, string> = {};
  const re = /([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*(?:=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  const inner = tag.replace(/^<\s*[a-zA-Z]+/, '').replace(/\/?>$/, '');
  for (const m of inner.matchAll(re)) attrs[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  return attrs;
}

/** The first `<form>…</form>` whose attributes satisfy `match`. */
export function findForm(html: string, match: (attrs: Record<string, string>) => boolean): string | undefined {
  for (const m of html.matchAll(/<form\b[^>]*>[\s\S]*?<\/form>/gi)) {
    const open = /^<form\b[^>]*>/i.exec(m[0])?.[0] ?? '';
    if (match(attributes(open))) return m[0];
  }
  return undefined;
}

/** The hidden inputs of a form, by name (e.g. `name="csrf_token" value="..."`). */
export function hiddenInputs(form: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const m of form.matchAll(/<input\b[^>]*>/gi)) {
    const attrs = attributes(m[0]);
    if ((attrs.type ?? '').toLowerCase() === 'hidden' && attrs.name) fields[attrs.name] = attrs.value ?? '';
  }
  return fields;
}
