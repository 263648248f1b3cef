/**
 * Audit events, their hash chain and the execution index projected from them.
 *
 * Pure: no I/O. The store (src/store/audit-log.ts) owns persistence and serialises appends; this
 * module owns what a record *means*, so that `mechanic audit verify`, the store and any external
 * auditor re-deriving hashes from an export all agree byte for byte.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from './canonical.ts';
import { EXECUTION_STATUSES, TERMINAL_STATUSES, type ExecutionStatus } from './execution.ts';

export { canonicalJson, NonJsonValueError } from './canonical.ts';
import { UserError } from './errors.ts';

export const AuditEventTypeSchema = z.enum([
  'execution.requested',
  'approval.granted',
  'approval.refused',
  'approval.rejected',
  'credentials.issued',
  'step.started',
  'step.instance',
  'step.completed',
  'execution.running',
  'execution.completed',
  'execution.failed',
  'execution.expired',
  'execution.cancelled',
  'execution.rejected',
  'access.denied',
]);
export type AuditEventType = z.infer<typeof AuditEventTypeSchema>;

/** Upper bound on an event's canonical `data`, so one runaway writer cannot bloat every export. */
export const MAX_AUDIT_DATA_CHARS = 1_000_000;

export const NewAuditEventSchema = z.strictObject({
  /** Idempotency key chosen by the writer, e.g. `${executionId}:step.started:0`: activity retries append once. */
  eventId: z.string().min(1).max(200),
  /** Null for events not tied to one execution (e.g. access.denied on a listing). */
  executionId: z.string().min(1).max(200).nullable(),
  type: AuditEventTypeSchema,
  /** Who caused it: a user id, or 'mechanic' for the system. */
  actor: z.string().min(1),
  /** When it happened, supplied by the writer: workflows must pass their deterministic time. */
  at: z.iso.datetime(),
  /** JSON-safe details; checked with canonicalJson before anything is hashed. */
  data: z.record(z.string(), z.unknown()),
});
export type NewAuditEvent = z.infer<typeof NewAuditEventSchema>;

export type AuditRecord = NewAuditEvent & {
  /** Position in the chain, 1-based and gapless. */
  seq: number;
  prevHash: string;
  hash: string;
  /** Store clock at insert; informational only, not covered by the hash. */
  recordedAt: string;
};

export type ChainVerdict = { ok: true; count: number } | { ok: false; seq: number; reason: string };

/** The prevHash of the first record. */
export const GENESIS_HASH = '0'.repeat(64);

/** The hashed part of a record: exactly the NewAuditEvent fields, nothing the store adds. */
export function eventOf(record: NewAuditEvent): NewAuditEvent {
  return {
    eventId: record.eventId,
    executionId: record.executionId,
    type: record.type,
    actor: record.actor,
    at: record.at,
    data: record.data,
  };
}

/**
 * sha256 (hex) over `prevHash + '\n' + canonicalJson(event)`. Only the six event fields are
 * hashed (extra properties such as seq or recordedAt are ignored), so a record can be re-hashed
 * from an export without knowing the store.
 */
export function chainHash(prevHash: string, event: NewAuditEvent): string {
  return createHash('sha256')
    .update(prevHash + '\n' + canonicalJson(eventOf(event)), 'utf8')
    .digest('hex');
}

/**
 * Validates an event from a writer and returns it with `data` normalised to what the store will
 * read back (undefined properties dropped). Throws on anything that could not be stored and
 * re-verified; that is a bug in the writer, not a user mistake.
 */
export function parseNewAuditEvent(input: unknown): NewAuditEvent {
  const result = NewAuditEventSchema.safeParse(input);
  if (!result.success) throw new Error(`invalid audit event: ${z.prettifyError(result.error)}`);
  const dataJson = canonicalJson(result.data.data);
  if (dataJson.length > MAX_AUDIT_DATA_CHARS) {
    throw new Error(
      `audit event ${result.data.eventId} data is ${dataJson.length} chars, over ${MAX_AUDIT_DATA_CHARS}`,
    );
  }
  return { ...result.data, data: JSON.parse(dataJson) as Record<string, unknown> };
}

/**
 * Walks records in chain order and reports the first broken link: a seq that does not follow its
 * predecessor, a prevHash that is not the previous record's hash, or a hash that does not match the
 * record's content. `startPrevHash` and `firstSeq` let a caller verify one page of a longer chain.
 */
export function verifyChain(
  records: readonly AuditRecord[],
  startPrevHash: string = GENESIS_HASH,
  firstSeq?: number,
): ChainVerdict {
  let expectedPrev = startPrevHash;
  let expectedSeq = firstSeq;
  for (const record of records) {
    if (expectedSeq !== undefined && record.seq !== expectedSeq) {
      return {
        ok: false,
        seq: record.seq,
        reason: `expected seq ${expectedSeq} but found ${record.seq}: records are missing or out of order`,
      };
    }
    if (record.prevHash !== expectedPrev) {
      return { ok: false, seq: record.seq, reason: "prevHash does not match the previous record's hash" };
    }
    let actual: string;
    try {
      actual = chainHash(record.prevHash, record);
    } catch (e) {
      return { ok: false, seq: record.seq, reason: `content cannot be hashed: ${(e as Error).message}` };
    }
    if (actual !== record.hash) {
      return { ok: false, seq: record.seq, reason: "hash does not match the record's content" };
    }
    expectedPrev = record.hash;
    expectedSeq = record.seq + 1;
  }
  return { ok: true, count: records.length };
}

// ---------------------------------------------------------------------------------------------
// Execution index: a projection of the log, so it can always be rebuilt from the audit events.

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

// Loose objects: writers may add fields over time; only what the index shows is required.
const RequestedDataSchema = z.looseObject({
  runbook: z.looseObject({ name: z.string().min(1), version: z.number().int(), digest: z.string().optional() }),
  params: z.record(z.string(), z.unknown()).default({}),
  targets: z.array(z.string()).default([]),
  planDigest: z.string().min(1),
  reason: z.string().default(''),
  requester: z.string().optional(),
});
const ApprovalDataSchema = z.looseObject({ planDigest: z.string().optional() });

const TERMINAL_EVENT_STATUS: Partial<Record<AuditEventType, ExecutionStatus>> = {
  'execution.completed': 'completed',
  'execution.failed': 'failed',
  'execution.expired': 'expired',
  'execution.cancelled': 'cancelled',
  'execution.rejected': 'rejected',
};

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
 * Applies one event to an execution's summary. Returns `current` unchanged (same object) when the
 * event does not concern an indexed execution, so callers can skip a write. Terminal states are
 * final: a late `execution.running` or a second terminal event does not rewrite history, it only
 * moves `updatedAt`. Throws when an `execution.requested` event lacks what the index needs — the
 * writer is mechanic's own code, so that is a bug to surface, not data to guess at.
 */
export function projectExecution(
  current: ExecutionSummary | undefined,
  event: NewAuditEvent,
): ExecutionSummary | undefined {
  if (event.executionId === null) return current;
  const at = normalizeIsoTime(event.at);

  if (event.type === 'execution.requested') {
    if (current) return { ...current, updatedAt: later(current.updatedAt, at) };
    const parsed = RequestedDataSchema.safeParse(event.data);
    if (!parsed.success) {
      throw new Error(`execution.requested ${event.eventId} has invalid data: ${z.prettifyError(parsed.error)}`);
    }
    const d = parsed.data;
    return {
      id: event.executionId,
      runbookName: d.runbook.name,
      runbookVersion: d.runbook.version,
      operator: d.requester ?? event.actor,
      reason: d.reason,
      status: 'awaiting_approval',
      planDigest: d.planDigest,
      params: d.params,
      targets: d.targets,
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
    const d = ApprovalDataSchema.safeParse(event.data);
    // An approval that names another plan does not count for this one (approvals bind to the plan).
    const digest = d.success ? d.data.planDigest : undefined;
    if (digest !== undefined && digest !== current.planDigest) return next;
    if (!current.approvals.includes(event.actor)) next.approvals = [...current.approvals, event.actor];
    return next;
  }
  if (event.type === 'execution.running') {
    if (!finished) next.status = 'running';
    return next;
  }
  const terminal = TERMINAL_EVENT_STATUS[event.type];
  if (terminal && !finished) {
    next.status = terminal;
    next.finishedAt = at;
  }
  return next;
}

/** Turns a failed verification into the error `mechanic audit verify` and the API report. */
export function assertChainIntact(verdict: ChainVerdict): { count: number } {
  if (!verdict.ok) {
    throw new UserError('AUDIT_CHAIN_BROKEN', `audit log chain is broken at seq ${verdict.seq}: ${verdict.reason}`);
  }
  return { count: verdict.count };
}
