/**
 * Refusals on the record without letting a caller flood the record. The first refusal of a kind
 * (same actor, same event type, same action or code and route) is written at once, exactly as
 * before; the same refusal again within the window is only counted; when the window ends, one
 * more record of that type carries the count (`count`, with `since` and `until`, the first and the
 * last counted refusal). So a forbidden caller making 1,000 requests adds two records, whose counts
 * (an absent count is one) sum to 1,000.
 *
 * When counts are written: by a timer when their window ends; before the next record of the same
 * kind, when that refusal comes after its window; when more kinds are held than `maxKeys` (the
 * oldest window is written early, never dropped); and by close(), which writes every count still
 * held, ended or not, and which the server calls before it closes the audit store. Only a crash of
 * the server (SIGKILL, power) loses counts: at most one window's worth per kind, while the first
 * refusal of each window is always on the record.
 */
import { randomUUID } from 'node:crypto';
import { refusalEvent, type AuditEventData } from '../core/audit-events.ts';
import { routes, streams } from '../api/contract.ts';
import type { AuditStore } from '../store/audit-log.ts';

/** The refusals folded here; a refused vote (approval.refused) is recorded by the execution service. */
export type FoldedRefusalType = 'access.denied' | 'request.refused';

export type Refusal = {
  [T in FoldedRefusalType]: {
    readonly type: T;
    /** Who was refused: a principal's id, or `anonymous` for a caller not signed in. */
    readonly actor: string;
    readonly executionId: string | null;
    /**
     * What makes two refusals of one actor and type "the same": the action or error code and the
     * route pattern, never a value the caller can vary at will (an execution id, a body).
     */
    readonly kind: string;
    readonly data: AuditEventData<T>;
  };
}[FoldedRefusalType];

export interface DenialRecorder {
  /** Records one refusal: the first of its kind in a window at once (awaited), the rest as a count. */
  record(refusal: Refusal): Promise<void>;
  /** Writes the counts of the windows that have ended. The timer calls it; a test with a clock may. */
  flush(): Promise<void>;
  /** Writes every count still held and stops folding (later refusals are written one by one). */
  close(): Promise<void>;
  /** Refusals counted but not yet written. */
  readonly pending: number;
}

export interface DenialRecorderDeps {
  readonly audit: Pick<AuditStore, 'append'>;
  readonly windowMs: number;
  /** Milliseconds; injected by tests so a window can end without waiting. */
  readonly now?: () => number;
  /** Kinds held at most (default 10,000); past it the oldest window's count is written early. */
  readonly maxKeys?: number;
  /** Told when a count could not be written (the audit store failed); the count is in the error. */
  readonly onError?: (err: unknown, count: number) => void;
}

interface Window {
  readonly start: number;
  readonly type: FoldedRefusalType;
  readonly actor: string;
  /** Refusals counted after the first. */
  count: number;
  /** The execution the counted refusals share, or null when they differ. */
  executionId: string | null;
  since: number;
  until: number;
  /** The newest counted refusal's data: the summary repeats its context (path, reason…). */
  data: Record<string, unknown>;
}

export function createDenialRecorder(deps: DenialRecorderDeps): DenialRecorder {
  const now = deps.now ?? (() => Date.now());
  const maxKeys = deps.maxKeys ?? 10_000;
  const windows = new Map<string, Window>();
  let pending = 0;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const writing = new Set<Promise<void>>();

  const write = async (r: Refusal, at: number): Promise<void> => {
    await deps.audit.append(
      refusalEvent(r.type, {
        executionId: r.executionId,
        actor: r.actor,
        at: new Date(at).toISOString(),
        unique: randomUUID(),
        data: r.data,
      }),
    );
  };

  /** Writes a window's count; a failure is reported with the count, never thrown at a caller. */
  const summarize = async (w: Window): Promise<void> => {
    if (w.count === 0) return;
    pending -= w.count;
    try {
      await write(
        {
          type: w.type,
          actor: w.actor,
          executionId: w.executionId,
          kind: '',
          data: {
            ...w.data,
            count: w.count,
            since: new Date(w.since).toISOString(),
            until: new Date(w.until).toISOString(),
          } as never,
        },
        now(),
      );
    } catch (e) {
      deps.onError?.(e, w.count);
    }
  };

  const track = (p: Promise<void>): Promise<void> => {
    writing.add(p);
    void p.finally(() => writing.delete(p));
    return p;
  };

  /** Takes the windows that have ended out of the map (synchronously) and writes their counts. */
  const flush = async (): Promise<void> => {
    const t = now();
    const ended: Window[] = [];
    for (const [key, w] of windows) {
      if (t - w.start < deps.windowMs) continue;
      windows.delete(key);
      ended.push(w);
    }
    for (const w of ended) await track(summarize(w));
  };

  /** A timer only while counts are held, at the end of the earliest window that holds one. */
  const schedule = (): void => {
    if (timer !== undefined || closed) return;
    let earliest: number | undefined;
    for (const w of windows.values()) if (w.count > 0) earliest = Math.min(earliest ?? Infinity, w.start);
    if (earliest === undefined) return;
    timer = setTimeout(
      () => {
        timer = undefined;
        void flush().then(schedule);
      },
      Math.max(0, earliest + deps.windowMs - now()),
    );
    // Counts are written by close() at shutdown; the timer alone must not keep a process alive.
    timer.unref();
  };

  return {
    async record(r) {
      const t = now();
      if (closed) return write(r, t);
      const key = JSON.stringify([r.actor, r.type, r.kind]);
      const w = windows.get(key);
      if (w && t - w.start < deps.windowMs) {
        if (w.count === 0) {
          w.since = t;
          w.executionId = r.executionId;
        } else if (w.executionId !== r.executionId) {
          w.executionId = null;
        }
        w.count++;
        w.until = t;
        w.data = r.data;
        pending++;
        schedule();
        return;
      }
      // The window is opened before anything is awaited, so concurrent refusals fold into it.
      if (w) windows.delete(key);
      windows.set(key, {
        start: t,
        type: r.type,
        actor: r.actor,
        count: 0,
        executionId: null,
        since: t,
        until: t,
        data: {},
      });
      let evicted: Window | undefined;
      if (windows.size > maxKeys) {
        const [oldestKey, oldest] = windows.entries().next().value!;
        windows.delete(oldestKey);
        evicted = oldest;
      }
      // This kind's last window has ended: its count goes on the record before the new first refusal.
      if (w) await track(summarize(w));
      if (evicted) await track(summarize(evicted));
      await write(r, t);
    },

    flush,

    async close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      await Promise.all([...writing]);
      const held = [...windows.values()];
      windows.clear();
      for (const w of held) await summarize(w);
    },

    get pending() {
      return pending;
    },
  };
}

const ROUTE_PATTERNS: readonly { method: string; pattern: string; regex: RegExp }[] = [
  ...Object.values(routes).map((r): { method: string; pattern: string } => ({ method: r.method, pattern: r.path })),
  ...Object.values(streams).map((s) => ({ method: 'GET', pattern: s.path })),
].map((r) => ({ ...r, regex: new RegExp(`^${r.pattern.replace(/:[a-zA-Z]+/g, '[^/]+')}$`) }));

/**
 * The contract's route a request went to ("POST /api/executions/:id/votes"): what a fold key may
 * hold, where the concrete path (any execution id the caller likes) may not.
 */
export function routeOf(method: string, path: string): string {
  const found = ROUTE_PATTERNS.find((r) => r.method === method && r.regex.test(path));
  return found ? `${method} ${found.pattern}` : `${method} (not a contract route)`;
}

/** A minute: long enough that a flood is a handful of records, short enough to read as "now". */
export const DEFAULT_DENIAL_WINDOW_MS = 60_000;
