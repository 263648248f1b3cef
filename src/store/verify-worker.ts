/**
 * A worker thread of `audit verify` over a SQLite log: checks one range of records (verify-rows.ts:
 * chain links, hashes, canonical form, checkpoints signed in the range, vocabulary) through a
 * read-only connection of its own, and folds the range's events into execution summaries.
 *
 * The range starts from the stored prev_hash and seq of its first row, which it cannot judge
 * alone: it hands that row back, and the main thread checks it against the previous range's last
 * hash (verify-parallel.ts). Run by verify-parallel.ts only.
 *
 * Each summary is compared here with the executions index row the same read transaction sees: one
 * that equals it is handed back as its id alone (matched), so the main thread neither receives
 * nor compares the summaries of the runs that begin and end in one range — most of them. A summary
 * that differs (a run that goes on in a later range, or a row that does not match) is handed back
 * whole, for the main thread to judge as before.
 */
import { parentPort, workerData } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';
import { endStatusOf } from '../core/audit-events.ts';
import { foldExecution, type ExecutionSummary } from '../core/execution-index.ts';
import { sameAsRow, type ExecutionRow } from './execution-rows.ts';
import { SignedCheckpoints, type CheckpointSlice } from './signed-checkpoints.ts';
import {
  EVENT_TEXT_COLUMNS,
  VERIFY_COLUMNS,
  checkEventText,
  checkRow,
  type RawRow,
  type TextRow,
  type WalkProblem,
} from './verify-rows.ts';

/** What the main thread asks of one worker. */
export interface RangeTask {
  /** The SQLite file, opened read-only. */
  readonly file: string;
  /** Records with seq above this (null: from the very first, a stray seq below 1 included)… */
  readonly after: number | null;
  /** …up to and including this seq. */
  readonly upTo: number;
  /** The admitted checkpoints in the range. */
  readonly signed: CheckpointSlice;
}

/** What one worker found in its range. */
export interface RangeResult {
  /** The range's first record, for the main thread to check against the previous range; null when empty. */
  readonly first: RawRow | null;
  readonly count: number;
  readonly lastSeq: number;
  readonly lastHash: string;
  /** The first problem after the first record's link (that one is the main thread's to judge). */
  readonly problem: WalkProblem | null;
  /**
   * Every execution seen in the range and not matched, with its summary folded from the range's
   * events alone (null: none).
   */
  readonly executions: readonly (readonly [string, ExecutionSummary | null])[];
  /**
   * Executions seen in the range whose summary, folded from the range's events, equals their
   * executions index row as this range's read transaction saw it.
   */
  readonly matched: readonly string[];
  /** The first end of each execution that ends in the range: [execution, seq]. */
  readonly ends: readonly (readonly [string, number])[];
}

/** Records read at once. */
const PAGE = 5000;

/** Executions whose index rows are asked for at once. */
const INDEX_BATCH = 5000;

export function walkRange(task: RangeTask): RangeResult {
  const signed = SignedCheckpoints.of(task.signed);
  const conn = new BetterSqlite3(task.file, { readonly: true, fileMustExist: true, timeout: 5_000 });
  try {
    // One read transaction: every page and every row read again below sees the same log.
    conn.exec('begin');
    // Each record as one text (checkEventText); a record it cannot vouch for is read again as
    // columns for checkRow, which decides and names the problem.
    const from = conn
      .prepare(`select ${EVENT_TEXT_COLUMNS} from audit_events where seq <= ? order by seq limit ${PAGE}`)
      .raw(true);
    const next = conn
      .prepare(`select ${EVENT_TEXT_COLUMNS} from audit_events where seq > ? and seq <= ? order by seq limit ${PAGE}`)
      .raw(true);
    const columnsOf = conn.prepare(`select ${VERIFY_COLUMNS.join(', ')} from audit_events where seq = ?`).raw(true);
    const rawRow = (seq: unknown) => columnsOf.get(seq) as RawRow;
    const indexRows = conn.prepare('select e.* from json_each(?) j join executions e on e.id = j.value');
    let first: RawRow | null = null;
    let prevHash = '';
    let lastSeq = task.after ?? 0;
    let count = 0;
    const local = new Map<string, ExecutionSummary | undefined>();
    const ends = new Map<string, number>();
    let after = task.after;
    for (;;) {
      const rows = (after === null ? from.all(task.upTo) : next.all(after, task.upTo)) as TextRow[];
      for (const row of rows) {
        // The first record links by its own stored prev_hash and seq; the main thread checks those.
        if (first === null) {
          first = rawRow(row[0]);
          prevHash = first[7] as string;
          lastSeq = Number(first[0]) - 1;
        }
        const checked =
          checkEventText(row, prevHash, lastSeq + 1, signed) ?? checkRow(rawRow(row[0]), prevHash, lastSeq + 1, signed);
        if (!checked.ok) return result(checked.problem);
        const { event } = checked;
        if (event.executionId !== null) {
          if (endStatusOf(event.type) !== undefined && !ends.has(event.executionId))
            ends.set(event.executionId, checked.seq);
          // The range's own summaries, folded in place (no one else holds them).
          local.set(event.executionId, foldExecution(local.get(event.executionId), event));
        }
        prevHash = checked.hash;
        lastSeq = checked.seq;
        count++;
      }
      if (rows.length < PAGE) return result(null);
      after = Number(rows.at(-1)![0]);
    }

    function result(problem: WalkProblem | null): RangeResult {
      const executions: (readonly [string, ExecutionSummary | null])[] = [];
      const matched: string[] = [];
      const rows = problem === null ? indexRowsOf(local) : new Map<string, ExecutionRow>();
      for (const [id, s] of local) {
        const row = rows.get(id);
        if (problem === null && s !== undefined && row !== undefined && sameAsRow(row, s)) matched.push(id);
        else executions.push([id, s ?? null]);
      }
      return { first, count, lastSeq, lastHash: prevHash, problem, executions, matched, ends: [...ends] };
    }

    /**
     * The index rows of the range's executions, by id, asked in one statement per INDEX_BATCH ids
     * (SQLite looks each up; a statement per id cost about twice as much). One the database will
     * not read is missing here, and left to the main thread.
     */
    function indexRowsOf(executions: ReadonlyMap<string, unknown>): Map<string, ExecutionRow> {
      const rows = new Map<string, ExecutionRow>();
      const ids = [...executions.keys()];
      for (let from = 0; from < ids.length; from += INDEX_BATCH) {
        try {
          for (const row of indexRows.all(JSON.stringify(ids.slice(from, from + INDEX_BATCH))) as ExecutionRow[])
            rows.set(row.id, row);
        } catch {
          // anything unreadable is the main thread's to judge and name
        }
      }
      return rows;
    }
  } finally {
    if (conn.inTransaction) conn.exec('commit');
    conn.close();
  }
}

if (parentPort && (workerData as { verifyWalker?: boolean } | null)?.verifyWalker) {
  // Started ahead of its range (verify-parallel.ts): walks the one range it is then sent.
  const port = parentPort;
  port.once('message', (task: RangeTask) => {
    try {
      port.postMessage({ ok: true, result: walkRange(task) });
    } catch (e) {
      port.postMessage({ ok: false, error: e instanceof Error ? e.message : String(e) });
    }
  });
}
