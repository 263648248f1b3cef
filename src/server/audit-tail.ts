/**
 * Wakes the server's event streams when the audit log grows. The worker and the API server are
 * separate processes writing one log, so the server cannot learn of an append in memory; one
 * poller per server checks the head and wakes every stream, and each stream reads its own
 * records from its own cursor, so no record is skipped however streams join or fall behind.
 */
import type { AuditStore } from '../store/audit-log.ts';

export interface AuditTail {
  /** The highest seq this tail has seen; take it before reading, then wait beyond it. */
  head(): number;
  /** Resolves when the log grows past `seq`, or when the tail stops (then with false). */
  waitBeyond(seq: number, signal?: AbortSignal): Promise<boolean>;
  stop(): void;
}

const PAGE = 1000;

export function createAuditTail(audit: Pick<AuditStore, 'list'>, intervalMs = 200): AuditTail {
  let head = 0;
  let stopped = false;
  const waiters = new Set<{ seq: number; wake: (more: boolean) => void }>();
  let timer: NodeJS.Timeout | undefined;

  const tick = async (): Promise<void> => {
    timer = undefined;
    if (stopped) return;
    try {
      for (;;) {
        const page = await audit.list({ afterSeq: head, limit: PAGE });
        if (page.length) head = page[page.length - 1]!.seq;
        if (page.length < PAGE) break;
      }
      for (const w of waiters) {
        if (head > w.seq) {
          waiters.delete(w);
          w.wake(true);
        }
      }
    } catch {
      // A store that is briefly unavailable (a restarting PostgreSQL) is tried again next tick.
    }
    if (!stopped && waiters.size) timer = setTimeout(() => void tick(), intervalMs);
  };

  return {
    head: () => head,
    waitBeyond(seq, signal) {
      if (stopped) return Promise.resolve(false);
      return new Promise((resolve) => {
        const w = {
          seq,
          wake: (more: boolean) => {
            signal?.removeEventListener('abort', onAbort);
            resolve(more);
          },
        };
        const onAbort = () => {
          waiters.delete(w);
          resolve(false);
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        waiters.add(w);
        if (head > seq) {
          waiters.delete(w);
          w.wake(true);
        } else if (!timer) timer = setTimeout(() => void tick(), 0);
      });
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      for (const w of waiters) w.wake(false);
      waiters.clear();
    },
  };
}
