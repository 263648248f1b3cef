import type { Context, Env as HonoEnv, MiddlewareHandler } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';

export interface BucketOptions {
  /** Requests allowed in a burst. */
  readonly capacity: number;
  /** Requests added back per second. */
  readonly refillPerSecond: number;
  /** Keys remembered at most; the least recently used are dropped first (a full bucket is the default anyway). */
  readonly maxKeys?: number;
  /** Milliseconds; injected by tests so time can pass without waiting. */
  readonly now?: () => number;
}

export type Take = { readonly ok: true } | { readonly ok: false; readonly retryAfterSeconds: number };

/**
 * Token buckets by key (a principal, an address). Memory is bounded: a key not seen for a while is
 * forgotten, which only ever gives it a full bucket, never less than it is due.
 */
export function tokenBuckets(options: BucketOptions): { take(key: string): Take; readonly size: number } {
  if (!(options.capacity >= 1) || !(options.refillPerSecond > 0)) {
    throw new RangeError('a token bucket needs a capacity of at least 1 and a positive refill rate');
  }
  const now = options.now ?? (() => Date.now());
  const maxKeys = options.maxKeys ?? 10_000;
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    take(key) {
      const t = now();
      const b = buckets.get(key) ?? { tokens: options.capacity, at: t };
      // A clock that steps back never adds tokens.
      b.tokens = Math.min(options.capacity, b.tokens + (Math.max(0, t - b.at) / 1000) * options.refillPerSecond);
      b.at = Math.max(b.at, t);
      // Re-inserting keeps the Map in least-recently-used order.
      buckets.delete(key);
      buckets.set(key, b);
      if (buckets.size > maxKeys) buckets.delete(buckets.keys().next().value!);
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return { ok: true };
      }
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / options.refillPerSecond)) };
    },
    get size() {
      return buckets.size;
    },
  };
}

/** What a limiter tells about each request it refuses. */
export interface Limited {
  /** The bucket's key: the principal's id or the address. */
  readonly key: string;
  readonly retryAfterSeconds: number;
  /** The sentence the caller was answered with. */
  readonly message: string;
}

/**
 * A Hono middleware that refuses a caller over its budget with 429, Retry-After and one sentence
 * in the API's error shape (code RATE_LIMITED). `key` picks the bucket (undefined: not limited
 * here); `what` names the caller in the sentence ("the address 10.0.0.7", "alice"). A request
 * takes one token however long it lasts, so an event stream counts once per connection.
 */
export function rateLimit<E extends HonoEnv = HonoEnv>(options: {
  readonly buckets: ReturnType<typeof tokenBuckets>;
  readonly key: (c: Context<E>) => string | undefined;
  readonly what: (c: Context<E>) => string;
  /** Told about each refusal before it is answered, e.g. to put it on the record. */
  readonly onLimited?: (c: Context<E>, limited: Limited) => void | Promise<void>;
}): MiddlewareHandler<E> {
  return async (c, next) => {
    const key = options.key(c);
    if (key !== undefined) {
      const r = options.buckets.take(key);
      if (!r.ok) {
        const message = `too many requests from ${options.what(c)}; try again in ${r.retryAfterSeconds} s`;
        await options.onLimited?.(c, { key, retryAfterSeconds: r.retryAfterSeconds, message });
        c.header('Retry-After', String(r.retryAfterSeconds));
        return c.json({ error: { code: 'RATE_LIMITED', message } }, 429);
      }
    }
    await next();
    return undefined;
  };
}

/** One limit: a burst, then a steady rate. */
export interface LimitSettings {
  readonly burst: number;
  readonly perSecond: number;
}

/** The API's limits, per signed-in principal and per client address (the config's `limits`). */
export interface ApiRateLimits {
  readonly principal: LimitSettings;
  readonly address: LimitSettings;
}

/**
 * Defaults: a person never meets them (the TUI, the busiest client, re-reads at most a few lists
 * four times a second while events flow; a CLI command makes one to three requests), while a
 * script hammering the API is slowed to 20 requests a second after a burst of 100. Many people
 * can share an address (a NAT, a proxy, everyone on the embedded stack's localhost), so the
 * address budget is ten times larger; it is there for floods of bad tokens.
 */
export const DEFAULT_RATE_LIMITS: ApiRateLimits = {
  principal: { burst: 100, perSecond: 20 },
  address: { burst: 1000, perSecond: 200 },
};

/**
 * The caller's address, as the TCP connection says: a client cannot choose it by a header.
 * Behind a proxy every request shares the proxy's, so size the address budget for that.
 */
export function addressOf(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    // Not served by @hono/node-server (app.request in a test): one shared bucket.
    return 'unknown';
  }
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/**
 * The bucket an address draws from. An IPv4 address is its own; an IPv6 address shares its /64
 * (one host or subscriber usually holds a whole /64, so a bucket per address would let it draw
 * from 2^64 of them); an IPv4-mapped IPv6 address is its IPv4 address. Anything unparsable is
 * its own bucket, as written.
 */
export function addressBucket(address: string): string {
  const bare = address.split('%')[0]!.toLowerCase();
  if (!bare.includes(':')) return bare;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(bare);
  if (mapped) return mapped[1]!;
  const halves = bare.split('::');
  if (halves.length > 2) return address;
  const groupsOf = (part: string | undefined): string[] => {
    if (!part) return [];
    const groups = part.split(':');
    const last = groups.at(-1)!;
    // An embedded IPv4 tail (64:ff9b::192.0.2.1) is the last two groups.
    if (IPV4.test(last)) {
      const [a, b, c, d] = last.split('.').map(Number) as [number, number, number, number];
      groups.splice(-1, 1, ((a << 8) | b).toString(16), ((c << 8) | d).toString(16));
    }
    return groups;
  };
  const head = groupsOf(halves[0]);
  const tail = groupsOf(halves[1]);
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return address;
  const groups = [...head, ...Array<string>(halves.length === 1 ? 0 : missing).fill('0'), ...tail];
  if (!groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return address;
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

interface LimiterOptions<E extends HonoEnv> {
  readonly now?: () => number;
  readonly maxKeys?: number;
  readonly onLimited?: (c: Context<E>, limited: Limited) => void | Promise<void>;
}

function bucketsOf<E extends HonoEnv>(limit: LimitSettings, options: LimiterOptions<E>) {
  return tokenBuckets({
    capacity: limit.burst,
    refillPerSecond: limit.perSecond,
    ...(options.now ? { now: options.now } : {}),
    ...(options.maxKeys !== undefined ? { maxKeys: options.maxKeys } : {}),
  });
}

/** Per address, mounted before authentication, so floods of bad tokens are limited too. */
export function addressLimit<E extends HonoEnv = HonoEnv>(
  limit: LimitSettings,
  options: LimiterOptions<E> = {},
): MiddlewareHandler<E> {
  return rateLimit<E>({
    buckets: bucketsOf(limit, options),
    key: (c) => addressBucket(addressOf(c)),
    what: (c) => {
      const bucket = addressBucket(addressOf(c));
      return bucket.endsWith('/64') ? `the addresses ${bucket}` : `the address ${bucket}`;
    },
    ...(options.onLimited ? { onLimited: options.onLimited } : {}),
  });
}

/** Per principal, mounted after authentication (it reads the `user` the authenticator set). */
export function principalLimit<E extends HonoEnv = HonoEnv>(
  limit: LimitSettings,
  options: LimiterOptions<E> = {},
): MiddlewareHandler<E> {
  const idOf = (c: Context<E>): string | undefined =>
    ((c.var as Record<string, unknown>)['user'] as { id: string } | undefined)?.id;
  return rateLimit<E>({
    buckets: bucketsOf(limit, options),
    key: idOf,
    what: (c) => idOf(c) ?? 'you',
    ...(options.onLimited ? { onLimited: options.onLimited } : {}),
  });
}
