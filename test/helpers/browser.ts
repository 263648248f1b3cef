/**
 * Just enough of a browser for sign-in tests over real HTTP: one cookie jar for the host (browsers
 * do not tell ports apart for cookies), cookie paths honoured, redirects followed by hand so a test
 * can stop at any hop, and the development provider's sign-in form submitted.
 */
export interface Cookie {
  readonly value: string;
  readonly path: string;
  readonly httpOnly: boolean;
  readonly sameSite: string | undefined;
  readonly secure: boolean;
}

/** Just enough of a browser: one cookie jar for the host (cookies ignore ports), redirects followed by hand. */
export class Browser {
  readonly cookies = new Map<string, Cookie>();
  readonly visited: string[] = [];

  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const path = new URL(url).pathname;
    const cookie = [...this.cookies]
      .filter(([, c]) => path.startsWith(c.path))
      .map(([k, c]) => `${k}=${c.value}`)
      .join('; ');
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers ?? {}), cookie } });
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      const attr = (n: string) => attrs.find((a) => a.toLowerCase().startsWith(n.toLowerCase()));
      const maxAge = attr('max-age=');
      if (value === '' || maxAge?.toLowerCase() === 'max-age=0') {
        this.cookies.delete(name);
        continue;
      }
      this.cookies.set(name, {
        value,
        path: attr('path=')?.slice(5) ?? '/',
        httpOnly: attr('httponly') !== undefined,
        sameSite: attr('samesite=')?.slice(9),
        secure: attr('secure') !== undefined,
      });
    }
    return res;
  }

  /** Follows redirects from `url`; returns the last response and where it was. */
  async go(url: string, init: RequestInit = {}): Promise<{ res: Response; url: string }> {
    let res = await this.request(url, init);
    let at = url;
    this.visited.push(at);
    for (let i = 0; i < 15 && res.status >= 300 && res.status < 400; i++) {
      at = new URL(res.headers.get('location')!, at).toString();
      this.visited.push(at);
      res = await this.request(at);
    }
    return { res, url: at };
  }

  /** Submits the provider's sign-in form on the page at `url`. */
  async signIn(page: { res: Response; url: string }, login: string, password: string) {
    const html = await page.res.text();
    const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
    if (!action) throw new Error(`no sign-in form at ${page.url}: ${html.slice(0, 300)}`);
    let res = await this.request(new URL(action, page.url).toString(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ login, password }).toString(),
    });
    let at = new URL(action, page.url).toString();
    // Follow only to the provider's own pages: stop at the redirect back to the app, to keep its URL.
    while (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location')!, at).toString();
      if (new URL(next).pathname === '/auth/callback') return next;
      at = next;
      res = await this.request(at);
    }
    throw new Error(
      `the provider did not send the browser back (HTTP ${res.status}): ${(await res.text()).slice(0, 1000)}`,
    );
  }
}
