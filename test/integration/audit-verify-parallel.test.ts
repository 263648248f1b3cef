/**
 * `audit verify` over a SQLite log walked in ranges on worker threads (src/store/verify-parallel.ts)
 * must give exactly the verdict of the record-by-record walk: the same first problem, named the same
 * way, wherever it is — inside a range, on a range's first record, in two ranges at once — and the
 * same summary of an intact log. Every case runs both walks over the same real file and compares.
 */
import type SQLite from 'better-sqlite3';
import { describe, expect, test } from 'vitest';
import type { AuditVerdict } from '../../src/core/audit-chain.ts';
import { openAuditStore } from '../../src/store/audit-log.ts';
import { signingWith } from '../../src/store/checkpoints.ts';
import { SignedCheckpoints } from '../../src/store/signed-checkpoints.ts';
import { walkInParallel } from '../../src/store/verify-parallel.ts';
import { filledLog, raw, unguard } from '../helpers/raw-sqlite.ts';
import { runEvents } from '../helpers/web-ui.ts';

const THREADS = 3;
const log = filledLog('mechanic-verify-parallel-', 3000);
const { signer, copy } = log;

/** Where the store splits the records up to `upTo` into THREADS ranges: the last seq of each range but the last. */
const bounds = (upTo: number) => Array.from({ length: THREADS - 1 }, (_, i) => Math.floor((upTo * (i + 1)) / THREADS));

/** Both walks over one file, with the signing key (or without): [in ranges on threads, record by record]. */
async function verifyBoth(file: string, signed = true): Promise<[AuditVerdict, AuditVerdict]> {
  const verdicts: AuditVerdict[] = [];
  for (const threads of [THREADS, 1]) {
    const store = await openAuditStore(
      { kind: 'sqlite', file },
      {
        ...(signed ? { signing: signingWith(signer, undefined) } : {}),
        verifyInParallel: { threads, fromRecords: 1 },
      },
    );
    try {
      verdicts.push(await store.verify());
    } finally {
      await store.close();
    }
  }
  return verdicts as [AuditVerdict, AuditVerdict];
}

describe('audit verify in ranges on worker threads', () => {
  test('an intact log: the same verdict as the record-by-record walk, with and without the key, and with records after the newest checkpoint', async () => {
    const file = await copy();
    const [parallel, sequential] = await verifyBoth(file);
    expect(parallel).toEqual(sequential);
    expect(parallel).toMatchObject({ ok: true, count: log.events, checkpoints: { uncovered: 0 } });
    const [plainParallel, plainSequential] = await verifyBoth(file, false);
    expect(plainParallel).toEqual(plainSequential);
    expect(plainParallel).toMatchObject({ ok: true, count: log.events, checkpoints: null });

    // A run going on after the newest checkpoint: the ranges stop there, the walk takes the rest.
    const store = await openAuditStore({ kind: 'sqlite', file }, { signing: signingWith(signer, undefined) });
    try {
      const going = runEvents({
        id: 'mx-going',
        runbook: 'rb',
        operator: 'alice',
        approvers: ['bob'],
        at: '2027-01-01T00:00:00.000Z',
        targets: ['i-1'],
        end: 'completed',
      });
      for (const e of going.slice(0, 3)) await store.append(e);
    } finally {
      await store.close();
    }
    const [withTail, withTailSequential] = await verifyBoth(file);
    expect(withTail).toEqual(withTailSequential);
    expect(withTail).toMatchObject({ ok: true, count: log.events + 3, checkpoints: { uncovered: 3 } });
  });

  test('records broken in two ranges: the walk reports the lower one, then the other once that is mended', async () => {
    const file = await copy();
    const [b1, b2] = bounds(log.events);
    const low = b1! + 5;
    const high = b2! + 7;
    const actors = raw(file, (db) => {
      unguard(db);
      const before = [low, high].map(
        (seq) => (db.prepare('select actor from audit_events where seq = ?').get(seq) as { actor: string }).actor,
      );
      // The higher one first, so nothing about the order of writing decides.
      for (const seq of [high, low]) db.prepare("update audit_events set actor = 'mallory' where seq = ?").run(seq);
      return before;
    });
    const broken = { ok: false, check: 'chain', reason: "hash does not match the record's content" };
    const direct = await walkInParallel(file, log.events, THREADS, new SignedCheckpoints());
    expect(direct).toEqual({ problem: { check: 'chain', seq: low, reason: broken.reason } });
    const [parallel, sequential] = await verifyBoth(file);
    expect(parallel).toEqual({ ...broken, seq: low });
    expect(sequential).toEqual(parallel);

    raw(file, (db) => db.prepare('update audit_events set actor = ? where seq = ?').run(actors[0], low));
    const [mended, mendedSequential] = await verifyBoth(file);
    expect(mended).toEqual({ ...broken, seq: high });
    expect(mendedSequential).toEqual(mended);
  });

  test.each<[string, (db: SQLite.Database, boundary: number) => void, (boundary: number) => Partial<AuditVerdict>]>([
    [
      "a range's first record changed",
      (db, b) => db.prepare("update audit_events set actor = 'mallory' where seq = ?").run(b + 1),
      (b) => ({ seq: b + 1, check: 'chain', reason: "hash does not match the record's content" }),
    ],
    [
      "a range's first record relinked to a made-up predecessor",
      (db, b) => db.prepare('update audit_events set prev_hash = ? where seq = ?').run('e'.repeat(64), b + 1),
      (b) => ({ seq: b + 1, check: 'chain', reason: "prevHash does not match the previous record's hash" }),
    ],
    [
      'the last record before a range deleted',
      (db, b) => db.prepare('delete from audit_events where seq = ?').run(b),
      (b) => ({
        seq: b + 1,
        check: 'chain',
        reason: `expected seq ${b} but found ${b + 1}: records are missing or out of order`,
      }),
    ],
    [
      "a range's first record's data made other than JSON",
      (db, b) => db.prepare("update audit_events set data = '{not json' where seq = ?").run(b + 1),
      (b) => ({ seq: b + 1, check: 'chain', reason: 'data is not valid JSON' }),
    ],
  ])('at a boundary between ranges, %s is named as the walk names it', async (_what, change, expected) => {
    const file = await copy();
    const [, b2] = bounds(log.events);
    raw(file, (db) => {
      unguard(db);
      change(db, b2!);
    });
    const [parallel, sequential] = await verifyBoth(file);
    expect(parallel).toEqual({ ok: false, ...expected(b2!) });
    expect(sequential).toEqual(parallel);
  });

  test('an execution whose records span two ranges is rebuilt whole: its index row edited is found', async () => {
    const file = await copy();
    const [b1] = bounds(log.events);
    const id = raw(file, (db) => {
      const row = db
        .prepare(
          'select execution_id from audit_events where execution_id is not null group by execution_id having min(seq) <= ? and max(seq) > ?',
        )
        .get(b1, b1) as { execution_id: string };
      db.prepare("update executions set operator = 'mallory' where id = ?").run(row.execution_id);
      return row.execution_id;
    });
    const [parallel, sequential] = await verifyBoth(file);
    expect(parallel).toMatchObject({
      ok: false,
      check: 'index',
      reason: expect.stringMatching(
        new RegExp(`^the executions index row of ${id} does not match the log: operator is "mallory"`),
      ) as unknown,
    });
    expect(sequential).toEqual(parallel);
  });

  /** Where a forged checkpoint row goes: the first record of the last range, or well inside the middle one. */
  const rangeStart = (): number => bounds(log.events)[1]!;
  const midRange = (): number => {
    const [b1, b2] = bounds(log.events) as [number, number];
    return b1 + Math.floor((b2 - b1) / 2);
  };
  // A row forged below the newest checkpoint: not its signature but its seq and hash are checked, on every row.
  test.each([
    ['on the first record of a range (checked again by the main thread)', rangeStart, 'f'.repeat(64)],
    ['in the middle of a range, with a hash of 64 characters (read as columns)', midRange, 'f'.repeat(64)],
    ['in the middle of a range, with a hash of another length (read row by row)', midRange, 'f'.repeat(63)],
    [
      'in the middle of a range, with a hash SQLite counts as 64 characters but JavaScript as 65 (read row by row)',
      midRange,
      `${'f'.repeat(63)}😀`,
    ],
  ])('a checkpoint row %s that names another record is found, its signature unchecked', async (_, after, hash) => {
    const file = await copy();
    const seq = raw(file, (db) => {
      const free = db
        .prepare(
          'select seq from audit_events where seq > ? and seq not in (select seq from audit_checkpoints) order by seq limit 1',
        )
        .get(after()) as { seq: number };
      db.prepare(
        'insert into audit_checkpoints (seq, key_id, hash, at, signature, recorded_at) values (?, ?, ?, ?, ?, ?)',
      ).run(free.seq, signer.keyId, hash, '2026-01-01T00:00:00.000Z', 'AAAA', '2026-01-01T00:00:00.000Z');
      return free.seq;
    });
    const [parallel, sequential] = await verifyBoth(file);
    expect(parallel).toEqual({
      ok: false,
      seq,
      check: 'checkpoint',
      reason: `record #${seq} is not the record signed by the checkpoint in the database: the log was rewritten from here`,
    });
    expect(sequential).toEqual(parallel);
  });
});

describe('the executions index compared by the threads', () => {
  /** An execution whose records all lie in the middle range (the threads compare its index row themselves). */
  const inMiddleRange = (db: SQLite.Database): string => {
    const [b1, b2] = bounds(log.events);
    return (
      db
        .prepare(
          'select execution_id from audit_events where execution_id is not null group by execution_id having min(seq) > ? and max(seq) <= ? order by min(seq) limit 1',
        )
        .get(b1, b2) as { execution_id: string }
    ).execution_id;
  };

  test('an intact log: most executions are matched by the threads, their summaries not sent back', async () => {
    const file = await copy();
    const id = raw(file, inMiddleRange);
    const walked = await walkInParallel(file, log.events, THREADS, new SignedCheckpoints());
    if (!('state' in walked)) throw new Error(`the walk found ${JSON.stringify(walked.problem)}`);
    expect(walked.state.matched.has(id)).toBe(true);
    expect(walked.state.rebuilt.has(id)).toBe(false);
    // Only the runs cut by a range's bound come back whole.
    expect(walked.state.rebuilt.size).toBeLessThan(walked.state.matched.size / 10);
  });

  test.each<[string, (db: SQLite.Database, id: string) => void, (id: string) => RegExp]>([
    [
      'its index row edited',
      (db, id) => db.prepare("update executions set operator = 'mallory' where id = ?").run(id),
      (id) => new RegExp(`^the executions index row of ${id} does not match the log: operator is "mallory"`),
    ],
    [
      'its index row deleted',
      (db, id) => db.prepare('delete from executions where id = ?').run(id),
      (id) => new RegExp(`^the log has execution ${id}, but the executions index does not$`),
    ],
    [
      'an index row the log does not have added beside it',
      (db, id) =>
        db
          .prepare(
            "insert into executions select 'mx-forged', runbook_name, runbook_version, operator, reason, status, plan_digest, params, targets, approvals, created_at, updated_at, finished_at from executions where id = ?",
          )
          .run(id),
      () => /^the executions index has mx-forged, but the log has no request for it$/,
    ],
    [
      'a target row of it deleted',
      (db, id) =>
        db
          .prepare(
            'delete from execution_targets where rowid = (select min(rowid) from execution_targets where execution_id = ?)',
          )
          .run(id),
      (id) =>
        new RegExp(
          `^the execution_targets table does not match the executions index for ${id}: target i-\\w+ missing$`,
        ),
    ],
  ])('an execution inside one range: %s is named as the walk names it', async (_what, change, reason) => {
    const file = await copy();
    const id = raw(file, (db) => {
      const found = inMiddleRange(db);
      change(db, found);
      return found;
    });
    const [parallel, sequential] = await verifyBoth(file);
    expect(parallel).toMatchObject({ ok: false, check: 'index', reason: expect.stringMatching(reason(id)) as unknown });
    expect(sequential).toEqual(parallel);
  });
});
