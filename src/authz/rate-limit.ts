import type { Context, MiddlewareHandler } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';

export interface BucketOptions {
  /** Requests allowed in a burst. */
  readonly capacity: number;
  /** Requests added back per second. */
  readonly refillPerSecond: number;
  /** Keys remembered at most; the least recently used are dropped first (a full bucket is the default anyway). */
  readonly maxKeys?: number;
  readonly now?: () => number;
}

export type Take = { readonly ok: true } | { readonly ok: false; readonly retryAfterSeconds: number };

/**
 * Token buckets by key (a principal, an address). Memory is bounded: a key not seen for a while is
 * forgotten, which only ever gives it a full bucket, never less than it is due.
 */
export function tokenBuckets(options: BucketOptions): { take(key: string): Take; readonly size: number } {
  const now = options.now ?? (() => Date.now());
  const maxKeys = options.maxKeys ?? 10_000;
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    take(key) {
      const t = now();
      const b = buckets.get(key) ?? { tokens: options.capacity, at: t };
      b.tokens = Math.min(options.capacity, b.tokens + ((t - b.at) / 1000) * options.refillPerSecond);
      b.at = t;
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

/**
 * A Hono middleware that refuses a caller over its budget with 429, Retry-After and one sentence.
 * `key` picks the bucket (undefined: not limited here); `what` names it in the sentence
 * ("this address", "alice").
 */
export function rateLimit(options: {
  readonly buckets: ReturnType<typeof tokenBuckets>;
  readonly key: (c: Context) => string | undefined;
  readonly what: (c: Context) => string;
  /** Told about each refusal, e.g. to count it toward the caller's next audit record. */
  readonly onLimited?: (c: Context, key: string) => void;
}): MiddlewareHandler {
  return async (c, next) => {
    const key = options.key(c);
    if (key !== undefined) {
      const r = options.buckets.take(key);
      if (!r.ok) {
        options.onLimited?.(c, key);
        c.header('Retry-After', String(r.retryAfterSeconds));
        return c.json(
          {
            error: {
              code: 'RATE_LIMITED',
              message: `too many requests from ${options.what(c)}; wait ${r.retryAfterSeconds} s and try again`,
            },
          },
          429,
        );
      }
    }
    await next();
    return undefined;
  };
}

/**
 * Counts repeated refusals of one caller per window, so that a burst of denials becomes one audit
 * record with a count instead of thousands: `note` says whether this refusal opens a window (record
 * it) and `flush` hands back the counts of windows that have closed.
 */
export function refusalWindows(options: { readonly windowMs: number; readonly now?: () => number }) {
  const now = options.now ?? (() => Date.now());
  const windows = new Map<string, { start: number; count: number }>();
  return {
    /** True when this is the first refusal of `key` in its window: record it now, and count the rest. */
    note(key: string): boolean {
      const t = now();
      const w = windows.get(key);
      if (w && t - w.start < options.windowMs) {
        w.count++;
        return false;
      }
      windows.set(key, { start: t, count: 1 });
      return true;
    },
    /** Windows that have ended with more refusals than the first: their keys and counts. */
    flush(): { key: string; count: number; since: Date }[] {
      const t = now();
      const out: { key: string; count: number; since: Date }[] = [];
      for (const [key, w] of windows) {
        if (t - w.start < options.windowMs) continue;
        if (w.count > 1) out.push({ key, count: w.count, since: new Date(w.start) });
        windows.delete(key);
      }
      return out;
    },
  };
}

/** Defaults: a burst of 60 requests, then 10 a second, per address and per principal. */
const DEFAULT_BUCKET: BucketOptions = { capacity: 60, refillPerSecond: 10 };

/** The caller's address; behind a proxy every request shares the proxy's, so size the bucket for that. */
function addressOf(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Per address, mounted before authentication, so floods of bad tokens are limited too. */
export function addressLimit(options: Partial<BucketOptions> & { onLimited?: (c: Context, key: string) => void } = {}) {
  return rateLimit({
    buckets: tokenBuckets({ ...DEFAULT_BUCKET, ...options }),
    key: addressOf,
    what: (c) => `the address ${addressOf(c)}`,
    ...(options.onLimited ? { onLimited: options.onLimited } : {}),
  });
}

/** Per principal, mounted after authentication (it reads the `user` the authenticator set). */
export function principalLimit(
  options: Partial<BucketOptions> & { onLimited?: (c: Context, key: string) => void } = {},
) {
  const idOf = (c: Context): string | undefined => (c.get('user') as { id: string } | undefined)?.id;
  return rateLimit({
    buckets: tokenBuckets({ ...DEFAULT_BUCKET, ...options }),
    key: idOf,
    what: (c) => idOf(c) ?? 'you',
    ...(options.onLimited ? { onLimited: options.onLimited } : {}),
  });
}
