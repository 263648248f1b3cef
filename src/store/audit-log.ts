/**
 * The append-only, hash-chained audit log and the execution index projected from it.
 *
 * The chain is only as good as the serialisation of appends: two writers that read the same head
 * would fork it. Every append therefore runs in one transaction that first takes an exclusive lock
 * (SQLite: BEGIN IMMEDIATE, see db.ts; PostgreSQL: a transaction-scoped advisory lock), then reads
 * the head, inserts the row and updates the projection, so the worker and the API server — separate
 * processes — can both write safely.
 */
import { verify as verifySignature, type KeyObject } from 'node:crypto';
import BetterSqlite3 from 'better-sqlite3';
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import {
  GENESIS_HASH,
  chainHash,
  eventOf,
  parseNewAuditEvent,
  verifyChain,
  type AuditCheck,
  type AuditRecord,
  type AuditVerdict,
} from '../core/audit-chain.ts';
import {
  END_EVENT_STATUS,
  endStatusOf,
  readAuditEvent,
  type AuditEvent,
  type AuditEventType,
  type NewAuditEvent,
} from '../core/audit-events.ts';
import {
  CheckpointSchema,
  checkpointCache,
  checkpointMessage,
  checkpointProblem,
  type Checkpoint,
} from '../core/audit-checkpoint.ts';
import { canonicalJson } from '../core/canonical.ts';
import {
  TERMINAL_STATUSES,
  diffSummaries,
  foldExecution,
  normalizeIsoTime,
  projectExecution,
  type ExecutionStatus,
  type ExecutionSummary,
} from '../core/execution-index.ts';
import { UserError } from '../core/errors.ts';
import { headFileWriter, loadAuditSigning, readHeadFile, type AuditSigning } from './checkpoints.ts';
import { isPostgres, openDatabase, type StoreLocation } from './db.ts';
import type { AuditCheckpointsTable, AuditEventsTable, Database } from './schema.ts';
import { SignedCheckpoints } from './signed-checkpoints.ts';
import { freshWalkState, startWalkers, verifyThreads, type WalkState, type Walkers } from './verify-parallel.ts';
import { sideTablesSurelyMatchIndex } from './verify-index.ts';
import { sameAsRow, toExecutionRow, toSummary, type ExecutionRow } from './execution-rows.ts';
import {
  VERIFY_COLUMNS,
  checkRow,
  notAsSigned,
  recordOfRaw,
  type CheckpointSource,
  type WalkProblem,
} from './verify-rows.ts';

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

export type { AuditCheck, AuditVerdict, CheckpointCoverage } from '../core/audit-chain.ts';

export interface AuditStore {
  /**
   * Validates and appends one event, updating the execution index in the same transaction; with a
   * signing key, also signs a checkpoint of the new head in that transaction when the event ends an
   * execution, follows an execution's end, or the last checkpoint is due for renewal.
   * Idempotent on eventId: a repeat returns the stored record. The same eventId with different
   * content throws AuditEventConflictError — a writer bug, never retried into success.
   */
  append(event: NewAuditEvent): Promise<AuditRecord>;
  /**
   * Validates and appends several events in one transaction, in order: the same records, chain and
   * checkpoints as appending them one by one, but the execution index of each execution is read
   * and written once for all of them (a batch of a large step records 50 instances at once).
   * Nothing is written if any event is invalid. An eventId already recorded with the same content
   * answers the stored record; with different content it throws AuditEventConflictError (nothing
   * written), unless `keepRecorded`, which keeps the stored record and answers it instead (a retried
   * writer whose records carry a new time stamp).
   */
  appendMany(events: readonly NewAuditEvent[], options?: { readonly keepRecorded?: boolean }): Promise<AuditRecord[]>;
  /** Records in ascending seq. Default limit 1000, at most 10000; page with afterSeq. */
  list(q?: AuditListQuery): Promise<AuditRecord[]>;
  /**
   * Checks the whole log and reports the first thing broken: the hash chain, an event that does not
   * fit the vocabulary, the signed checkpoints (a deleted tail, a forged append after an execution's
   * end, a rewritten record), or an execution index that differs from the one rebuilt from the log.
   */
  verify(options?: VerifyOptions): Promise<AuditVerdict>;
  /** Signs a checkpoint of the current head now (when it is not covered yet); undefined without a key. */
  checkpoint(): Promise<Checkpoint | undefined>;
  getExecution(id: string): Promise<ExecutionSummary | undefined>;
  /** Newest first. Default limit 50, at most 1000. */
  listExecutions(q?: ExecutionListQuery): Promise<ExecutionSummary[]>;
  close(): Promise<void>;
  /** The database under the store, for read-only queries over the log and the index (src/store/*-queries.ts). */
  readonly db: Kysely<Database>;
  /** Keys whose checkpoints verify, by key id: the signing key's and any other trusted; empty without signing. */
  readonly trustedKeys: ReadonlyMap<string, KeyObject>;
}

export interface VerifyOptions {
  /**
   * Check the signature of every checkpoint, not only the newest: finds a checkpoint row forged
   * below a genuine one, which proves nothing the genuine one does not (see verify).
   */
  readonly allSignatures?: boolean;
  /** Worker threads for the walk (default: one per core, at most 8; below 2, none). */
  readonly threads?: number;
}

export interface AuditStoreOptions {
  /** close() destroys the database. */
  readonly ownsDb?: boolean;
  /** The Ed25519 key that signs checkpoints, and the keys verify trusts. Without it nothing is signed. */
  readonly signing?: AuditSigning;
  /** Sign the head at least every this many records (default 100)… */
  readonly checkpointEveryRecords?: number;
  /** …or when the newest checkpoint is older than this (default 60 s), at the next append. */
  readonly checkpointEverySeconds?: number;
  /**
   * Told when the checkpoint file could not be written. The append itself is committed and stands:
   * an audit write must not fail over the copy kept outside the database.
   */
  readonly onCheckpointError?: (e: unknown) => void;
  /**
   * How verify walks a large SQLite log on worker threads: `threads` (default one per core, at
   * most 8) once the records up to the newest checkpoint number `fromRecords` (default 50,000).
   */
  readonly verifyInParallel?: { readonly threads?: number; readonly fromRecords?: number };
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
/** Records per page of verify's walk. */
const VERIFY_PAGE = 5000;
/**
 * From how many records (up to the newest checkpoint) verify walks a SQLite log on worker threads:
 * below it, starting the threads (each loads the vocabulary's modules) costs more than it saves.
 */
const PARALLEL_FROM_RECORDS = 50_000;
/** Two int4 keys for pg_advisory_xact_lock: 'mech' and 'audt' in ASCII, unlikely to collide. */
const PG_LOCK_CLASS = 0x6d656368;
const PG_LOCK_OBJECT = 0x61756474;

type AuditRow = Selectable<AuditEventsTable>;
type CheckpointRow = Selectable<AuditCheckpointsTable>;

const END_TYPES = Object.keys(END_EVENT_STATUS) as AuditEventType[];
const CHECKPOINT_EVERY_RECORDS = 100;
/** The most events one group commit writes (one append larger than this goes alone). */
const GROUP_EVENTS = 500;
const CHECKPOINT_EVERY_SECONDS = 60;

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
    // The hash covers the stored text; an unknown type in a tampered row shows up as a hash mismatch,
    // and a forged one with a recomputed hash as a record that does not fit the vocabulary.
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

/**
 * The columns of a stored row that `next`, projected from it, changes. A list the projection left
 * alone is the very array read from the row, so it is not serialised or written again.
 */
function changedColumns(next: ExecutionSummary, stored: ExecutionSummary): Partial<ExecutionRow> {
  return {
    status: next.status,
    updated_at: next.updatedAt,
    finished_at: next.finishedAt,
    ...(next.params === stored.params ? {} : { params: canonicalJson(next.params) }),
    ...(next.targets === stored.targets ? {} : { targets: canonicalJson(next.targets) }),
    ...(next.approvals === stored.approvals ? {} : { approvals: canonicalJson(next.approvals) }),
  };
}

/**
 * Signatures checked at once on libuv's thread pool, at most this many in flight: enough that the
 * pool never runs dry while verify's walk holds the main thread for a page.
 */
const SIGNATURES_IN_FLIGHT = 2048;

/**
 * Which checkpoints are genuine, checked in parallel on libuv's thread pool (a log holds one per
 * execution end, and Ed25519 verification is most of `audit verify`'s time): true only when the
 * checkpoint is well-formed, signed by a trusted key and its signature verifies — exactly when
 * checkpointProblem finds nothing. False is "not shown genuine here": the caller then asks
 * checkpointProblem, which names the problem.
 */
async function signaturesValid(
  cps: readonly Checkpoint[],
  trusted: ReadonlyMap<string, KeyObject>,
): Promise<boolean[]> {
  const valid = Array.from(cps, () => false);
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const parsed = CheckpointSchema.safeParse(cps[i]);
      const key = parsed.success ? trusted.get(parsed.data.keyId) : undefined;
      if (!parsed.success || !key) return resolve();
      try {
        verifySignature(
          null,
          checkpointMessage(parsed.data),
          key,
          Buffer.from(parsed.data.signature, 'base64'),
          (error, ok) => {
            valid[i] = !error && ok;
            resolve();
          },
        );
      } catch {
        resolve();
      }
    });
  let next = 0;
  const lane = async () => {
    while (next < cps.length) await one(next++);
  };
  await Promise.all(Array.from({ length: Math.min(SIGNATURES_IN_FLIGHT, cps.length) }, lane));
  return valid;
}

/** A page of records as raw rows (VERIFY_COLUMNS), in seq order, after `afterSeq` (from the start without one). */
interface RecordPages {
  page(afterSeq: number | undefined, limit: number): Promise<unknown[][]>;
  close(): void;
  /** SQLite: the read-only connection the pages come from, for verify's other checks in the database. */
  readonly sqlite?: BetterSqlite3.Database;
}

/** The file of a SQLite database opened through Kysely, or undefined (in memory, or PostgreSQL). */
async function sqliteFileOf(db: Kysely<Database>): Promise<string | undefined> {
  const { rows } = await sql<{ name: string; file: string }>`pragma database_list`.execute(db);
  const main = rows.find((r) => r.name === 'main');
  return main?.file ? main.file : undefined;
}

/**
 * Reads the log page by page for verify. SQLite: through a read-only connection of its own, with
 * rows as arrays (better-sqlite3's raw mode), which skips building an object per row — most of a
 * plain read's cost over a million records. Otherwise through Kysely, each row turned into the
 * same array.
 */
async function recordPages(db: Kysely<Database>): Promise<RecordPages> {
  const file = isPostgres(db) ? undefined : await sqliteFileOf(db);
  let conn: BetterSqlite3.Database | undefined;
  try {
    if (file) conn = new BetterSqlite3(file, { readonly: true, fileMustExist: true, timeout: 5_000 });
  } catch {
    conn = undefined; // e.g. a file this process may write through its own handle but not open again: read through Kysely
  }
  if (conn) {
    try {
      const columns = VERIFY_COLUMNS.join(', ');
      // No lower bound on the first page: a stray row below seq 1 must be reported, not skipped.
      const first = conn.prepare(`select ${columns} from audit_events order by seq limit ?`).raw(true);
      const next = conn.prepare(`select ${columns} from audit_events where seq > ? order by seq limit ?`).raw(true);
      return {
        async page(afterSeq, limit) {
          // Let the event loop turn between pages (checkpoint signatures complete on the thread pool).
          await new Promise<void>((resolve) => setImmediate(resolve));
          return (afterSeq === undefined ? first.all(limit) : next.all(afterSeq, limit)) as unknown[][];
        },
        close: () => conn.close(),
        sqlite: conn,
      };
    } catch (e) {
      conn.close();
      throw e;
    }
  }
  return {
    async page(afterSeq, limit) {
      let q = db.selectFrom('audit_events').select(VERIFY_COLUMNS).orderBy('seq', 'asc').limit(limit);
      if (afterSeq !== undefined) q = q.where('seq', '>', afterSeq);
      return (await q.execute()).map((r) => VERIFY_COLUMNS.map((c) => r[c]));
    },
    close: () => undefined,
  };
}

/**
 * The seqs and hashes of the checkpoints below the newest seq, as two columns (SignedCheckpoints),
 * read by SQLite as two strings: one object per row for 122,000 rows took most of a second on the
 * walk's way. Undefined when a row is not in that shape (a seq that is not an integer, a hash that
 * is not 64 characters, in SQLite's count and JavaScript's): those are read row by row, and the
 * walk names what is wrong.
 */
function checkpointColumnsBelowNewest(
  sqlite: BetterSqlite3.Database,
): { seqs: Float64Array; hashes: string } | undefined {
  const row = sqlite
    .prepare(
      "select count(*) as n, coalesce(sum(typeof(seq) = 'integer' and typeof(hash) = 'text' and length(hash) = 64), 0)" +
        " as good, group_concat(seq, ',' order by seq, rowid) as seqs," +
        " group_concat(hash, '' order by seq, rowid) as hashes from audit_checkpoints" +
        ' where seq < (select max(seq) from audit_checkpoints)',
    )
    .get() as { n: number; good: number; seqs: string | null; hashes: string | null };
  if (row.n !== row.good) return undefined;
  if (row.n === 0) return { seqs: new Float64Array(0), hashes: '' };
  const seqs = Float64Array.from(row.seqs!.split(','), Number);
  if (seqs.length !== row.n || row.hashes!.length !== row.n * 64) return undefined;
  return { seqs, hashes: row.hashes! };
}

/** The checkpoints at the newest seq, whole (their signatures are checked), in the order allCheckpoints reads them. */
function newestCheckpoints(sqlite: BetterSqlite3.Database): Checkpoint[] {
  return sqliteCheckpoints(sqlite, 'where seq = (select max(seq) from audit_checkpoints)');
}

/** Every checkpoint row, in seq order; over SQLite as arrays through verify's own connection (122,000 rows in a million events). */
async function allCheckpoints(db: Kysely<Database>, sqlite?: BetterSqlite3.Database): Promise<Checkpoint[]> {
  if (!sqlite) return (await db.selectFrom('audit_checkpoints').selectAll().orderBy('seq').execute()).map(toCheckpoint);
  return sqliteCheckpoints(sqlite);
}

/** Checkpoint rows (those `where` picks, or all) in seq order, as arrays through SQLite. */
function sqliteCheckpoints(sqlite: BetterSqlite3.Database, where = ''): Checkpoint[] {
  const query = `select seq, hash, at, key_id, signature from audit_checkpoints ${where} order by seq`;
  return (sqlite.prepare(query).raw(true).all() as unknown[][]).map(
    ([seq, hash, at, keyId, signature]) => ({ seq: Number(seq), hash, at, keyId, signature }) as Checkpoint,
  );
}

function toCheckpoint(row: CheckpointRow): Checkpoint {
  return { seq: Number(row.seq), hash: row.hash, at: row.at, keyId: row.key_id, signature: row.signature };
}

/**
 * An audit store over an already-open database (see openDatabase). With `ownsDb`, close()
 * destroys the database; otherwise the caller does.
 */
export function createAuditStore(db: Kysely<Database>, options: AuditStoreOptions = {}): AuditStore {
  const pg = isPostgres(db);
  const signing = options.signing;
  const everyRecords = options.checkpointEveryRecords ?? CHECKPOINT_EVERY_RECORDS;
  const everyMs = (options.checkpointEverySeconds ?? CHECKPOINT_EVERY_SECONDS) * 1000;
  const writeHead = signing?.headFile ? headFileWriter(signing.headFile, signing.trusted) : undefined;
  /** Checkpoints this process signed or found genuine: the signer checks what it builds on once, not per append. */
  const vouched = signing ? checkpointCache(signing.trusted) : undefined;
  const parallel = options.verifyInParallel ?? {};

  async function lockChain(trx: Transaction<Database>): Promise<void> {
    // SQLite already holds the write lock (BEGIN IMMEDIATE). PostgreSQL: the advisory lock is
    // released at commit/rollback; under READ COMMITTED the head query below, a new statement,
    // then sees everything the previous holder committed.
    if (pg) await sql`select pg_advisory_xact_lock(${sql.lit(PG_LOCK_CLASS)}, ${sql.lit(PG_LOCK_OBJECT)})`.execute(trx);
  }

  /**
   * The execution index inside one append transaction: each execution's row is read once, every
   * event of the transaction is projected in memory, and each changed row is written once at the
   * end (write). A run on 10,000 instances has a 10,000-entry target list in its row: reading,
   * serialising and writing it per step.instance record cost more than the record itself.
   */
  function indexCache(trx: Transaction<Database>) {
    const rows = new Map<string, { stored: ExecutionSummary | undefined; now: ExecutionSummary | undefined }>();
    return {
      /** Projects one event; returns the execution's summary before it (a projection that rejects the event throws). */
      async project(event: AuditEvent): Promise<ExecutionSummary | undefined> {
        if (event.executionId === null) return undefined;
        let entry = rows.get(event.executionId);
        if (!entry) {
          const row = await trx
            .selectFrom('executions')
            .selectAll()
            .where('id', '=', event.executionId)
            .executeTakeFirst();
          const stored = row ? toSummary(row) : undefined;
          entry = { stored, now: stored };
          rows.set(event.executionId, entry);
        }
        const current = entry.now;
        const next = projectExecution(current, event);
        if (next !== undefined) entry.now = next;
        return current;
      },
      /** Writes every row the transaction's events changed, and the filter tables' new entries. */
      async write(): Promise<void> {
        for (const { stored, now } of rows.values()) {
          if (now === undefined || now === stored) continue;
          if (stored !== undefined) {
            // Read in this transaction, under the chain lock: the row is there.
            await trx.updateTable('executions').set(changedColumns(now, stored)).where('id', '=', now.id).execute();
          } else {
            const values = toExecutionRow(now);
            const { id: _id, ...changes } = values;
            await trx
              .insertInto('executions')
              .values(values)
              .onConflict((oc) => oc.column('id').doUpdateSet(changes))
              .execute();
          }
          await projectFilters(trx, stored, now);
        }
      },
    };
  }

  /**
   * The side tables the UI filters by (migration 0004): a target or an approver the index gained
   * becomes a row, in the append's transaction, so they never disagree with the index.
   */
  async function projectFilters(
    trx: Transaction<Database>,
    current: ExecutionSummary | undefined,
    next: ExecutionSummary,
  ): Promise<void> {
    const created = next.createdAt;
    // Sets, not includes(): a run on 10,000 instances appends 10,000 step.instance records, and a
    // scan of its target list per target on each of them kept a worker busy for most of a second
    // per record. Most events leave the list as it was (the same array), and add nothing.
    const unchanged = next.targets === current?.targets;
    const had = new Set(unchanged ? [] : current?.targets);
    const targets = unchanged ? [] : [...new Set(next.targets)].filter((t) => !had.has(t));
    if (targets.length > 0) {
      await trx
        .insertInto('execution_targets')
        .values(targets.map((t) => ({ instance_id: t, created_at: created, execution_id: next.id })))
        .onConflict((oc) => oc.doNothing())
        .execute();
    }
    const approvers = [...new Set(next.approvals)].filter((a) => !current?.approvals.includes(a));
    if (approvers.length > 0) {
      await trx
        .insertInto('execution_approvers')
        .values(approvers.map((a) => ({ approver: a, created_at: created, execution_id: next.id })))
        .onConflict((oc) => oc.doNothing())
        .execute();
    }
  }

  async function latestCheckpoint(trx: Kysely<Database>): Promise<Checkpoint | undefined> {
    const row = await trx
      .selectFrom('audit_checkpoints')
      .selectAll()
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? toCheckpoint(row) : undefined;
  }

  async function recordAt(trx: Kysely<Database>, seq: number): Promise<AuditRow | undefined> {
    return trx.selectFrom('audit_events').selectAll().where('seq', '=', seq).executeTakeFirst();
  }

  /**
   * Why the head must not be signed, or undefined. A signature says "this log is genuine up to
   * here", so the signer first checks what it would vouch for: the newest checkpoint (database and
   * file) carries a valid signature by a trusted key and still matches the log, and the records
   * since then chain from it and hold no execution end, nor anything after an end — those are
   * signed when written, so one that is not was written without the key. Without a previous
   * checkpoint there is nothing to check against (a new log, or the first start after upgrading):
   * the first signature is trust on first use — and a log whose checkpoint rows were all deleted
   * still has the file's.
   *
   * Several appenders (the worker and the API server, on SQLite or PostgreSQL) run this under the
   * chain lock, one after another, so each sees the checkpoint the other signed last as the newest
   * row and checks its signature once (remembered by `vouched`); none signs over a row that no key
   * holder wrote.
   */
  async function signingRefusal(
    trx: Transaction<Database>,
    head: { seq: number; hash: string },
    last: Checkpoint | undefined,
  ): Promise<string | undefined> {
    if (signing?.headFile) {
      const file = await readHeadFile(signing.headFile, signing.trusted, vouched);
      if (file.kind === 'bad') return `the checkpoint file ${file.problem}`;
      if (file.kind === 'ok') {
        const at = file.checkpoint.seq < head.seq ? await recordAt(trx, file.checkpoint.seq) : undefined;
        if (at?.hash !== file.checkpoint.hash)
          return `the log no longer holds record #${file.checkpoint.seq} as signed`;
      }
    }
    if (!last) return undefined;
    // The checkpoint built on must be genuine itself: a row forged with database access names a
    // record it wants vouched for, and a signature over the head would launder it. This is what
    // lets `audit verify` check only the newest signature (see verify). Every row at that seq
    // (one per key) is checked; each costs one Ed25519 verification per process, then is remembered.
    const newestRows = await trx.selectFrom('audit_checkpoints').selectAll().where('seq', '=', last.seq).execute();
    for (const row of newestRows) {
      const problem = vouched?.problem(toCheckpoint(row));
      if (problem !== undefined) return `the newest checkpoint (of record #${last.seq}) ${problem}`;
    }
    const from = await recordAt(trx, last.seq);
    if (from?.hash !== last.hash) return `the log no longer holds record #${last.seq} as signed`;
    const since = (
      await trx
        .selectFrom('audit_events')
        .selectAll()
        .where('seq', '>', last.seq)
        .where('seq', '<', head.seq)
        .orderBy('seq', 'asc')
        .execute()
    ).map(toRecord);
    const chain = verifyChain(since, last.hash, last.seq + 1);
    if (!chain.ok) return `record #${chain.seq}: ${chain.reason}`;
    const ids = [...new Set(since.map((r) => r.executionId).filter((id): id is string => id !== null))];
    const ends = new Map<string, number>();
    if (ids.length > 0) {
      const rows = await trx
        .selectFrom('audit_events')
        .select(['execution_id', 'seq'])
        .where('execution_id', 'in', ids)
        .where('type', 'in', END_TYPES)
        .orderBy('seq', 'asc')
        .execute();
      for (const r of rows)
        if (r.execution_id !== null && !ends.has(r.execution_id)) ends.set(r.execution_id, Number(r.seq));
    }
    for (const r of since) {
      const end = r.executionId === null ? undefined : ends.get(r.executionId);
      if (end !== undefined && end <= r.seq)
        return `record #${r.seq} ends or follows the end of ${r.executionId} unsigned`;
    }
    return undefined;
  }

  /** Signs `head` inside the append's transaction, when that is safe; returns the checkpoint. */
  async function signHead(
    trx: Transaction<Database>,
    head: { seq: number; hash: string },
    last: Checkpoint | undefined,
  ): Promise<Checkpoint | undefined> {
    if (!signing) return undefined;
    // Refused: nothing is signed, and `audit verify` reports what the signer would not vouch for.
    if ((await signingRefusal(trx, head, last)) !== undefined) return undefined;
    const cp = signing.signer.sign(head, new Date());
    vouched?.remember(cp);
    await trx
      .insertInto('audit_checkpoints')
      .values({
        seq: cp.seq,
        key_id: cp.keyId,
        hash: cp.hash,
        at: cp.at,
        signature: cp.signature,
        recorded_at: cp.at,
      })
      .onConflict((oc) => oc.columns(['seq', 'key_id']).doNothing())
      .execute();
    return cp;
  }

  async function keepOutside(cp: Checkpoint | undefined): Promise<void> {
    // After the commit, so the file never holds a checkpoint the database does not.
    if (!cp || !writeHead) return;
    try {
      await writeHead(cp);
    } catch (e) {
      options.onCheckpointError?.(e);
    }
  }

  /**
   * Appends `events` in order in one transaction, as many appends one after another would: each
   * chained to the one before, each signed when it must be. The index is projected in memory and
   * written once at the end (indexCache).
   */
  async function appendAll(events: readonly AuditEvent[], keepRecorded: boolean): Promise<AuditRecord[]> {
    const { records, checkpoint } = await db.transaction().execute(async (trx) => {
      await lockChain(trx);
      const index = indexCache(trx);
      const out: AuditRecord[] = [];
      let head: { seq: number; hash: string } | undefined;
      let last: Checkpoint | undefined;
      let signedLast: Checkpoint | undefined;
      for (const event of events) {
        const existing = await trx
          .selectFrom('audit_events')
          .selectAll()
          .where('event_id', '=', event.eventId)
          .executeTakeFirst();
        if (existing) {
          const stored = toRecord(existing);
          if (!keepRecorded && canonicalJson(eventOf(stored)) !== canonicalJson(event)) {
            throw new AuditEventConflictError(event.eventId, stored.seq);
          }
          out.push(stored);
          continue;
        }
        if (head === undefined) {
          const row = await trx
            .selectFrom('audit_events')
            .select(['seq', 'hash'])
            .orderBy('seq', 'desc')
            .limit(1)
            .executeTakeFirst();
          head = row ? { seq: Number(row.seq), hash: row.hash } : { seq: 0, hash: GENESIS_HASH };
          if (signing) last = await latestCheckpoint(trx);
        }
        const seq = head.seq + 1;
        const prevHash = head.hash;
        const hash = chainHash(prevHash, event);
        const recordedAt = new Date().toISOString();
        // Projection first: if it rejects the event (a writer bug), nothing is written.
        const before = await index.project(event);
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
        head = { seq, hash };
        if (signing) {
          // An execution's end, and anything after it, is signed in the transaction that writes it:
          // a row that appears there later without a checkpoint was not written by a key holder.
          const mustSign =
            endStatusOf(event.type) !== undefined || (before !== undefined && TERMINAL_STATUSES.has(before.status));
          const due =
            !last || seq - last.seq >= everyRecords || Date.parse(recordedAt) - Date.parse(last.at) >= everyMs;
          if (mustSign || due) {
            const cp = await signHead(trx, head, last);
            if (cp) last = signedLast = cp;
          }
        }
        out.push({ ...event, seq, prevHash, hash, recordedAt });
      }
      await index.write();
      return { records: out, checkpoint: signedLast };
    });
    await keepOutside(checkpoint);
    return records;
  }

  /**
   * Group commit. Appends asked while a transaction is under way wait, in the order they were
   * asked, and then go together in one transaction: one sync for all of them instead of one each
   * (a worker running many runs records for all of them at once). Each caller still gets its own
   * answer: when a group fails (an event conflicting with a stored one), nothing of it was written,
   * and each append of the group is tried again alone, so it fails only its own caller.
   */
  const waiting: {
    readonly events: readonly AuditEvent[];
    readonly keepRecorded: boolean;
    readonly resolve: (records: AuditRecord[]) => void;
    readonly reject: (e: unknown) => void;
  }[] = [];
  let writing = false;

  function inTurn(events: readonly AuditEvent[], keepRecorded: boolean): Promise<AuditRecord[]> {
    return new Promise((resolve, reject) => {
      waiting.push({ events, keepRecorded, resolve, reject });
      if (!writing) void writeWaiting();
    });
  }

  async function writeWaiting(): Promise<void> {
    writing = true;
    try {
      while (waiting.length > 0) {
        // Appends of the same kind, in order, up to a bounded number of events.
        let take = 1;
        let size = waiting[0]!.events.length;
        while (
          take < waiting.length &&
          waiting[take]!.keepRecorded === waiting[0]!.keepRecorded &&
          size + waiting[take]!.events.length <= GROUP_EVENTS
        ) {
          size += waiting[take]!.events.length;
          take++;
        }
        const group = waiting.splice(0, take);
        try {
          const records = await appendAll(
            group.flatMap((g) => g.events),
            group[0]!.keepRecorded,
          );
          let at = 0;
          for (const g of group) {
            g.resolve(records.slice(at, at + g.events.length));
            at += g.events.length;
          }
        } catch (e) {
          if (group.length === 1) {
            group[0]!.reject(e);
            continue;
          }
          for (const g of group) await appendAll(g.events, g.keepRecorded).then(g.resolve, g.reject);
        }
      }
    } finally {
      writing = false;
    }
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

  /** The executions index rows of `ids`, read a few hundred at a time. */
  async function indexRows(ids: readonly string[]): Promise<ExecutionRow[]> {
    const rows: ExecutionRow[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      rows.push(
        ...(await db
          .selectFrom('executions')
          .selectAll()
          .where('id', 'in', ids.slice(i, i + 500))
          .execute()),
      );
    }
    return rows;
  }

  /** Rebuilds one execution's summary from its records, under the chain lock so no append is half-seen. */
  async function recheckExecution(id: string): Promise<{ seq: number; problem: string } | undefined> {
    return db.transaction().execute(async (trx) => {
      await lockChain(trx);
      const row = await trx.selectFrom('executions').selectAll().where('id', '=', id).executeTakeFirst();
      const rows = await trx
        .selectFrom('audit_events')
        .selectAll()
        .where('execution_id', '=', id)
        .orderBy('seq', 'asc')
        .execute();
      let rebuilt: ExecutionSummary | undefined;
      for (const r of rows) {
        const read = readAuditEvent(toRecord(r));
        if (read.ok) rebuilt = projectExecution(rebuilt, read.event);
      }
      const seq = rows.length > 0 ? Number(rows.at(-1)!.seq) : 0;
      if (row && !rebuilt) return { seq, problem: `the executions index has ${id}, but the log has no request for it` };
      if (!row && rebuilt) return { seq, problem: `the log has execution ${id}, but the executions index does not` };
      if (!row || !rebuilt) return undefined;
      const diffs = diffSummaries(toSummary(row), rebuilt);
      if (diffs.length === 0) return undefined;
      return { seq, problem: `the executions index row of ${id} does not match the log: ${diffs.join('; ')}` };
    });
  }

  /**
   * The side tables the UI filters by (execution_targets, execution_approvers) must hold exactly
   * the targets and approvers of the index, each with its run's creation time: a row deleted there
   * would hide a run from "who ran anything on this host". A difference is checked again under
   * the chain lock against the index row, since appends may land while verify runs.
   */
  async function checkFilterTables(
    rebuilt: ReadonlyMap<string, ExecutionSummary>,
  ): Promise<{ seq: number; problem: string } | undefined> {
    const key = (id: string, value: string, at: string) => JSON.stringify([id, value, at]);
    const expected = (pick: (s: ExecutionSummary) => readonly string[]) => {
      const set = new Set<string>();
      for (const s of rebuilt.values()) for (const v of pick(s)) set.add(key(s.id, v, s.createdAt));
      return set;
    };
    const tables = [
      {
        table: 'execution_targets' as const,
        what: 'target',
        want: expected((s) => s.targets),
        rows: (await db.selectFrom('execution_targets').selectAll().execute()).map((r) =>
          key(r.execution_id, r.instance_id, r.created_at),
        ),
        of: (s: ExecutionSummary) => s.targets,
      },
      {
        table: 'execution_approvers' as const,
        what: 'approver',
        want: expected((s) => s.approvals),
        rows: (await db.selectFrom('execution_approvers').selectAll().execute()).map((r) =>
          key(r.execution_id, r.approver, r.created_at),
        ),
        of: (s: ExecutionSummary) => s.approvals,
      },
    ];
    for (const t of tables) {
      const have = new Set(t.rows);
      const differs = new Set<string>();
      for (const k of t.want) if (!have.has(k)) differs.add((JSON.parse(k) as string[])[0]!);
      for (const k of have) if (!t.want.has(k)) differs.add((JSON.parse(k) as string[])[0]!);
      for (const id of differs) {
        const problem = await db.transaction().execute(async (trx) => {
          await lockChain(trx);
          const row = await trx.selectFrom('executions').selectAll().where('id', '=', id).executeTakeFirst();
          const rows =
            t.table === 'execution_targets'
              ? (await trx.selectFrom('execution_targets').selectAll().where('execution_id', '=', id).execute()).map(
                  (r) => key(id, r.instance_id, r.created_at),
                )
              : (await trx.selectFrom('execution_approvers').selectAll().where('execution_id', '=', id).execute()).map(
                  (r) => key(id, r.approver, r.created_at),
                );
          const want = row ? new Set(t.of(toSummary(row)).map((v) => key(id, v, row.created_at))) : new Set<string>();
          const got = new Set(rows);
          const missing = [...want].filter((k) => !got.has(k));
          const extra = [...got].filter((k) => !want.has(k));
          if (missing.length === 0 && extra.length === 0) return undefined;
          const seqRow = await trx
            .selectFrom('audit_events')
            .select('seq')
            .where('execution_id', '=', id)
            .orderBy('seq', 'desc')
            .limit(1)
            .executeTakeFirst();
          const name = (k: string) => (JSON.parse(k) as string[])[1]!;
          return {
            seq: seqRow ? Number(seqRow.seq) : 0,
            problem: `the ${t.table} table does not match the executions index for ${id}: ${[
              ...missing.map((k) => `${t.what} ${name(k)} missing`),
              ...extra.map((k) => `${t.what} ${name(k)} not in the log`),
            ].join('; ')}`,
          };
        });
        if (problem) return problem;
      }
    }
    return undefined;
  }

  /**
   * Which checkpoint signatures verify checks, and why the newest is enough by default.
   *
   * The walk checks the whole hash chain from genesis, every record's vocabulary, that every
   * checkpoint row (and the file's) names the record the log holds at its seq, and the rule that an
   * execution's end, and anything after it, is covered by a checkpoint. Of the signatures it checks
   * the newest checkpoint's (every row at the newest seq, and the file's). That proves every record
   * up to the newest checkpoint N: N's signature fixes the head hash at N, and the intact chain fixes
   * every record before it through that hash. The key holder signed N only after signingRefusal
   * found the checkpoint it built on genuine (its signature checked) and matching the log, and the
   * records since then chained from it without an unsigned end; that checkpoint was signed under the
   * same checks, back to the first signature (trust on first use). So the signer never vouched for a
   * forged checkpoint row or a chain break, and a forged row the signer was asked to sign over is
   * refused there — it then stays the newest and fails here. A checkpoint row forged below a genuine
   * one proves nothing and covers nothing the genuine one does not; `allSignatures` checks every
   * older signature too, to find such a row (`mechanic audit verify --all-signatures`).
   */
  async function verify(options: VerifyOptions = {}): Promise<AuditVerdict> {
    const fail = (check: AuditCheck, seq: number, reason: string): AuditVerdict => ({ ok: false, seq, reason, check });

    // Checkpoints first: the walk below then reaches every record they cover.
    type Found = { cp: Checkpoint; source: CheckpointSource };
    const signed = new SignedCheckpoints();
    let newest: Found | undefined;
    let fileCp: Checkpoint | undefined;
    let signatures = 0;
    /**
     * Takes a checkpoint into account; returns why it is not genuine otherwise. `genuine`: its
     * signature was already found valid (signaturesValid), is being checked (below), or need not be
     * (a database row below the newest, by default: see above), so checking it here is skipped.
     */
    const admit = (f: Found, genuine = false): string | undefined => {
      const problem = genuine ? undefined : checkpointProblem(f.cp, signing!.trusted);
      if (problem) return problem;
      if (!genuine) signatures++;
      signed.add(f.cp.seq, { hash: f.cp.hash, source: f.source, keyId: f.cp.keyId });
      if (!newest || f.cp.seq > newest.cp.seq) newest = f;
      return undefined;
    };
    /** The first of `cps` whose signature is not valid, named; undefined when all are. */
    const firstForged = async (cps: readonly Checkpoint[]): Promise<AuditVerdict | undefined> => {
      // Counted before the check completes: the walk may build its verdict while the check runs.
      signatures += cps.length;
      const valid = await signaturesValid(cps, signing!.trusted);
      for (const [i, cp] of cps.entries()) {
        if (valid[i]) continue;
        const problem = checkpointProblem(cp, signing!.trusted) ?? 'has a signature that does not match';
        return fail('checkpoint', cp.seq, `the checkpoint of record #${cp.seq} ${problem}`);
      }
      return undefined;
    };
    /** Database checkpoints from `fromSeq` on, signed after the first read (appends go on during verify). */
    const catchUp = async (fromSeq: number): Promise<AuditVerdict | undefined> => {
      const rows = await db.selectFrom('audit_checkpoints').selectAll().where('seq', '>=', fromSeq).execute();
      const fresh = rows
        .map(toCheckpoint)
        .filter((cp) => !(signed.get(cp.seq) ?? []).some((f) => f.source === 'database' && f.keyId === cp.keyId));
      const forged = await firstForged(fresh);
      if (forged) return forged;
      for (const cp of fresh) admit({ cp, source: 'database' }, true);
      return undefined;
    };
    /**
     * The signatures checked of the checkpoints in the database when verify started (the newest, or
     * all), on libuv's thread pool while the walk below runs. All rows are admitted up front as if
     * genuine; any checked one that is not is reported before anything the walk finds, as if it had
     * been checked first, so the verdict is the same as checking them before the walk.
     */
    let forgedAtStart: Promise<AuditVerdict | undefined> = Promise.resolve(undefined);
    const pages = await recordPages(db);
    let walkers: Walkers | undefined;
    /** Whether SQLite found the side tables to match the index while the threads walked (verify-index.ts); undefined: not asked. */
    let sidesVouched: boolean | undefined;
    try {
      // Over a large SQLite log the walk's threads start now, loading their module while the
      // checkpoints are read.
      walkers = await startWalkersIfLarge();
      if (signing) {
        // Over SQLite, only the newest signature checked: the rows below the newest seq are read as
        // two columns, and admitted as they are (below); the newest are read whole.
        const columns = pages.sqlite && !options.allSignatures ? checkpointColumnsBelowNewest(pages.sqlite) : undefined;
        const cps = columns ? newestCheckpoints(pages.sqlite!) : await allCheckpoints(db, pages.sqlite);
        const top = cps.at(-1)?.seq;
        forgedAtStart = firstForged(options.allSignatures ? cps : cps.filter((cp) => cp.seq === top));
        // Observed at once: signaturesValid does not reject, but a bug there must surface as verify's error, not as an unhandled rejection.
        forgedAtStart.catch(() => undefined);
        if (columns) signed.addDatabaseColumns(columns.seqs, columns.hashes);
        for (const cp of cps) admit({ cp, source: 'database' }, true);
        if (signing.headFile) {
          const file = await readHeadFile(signing.headFile, signing.trusted);
          if (file.kind === 'bad') {
            return (
              (await forgedAtStart) ??
              fail('checkpoint', 0, `the checkpoint kept outside the database (${signing.headFile}) ${file.problem}`)
            );
          }
          if (file.kind === 'ok') {
            fileCp = file.checkpoint;
            signatures++;
            admit({ cp: fileCp, source: 'file' }, true);
          }
        }
      }
      const start = await walkStart();
      if ('problem' in start)
        return (await forgedAtStart) ?? fail(start.problem.check, start.problem.seq, start.problem.reason);
      const verdict = await walk(start.state);
      return (await forgedAtStart) ?? verdict;
    } finally {
      pages.close();
      await walkers?.close();
    }

    /** Walk threads for a SQLite log of at least fromRecords records (threads allowing), else undefined. */
    async function startWalkersIfLarge(): Promise<Walkers | undefined> {
      const threads = options.threads ?? parallel.threads ?? verifyThreads();
      if (threads < 2 || pg) return undefined;
      const file = await sqliteFileOf(db);
      if (!file || (await headSeq()) < (parallel.fromRecords ?? PARALLEL_FROM_RECORDS)) return undefined;
      return startWalkers(file, threads);
    }

    async function headSeq(): Promise<number> {
      const head = await db
        .selectFrom('audit_events')
        .select((eb) => eb.fn.max('seq').as('max'))
        .executeTakeFirst();
      return Number(head?.max ?? 0);
    }

    /**
     * Where the record-by-record walk starts: at genesis, or — over a large SQLite log — after the
     * records up to the newest checkpoint read when verify started (all records, without a key),
     * walked in ranges on worker threads (verify-parallel.ts). Records after that need the walk's
     * order (the unsigned-end rule looks at each execution's end), and are few.
     */
    async function walkStart(): Promise<{ problem: WalkProblem } | { state: WalkState }> {
      const fresh = freshWalkState();
      if (!walkers) return { state: fresh };
      const head = await headSeq();
      const upTo = signing ? Math.min(newest?.cp.seq ?? 0, head) : head;
      if (upTo < (parallel.fromRecords ?? PARALLEL_FROM_RECORDS)) return { state: fresh };
      const walking = walkers.walk(upTo, signed);
      // Asked while the threads walk; the index is compared with the log after the walk.
      sidesVouched = pages.sqlite !== undefined && sideTablesSurelyMatchIndex(pages.sqlite);
      const walked = await walking;
      if ('problem' in walked) return walked;
      const { state } = walked;
      // An execution seen in two ranges was folded in parts: rebuild it from all its records.
      for (const id of state.spanning) {
        state.matched.delete(id);
        const rows = (
          await db
            .selectFrom('audit_events')
            .select(VERIFY_COLUMNS)
            .where('execution_id', '=', id)
            .where('seq', '<=', state.lastSeq ?? 0)
            .orderBy('seq', 'asc')
            .execute()
        ).map((r) => VERIFY_COLUMNS.map((c) => r[c]));
        let summary: ExecutionSummary | undefined;
        for (const row of rows) {
          let read: ReturnType<typeof readAuditEvent>;
          try {
            read = readAuditEvent(recordOfRaw(row));
          } catch {
            return { problem: { check: 'chain', seq: Number(row[0]), reason: 'data is not valid JSON' } };
          }
          if (!read.ok) return { problem: { check: 'schema', seq: Number(row[0]), reason: read.problem } };
          summary = projectExecution(summary, read.event);
        }
        if (summary) state.rebuilt.set(id, summary);
        else state.rebuilt.delete(id);
      }
      return { state };
    }

    async function walk(state: WalkState): Promise<AuditVerdict> {
      const coveredTo = () => newest?.cp.seq ?? 0;
      let { prevHash, lastSeq, count } = state;
      const { ended, rebuilt, matched } = state;
      for (;;) {
        const rows = await pages.page(lastSeq, VERIFY_PAGE);
        for (const row of rows) {
          const checkedRow = checkRow(row, prevHash, (lastSeq ?? 0) + 1, signed);
          if (!checkedRow.ok) return fail(checkedRow.problem.check, checkedRow.problem.seq, checkedRow.problem.reason);
          const { seq, hash, event } = checkedRow;
          if (signing && seq > coveredTo() && event.executionId !== null) {
            const endedAt = ended.get(event.executionId);
            const ends = endStatusOf(event.type) !== undefined;
            // Signed in the transaction that wrote it, so its checkpoint may just be newer than our first read.
            if (ends || endedAt !== undefined) {
              const caught = await catchUp(seq);
              if (caught) return caught;
              const rewritten = notAsSigned(signed, seq, hash);
              if (rewritten) return fail(rewritten.check, rewritten.seq, rewritten.reason);
            }
            if ((ends || endedAt !== undefined) && seq > coveredTo()) {
              return fail(
                'checkpoint',
                seq,
                `record #${seq} (${event.type} by ${event.actor}) ${ends && endedAt === undefined ? 'ends' : `follows the end (#${endedAt}) of`} execution ${event.executionId}, but no signed checkpoint covers it${newest ? ` (the newest covers #${coveredTo()})` : ''}: it was written without the signing key`,
              );
            }
          }
          if (event.executionId !== null) {
            if (endStatusOf(event.type) !== undefined && !ended.has(event.executionId))
              ended.set(event.executionId, seq);
            // The walk's own summaries, folded in place (no one else holds them).
            const next = foldExecution(rebuilt.get(event.executionId), event);
            if (next) rebuilt.set(event.executionId, next);
          }
          prevHash = hash;
          lastSeq = seq;
          count++;
        }
        // A checkpoint admitted on the way may cover records appended since this page was read.
        if (rows.length === 0 || (rows.length < VERIFY_PAGE && coveredTo() <= (lastSeq ?? 0))) break;
      }
      const end = lastSeq ?? 0;
      if (newest && newest.cp.seq > end) {
        return fail(
          'checkpoint',
          end + 1,
          `the log ends at #${end}, but a signed checkpoint ${newest.source === 'file' ? 'kept outside the database' : 'in the database'} covers #${newest.cp.seq}: records were deleted from the end`,
        );
      }
      if (fileCp) {
        // Re-read: the file is written after its checkpoint's commit, possibly after our first read.
        const inDb = await db
          .selectFrom('audit_checkpoints')
          .select('seq')
          .where('seq', '=', fileCp.seq)
          .where('key_id', '=', fileCp.keyId)
          .executeTakeFirst();
        if (!inDb) {
          return fail(
            'checkpoint',
            fileCp.seq,
            `the checkpoint of #${fileCp.seq} kept outside the database is missing from the database: checkpoints were deleted`,
          );
        }
      }

      // The index must equal the one rebuilt from the log. Appends may land while this runs, so a
      // difference is checked again under the chain lock before it is reported. The rows of
      // executions a worker matched are not read again: only their ids, to find the rows the log
      // does not have.
      const suspects = new Set<string>();
      const ids =
        matched.size === 0 ? undefined : (await db.selectFrom('executions').select('id').execute()).map((r) => r.id);
      const indexed = ids
        ? await indexRows(ids.filter((id) => rebuilt.has(id)))
        : await db.selectFrom('executions').selectAll().execute();
      const byId = new Map(indexed.map((r) => [r.id, r]));
      for (const id of ids ?? byId.keys()) {
        if (matched.has(id)) continue;
        const row = byId.get(id);
        const fromLog = rebuilt.get(id);
        if (!row || !fromLog || (!sameAsRow(row, fromLog) && diffSummaries(toSummary(row), fromLog).length > 0))
          suspects.add(id);
      }
      const inIndex = new Set(ids ?? byId.keys());
      for (const id of rebuilt.keys()) if (!inIndex.has(id)) suspects.add(id);
      for (const id of matched) if (!inIndex.has(id)) suspects.add(id);
      for (const id of suspects) {
        const problem = await recheckExecution(id);
        if (problem) return fail('index', problem.seq, problem.problem);
      }
      // Asked inside SQLite first (verify-index.ts): only a difference reads the tables here, with
      // the matched executions' summaries read from their rows (equal to the log's, as found above).
      const sides =
        (sidesVouched ?? (pages.sqlite !== undefined && sideTablesSurelyMatchIndex(pages.sqlite)))
          ? undefined
          : await checkFilterTables(
              new Map([
                ...(await indexRows([...matched].filter((id) => inIndex.has(id)))).map(
                  (r) => [r.id, toSummary(r)] as const,
                ),
                ...rebuilt,
              ]),
            );
      if (sides) return fail('index', sides.seq, sides.problem);

      return {
        ok: true,
        count,
        head: lastSeq === undefined ? null : { seq: lastSeq, hash: prevHash },
        checkpoints: signing
          ? {
              latest: newest ? { seq: newest.cp.seq, at: newest.cp.at, keyId: newest.cp.keyId } : null,
              source: newest?.source ?? null,
              uncovered: end - coveredTo(),
              checked: signed.size,
              signaturesChecked: signatures,
            }
          : null,
        executions: inIndex.size,
      };
    }
  }

  async function checkpoint(): Promise<Checkpoint | undefined> {
    if (!signing) return undefined;
    const cp = await db.transaction().execute(async (trx) => {
      await lockChain(trx);
      const head = await trx
        .selectFrom('audit_events')
        .select(['seq', 'hash'])
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirst();
      if (!head) return undefined;
      const last = await latestCheckpoint(trx);
      if (last && last.seq >= Number(head.seq)) return last;
      return signHead(trx, { seq: Number(head.seq), hash: head.hash }, last);
    });
    await keepOutside(cp);
    return cp;
  }

  return {
    db,
    trustedKeys: signing?.trusted ?? new Map<string, KeyObject>(),
    async append(input) {
      // Validate outside the transaction: a bad event never takes the lock.
      const [record] = await inTurn([parseNewAuditEvent(input)], false);
      return record!;
    },
    async appendMany(input, options = {}) {
      const events = input.map((e) => parseNewAuditEvent(e));
      if (events.length === 0) return [];
      return inTurn(events, options.keepRecorded === true);
    },
    list,
    verify,
    checkpoint,
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

/**
 * Opens (and migrates) the database at `loc` and returns a store that closes it on close(). With
 * a signing key, a log that has records but has never been signed (one from before checkpoints
 * existed) gets its first checkpoint now, unless a checkpoint file says it was signed before.
 */
export async function openAuditStore(
  loc: StoreLocation,
  options: Omit<AuditStoreOptions, 'ownsDb'> = {},
): Promise<AuditStore> {
  const db = await openDatabase(loc);
  const store = createAuditStore(db, { ...options, ownsDb: true });
  if (options.signing) {
    try {
      const signedBefore = await db.selectFrom('audit_checkpoints').select('seq').limit(1).executeTakeFirst();
      const fileBefore = options.signing.headFile
        ? (await readHeadFile(options.signing.headFile, options.signing.trusted)).kind !== 'none'
        : false;
      if (!signedBefore && !fileBefore) await store.checkpoint();
    } catch (e) {
      await store.close();
      throw e;
    }
  }
  return store;
}

/**
 * The store of a worker or an API server: the configured database, signing checkpoints with the
 * configured key (made owner-only the first time, so the embedded stack needs no set-up). Both
 * processes append, so both sign; give them the same key file.
 */
export async function openSigningAuditStore(
  config: { readonly store: StoreLocation; readonly audit: { readonly keyFile: string } },
  options: { readonly onCheckpointError?: (e: unknown) => void } = {},
): Promise<AuditStore> {
  const signing = await loadAuditSigning(config.audit.keyFile, { create: true, store: config.store });
  const store = await openAuditStore(config.store, {
    signing,
    ...(options.onCheckpointError ? { onCheckpointError: options.onCheckpointError } : {}),
  });
  // Periodically even when idle: records appended since the last checkpoint get covered within a
  // minute, not only at the next execution's end or the next append.
  const timer = setInterval(() => {
    store.checkpoint().catch((e: unknown) => options.onCheckpointError?.(e));
  }, CHECKPOINT_EVERY_SECONDS * 1000);
  timer.unref();
  return {
    ...store,
    async close() {
      clearInterval(timer);
      await store.close();
    },
  };
}
