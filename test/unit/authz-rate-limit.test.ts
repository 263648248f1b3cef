import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { describe, expect, test } from 'vitest';
import {
  DEFAULT_RATE_LIMITS,
  addressBucket,
  addressLimit,
  principalLimit,
  rateLimit,
  tokenBuckets,
  type Limited,
} from '../../src/authz/rate-limit.ts';
import { createApiClient } from '../../src/api/client.ts';
import { loadConfig } from '../../src/config.ts';

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

  test('a refill never goes past the capacity', () => {
    let t = 0;
    const b = tokenBuckets({ capacity: 2, refillPerSecond: 1, now: () => t });
    t = 1_000_000;
    expect([b.take('a'), b.take('a'), b.take('a')].map((r) => r.ok)).toEqual([true, true, false]);
  });

  test('keys have their own buckets', () => {
    const b = tokenBuckets({ capacity: 1, refillPerSecond: 1, now: () => 0 });
    expect(b.take('alice').ok).toBe(true);
    expect(b.take('alice').ok).toBe(false);
    expect(b.take('bob').ok).toBe(true);
  });

  test('a clock that steps back adds no tokens', () => {
    let t = 10_000;
    const b = tokenBuckets({ capacity: 1, refillPerSecond: 1, now: () => t });
    expect(b.take('a').ok).toBe(true);
    t = 0;
    expect(b.take('a').ok).toBe(false);
    t = 10_500; // only half a second after the last take, however far back the clock went
    expect(b.take('a').ok).toBe(false);
    t = 11_000;
    expect(b.take('a').ok).toBe(true);
  });

  test('memory is bounded: the least recently used key is forgotten', () => {
    const b = tokenBuckets({ capacity: 1, refillPerSecond: 1, maxKeys: 2, now: () => 0 });
    b.take('a');
    b.take('b');
    b.take('c');
    expect(b.size).toBe(2);
    expect(b.take('a').ok).toBe(true); // forgotten, so full again
  });

  test.each([
    [0, 1],
    [1, 0],
    [1, -1],
    [Number.NaN, 1],
  ])('a bucket of capacity %s and refill %s is refused', (capacity, refillPerSecond) => {
    expect(() => tokenBuckets({ capacity, refillPerSecond })).toThrow(RangeError);
  });
});

describe('the middleware', () => {
  test('refuses with 429, Retry-After and one sentence, and tells who was limited before answering', async () => {
    const limited: Limited[] = [];
    const app = new Hono();
    app.use(
      rateLimit({
        buckets: tokenBuckets({ capacity: 2, refillPerSecond: 1, now: () => 0 }),
        key: (c) => c.req.header('x-who'),
        what: (c) => c.req.header('x-who') ?? 'someone',
        onLimited: async (_c, l) => {
          await Promise.resolve();
          limited.push(l);
        },
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
      error: { code: 'RATE_LIMITED', message: 'too many requests from alice; try again in 1 s' },
    });
    expect(limited).toEqual([
      { key: 'alice', retryAfterSeconds: 1, message: 'too many requests from alice; try again in 1 s' },
    ]);
    expect((await get()).status).toBe(200); // no key: not limited by this bucket
  });

  test('a request takes one token however long its answer streams', async () => {
    const app = new Hono();
    app.use(
      rateLimit({
        buckets: tokenBuckets({ capacity: 2, refillPerSecond: 0.001, now: () => 0 }),
        key: () => 'alice',
        what: () => 'alice',
      }),
    );
    app.get('/stream', () => {
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < 100; i++) controller.enqueue(new TextEncoder().encode(`data: ${i}\n\n`));
          controller.close();
        },
      });
      return new Response(body, { headers: { 'content-type': 'text/event-stream' } });
    });
    app.get('/', (c) => c.text('ok'));
    const stream = await app.request('/stream');
    expect((await stream.text()).match(/^data:/gm)).toHaveLength(100);
    expect((await app.request('/')).status).toBe(200);
    expect((await app.request('/')).status).toBe(429);
  });
});

describe('per address and per principal', () => {
  test('over real HTTP, the address bucket limits before authentication and the principal bucket after it', async () => {
    const app = new Hono<{ Variables: { user: { id: string } } }>();
    let authenticated = 0;
    app.use(addressLimit({ burst: 3, perSecond: 0.01 }));
    app.use(async (c, next) => {
      authenticated++;
      const who = c.req.header('x-user');
      if (!who) return c.json({ error: 'who?' }, 401);
      c.set('user', { id: who });
      await next();
      return undefined;
    });
    app.use(principalLimit({ burst: 1, perSecond: 0.01 }));
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
        error: { code: 'RATE_LIMITED', message: 'too many requests from alice; try again in 100 s' },
      });
      expect((await get()).status).toBe(401); // the third request from this address
      expect(authenticated).toBe(3);
      const flood = await get('bob');
      expect(flood.status).toBe(429);
      expect(flood.headers.get('retry-after')).toBe('100');
      expect(((await flood.json()) as { error: { message: string } }).error.message).toBe(
        'too many requests from the address 127.0.0.1; try again in 100 s',
      );
      expect(authenticated).toBe(3); // refused before any token was looked at
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('address buckets', () => {
  test.each([
    ['127.0.0.1', '127.0.0.1'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:DB8:1:2::9', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['::', '0:0:0:0::/64'],
    ['::ffff:192.0.2.7', '192.0.2.7'],
    ['64:ff9b:1:2::192.0.2.7', '64:ff9b:1:2::/64'],
    ['2001:0db8:0001:0002:0000:0000:0000:0001', '2001:db8:1:2::/64'],
    ['1:2:3:4:5:6:7', '1:2:3:4:5:6:7'],
    ['1::2::3', '1::2::3'],
    ['1:2:3:4:5:6:7::8', '1:2:3:4:5:6:7::8'],
    ['2001:db8::zzzz', '2001:db8::zzzz'],
    ['unknown', 'unknown'],
  ])('%s draws from %s', (address, bucket) => {
    expect(addressBucket(address)).toBe(bucket);
  });

  test('addresses of one IPv6 /64 share a budget; another /64 has its own', async () => {
    const app = new Hono();
    app.use(addressLimit({ burst: 2, perSecond: 0.001 }, { now: () => 0 }));
    app.get('/', (c) => c.text('ok'));
    const from = (remoteAddress: string) =>
      app.request('/', {}, { incoming: { socket: { remoteAddress, remotePort: 1, remoteFamily: 'IPv6' } } });
    expect((await from('2001:db8:1:2::1')).status).toBe(200);
    expect((await from('2001:db8:1:2::ffff')).status).toBe(200);
    const third = await from('2001:db8:1:2:aaaa:bbbb:cccc:dddd');
    expect(third.status).toBe(429);
    expect(await third.json()).toEqual({
      error: {
        code: 'RATE_LIMITED',
        message: 'too many requests from the addresses 2001:db8:1:2::/64; try again in 1000 s',
      },
    });
    expect((await from('2001:db8:1:3::1')).status).toBe(200);
  });
});

describe('the typed client', () => {
  test.each([
    ['a proxy’s plain-text 429', 'slow down', '7', 'try again in 7 s'],
    ['a 429 without a usable Retry-After', '<html>busy</html>', 'soon', 'try again in 1 s'],
  ])('turns %s into RATE_LIMITED with one sentence', async (_label, body, retryAfter, said) => {
    const app = new Hono();
    app.all('*', (c) => c.text(body, 429, { 'retry-after': retryAfter }));
    const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
    try {
      await new Promise<void>((resolve) => server.once('listening', resolve));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const err = await createApiClient({ url, token: 't' })
        .call('me')
        .catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: 'RATE_LIMITED',
        message: `the mechanic API at ${url} is refusing requests for now (too many); ${said}`,
      });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('settings', () => {
  test('the defaults: a burst of 100 then 20 a second per principal, ten times that per address, one-minute windows', () => {
    expect(loadConfig({}).limits).toEqual({
      ...DEFAULT_RATE_LIMITS,
      denialWindowSeconds: 60,
    });
    expect(DEFAULT_RATE_LIMITS).toEqual({
      principal: { burst: 100, perSecond: 20 },
      address: { burst: 1000, perSecond: 200 },
    });
  });

  test('each is set from the environment', () => {
    expect(
      loadConfig({
        MECHANIC_RATE_LIMIT_BURST: '5',
        MECHANIC_RATE_LIMIT_PER_SECOND: '0.5',
        MECHANIC_RATE_LIMIT_ADDRESS_BURST: '50',
        MECHANIC_RATE_LIMIT_ADDRESS_PER_SECOND: '20',
        MECHANIC_DENIAL_WINDOW_SECONDS: '300',
      }).limits,
    ).toEqual({
      principal: { burst: 5, perSecond: 0.5 },
      address: { burst: 50, perSecond: 20 },
      denialWindowSeconds: 300,
    });
  });

  test.each([
    ['MECHANIC_RATE_LIMIT_BURST', '0'],
    ['MECHANIC_RATE_LIMIT_BURST', '2.5'],
    ['MECHANIC_RATE_LIMIT_PER_SECOND', '0'],
    ['MECHANIC_RATE_LIMIT_ADDRESS_BURST', 'lots'],
    ['MECHANIC_RATE_LIMIT_ADDRESS_PER_SECOND', '-1'],
    ['MECHANIC_DENIAL_WINDOW_SECONDS', '0'],
  ])('%s=%s is refused, naming the setting', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(name) }),
    );
  });
});
