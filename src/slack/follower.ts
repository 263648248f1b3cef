/**
 * The message follows the run. The API server reads the audit log — the record every part of
 * mechanic writes, whichever process wrote it — from a stored cursor, notes which runs changed,
 * and brings each run's Slack message up to date: posted when the run is requested, updated in
 * place as votes arrive and as it runs and ends, with a threaded summary at the end.
 *
 * Why here and not in the workflow: Slack must never block or lose a run. The workflow and its
 * history stay untouched by chat; a Slack that is down or rate-limited only delays this loop, which
 * keeps the changed runs durably marked (SQLite beside the server) and tries again — after Slack's
 * Retry-After when it gives one, with growing back-off otherwise — until each message has caught up
 * with the log. Approvals keep working from the CLI and TUI meanwhile. A message is a function of
 * the run's view rebuilt from the log, so catching up after an outage sends only the latest state.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditStore } from '../store/audit-log.ts';
import { runRecords } from '../store/run-records.ts';
import type { AuditEventType } from '../core/audit-events.ts';
import { viewFromAudit } from '../core/execution-view.ts';
import { TERMINAL_STATUSES } from '../core/execution.ts';
import { SlackCallError, type SlackApi } from './client.ts';
import { runMessage, summaryMessage } from './message.ts';
import type { SlackState } from './state.ts';

export interface FollowerDeps {
  readonly audit: Pick<AuditStore, 'list'>;
  /** Wakes the loop when the log grows (the server's audit tail). */
  readonly waitBeyond: (seq: number, signal: AbortSignal) => Promise<boolean>;
  readonly state: SlackState;
  readonly api: Pick<SlackApi, 'postMessage' | 'updateMessage'>;
  readonly channelFor: (runbook: string) => string;
  readonly runUrl?: ((executionId: string) => string) | undefined;
  readonly log: Logger;
  readonly now?: () => number;
  /** First retry delay after a failure without Retry-After; doubles up to maxBackoffMs. */
  readonly backoffMs?: number;
  readonly maxBackoffMs?: number;
}

export interface MessageFollower {
  /** Resolves once every run's message has caught up with the log as it is now (tests, shutdown). */
  settled(): Promise<void>;
  stop(): Promise<void>;
}

/** Refusals change nothing a message shows. */
const IGNORED: ReadonlySet<AuditEventType> = new Set(['approval.refused', 'access.denied', 'request.refused']);
const PAGE = 1000;

export function startMessageFollower(deps: FollowerDeps): MessageFollower {
  const now = () => deps.now?.() ?? Date.now();
  const backoff = deps.backoffMs ?? 1000;
  const maxBackoff = deps.maxBackoffMs ?? 60_000;
  const abort = new AbortController();
  let wake: (() => void) | undefined;
  const settledWaiters: (() => void)[] = [];

  /** The log's end: where a first start begins, so enabling Slack does not post every old run. */
  const endOfLog = async (): Promise<number> => {
    let seq = 0;
    for (;;) {
      const page = await deps.audit.list({ afterSeq: seq, limit: PAGE });
      if (page.length) seq = page[page.length - 1]!.seq;
      if (page.length < PAGE) return seq;
    }
  };

  /** Reads what the log gained since the cursor and marks the runs it touched, with the cursor, at once. */
  const readNew = async (): Promise<boolean> => {
    const cursor = deps.state.cursor() ?? 0;
    const page = await deps.audit.list({ afterSeq: cursor, limit: PAGE });
    if (!page.length) return false;
    const ids = new Set<string>();
    for (const r of page) if (r.executionId && !IGNORED.has(r.type)) ids.add(r.executionId);
    deps.state.advance([...ids], page[page.length - 1]!.seq);
    return page.length === PAGE;
  };

  const sync = async (executionId: string): Promise<void> => {
    const view = viewFromAudit(await runRecords(deps.audit, executionId));
    if (!view) return;
    const message = runMessage(view, { runUrl: deps.runUrl?.(executionId) });
    const sha = createHash('sha256').update(JSON.stringify(message)).digest('hex');
    let stored = deps.state.message(executionId);
    if (!stored) {
      const posted = await deps.api.postMessage({
        channel: deps.channelFor(view.plan.runbook.name),
        text: message.text,
        blocks: message.blocks,
      });
      stored = { executionId, channel: posted.channel, ts: posted.ts, renderedSha256: sha, summaryPosted: false };
      deps.state.saveMessage(stored);
    } else if (stored.renderedSha256 !== sha) {
      await deps.api.updateMessage({
        channel: stored.channel,
        ts: stored.ts,
        text: message.text,
        blocks: message.blocks,
      });
      stored = { ...stored, renderedSha256: sha };
      deps.state.saveMessage(stored);
    }
    if (TERMINAL_STATUSES.has(view.status) && !stored.summaryPosted) {
      const summary = summaryMessage(view);
      await deps.api.postMessage({
        channel: stored.channel,
        threadTs: stored.ts,
        text: summary.text,
        blocks: summary.blocks,
      });
      deps.state.saveMessage({ ...stored, summaryPosted: true });
    }
  };

  /** Brings every due run up to date; returns when the next deferred one is due (or undefined). */
  const syncDue = async (): Promise<number | undefined> => {
    let next: number | undefined;
    for (const run of deps.state.dirty()) {
      if (abort.signal.aborted) return undefined;
      if (run.notBeforeMs > now()) {
        next = Math.min(next ?? Infinity, run.notBeforeMs);
        continue;
      }
      try {
        await sync(run.executionId);
        deps.state.clean(run.executionId);
      } catch (e) {
        // Slack's Retry-After is the wait it asks for; other failures back off, doubling each time.
        const limited = e instanceof SlackCallError && e.retryAfterSeconds !== undefined;
        const delay = limited
          ? (e.retryAfterSeconds ?? 1) * 1000
          : Math.min(maxBackoff, backoff * 2 ** Math.min(run.attempts, 20));
        deps.log.warn(
          { err: e, executionId: run.executionId, retryInMs: delay },
          'could not bring a run’s Slack message up to date; trying again later',
        );
        deps.state.defer(run.executionId, now() + delay, !limited);
        next = Math.min(next ?? Infinity, now() + delay);
      }
    }
    return next;
  };

  const loop = async (): Promise<void> => {
    if (deps.state.cursor() === undefined) deps.state.advance([], await endOfLog());
    while (!abort.signal.aborted) {
      let more = true;
      while (more && !abort.signal.aborted) more = await readNew();
      const next = await syncDue();
      if (next === undefined) while (settledWaiters.length) settledWaiters.shift()!();
      if (abort.signal.aborted) break;
      // Sleep until the log grows, a deferred run is due, or stop() — whichever comes first.
      const local = new AbortController();
      const onAbort = () => local.abort();
      abort.signal.addEventListener('abort', onAbort, { once: true });
      await new Promise<void>((resolve) => {
        wake = resolve;
        const timer = next !== undefined ? setTimeout(resolve, Math.max(0, next - now())) : undefined;
        void deps.waitBeyond(deps.state.cursor() ?? 0, local.signal).then(() => resolve());
        local.signal.addEventListener('abort', () => {
          if (timer) clearTimeout(timer);
          resolve();
        });
      });
      local.abort();
      abort.signal.removeEventListener('abort', onAbort);
    }
  };

  const running = (async () => {
    for (;;) {
      try {
        await loop();
        return;
      } catch (e) {
        // The audit store itself failing (a restarting PostgreSQL): say so and start over shortly.
        deps.log.error({ err: e }, 'the Slack message follower failed; restarting it');
        await new Promise((r) => setTimeout(r, backoff).unref());
        if (abort.signal.aborted) return;
      }
    }
  })();

  return {
    settled: () =>
      new Promise<void>((resolve) => {
        settledWaiters.push(resolve);
        wake?.();
      }),
    async stop() {
      abort.abort();
      wake?.();
      await running;
    },
  };
}
