/**
 * The server side of browser sign-in (authorization code + PKCE) over real HTTP against the real
 * development provider (oidc-provider): a small browser (a cookie jar that follows redirects the
 * way a browser does) signs in, lands on `next`, and the page reads who it is with
 * `sessions.userOf`. Then the attacks: a foreign `next`, a wrong state, a replayed code, a code
 * exchanged without its verifier, an altered cookie, and a session used after logout.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { WEB_CLIENT_ID, startDevIdp, type DevIdp } from '../../src/authz/dev-idp.ts';
import { oidcAuthenticator } from '../../src/authz/oidc.ts';
import { DEMO_USERS } from '../../src/authz/users.ts';
import { Browser } from '../helpers/browser.ts';
import {
  SESSION_COOKIE,
  createWebSessions,
  safeNext,
  type WebSessions,
  type WebSignInRefusal,
} from '../../src/server/web-session.ts';

describe('browser sign-in with authorization code + PKCE', () => {
  let idp: DevIdp;
  let server: ServerType;
  let origin: string;
  let sessions: WebSessions;
  const refusals: WebSignInRefusal[] = [];

  beforeAll(async () => {
    idp = await startDevIdp({ users: DEMO_USERS });
    const verifier = oidcAuthenticator(
      {
        issuer: idp.issuer,
        audience: WEB_CLIENT_ID,
        jwksUrl: undefined,
        userClaim: 'sub',
        groupsClaim: 'groups',
        algorithms: ['ES256'],
        clockSkewSeconds: 30,
      },
      { refetchCooldownMs: 0 },
    );
    sessions = createWebSessions(
      {
        issuer: idp.issuer,
        clientId: WEB_CLIENT_ID,
        clientSecret: undefined,
        publicUrl: () => origin,
        key: randomBytes(32),
        sessionTtlSeconds: 600,
      },
      { verifier, onRefusal: async (r) => void refusals.push(r) },
    );
    const app = new Hono();
    app.route('/auth', sessions.routes);
    app.get('/runs/*', (c) => {
      const user = sessions.userOf(c.req.raw);
      if (!user) return c.redirect(sessions.loginPath(`${c.req.path}${new URL(c.req.url).search}`), 302);
      return c.text(`hello ${user.id} (${(user.groups ?? []).join(', ')}) at ${c.req.path}`);
    });
    server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    await idp?.close();
  });

  /** Signs in from a protected page; returns the callback URL the provider sent the browser to (not yet visited). */
  async function toCallback(browser: Browser, page = '/runs/r-1?tab=plan'): Promise<string> {
    const atProvider = await browser.go(`${origin}${page}`);
    expect(new URL(atProvider.url).origin).toBe(idp.issuer);
    return browser.signIn(atProvider, 'bob', idp.password);
  }

  test('a signed-out browser signs in at the provider and comes back to the page it asked for', async () => {
    const browser = new Browser();
    const callback = await toCallback(browser);
    const authorize = new URL(browser.visited.find((u) => u.startsWith(`${idp.issuer}/auth?`))!);
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorize.searchParams.get('redirect_uri')).toBe(`${origin}/auth/callback`);
    expect(authorize.searchParams.get('state')).toMatch(/^[\w-]{43}$/);
    expect(authorize.searchParams.get('nonce')).toMatch(/^[\w-]{43}$/);

    const back = await browser.go(callback);
    expect(back.url).toBe(`${origin}/runs/r-1?tab=plan`);
    expect(await back.res.text()).toBe('hello bob (approver, author, sre) at /runs/r-1');
    const cookie = browser.cookies.get(SESSION_COOKIE)!;
    // Loopback over plain HTTP (the embedded stack): not Secure, but never readable by scripts.
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', secure: false, path: '/' });
    // The sign-in's own cookie is spent.
    expect(browser.cookies.has('mechanic_sign_in')).toBe(false);
  });

  test('the provider refuses a wrong password and names no user', async () => {
    const browser = new Browser();
    const atProvider = await browser.go(`${origin}/auth/login?next=/runs/x`);
    await expect(browser.signIn(atProvider, 'bob', 'not-the-password')).rejects.toThrow(
      /Unknown user or wrong password/,
    );
  });

  test('a foreign next is refused: no open redirect', async () => {
    for (const next of [
      'https://evil.example/',
      '//evil.example/x',
      '/\\evil.example',
      'javascript:alert(1)',
      '/ok\r\nLocation: https://evil.example',
    ]) {
      const before = refusals.length;
      const res = await new Browser().request(`${origin}/auth/login?next=${encodeURIComponent(next)}`);
      expect(res.status, next).toBe(400);
      expect(res.headers.get('location')).toBeNull();
      expect(await res.text()).toContain('&quot;next&quot; must be a path on this server');
      expect(refusals.length, next).toBe(before + 1);
    }
    expect(safeNext('/runs/a?b=c#d')).toBe('/runs/a?b=c#d');
    expect(safeNext(undefined)).toBe('/');
  });

  test('a callback whose state differs from the one this browser started with is refused', async () => {
    const browser = new Browser();
    const callback = new URL(await toCallback(browser));
    callback.searchParams.set('state', 'forged-state-of-another-sign-in');
    const res = await browser.request(callback.toString());
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('does not belong to the sign-in this browser started');
    expect(browser.cookies.has(SESSION_COOKIE)).toBe(false);
    expect(refusals.at(-1)).toMatchObject({ step: 'callback' });
  });

  test('a callback in a browser that never started the sign-in (login CSRF) is refused', async () => {
    const callback = await toCallback(new Browser());
    const victim = new Browser();
    const res = await victim.request(callback);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('was not started in this browser');
    expect(victim.cookies.has(SESSION_COOKIE)).toBe(false);
  });

  test('a replayed code is refused, by mechanic and by the provider', async () => {
    const browser = new Browser();
    const callback = await toCallback(browser);
    const flowCookie = browser.cookies.get('mechanic_sign_in')!;
    expect((await browser.go(callback)).res.status).toBe(200);

    // An attacker who copied both the callback URL and the sign-in cookie replays them.
    const attacker = new Browser();
    attacker.cookies.set('mechanic_sign_in', flowCookie);
    const replay = await attacker.request(callback);
    expect(replay.status).toBe(400);
    expect(await replay.text()).toContain('This sign-in answer was already used');
    expect(attacker.cookies.has(SESSION_COOKIE)).toBe(false);

    // The provider refuses the spent code too, even with its verifier (which it never saw from us).
    const code = new URL(callback).searchParams.get('code')!;
    const token = await fetch(`${idp.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        client_id: WEB_CLIENT_ID,
        redirect_uri: `${origin}/auth/callback`,
        code_verifier: 'x'.repeat(43),
      }).toString(),
    });
    expect(token.status).toBe(400);
    expect(((await token.json()) as { error: string }).error).toBe('invalid_grant');
  });

  test('a stolen code without its verifier is worthless at the provider', async () => {
    const code = new URL(await toCallback(new Browser())).searchParams.get('code')!;
    const form = {
      grant_type: 'authorization_code',
      code,
      client_id: WEB_CLIENT_ID,
      redirect_uri: `${origin}/auth/callback`,
    };
    const post = (fields: Record<string, string>) =>
      fetch(`${idp.issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(fields).toString(),
      });
    const missing = await post(form);
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { error: string }).error).toMatch(/^invalid_(grant|request)$/);
  });

  test('an altered session cookie is no session at all', async () => {
    const browser = new Browser();
    await browser.go(await toCallback(browser));
    const good = browser.cookies.get(SESSION_COOKIE)!;
    const raw = Buffer.from(good.value, 'base64url');
    raw[20] = raw[20]! ^ 1;
    browser.cookies.set(SESSION_COOKIE, { ...good, value: raw.toString('base64url') });
    const res = await browser.request(`${origin}/runs/r-2`);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/auth/login?next=%2Fruns%2Fr-2');
  });

  test('behind https the cookies are Secure as well', async () => {
    const behindTls = createWebSessions(
      {
        issuer: idp.issuer,
        clientId: WEB_CLIENT_ID,
        clientSecret: undefined,
        publicUrl: () => 'https://mechanic.example.com',
        key: randomBytes(32),
        sessionTtlSeconds: 600,
      },
      { verifier: { verify: () => Promise.reject(new Error('not used')) } },
    );
    const res = await behindTls.routes.request('/login?next=/runs');
    expect(res.status).toBe(302);
    expect(new URL(res.headers.get('location')!).searchParams.get('redirect_uri')).toBe(
      'https://mechanic.example.com/auth/callback',
    );
    expect(res.headers.get('set-cookie')).toMatch(
      /^mechanic_sign_in=[\w-]+; Max-Age=600; Path=\/auth; HttpOnly; Secure; SameSite=Lax$/,
    );
  });

  test('logout ends the session, even for a copy of its cookie', async () => {
    const browser = new Browser();
    await browser.go(await toCallback(browser));
    const copy = browser.cookies.get(SESSION_COOKIE)!;
    const out = await browser.request(`${origin}/auth/logout`, { method: 'POST' });
    expect(out.status).toBe(200);
    expect(browser.cookies.has(SESSION_COOKIE)).toBe(false);
    const thief = new Browser();
    thief.cookies.set(SESSION_COOKIE, copy);
    const res = await thief.request(`${origin}/runs/r-3`);
    expect(res.status).toBe(302);
  });
});
