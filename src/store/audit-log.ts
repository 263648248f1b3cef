/**
 * The append-only, hash-chained audit log and the execution index projected from it.
 *
 * The chain is only as good as the serialisation of appends: two writers that read the same head
 * would fork it. Every append therefore runs in one transaction that first takes an exclusive lock
 * (SQLite: BEGIN IMMEDIATE, see db.ts; PostgreSQL: a transaction-scoped advisory lock), then reads
 * the head, inserts the row and updates the projection, so the worker and the API server — separate
 * processes — can both write safely.
 */
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import {
  GENESIS_HASH,
  canonicalJson,
  chainHash,
  eventOf,
  normalizeIsoTime,
  parseNewAuditEvent,
  projectExecution,
  verifyChain,
  type AuditEventType,
  type AuditRecord,
  type ChainVerdict,
  type ExecutionStatus,
  type ExecutionSummary,
  type NewAuditEvent,
} from '../core/audit.ts';
import { UserError } from '../core/errors.ts';
import { isPostgres, openDatabase, type StoreLocation } from './db.ts';
import type { AuditEventsTable, Database, ExecutionsTable } from './schema.ts';

export interface AuditListQuery {
  executionId?: string;
  afterSeq?: number;
  limit?: number;
}

export interface ExecutionListQuery {
  status?: ExecutionStatus;
  limit?: number;
  /** ISO time: only executions created strictly before it (paging, newest first). */
  before?: string;
}

export interface AuditStore {
  /**
   * Validates and appends one event, updating the execution index in the same transaction.
   * Idempotent on eventId: a repeat returns the stored record. The same eventId with different
   * content throws AuditEventConflictError — a writer bug, never retried into success.
   */
  append(event: NewAuditEvent): Promise<AuditRecord>;
  /** Records in ascending seq. Default limit 1000, at most 10000; page with afterSeq. */
  list(q?: AuditListQuery): Promise<AuditRecord[]>;
  /** Walks the whole chain in pages and reports the first broken link. */
  verify(): Promise<ChainVerdict>;
  getExecution(id: string): Promise<ExecutionSummary | undefined>;
  /** Newest first. Default limit 50, at most 1000. */
  listExecutions(q?: ExecutionListQuery): Promise<ExecutionSummary[]>;
  close(): Promise<void>;
}

/** The same eventId arrived with different content: two writers disagree about one event. */
export class AuditEventConflictError extends Error {
  readonly code = 'AUDIT_EVENT_CONFLICT';
  constructor(
    readonly eventId: string,
    readonly seq: number,
  ) {
    super(`audit event ${eventId} was already recorded (seq ${seq}) with different content`);
    this.name = 'AuditEventConflictError';
  }
}

const LIST_DEFAULT = 1000;
const LIST_MAX = 10_000;
const EXECUTIONS_DEFAULT = 50;
const EXECUTIONS_MAX = 1000;
const VERIFY_PAGE = 1000;
/** Two int4 keys for pg_advisory_xact_lock: 'mech' and 'audt' in ASCII, unlikely to collide. */
const PG_LOCK_CLASS = 0x6d656368;
const PG_LOCK_OBJECT = 0x61756474;

type AuditRow = Selectable<AuditEventsTable>;
type ExecutionRow = Selectable<ExecutionsTable>;

function clampLimit(limit: number | undefined, fallback: number, max: number): number {
  if (limit === undefined) return fallback;
  if (!Number.isInteger(limit) || limit < 1)
    throw new UserError('USAGE', `limit must be a positive integer, got ${limit}`);
  return Math.min(limit, max);
}

function toRecord(row: AuditRow): AuditRecord {
  return {
    eventId: row.event_id,
    executionId: row.execution_id,
    // The hash covers the stored text; an unknown type in a tampered row shows up as a hash mismatch.
    type: row.type as AuditEventType,
    actor: row.actor,
    at: row.at,
    data: JSON.parse(row.data) as Record<string, unknown>,
    seq: Number(row.seq),
    prevHash: row.prev_hash,
    hash: row.hash,
    recordedAt: row.recorded_at,
  };
}

function toSummary(row: ExecutionRow): ExecutionSummary {
  return {
    id: row.id,
    runbookName: row.runbook_name,
    runbookVersion: Number(row.runbook_version),
    operator: row.operator,
    reason: row.reason,
    status: row.status as ExecutionStatus,
    planDigest: row.plan_digest,
    params: JSON.parse(row.params) as Record<string, unknown>,
    targets: JSON.parse(row.targets) as string[],
    approvals: JSON.parse(row.approvals) as string[],
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    finishedAt: row.finished_at,
  };
}

function toExecutionRow(s: ExecutionSummary): ExecutionRow {
  return {
    id: s.id,
    runbook_name: s.runbookName,
    runbook_version: s.runbookVersion,
    operator: s.operator,
    reason: s.reason,
    status: s.status,
    plan_digest: s.planDigest,
    params: canonicalJson(s.params),
    targets: canonicalJson(s.targets),
    approvals: canonicalJson(s.approvals),
    created_at: s.createdAt,
    updated_at: s.updatedAt,
    finished_at: s.finishedAt,
  };
}

/**
 * An audit store over an already-open database (see openDatabase). With `ownsDb`, close()
 * destroys the database; otherwise the caller does.
 */
export function createAuditStore(db: Kysely<Database>, options: { ownsDb?: boolean } = {}): AuditStore {
  const pg = isPostgres(db);

  async function lockChain(trx: Transaction<Database>): Promise<void> {
    // SQLite already holds the write lock (BEGIN IMMEDIATE). PostgreSQL: the advisory lock is
    // released at commit/rollback; under READ COMMITTED the head query below, a new statement,
    // then sees everything the previous holder committed.
    if (pg) await sql`select pg_advisory_xact_lock(${sql.lit(PG_LOCK_CLASS)}, ${sql.lit(PG_LOCK_OBJECT)})`.execute(trx);
  }

  async function project(trx: Transaction<Database>, event: NewAuditEvent): Promise<void> {
    if (event.executionId === null) return;
    const row = await trx.selectFrom('executions').selectAll().where('id', '=', event.executionId).executeTakeFirst();
    const current = row ? toSummary(row) : undefined;
    const next = projectExecution(current, event);
    if (next === undefined || next === current) return;
    const values = toExecutionRow(next);
    const { id: _id, ...changes } = values;
    await trx
      .insertInto('executions')
      .values(values)
      .onConflict((oc) => oc.column('id').doUpdateSet(changes))
      .execute();
  }

  async function appendOnce(event: NewAuditEvent): Promise<AuditRecord> {
    return db.transaction().execute(async (trx) => {
      await lockChain(trx);
      const existing = await trx
        .selectFrom('audit_events')
        .selectAll()
        .where('event_id', '=', event.eventId)
        .executeTakeFirst();
      if (existing) {
        const stored = toRecord(existing);
        if (canonicalJson(eventOf(stored)) !== canonicalJson(event)) {
          throw new AuditEventConflictError(event.eventId, stored.seq);
        }
        return stored;
      }
      const head = await trx
        .selectFrom('audit_events')
        .select(['seq', 'hash'])
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirst();
      const seq = head ? Number(head.seq) + 1 : 1;
      const prevHash = head?.hash ?? GENESIS_HASH;
      const hash = chainHash(prevHash, event);
      const recordedAt = new Date().toISOString();
      // Projection first: if it rejects the event (a writer bug), nothing is written.
      await project(trx, event);
      await trx
        .insertInto('audit_events')
        .values({
          seq,
          event_id: event.eventId,
          execution_id: event.executionId,
          type: event.type,
          actor: event.actor,
          at: event.at,
          data: canonicalJson(event.data),
          prev_hash: prevHash,
          hash,
          recorded_at: recordedAt,
        })
        .execute();
      return { ...event, seq, prevHash, hash, recordedAt };
    });
  }

  async function list(q: AuditListQuery = {}): Promise<AuditRecord[]> {
    const limit = clampLimit(q.limit, LIST_DEFAULT, LIST_MAX);
    let query = db.selectFrom('audit_events').selectAll().orderBy('seq', 'asc').limit(limit);
    if (q.executionId !== undefined) query = query.where('execution_id', '=', q.executionId);
    if (q.afterSeq !== undefined) {
      if (!Number.isInteger(q.afterSeq) || q.afterSeq < 0) {
        throw new UserError('USAGE', `afterSeq must be a non-negative integer, got ${q.afterSeq}`);
      }
      query = query.where('seq', '>', q.afterSeq);
    }
    return (await query.execute()).map(toRecord);
  }

  async function verify(): Promise<ChainVerdict> {
    let prevHash = GENESIS_HASH;
    let lastSeq: number | undefined;
    let count = 0;
    for (;;) {
      let page = db.selectFrom('audit_events').selectAll().orderBy('seq', 'asc').limit(VERIFY_PAGE);
      // No lower bound on the first page: a stray row below seq 1 must be reported, not skipped.
      if (lastSeq !== undefined) page = page.where('seq', '>', lastSeq);
      const rows = await page.execute();
      for (const row of rows) {
        const seq = Number(row.seq);
        let record: AuditRecord;
        try {
          record = toRecord(row);
        } catch {
          return { ok: false, seq, reason: 'data is not valid JSON' };
        }
        const verdict = verifyChain([record], prevHash, (lastSeq ?? 0) + 1);
        if (!verdict.ok) return verdict;
        // The hash is over the canonical form; the stored text must be exactly that form, so an
        // export re-verifies byte for byte without re-encoding.
        if (row.data !== canonicalJson(record.data)) {
          return { ok: false, seq, reason: 'data is not stored in canonical form' };
        }
        prevHash = record.hash;
        lastSeq = seq;
        count++;
      }
      if (rows.length < VERIFY_PAGE) return { ok: true, count };
    }
  }

  return {
    async append(input) {
      // Validate outside the transaction: a bad event never takes the lock.
      return appendOnce(parseNewAuditEvent(input));
    },
    list,
    verify,
    async getExecution(id) {
      const row = await db.selectFrom('executions').selectAll().where('id', '=', id).executeTakeFirst();
      return row ? toSummary(row) : undefined;
    },
    async listExecutions(q = {}) {
      const limit = clampLimit(q.limit, EXECUTIONS_DEFAULT, EXECUTIONS_MAX);
      let query = db
        .selectFrom('executions')
        .selectAll()
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit);
      if (q.status !== undefined) query = query.where('status', '=', q.status);
      if (q.before !== undefined) {
        let before: string;
        try {
          before = normalizeIsoTime(q.before);
        } catch {
          throw new UserError('USAGE', `before must be an ISO time, got ${q.before}`);
        }
        query = query.where('created_at', '<', before);
      }
      return (await query.execute()).map(toSummary);
    },
    async close() {
      if (options.ownsDb) await db.destroy();
    },
  };
}

/** Opens (and migrates) the database at `loc` and returns a store that closes it on close(). */
export async function openAuditStore(loc: StoreLocation): Promise<AuditStore> {
  const db = await openDatabase(loc);
  return createAuditStore(db, { ownsDb: true });
}
