/**
 * Browser sign-in for the server's own pages (the reporting UI, Slack's confirm page): the OAuth
 * authorization code flow with PKCE (RFC 7636, S256) against the OpenID provider the API server
 * already trusts, ending in a short-lived session cookie.
 *
 *   GET  /auth/login?next=/path   state, nonce and code verifier go into a sealed cookie bound to
 *                                 this browser; the browser is sent to the provider
 *   GET  /auth/callback           state checked, code exchanged with the verifier, the ID token
 *                                 verified (signature, issuer, audience, expiry, nonce) with the same
 *                                 jose code as bearer tokens; session cookie set; back to `next`
 *   POST /auth/logout             the session ends here and now, even for a copy of its cookie
 *
 * Other code reads the signed-in person with `sessions.userOf(request)`, and sends a browser that
 * has none to `sessions.loginPath(next)`.
 *
 * Cookies are sealed with AES-256-GCM (authenticated: a changed byte makes the cookie worthless),
 * one key per purpose derived with HKDF from the server's session key, so a flow cookie can never
 * pass as a session cookie. They are HttpOnly, SameSite=Lax, and Secure unless the server is
 * reached on a loopback address over plain HTTP (the embedded stack).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, createHash, timingSafeEqual } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { getCookie, setCookie, deleteCookie } from 'hono/cookie';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Config } from '../config.ts';
import { UserError } from '../core/errors.ts';
import { oidcAuthenticator } from '../authz/oidc.ts';
import type { User } from '../authz/users.ts';
import { readOrCreatePrivateFile } from '../host.ts';

/** Verifies an ID token; the API server's OIDC verifier (src/authz/oidc.ts) built with the web client's audience. */
export interface IdTokenVerifier {
  verify(idToken: string, expected: { readonly nonce: string }): Promise<User>;
}

export interface WebSessionSettings {
  /** The OpenID provider (the same one whose bearer tokens the API accepts). */
  readonly issuer: string;
  /** The web client registered at the provider; its ID tokens name it as their audience. */
  readonly clientId: string;
  /** Set for a confidential client (sent with HTTP Basic); PKCE is used either way. */
  readonly clientSecret: string | undefined;
  /** The server's origin as browsers reach it (e.g. https://mechanic.example.com); read when a sign-in starts. */
  readonly publicUrl: () => string;
  /** At least 32 random bytes; every cookie's keys derive from it. Kept owner-only, never logged. */
  readonly key: Buffer;
  /** How long a session lasts (capped by the ID token's own expiry). */
  readonly sessionTtlSeconds: number;
}

/** A refused step of a browser sign-in, for the audit log (there is no signed-in caller to name yet). */
export interface WebSignInRefusal {
  readonly step: 'login' | 'callback' | 'logout';
  readonly reason: string;
}

export interface WebSessions {
  /** The person signed in on this request's session cookie, or undefined (none, expired, ended, altered). */
  userOf(request: Request): User | undefined;
  /** Where to send a browser to sign in and come back to `next` (a path on this server). */
  loginPath(next: string): string;
  /** The /auth routes; mount with `app.route('/auth', sessions.routes)`. */
  readonly routes: Hono;
}

export const SESSION_COOKIE = 'mechanic_session';
const FLOW_COOKIE = 'mechanic_sign_in';
/** A sign-in left at the provider longer than this starts again. */
const FLOW_TTL_SECONDS = 600;
const SCOPE = 'openid profile groups';

interface FlowState {
  readonly state: string;
  readonly nonce: string;
  readonly verifier: string;
  readonly next: string;
  readonly exp: number;
}

interface SessionState {
  readonly sid: string;
  readonly user: User;
  readonly exp: number;
}

/**
 * `next` as a same-origin path, or undefined: an absolute URL, a scheme-relative `//host`, a
 * backslash that browsers read as a slash, or a control character would make the sign-in an
 * open redirect.
 */
export function safeNext(next: string | undefined): string | undefined {
  if (next === undefined || next === '') return '/';
  if (next.length > 2000 || !next.startsWith('/') || next.startsWith('//')) return undefined;
  if (/[\\\u0000-\u001f\u007f]/.test(next)) return undefined;
  const base = 'http://mechanic.invalid';
  let url: URL;
  try {
    url = new URL(next, base);
  } catch {
    return undefined;
  }
  return url.origin === base ? `${url.pathname}${url.search}${url.hash}` : undefined;
}

/** Whether cookies may go without Secure: only for a browser on this machine over plain HTTP. */
function isLoopbackHttp(origin: string): boolean {
  const url = new URL(origin);
  return (
    url.protocol === 'http:' &&
    (url.hostname === '127.0.0.1' || url.hostname === '[::1]' || url.hostname === 'localhost')
  );
}

class Sealer {
  readonly #key: Buffer;
  constructor(root: Buffer, purpose: string) {
    this.#key = Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), `mechanic web ${purpose}`, 32));
  }
  seal(value: unknown): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
    return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
  }
  open(sealed: string | undefined): unknown {
    if (!sealed || sealed.length > 8000) return undefined;
    const raw = Buffer.from(sealed, 'base64url');
    if (raw.length < 12 + 16 + 2) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(raw.length - 16));
      const text = Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]);
      return JSON.parse(text.toString('utf8')) as unknown;
    } catch {
      return undefined; // altered, or sealed with another key: no cookie at all
    }
  }
}

interface ProviderEndpoints {
  readonly authorization_endpoint: string;
  readonly token_endpoint: string;
}

function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

function sameText(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db);
}

function page(c: Context, status: ContentfulStatusCode, title: string, sentence: string): Response {
  const esc = (s: string) =>
    s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
  c.header('cache-control', 'no-store');
  return c.html(
    `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)} — mechanic</title></head>` +
      `<body><h1>${esc(title)}</h1><p>${esc(sentence)}</p></body></html>`,
    status,
  );
}

/**
 * The browser sign-in of the API server. `onRefusal` records each refused step (wrong state, a
 * replayed or stolen code, a foreign `next`, an ID token that does not verify).
 */
export function createWebSessions(
  settings: WebSessionSettings,
  deps: {
    readonly verifier: IdTokenVerifier;
    readonly onRefusal?: (refusal: WebSignInRefusal) => Promise<void>;
    readonly now?: () => number;
    readonly fetchTimeoutMs?: number;
  },
): WebSessions {
  if (settings.key.length < 32) {
    throw new UserError('CONFIG_INVALID', 'the web session key must be at least 32 random bytes');
  }
  const now = () => Math.floor((deps.now?.() ?? Date.now()) / 1000);
  const timeout = deps.fetchTimeoutMs ?? 10_000;
  const flows = new Sealer(settings.key, 'sign-in flow');
  const sessions = new Sealer(settings.key, 'session');
  /** Sessions ended by logout, until their cookies would have expired anyway (this process only). */
  const ended = new Map<string, number>();
  /** States already completed: a callback replayed with a copied flow cookie is refused here too. */
  const usedStates = new Map<string, number>();
  const prune = (m: Map<string, number>) => {
    const t = now();
    for (const [k, exp] of m) if (exp < t) m.delete(k);
  };

  let endpoints: Promise<ProviderEndpoints> | undefined;
  const discover = (): Promise<ProviderEndpoints> => {
    endpoints ??= (async () => {
      const url = `${settings.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
      const res = await fetch(url, { signal: AbortSignal.timeout(timeout) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const doc = (await res.json()) as Partial<ProviderEndpoints> & { issuer?: string };
      if (doc.issuer !== settings.issuer || !doc.authorization_endpoint || !doc.token_endpoint) {
        throw new Error(`the discovery document names the issuer ${String(doc.issuer)} or lacks endpoints`);
      }
      return { authorization_endpoint: doc.authorization_endpoint, token_endpoint: doc.token_endpoint };
    })();
    endpoints.catch(() => (endpoints = undefined));
    return endpoints;
  };

  const secure = () => !isLoopbackHttp(settings.publicUrl());
  const callbackUrl = () => `${settings.publicUrl().replace(/\/$/, '')}/auth/callback`;

  const refuse = async (
    c: Context,
    step: WebSignInRefusal['step'],
    status: ContentfulStatusCode,
    sentence: string,
  ): Promise<Response> => {
    await deps.onRefusal?.({ step, reason: sentence });
    return page(c, status, 'Sign-in refused', sentence);
  };

  function userOf(request: Request): User | undefined {
    const header = request.headers.get('cookie') ?? '';
    const raw = header
      .split(';')
      .map((p) => p.trim())
      .find((p) => p.startsWith(`${SESSION_COOKIE}=`))
      ?.slice(SESSION_COOKIE.length + 1);
    const s = sessions.open(raw) as Partial<SessionState> | undefined;
    if (!s || typeof s.sid !== 'string' || typeof s.exp !== 'number' || typeof s.user?.id !== 'string')
      return undefined;
    if (s.exp <= now() || ended.has(s.sid)) return undefined;
    return s.user;
  }

  const routes = new Hono();

  routes.get('/login', async (c) => {
    const next = safeNext(c.req.query('next'));
    if (next === undefined) {
      return refuse(
        c,
        'login',
        400,
        'After signing in mechanic only returns to a page of its own; "next" must be a path on this server such as /runs.',
      );
    }
    let provider: ProviderEndpoints;
    try {
      provider = await discover();
    } catch (e) {
      return page(
        c,
        503,
        'Sign-in unavailable',
        `The identity provider at ${settings.issuer} cannot be reached (${e instanceof Error ? e.message : String(e)}); try again shortly.`,
      );
    }
    const flow: FlowState = {
      state: randomToken(),
      nonce: randomToken(),
      verifier: randomToken(),
      next,
      exp: now() + FLOW_TTL_SECONDS,
    };
    setCookie(c, FLOW_COOKIE, flows.seal(flow), {
      path: '/auth',
      httpOnly: true,
      sameSite: 'Lax',
      secure: secure(),
      maxAge: FLOW_TTL_SECONDS,
    });
    const target = new URL(provider.authorization_endpoint);
    target.search = new URLSearchParams({
      response_type: 'code',
      client_id: settings.clientId,
      redirect_uri: callbackUrl(),
      scope: SCOPE,
      state: flow.state,
      nonce: flow.nonce,
      code_challenge: createHash('sha256').update(flow.verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }).toString();
    c.header('cache-control', 'no-store');
    return c.redirect(target.toString(), 302);
  });

  routes.get('/callback', async (c) => {
    const flow = flows.open(getCookie(c, FLOW_COOKIE)) as FlowState | undefined;
    // The flow cookie is single-use whatever happens next.
    deleteCookie(c, FLOW_COOKIE, { path: '/auth', secure: secure() });
    if (!flow || typeof flow.state !== 'string' || flow.exp <= now()) {
      return refuse(
        c,
        'callback',
        400,
        'This sign-in was not started in this browser or took longer than 10 minutes; start it again.',
      );
    }
    const state = c.req.query('state') ?? '';
    if (!sameText(state, flow.state)) {
      return refuse(
        c,
        'callback',
        400,
        'The sign-in answer does not belong to the sign-in this browser started (its state differs); start it again.',
      );
    }
    prune(usedStates);
    if (usedStates.has(flow.state)) {
      return refuse(c, 'callback', 400, 'This sign-in answer was already used; start the sign-in again.');
    }
    usedStates.set(flow.state, flow.exp);
    const error = c.req.query('error');
    if (error !== undefined) {
      return refuse(
        c,
        'callback',
        401,
        `The identity provider refused the sign-in (${error.slice(0, 100)}); try again or ask your administrator.`,
      );
    }
    const code = c.req.query('code');
    if (!code) return refuse(c, 'callback', 400, 'The identity provider sent no code; start the sign-in again.');

    let idToken: unknown;
    try {
      const provider = await discover();
      const headers: Record<string, string> = {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      };
      const form: Record<string, string> = {
        grant_type: 'authorization_code',
        code,
        redirect_uri: callbackUrl(),
        code_verifier: flow.verifier,
        client_id: settings.clientId,
      };
      if (settings.clientSecret !== undefined) {
        const id = encodeURIComponent(settings.clientId);
        const secret = encodeURIComponent(settings.clientSecret);
        headers['authorization'] = `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
      }
      const res = await fetch(provider.token_endpoint, {
        method: 'POST',
        headers,
        body: new URLSearchParams(form).toString(),
        signal: AbortSignal.timeout(timeout),
      });
      const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
      if (!res.ok) {
        const why = typeof body['error'] === 'string' ? body['error'].slice(0, 100) : `HTTP ${res.status}`;
        return refuse(
          c,
          'callback',
          401,
          `The identity provider would not exchange the sign-in code (${why}): it was used already, expired, or belongs to another sign-in; start it again.`,
        );
      }
      idToken = body['id_token'];
    } catch (e) {
      return page(
        c,
        503,
        'Sign-in unavailable',
        `The identity provider at ${settings.issuer} cannot be reached (${e instanceof Error ? e.message : String(e)}); try again shortly.`,
      );
    }
    if (typeof idToken !== 'string') {
      return refuse(c, 'callback', 401, 'The identity provider returned no ID token; ask your administrator.');
    }
    let user: User;
    try {
      user = await deps.verifier.verify(idToken, { nonce: flow.nonce });
    } catch (e) {
      const sentence = e instanceof UserError ? e.message : 'the ID token does not verify';
      return refuse(c, 'callback', 401, `The sign-in was refused: ${sentence}.`);
    }
    const tokenExp = (() => {
      try {
        const claims = JSON.parse(Buffer.from(idToken.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
          exp?: unknown;
        };
        return typeof claims.exp === 'number' ? claims.exp : Infinity;
      } catch {
        return Infinity;
      }
    })();
    const exp = Math.min(now() + settings.sessionTtlSeconds, tokenExp);
    const session: SessionState = { sid: randomToken(), user, exp };
    setCookie(c, SESSION_COOKIE, sessions.seal(session), {
      path: '/',
      httpOnly: true,
      sameSite: 'Lax',
      secure: secure(),
      maxAge: Math.max(0, exp - now()),
    });
    c.header('cache-control', 'no-store');
    return c.redirect(flow.next, 303);
  });

  routes.post('/logout', (c) => {
    const s = sessions.open(getCookie(c, SESSION_COOKIE)) as Partial<SessionState> | undefined;
    if (s && typeof s.sid === 'string' && typeof s.exp === 'number') {
      prune(ended);
      ended.set(s.sid, s.exp);
    }
    deleteCookie(c, SESSION_COOKIE, { path: '/', secure: secure() });
    return page(c, 200, 'Signed out', 'You are signed out of mechanic in this browser.');
  });

  return {
    userOf,
    loginPath: (next) => `/auth/login?${new URLSearchParams({ next: safeNext(next) ?? '/' }).toString()}`,
    routes,
  };
}

/**
 * The API server's browser sign-in from its settings, or undefined when no web client is
 * configured. The session key is read from its owner-only file, made the first time.
 */
export async function webSessionsFromConfig(
  authz: Config['authz'],
  options: { readonly boundUrl: () => string; readonly onRefusal?: (refusal: WebSignInRefusal) => Promise<void> },
): Promise<WebSessions | undefined> {
  const { oidc, web } = authz;
  if (!oidc || !web) return undefined;
  const keyText = await readOrCreatePrivateFile(web.sessionKeyFile, () => randomBytes(32).toString('base64'));
  const key = Buffer.from(keyText, 'base64');
  if (key.length < 32) {
    throw new UserError(
      'CONFIG_INVALID',
      `the web session key in ${web.sessionKeyFile} is shorter than 32 bytes; put 32 random bytes there, base64-encoded`,
    );
  }
  const verifier = oidcAuthenticator({ ...oidc, audience: web.clientId });
  return createWebSessions(
    {
      issuer: oidc.issuer,
      clientId: web.clientId,
      clientSecret: web.clientSecret,
      publicUrl: () => web.publicUrl ?? options.boundUrl(),
      key,
      sessionTtlSeconds: web.sessionTtlSeconds,
    },
    { verifier, ...(options.onRefusal ? { onRefusal: options.onRefusal } : {}) },
  );
}
