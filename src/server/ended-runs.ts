/**
 * Runs that Temporal ended without the run recording its end: terminated from Temporal's Web UI or
 * CLI, timed out, cancelled there, or failed as workflows (a record the run could not write). Their
 * workflow never wrote `execution.*`, so the audit log, the list and the reports would show them
 * waiting or running for ever. The API server looks for them (Temporal's visibility: closed, with a
 * MechanicStatus that is not final) when it starts and then at an interval, and records each one's
 * end as `execution.failed`, with what Temporal says happened — who terminated it and why, or the
 * failure — at the time Temporal closed it.
 *
 * The record's id is fixed by the run, and its content by Temporal's history, so two servers that
 * sweep at once write one record. A run whose log already ends is left alone.
 */
import {
  CancelledFailure,
  TerminatedFailure,
  TimeoutFailure,
  WorkflowFailedError,
  type Client,
} from '@temporalio/client';
import { optionalTsToDate } from '@temporalio/common/lib/time.js';
// CommonJS whose named exports Node's ESM loader cannot see: the default export.
import proto from '@temporalio/proto';
import type { Logger } from 'pino';
import { auditEvent } from '../core/audit-events.ts';
import { TERMINAL_STATUSES } from '../core/execution.ts';
import { quoteForMessage } from '../core/text.ts';
import type { AuditStore } from '../store/audit-log.ts';

/** Closed in Temporal, though the run's own status (its search attribute) never reached an end. */
export const ENDED_OUTSIDE_QUERY =
  'ExecutionStatus IN ("Terminated", "TimedOut", "Failed", "Canceled") AND MechanicStatus IN ("awaiting_approval", "running")';

export interface EndedRunsDeps {
  readonly client: Client;
  readonly audit: Pick<AuditStore, 'append' | 'getExecution'>;
  readonly log: Pick<Logger, 'info' | 'error'>;
}

/** The id of the record that ends a run Temporal ended. */
export const endedOutsideEventId = (executionId: string) => `${executionId}:ended-in-temporal`;

/**
 * Finds the runs Temporal ended without their end on the record (closed after `closedAfter`, when
 * given), and records it. Returns the executions it recorded.
 */
export async function recordRunsEndedInTemporal(deps: EndedRunsDeps, closedAfter?: Date): Promise<string[]> {
  const recorded: string[] = [];
  const query = closedAfter
    ? `${ENDED_OUTSIDE_QUERY} AND CloseTime > "${closedAfter.toISOString()}"`
    : ENDED_OUTSIDE_QUERY;
  for await (const run of deps.client.workflow.list({ query })) {
    const id = run.workflowId;
    const summary = await deps.audit.getExecution(id);
    // Not one of mechanic's runs (no request on the record), or its end is already there.
    if (!summary || TERMINAL_STATUSES.has(summary.status)) continue;
    const { reason, at } = await howItEnded(deps.client, id, run.runId);
    await deps.audit.append(
      auditEvent('execution.failed', {
        eventId: endedOutsideEventId(id),
        executionId: id,
        actor: 'mechanic',
        at: (at ?? run.closeTime ?? new Date()).toISOString(),
        data: { reason },
      }),
    );
    deps.log.info({ executionId: id, reason }, 'recorded the end of a run Temporal ended');
    recorded.push(id);
  }
  return recorded;
}

/** What Temporal says ended the run, in one sentence, and when (its last event's time). */
async function howItEnded(client: Client, workflowId: string, runId: string): Promise<{ reason: string; at?: Date }> {
  const { history } = await client.workflowService.getWorkflowExecutionHistoryReverse({
    namespace: client.options.namespace,
    execution: { workflowId, runId },
    maximumPageSize: 1,
  });
  const last = history?.events?.[0];
  const at = optionalTsToDate(last?.eventTime);
  const how = await whatEndedIt(client, workflowId, runId, last);
  const reason = `it ended in Temporal without recording its end${how ? `: ${how}` : ''}`;
  return at ? { reason, at } : { reason };
}

/** Who terminated the run and why, or that it timed out, was cancelled or failed (and how); undefined when Temporal does not say. */
async function whatEndedIt(
  client: Client,
  workflowId: string,
  runId: string,
  last: proto.temporal.api.history.v1.IHistoryEvent | undefined,
): Promise<string | undefined> {
  const terminated = last?.workflowExecutionTerminatedEventAttributes;
  if (terminated) {
    const by = terminated.identity ? ` by ${quoteForMessage(terminated.identity, 100)}` : '';
    const why = terminated.reason ? `: ${quoteForMessage(terminated.reason, 200)}` : '';
    return `terminated${by}${why}`;
  }
  if (last?.eventType === proto.temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT) {
    return 'it timed out';
  }
  // A failure's message is encoded like any payload: the client decodes it.
  const e = await client.workflow
    .getHandle(workflowId, runId)
    .result()
    .then(
      () => undefined,
      (err: unknown) => err,
    );
  const cause = e instanceof WorkflowFailedError ? e.cause : undefined;
  if (cause instanceof CancelledFailure) return 'cancelled in Temporal';
  if (cause === undefined || cause instanceof TerminatedFailure || cause instanceof TimeoutFailure) return undefined;
  return `it failed: ${quoteForMessage(innermost(cause), 300)}`;
}

/** The message of the deepest cause (an activity's failure, not "Activity task failed"). */
function innermost(e: Error): string {
  let at: Error = e;
  while (at.cause instanceof Error) at = at.cause;
  return at.message;
}

/** How far back a sweep looks before the previous one began: Temporal's visibility lags its closes. */
const VISIBILITY_LAG_MS = 10 * 60_000;

/**
 * Sweeps when started (every run Temporal ended, however long ago) and then every `intervalMs`,
 * one sweep at a time, until stopped; a sweep after one that went through looks only at runs
 * closed since shortly before that one began, so the terminated runs of years are not read again
 * every minute.
 */
export function sweepRunsEndedInTemporal(deps: EndedRunsDeps, intervalMs: number): { stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> = Promise.resolve();
  let since: Date | undefined;
  const tick = () => {
    const began = Date.now();
    current = recordRunsEndedInTemporal(deps, since)
      .then(
        () => {
          since = new Date(began - VISIBILITY_LAG_MS);
        },
        (err: unknown) => deps.log.error({ err }, 'could not look for runs Temporal ended; trying again later'),
      )
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  };
  tick();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await current;
    },
  };
}
