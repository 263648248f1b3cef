/**
 * The read side of the reporting UI: runs filtered and paged over the execution index and its side
 * tables (migration 0004), and the integrity proof of one run. Every list query is one index range
 * read newest first and cut by keyset paging (created_at, id), so a page costs the same on the
 * first day and at a million events; no OFFSET, no count of everything.
 */
import { sql, type Kysely, type Selectable } from 'kysely';
import type { AuditRecord } from '../core/audit-chain.ts';
import type { AuditEventType } from '../core/audit-events.ts';
import type { Checkpoint } from '../core/audit-checkpoint.ts';
import { digestOf } from '../core/canonical.ts';
import { UserError } from '../core/errors.ts';
import type { ExecutionStatus, ExecutionSummary } from '../core/execution-index.ts';
import type { Plan } from '../core/plan.ts';
import type { RunProof } from '../core/run-proof.ts';
import { toSummary } from './execution-rows.ts';
import type { Database } from './schema.ts';

export interface RunFilters {
  readonly runbook?: string | undefined;
  readonly operator?: string | undefined;
  readonly approver?: string | undefined;
  /** Operator or approver: what a person ran or let run. */
  readonly person?: string | undefined;
  readonly instance?: string | undefined;
  readonly status?: ExecutionStatus | undefined;
  /** ISO times (normalised to milliseconds): created at or after `from`, strictly before `to`. */
  readonly from?: string | undefined;
  readonly to?: string | undefined;
}

/** Where a page starts: just after the run created at `createdAt` with id `id` (newest first). */
export interface PageCursor {
  readonly createdAt: string;
  readonly id: string;
}

export interface RunPage {
  readonly runs: readonly ExecutionSummary[];
  /** The token of the next (older) page, or null on the last page. */
  readonly next: string | null;
}

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const ID = /^[A-Za-z0-9._:-]{1,200}$/;

/** An opaque page token: base64url of the cursor's JSON. */
export function encodePageToken(cursor: PageCursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt, cursor.id]), 'utf8').toString('base64url');
}

/**
 * The cursor in a page token, or a USAGE error naming the problem: a token is decoded and checked
 * field by field (a time in the index's exact form, an id of safe characters), never trusted.
 */
export function decodePageToken(token: string): PageCursor {
  const bad = () =>
    new UserError('USAGE', 'the page token is not one this server made; go back to the first page of the list');
  if (token.length > 400 || !/^[A-Za-z0-9_-]+$/.test(token)) throw bad();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (!Array.isArray(value) || value.length !== 2) throw bad();
  const [createdAt, id] = value as unknown[];
  if (typeof createdAt !== 'string' || !ISO_MS.test(createdAt) || Number.isNaN(Date.parse(createdAt))) throw bad();
  if (typeof id !== 'string' || !ID.test(id)) throw bad();
  return { createdAt, id };
}

/** One keyset-paged query for filters without `person` (limit + 1 rows, to know whether more follow). */
async function pageOf(
  db: Kysely<Database>,
  f: Omit<RunFilters, 'person'>,
  after: PageCursor | undefined,
  limit: number,
): Promise<ExecutionSummary[]> {
  // The most selective side table drives the read when a filter names one: its primary key is
  // exactly (value, created_at, execution_id), one range in the wanted order.
  if (f.instance !== undefined || f.approver !== undefined) {
    const side =
      f.instance !== undefined
        ? db
            .selectFrom('execution_targets as s')
            .where('s.instance_id', '=', f.instance)
            .select(['s.created_at as s_created', 's.execution_id as s_id'])
        : db
            .selectFrom('execution_approvers as s')
            .where('s.approver', '=', f.approver!)
            .select(['s.created_at as s_created', 's.execution_id as s_id']);
    let q = side
      .innerJoin('executions as e', 'e.id', 's.execution_id')
      .selectAll('e')
      .orderBy('s.created_at', 'desc')
      .orderBy('s.execution_id', 'desc')
      .limit(limit);
    if (f.from !== undefined) q = q.where('s.created_at', '>=', f.from);
    if (f.to !== undefined) q = q.where('s.created_at', '<', f.to);
    if (after) q = q.where(sql<boolean>`(s.created_at, s.execution_id) < (${after.createdAt}, ${after.id})`);
    if (f.instance !== undefined && f.approver !== undefined) {
      q = q.where((eb) =>
        eb.exists(
          eb
            .selectFrom('execution_approvers as a')
            .select('a.execution_id')
            .whereRef('a.execution_id', '=', 'e.id')
            .where('a.approver', '=', f.approver!),
        ),
      );
    }
    if (f.runbook !== undefined) q = q.where('e.runbook_name', '=', f.runbook);
    if (f.operator !== undefined) q = q.where('e.operator', '=', f.operator);
    if (f.status !== undefined) q = q.where('e.status', '=', f.status);
    const rows = await q.execute();
    return rows.map((r) => toSummary(r));
  }
  let q = db
    .selectFrom('executions as e')
    .selectAll('e')
    .orderBy('e.created_at', 'desc')
    .orderBy('e.id', 'desc')
    .limit(limit);
  if (f.runbook !== undefined) q = q.where('e.runbook_name', '=', f.runbook);
  if (f.operator !== undefined) q = q.where('e.operator', '=', f.operator);
  if (f.status !== undefined) q = q.where('e.status', '=', f.status);
  if (f.from !== undefined) q = q.where('e.created_at', '>=', f.from);
  if (f.to !== undefined) q = q.where('e.created_at', '<', f.to);
  if (after) q = q.where(sql<boolean>`(e.created_at, e.id) < (${after.createdAt}, ${after.id})`);
  return (await q.execute()).map(toSummary);
}

const newestFirst = (a: ExecutionSummary, b: ExecutionSummary) =>
  a.createdAt === b.createdAt ? (a.id < b.id ? 1 : a.id > b.id ? -1 : 0) : a.createdAt < b.createdAt ? 1 : -1;

/**
 * One page of runs, newest first, matching every filter given. `person` is the union of "as
 * operator" and "as approver": two index ranges merged, each read no further than one page.
 */
export async function listRuns(
  db: Kysely<Database>,
  filters: RunFilters,
  options: { readonly pageToken?: string | undefined; readonly limit?: number } = {},
): Promise<RunPage> {
  const limit = options.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
    throw new UserError('USAGE', `a page holds 1 to 500 runs, not ${limit}`);
  }
  const after = options.pageToken === undefined ? undefined : decodePageToken(options.pageToken);
  let rows: ExecutionSummary[];
  if (filters.person !== undefined) {
    const { person, ...rest } = filters;
    const [asOperator, asApprover] = await Promise.all([
      pageOf(db, { ...rest, operator: person }, after, limit + 1),
      pageOf(db, { ...rest, approver: person }, after, limit + 1),
    ]);
    const seen = new Set<string>();
    rows = [...asOperator, ...asApprover].sort(newestFirst).filter((r) => !seen.has(r.id) && seen.add(r.id));
  } else {
    rows = await pageOf(db, filters, after, limit + 1);
  }
  const runs = rows.slice(0, limit);
  const last = runs.at(-1);
  return {
    runs,
    next: rows.length > limit && last ? encodePageToken({ createdAt: last.createdAt, id: last.id }) : null,
  };
}

type AuditRow = Selectable<Database['audit_events']>;

function toRecord(row: AuditRow): AuditRecord {
  return {
    eventId: row.event_id,
    executionId: row.execution_id,
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

/** The longest segment of the chain a proof reads (from the run's first record to its checkpoint). */
export const MAX_PROOF_RECORDS = 200_000;

/**
 * The proof that one run's records are in the chain a signed checkpoint vouches for (see
 * src/core/run-proof.ts for what it holds and why): undefined when the log has no record of the run.
 */
export async function loadRunProof(db: Kysely<Database>, executionId: string): Promise<RunProof | undefined> {
  const ends = await db
    .selectFrom('audit_events')
    .select([sql<number>`min(seq)`.as('first'), sql<number>`max(seq)`.as('last')])
    .where('execution_id', '=', executionId)
    .executeTakeFirst();
  if (!ends || ends.first === null || ends.last === null) return undefined;
  const first = Number(ends.first);
  const last = Number(ends.last);
  const toCheckpoint = (r: Selectable<Database['audit_checkpoints']>): Checkpoint => ({
    seq: Number(r.seq),
    hash: r.hash,
    at: r.at,
    keyId: r.key_id,
    signature: r.signature,
  });
  // The first checkpoint covering the whole run; else the newest covering part of it.
  const covering =
    (await db
      .selectFrom('audit_checkpoints')
      .selectAll()
      .where('seq', '>=', last)
      .orderBy('seq', 'asc')
      .limit(1)
      .executeTakeFirst()) ??
    (await db
      .selectFrom('audit_checkpoints')
      .selectAll()
      .where('seq', '>=', first)
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst());
  const checkpoint = covering ? toCheckpoint(covering) : null;
  const end = checkpoint ? checkpoint.seq : last;
  if (end - first + 1 > MAX_PROOF_RECORDS) {
    throw new UserError(
      'USAGE',
      `the proof of ${executionId} would read ${end - first + 1} records, more than ${MAX_PROOF_RECORDS}; verify the whole log with "mechanic audit verify"`,
    );
  }
  const records = (
    await db
      .selectFrom('audit_events')
      .selectAll()
      .where('seq', '>=', first)
      .where('seq', '<=', end)
      .orderBy('seq', 'asc')
      .execute()
  ).map(toRecord);
  const after = checkpoint
    ? (
        await db
          .selectFrom('audit_events')
          .selectAll()
          .where('execution_id', '=', executionId)
          .where('seq', '>', checkpoint.seq)
          .orderBy('seq', 'asc')
          .execute()
      ).map(toRecord)
    : [];
  return { executionId, records, checkpoint, after };
}

/** Runs awaiting approval, newest first (the approvals page: an approver's way in without readAudit). */
export async function awaitingApproval(db: Kysely<Database>, limit = 200): Promise<ExecutionSummary[]> {
  const rows = await db
    .selectFrom('executions')
    .selectAll()
    .where('status', '=', 'awaiting_approval')
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
  return rows.map(toSummary);
}

/**
 * One run's records of the given types, in log order: what a vote or a cancel reads to know the run
 * (src/core/vote-facts.ts) without asking its workflow. One range of the (execution_id, seq) index,
 * bounded: a run takes at most 2,000 updates, so its votes are far fewer than the limit.
 */
export async function runRecordsOfTypes(
  db: Kysely<Database>,
  executionId: string,
  types: readonly AuditEventType[],
  limit = 10_000,
): Promise<AuditRecord[]> {
  const rows = await db
    .selectFrom('audit_events')
    .selectAll()
    .where('execution_id', '=', executionId)
    .where('type', 'in', [...types])
    .orderBy('seq', 'asc')
    .limit(limit)
    .execute();
  return rows.map(toRecord);
}

/**
 * The plan a run was started with, from its request record (`execution.requested`), checked against
 * the digest the run holds: `missing` when the run has no request on the record, `broken` (with one
 * sentence) when its record does not hold that very plan or cannot be read. Plans never change, so
 * readers that need a run's plan (the status read, a fan-out step's ids) take it from here instead
 * of carrying it through Temporal.
 */
export async function recordedPlan(
  db: Kysely<Database>,
  executionId: string,
  planDigest: string,
): Promise<{ readonly plan: Plan } | { readonly missing: true } | { readonly broken: string }> {
  const broken = (where: string) => ({
    broken: `the request record of ${executionId} in the audit log (${where}) does not hold the plan the run was started with (digest ${planDigest.slice(0, 12)}); run "mechanic audit verify" to find what changed`,
  });
  let record: AuditRecord | undefined;
  try {
    [record] = await runRecordsOfTypes(db, executionId, ['execution.requested'], 1);
  } catch (e) {
    // A row whose data is not JSON at all.
    if (e instanceof SyntaxError) return broken('unreadable');
    throw e;
  }
  if (!record) return { missing: true };
  const plan = (record.data as { plan?: unknown }).plan;
  if (typeof plan !== 'object' || plan === null || !digestIs(plan, planDigest)) return broken(`#${record.seq}`);
  return { plan: plan as Plan };
}

/** True when `value`'s digest is `digest` (false for anything canonical JSON cannot encode). */
function digestIs(value: object, digest: string): boolean {
  try {
    return digestOf(value) === digest;
  } catch {
    return false;
  }
}
