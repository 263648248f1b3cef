/**
 * The web UI's CSRF tokens: bound to the session cookie, the same on every server process (so a
 * form survives a restart and a load balancer), refused for another session or none.
 */
import { Hono } from 'hono';
import { describe, expect, test } from 'vitest';
import { csrfTokens } from '../../src/server/web/auth.ts';
import { SESSION_COOKIE } from '../../src/server/web-session.ts';

/** What two separate server processes answer: the token for a cookie, and whether a token checks. */
async function ask(cookie: string | undefined, token?: string): Promise<{ token: string; ok: boolean }> {
  const tokens = csrfTokens();
  const app = new Hono();
  app.get('/', (c) => c.json({ token: tokens.tokenFor(c), ok: tokens.check(c, token) }));
  const res = await app.request('/', { headers: cookie ? { cookie: `${SESSION_COOKIE}=${cookie}` } : {} });
  return (await res.json()) as { token: string; ok: boolean };
}

describe('CSRF tokens', () => {
  test('a token made by one process checks in another, for the same session only', async () => {
    const { token } = await ask('sealed-session-a');
    expect(token).toMatch(/^[\w-]{43}$/);
    expect((await ask('sealed-session-a', token)).ok).toBe(true);
    expect((await ask('sealed-session-b', token)).ok).toBe(false);
    expect((await ask(undefined, token)).ok).toBe(false);
    expect((await ask('sealed-session-a', `${token.slice(0, -1)}x`)).ok).toBe(false);
    expect((await ask('sealed-session-a', '')).ok).toBe(false);
  });

  test('without a session there is no token to put in a form', async () => {
    expect((await ask(undefined)).token).toBe('');
  });
});
