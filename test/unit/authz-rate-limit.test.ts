import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { describe, expect, test } from 'vitest';
import { addressLimit, principalLimit, rateLimit, refusalWindows, tokenBuckets } from '../../src/authz/rate-limit.ts';

describe('token buckets', () => {
  test('a burst up to the capacity passes, the next request waits for a token', () => {
    let t = 0;
    const b = tokenBuckets({ capacity: 3, refillPerSecond: 0.5, now: () => t });
    expect([b.take('a'), b.take('a'), b.take('a')].every((r) => r.ok)).toBe(true);
    expect(b.take('a')).toEqual({ ok: false, retryAfterSeconds: 2 });
    t = 2000;
    expect(b.take('a')).toEqual({ ok: true });
    expect(b.take('a').ok).toBe(false);
  });

  test('keys have their own buckets', () => {
    const b = tokenBuckets({ capacity: 1, refillPerSecond: 1, now: () => 0 });
    expect(b.take('alice').ok).toBe(true);
    expect(b.take('alice').ok).toBe(false);
    expect(b.take('bob').ok).toBe(true);
  });

  test('memory is bounded: the least recently used key is forgotten', () => {
    const b = tokenBuckets({ capacity: 1, refillPerSecond: 1, maxKeys: 2, now: () => 0 });
    b.take('a');
    b.take('b');
    b.take('c');
    expect(b.size).toBe(2);
    expect(b.take('a').ok).toBe(true); // forgotten, so full again
  });
});

describe('the middleware', () => {
  test('refuses with 429, Retry-After and one sentence, and tells who was limited', async () => {
    const limited: string[] = [];
    const app = new Hono();
    app.use(
      rateLimit({
        buckets: tokenBuckets({ capacity: 2, refillPerSecond: 1, now: () => 0 }),
        key: (c) => c.req.header('x-who'),
        what: (c) => c.req.header('x-who') ?? 'someone',
        onLimited: (_c, key) => limited.push(key),
      }),
    );
    app.get('/', (c) => c.text('ok'));
    const get = (who?: string) => app.request('/', who ? { headers: { 'x-who': who } } : {});
    expect((await get('alice')).status).toBe(200);
    expect((await get('alice')).status).toBe(200);
    const res = await get('alice');
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(await res.json()).toEqual({
      error: { code: 'RATE_LIMITED', message: 'too many requests from alice; wait 1 s and try again' },
    });
    expect(limited).toEqual(['alice']);
    expect((await get()).status).toBe(200); // no key: not limited by this bucket
  });
});

describe('refusal windows', () => {
  test('repeated refusals of one caller become one record with a count per window', () => {
    let t = 0;
    const w = refusalWindows({ windowMs: 60_000, now: () => t });
    expect(w.note('mallory')).toBe(true);
    for (let i = 0; i < 99; i++) expect(w.note('mallory')).toBe(false);
    expect(w.note('eve')).toBe(true);
    expect(w.flush()).toEqual([]);
    t = 60_000;
    expect(w.flush()).toEqual([{ key: 'mallory', count: 100, since: new Date(0) }]);
    expect(w.note('mallory')).toBe(true);
  });
});

describe('per address and per principal', () => {
  test('over real HTTP, the address bucket limits before authentication and the principal bucket after it', async () => {
    const app = new Hono<{ Variables: { user: { id: string } } }>();
    app.use(addressLimit({ capacity: 3, refillPerSecond: 0.01 }));
    app.use(async (c, next) => {
      const who = c.req.header('x-user');
      if (!who) return c.json({ error: 'who?' }, 401);
      c.set('user', { id: who });
      await next();
      return undefined;
    });
    app.use(principalLimit({ capacity: 1, refillPerSecond: 0.01 }));
    app.get('/', (c) => c.text('ok'));
    const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
    try {
      await new Promise<void>((resolve) => server.once('listening', resolve));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      const get = (user?: string) => fetch(url, user ? { headers: { 'x-user': user } } : {});
      expect((await get('alice')).status).toBe(200);
      const second = await get('alice');
      expect(second.status).toBe(429);
      expect(await second.json()).toEqual({
        error: { code: 'RATE_LIMITED', message: 'too many requests from alice; wait 100 s and try again' },
      });
      expect((await get()).status).toBe(401); // the third request from this address
      const flood = await get('bob');
      expect(flood.status).toBe(429);
      expect(flood.headers.get('retry-after')).toBe('100');
      expect(((await flood.json()) as { error: { message: string } }).error.message).toBe(
        'too many requests from the address 127.0.0.1; wait 100 s and try again',
      );
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
