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
  // Already normalised (every event the workflow writes): returned as is, without the round trip
  // through Date, which is most of rebuilding the index over a million events (`audit verify`).
  if (isNormalizedIso(iso)) return iso;
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`not an ISO time: ${iso}`);
  return new Date(ms).toISOString();
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const DIGIT_AT = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22];

/**
 * Whether `iso` is exactly what normalizeIsoTime makes of it: `YYYY-MM-DDTHH:MM:SS.mmmZ` with every
 * field in range (a real day of its month, hours below 24), so Date would read and write it back
 * unchanged. Two such strings compare in time as they compare as text.
 */
function isNormalizedIso(iso: string): boolean {
  if (iso.length !== 24 || iso[4] !== '-' || iso[7] !== '-' || iso[10] !== 'T') return false;
  if (iso[13] !== ':' || iso[16] !== ':' || iso[19] !== '.' || iso[23] !== 'Z') return false;
  for (const i of DIGIT_AT) {
    const c = iso.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  const year = twoDigits(iso, 0) * 100 + twoDigits(iso, 2);
  const month = twoDigits(iso, 5);
  const day = twoDigits(iso, 8);
  if (month < 1 || month > 12 || day < 1 || twoDigits(iso, 11) > 23) return false;
  if (twoDigits(iso, 14) > 59 || twoDigits(iso, 17) > 59) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return day <= (month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!);
}

/** The number written by the two ASCII digits at `i` (already checked to be digits). */
function twoDigits(s: string, i: number): number {
  return (s.charCodeAt(i) - 48) * 10 + (s.charCodeAt(i + 1) - 48);
}

function later(a: string, b: string): string {
  if (isNormalizedIso(a) && isNormalizedIso(b)) return b > a ? b : a;
  return Date.parse(b) > Date.parse(a) ? b : a;
}

/**
 * Applies one event (already checked against the vocabulary) to an execution's summary. Returns
 * `current` unchanged (same object) when the event does not concern an indexed execution, so
 * callers can skip a write; otherwise a new summary, `current` left as it was. Terminal states are
 * final: a late `execution.running` or a second terminal event does not rewrite history, it only
 * moves `updatedAt`.
 */
export function projectExecution(
  current: ExecutionSummary | undefined,
  event: AuditEvent,
): ExecutionSummary | undefined {
  if (event.executionId === null || current === undefined) return foldExecution(current, event);
  return foldExecution({ ...current }, event);
}

/**
 * projectExecution for a caller that alone holds `current`: the same rules, applied to `current`
 * itself instead of a copy (a new summary only for a request). `audit verify` folds a million
 * events into summaries no one else sees; a copy per event was about a third of that fold.
 * Arrays in a summary are never changed, only replaced, so a copy made by projectExecution
 * shares nothing this changes.
 */
export function foldExecution(current: ExecutionSummary | undefined, event: AuditEvent): ExecutionSummary | undefined {
  if (event.executionId === null) return current;
  const at = normalizeIsoTime(event.at);

  if (event.type === 'execution.requested') {
    if (current) {
      current.updatedAt = later(current.updatedAt, at);
      return current;
    }
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
  const finished = TERMINAL_STATUSES.has(current.status);
  current.updatedAt = later(current.updatedAt, at);

  if (event.type === 'approval.granted') {
    // An approval arriving after the end changed nothing; the index shows who let it run.
    // An approval that names another plan does not count for this one (approvals bind to the plan).
    if (!finished && event.data.planDigest === current.planDigest && !current.approvals.includes(event.actor))
      current.approvals = [...current.approvals, event.actor];
    return current;
  }
  if (event.type === 'execution.running') {
    if (!finished) current.status = 'running';
    return current;
  }
  const terminal = endStatusOf(event.type);
  if (terminal && !finished) {
    current.status = terminal;
    current.finishedAt = at;
  }
  return current;
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
