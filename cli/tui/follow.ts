/**
 * Follows a live event stream and keeps following it: a dropped connection is resumed after the
 * last record seen (Last-Event-ID), with a growing pause while the server stays away. The TUI
 * learns about changes only from here: it has no polling loop of its own.
 */
import { useEffect, useRef, useState } from 'react';
import type { ApiClient } from '../../src/api/client.ts';
import type { AuditRecordInfo } from '../../src/api/schemas.ts';
import { isMechanicError } from '../../src/core/errors.ts';

export type Link =
  | { readonly state: 'connecting' }
  | { readonly state: 'live' }
  /** The connection dropped; the next attempt is at `retryAt` (ms since epoch). */
  | { readonly state: 'lost'; readonly retryAt: number; readonly message: string }
  /** Retrying cannot help (signed out, gone): `message` says what to do. */
  | { readonly state: 'failed'; readonly code: string; readonly message: string };

export interface FollowHandlers {
  record(record: AuditRecordInfo): void;
  link(link: Link): void;
}

const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 5_000;
/** Error codes no retry can fix. */
const FATAL = new Set(['UNAUTHENTICATED', 'FORBIDDEN', 'EXECUTION_NOT_FOUND', 'USAGE', 'INTERNAL']);

/** Follows `target` until `signal` aborts or a fatal error; resolves then. */
export async function follow(
  api: ApiClient,
  target: { executionId: string } | 'all',
  handlers: FollowHandlers,
  signal: AbortSignal,
  options: { after?: number; sleep?: (ms: number, signal: AbortSignal) => Promise<void> } = {},
): Promise<void> {
  const sleep = options.sleep ?? abortableSleep;
  let after = options.after;
  let delay = FIRST_RETRY_MS;
  handlers.link({ state: 'connecting' });
  while (!signal.aborted) {
    let message = 'the server closed the event stream';
    try {
      const stream = api.events(target, { signal, ...(after !== undefined ? { after } : {}) });
      // Shown as live as soon as it is asked for: a quiet stream yields nothing for a long time,
      // and a server that is away fails the first read at once (then it is shown as lost).
      const first = stream.next();
      handlers.link({ state: 'live' });
      for (let r = await first; !r.done; r = await stream.next()) {
        after = r.value.seq;
        delay = FIRST_RETRY_MS;
        handlers.record(r.value);
      }
    } catch (e) {
      if (signal.aborted) return;
      if (isMechanicError(e) && FATAL.has(e.code)) {
        handlers.link({ state: 'failed', code: e.code, message: e.message });
        return;
      }
      message = e instanceof Error ? e.message : String(e);
    }
    if (signal.aborted) return;
    handlers.link({ state: 'lost', retryAt: Date.now() + delay, message });
    await sleep(delay, signal).catch(() => undefined);
    delay = Math.min(MAX_RETRY_MS, delay * 2);
    if (!signal.aborted) handlers.link({ state: 'connecting' });
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

/**
 * The hook: follows `target` while mounted. `onRecord` is read through a ref, so a new callback
 * each render does not reconnect. `key` restarts the stream from scratch when it changes.
 */
export function useFollow(
  api: ApiClient,
  target: { executionId: string } | 'all' | undefined,
  onRecord: (record: AuditRecordInfo) => void,
): Link {
  const [link, setLink] = useState<Link>({ state: 'connecting' });
  const handler = useRef(onRecord);
  handler.current = onRecord;
  const key = target === undefined ? '' : target === 'all' ? '*' : target.executionId;
  useEffect(() => {
    if (key === '') return undefined;
    const controller = new AbortController();
    void follow(
      api,
      key === '*' ? 'all' : { executionId: key },
      { record: (r) => handler.current(r), link: setLink },
      controller.signal,
    );
    return () => controller.abort();
  }, [api, key]);
  return link;
}
