/**
 * Browser sign-in in a real browser (Debian's Chromium through playwright-core): a person opens a
 * page of the API server, is sent to the development provider, signs in on its page, and lands
 * back on the page they asked for, signed in. The session cookie is invisible to the page's
 * scripts (HttpOnly), and signing out ends it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { WEB_CLIENT_ID, startDevIdp, type DevIdp } from '../../src/authz/dev-idp.ts';
import { oidcAuthenticator } from '../../src/authz/oidc.ts';
import { DEMO_USERS } from '../../src/authz/users.ts';
import { createWebSessions } from '../../src/server/web-session.ts';

const CHROMIUM = '/usr/bin/chromium';

// Skipped only off CI: .ci/run installs Chromium, so there a missing browser fails the launch.
describe.skipIf(!existsSync(CHROMIUM) && !process.env['CI'])('browser sign-in in Chromium', () => {
  let idp: DevIdp;
  let server: ServerType;
  let origin: string;
  let browser: Browser;

  beforeAll(async () => {
    idp = await startDevIdp({ users: DEMO_USERS });
    const verifier = oidcAuthenticator({
      issuer: idp.issuer,
      audience: WEB_CLIENT_ID,
      jwksUrl: undefined,
      userClaim: 'sub',
      groupsClaim: 'groups',
      algorithms: ['ES256'],
      clockSkewSeconds: 30,
    });
    const sessions = createWebSessions(
      {
        issuer: idp.issuer,
        clientId: WEB_CLIENT_ID,
        clientSecret: undefined,
        publicUrl: () => origin,
        key: randomBytes(32),
        sessionTtlSeconds: 600,
      },
      { verifier },
    );
    const app = new Hono();
    app.route('/auth', sessions.routes);
    app.get('/confirm/:id', (c) => {
      const user = sessions.userOf(c.req.raw);
      if (!user) return c.redirect(sessions.loginPath(c.req.path), 302);
      return c.html(
        `<!DOCTYPE html><html><body><p id="who">${user.id}</p>` +
          '<form method="post" action="/auth/logout"><button>Sign out</button></form></body></html>',
      );
    });
    server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    await idp?.close();
  });

  test('a person signs in at the provider and lands on the page they opened; scripts cannot read the session', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${origin}/confirm/mx-123`);
    expect(page.url().startsWith(`${idp.issuer}/interaction/`)).toBe(true);
    await page.fill('input[name=login]', 'carol');
    await page.fill('input[name=password]', idp.password);
    await page.click('button[type=submit]');
    await page.waitForURL(`${origin}/confirm/mx-123`);
    expect(await page.textContent('#who')).toBe('carol');
    expect(await page.evaluate('document.cookie')).not.toContain('mechanic_session');
    const cookie = (await context.cookies(origin)).find((c) => c.name === 'mechanic_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax' });

    await page.click('text=Sign out');
    await page.waitForSelector('text=You are signed out');
    // mechanic's session is over (the provider's own session may still sign the person in again at once).
    expect((await context.cookies(origin)).some((c) => c.name === 'mechanic_session')).toBe(false);
    const again = await context.request.get(`${origin}/confirm/mx-123`, { maxRedirects: 0 });
    expect(again.status()).toBe(302);
    expect(again.headers()['location']).toBe('/auth/login?next=%2Fconfirm%2Fmx-123');
    await context.close();
  });

  test('a wrong password keeps the person at the provider, told why', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${origin}/confirm/mx-456`);
    await page.fill('input[name=login]', 'carol');
    await page.fill('input[name=password]', 'guess');
    await page.click('button[type=submit]');
    expect(await page.textContent('[role=alert]')).toBe('Unknown user or wrong password.');
    expect((await context.cookies(origin)).some((c) => c.name === 'mechanic_session')).toBe(false);
    await context.close();
  });
});
