/**
 * The execution index: a projection of the audit log, so it can always be rebuilt from the events
 * and checked against them (`mechanic audit verify` does both). Pure.
 */
import { z } from 'zod';
import { endStatusOf, type AuditEvent } from './audit-events.ts';
import { canonicalJson } from './canonical.ts';
import { EXECUTION_STATUSES, TERMINAL_STATUSES, type ExecutionStatus } from './execution.ts';

export const ExecutionStatusSchema = z.enum(EXECUTION_STATUSES);
export { TERMINAL_STATUSES, type ExecutionStatus };

export const ExecutionSummarySchema = z.object({
  id: z.string(),
  runbookName: z.string(),
  runbookVersion: z.number().int(),
  operator: z.string(),
  reason: z.string(),
  status: ExecutionStatusSchema,
  planDigest: z.string(),
  params: z.record(z.string(), z.unknown()),
  targets: z.array(z.string()),
  /** Approvers whose approval named this plan's digest, in the order they approved. */
  approvals: z.array(z.string()),
  createdAt: z.string(),
  updatedAt: z.string(),
  finishedAt: z.string().nullable(),
});
export type ExecutionSummary = z.infer<typeof ExecutionSummarySchema>;

/**
 * Normalises an ISO time to millisecond precision with a `Z` suffix. The index sorts and pages on
 * these strings, and `…00Z` sorts after `…00.5Z` unless every value has the same shape.
 */
export function normalizeIsoTime(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`not an ISO time: ${iso}`);
  return new Date(ms).toISOString();
}

function later(a: string, b: string): string {
  return Date.parse(b) > Date.parse(a) ? b : a;
}

/**
 * Applies one event (already checked against the vocabulary) to an execution's summary. Returns
 * `current` unchanged (same object) when the event does not concern an indexed execution, so
 * callers can skip a write. Terminal states are final: a late `execution.running` or a second
 * terminal event does not rewrite history, it only moves `updatedAt`.
 */
export function projectExecution(
  current: ExecutionSummary | undefined,
  event: AuditEvent,
): ExecutionSummary | undefined {
  if (event.executionId === null) return current;
  const at = normalizeIsoTime(event.at);

  if (event.type === 'execution.requested') {
    if (current) return { ...current, updatedAt: later(current.updatedAt, at) };
    const d = event.data;
    return {
      id: event.executionId,
      runbookName: d.runbook.name,
      runbookVersion: d.runbook.version,
      operator: d.requester,
      reason: d.reason,
      status: 'awaiting_approval',
      planDigest: d.planDigest,
      params: d.params,
      targets: [...d.targets],
      approvals: [],
      createdAt: at,
      updatedAt: at,
      finishedAt: null,
    };
  }

  if (!current) return current;
  const next: ExecutionSummary = { ...current, updatedAt: later(current.updatedAt, at) };
  const finished = TERMINAL_STATUSES.has(current.status);

  if (event.type === 'approval.granted') {
    // An approval arriving after the end changed nothing; the index shows who let it run.
    if (finished) return next;
    // An approval that names another plan does not count for this one (approvals bind to the plan).
    if (event.data.planDigest !== current.planDigest) return next;
    if (!current.approvals.includes(event.actor)) next.approvals = [...current.approvals, event.actor];
    return next;
  }
  if (event.type === 'execution.running') {
    if (!finished) next.status = 'running';
    return next;
  }
  const terminal = endStatusOf(event.type);
  if (terminal && !finished) {
    next.status = terminal;
    next.finishedAt = at;
  }
  return next;
}

/**
 * The differences between a stored summary and the one rebuilt from the log, one phrase each
 * (`status is completed, the log says failed`); empty when they agree.
 */
export function diffSummaries(stored: ExecutionSummary, rebuilt: ExecutionSummary): string[] {
  const out: string[] = [];
  for (const key of Object.keys(rebuilt) as (keyof ExecutionSummary)[]) {
    const a = canonicalJson(stored[key]);
    const b = canonicalJson(rebuilt[key]);
    if (a !== b) out.push(`${key} is ${a}, the log says ${b}`);
  }
  return out;
}
