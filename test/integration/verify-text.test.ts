/**
 * `audit verify` over SQLite reads each record as the one text it hashes, built in the database
 * (verify-rows.ts, checkEventText), and asks SQLite whether the side tables match the index
 * (verify-index.ts). Both are shortcuts that may only vouch: over a real log, every record the
 * store wrote takes the shortcut, and every tampered record — above all those built to fool it
 * (extra keys smuggled in through the data column, a prev_hash that carries text of its own,
 * non-canonical bytes with a hash recomputed over them, a column that is not text) — gets exactly
 * the verdict and sentence of the record-by-record walk, which reads the columns and never takes
 * the shortcut.
 */
import { createHash } from 'node:crypto';
import SQLite from 'better-sqlite3';
import { describe, expect, test } from 'vitest';
import type { AuditVerdict } from '../../src/core/audit-chain.ts';
import { openAuditStore } from '../../src/store/audit-log.ts';
import { signingWith } from '../../src/store/checkpoints.ts';
import { sideTablesSurelyMatchIndex } from '../../src/store/verify-index.ts';
import { EVENT_TEXT_COLUMNS, VERIFY_COLUMNS, checkEventText, checkRow } from '../../src/store/verify-rows.ts';
import { filledLog, raw, unguard } from '../helpers/raw-sqlite.ts';

const log = filledLog('mechanic-verify-text-', 1200);
const { signer, copy } = log;

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/**
 * The record-by-record walk (one thread: every record through checkRow) and the walk in ranges
 * on two threads (every record through checkEventText first), without the key so the ranges reach
 * the log's end, and with it.
 */
async function verifyBoth(file: string, signed = false): Promise<[AuditVerdict, AuditVerdict]> {
  const verdicts: AuditVerdict[] = [];
  for (const threads of [2, 1]) {
    const store = await openAuditStore(
      { kind: 'sqlite', file },
      { ...(signed ? { signing: signingWith(signer, undefined) } : {}), verifyInParallel: { threads, fromRecords: 1 } },
    );
    try {
      verdicts.push(await store.verify());
    } finally {
      await store.close();
    }
  }
  return verdicts as [AuditVerdict, AuditVerdict];
}

/** The seq of the first record of `type` after `after`. */
function seqOf(file: string, type: string, after = 300): number {
  return raw(file, (db) => {
    const row = db
      .prepare('select seq from audit_events where type = ? and seq > ? order by seq limit 1')
      .get(type, after) as { seq: number } | undefined;
    if (!row) throw new Error(`no ${type} after #${after}`);
    return row.seq;
  });
}

/**
 * Sets a record's columns and recomputes its hash over the bytes as stored (what a forger who
 * knows the chain's rule but writes other bytes does); later records are left alone.
 */
function forge(file: string, seq: number, columns: Record<string, unknown>, hashOver?: (row: Row) => string): void {
  raw(file, (db) => {
    unguard(db);
    const sets = Object.keys(columns)
      .map((c) => `${c} = @${c}`)
      .join(', ');
    db.prepare(`update audit_events set ${sets} where seq = @seq`).run({ ...columns, seq });
    if (hashOver) {
      const row = db.prepare('select * from audit_events where seq = ?').get(seq) as Row;
      db.prepare('update audit_events set hash = ? where seq = ?').run(sha256(hashOver(row)), seq);
    }
  });
}

interface Row {
  event_id: string;
  execution_id: string | null;
  type: string;
  actor: string;
  at: string;
  data: string;
  prev_hash: string;
}

/** The bytes the shortcut would hash: prev_hash, a newline, the six fields around data as stored. */
const storedBytes = (r: Row) =>
  `${r.prev_hash}\n{"actor":${JSON.stringify(r.actor)},"at":${JSON.stringify(r.at)},"data":${r.data},"eventId":${JSON.stringify(
    r.event_id,
  )},"executionId":${JSON.stringify(r.execution_id)},"type":${JSON.stringify(r.type)}}`;

describe('each record read as the one text it hashes', () => {
  test('every record the store wrote takes the shortcut, with checkRow’s answer', () => {
    const db = new SQLite(log.base, { readonly: true });
    try {
      const texts = db
        .prepare(`select ${EVENT_TEXT_COLUMNS} from audit_events order by seq`)
        .raw(true)
        .all() as unknown[][];
      const columns = db
        .prepare(`select ${VERIFY_COLUMNS.join(', ')} from audit_events order by seq`)
        .raw(true)
        .all() as unknown[][];
      expect(texts).toHaveLength(log.events);
      let prev = '0'.repeat(64);
      for (const [i, text] of texts.entries()) {
        const fast = checkEventText(text, prev, i + 1, new Map());
        const full = checkRow(columns[i]!, prev, i + 1, new Map());
        expect(fast, `record #${i + 1}`).toBeDefined();
        expect(full.ok).toBe(true);
        if (!fast?.ok || !full.ok) throw new Error('unreachable');
        expect(fast.seq).toBe(full.seq);
        expect(fast.hash).toBe(full.hash);
        expect({ ...fast.event }).toEqual({ ...full.event });
        prev = fast.hash;
      }
    } finally {
      db.close();
    }
  });

  test('an intact log: both walks give the same verdict, with and without the key', async () => {
    const file = await copy();
    const [parallel, sequential] = await verifyBoth(file);
    expect(parallel).toEqual(sequential);
    expect(parallel).toMatchObject({ ok: true, count: log.events });
    const [signedParallel, signedSequential] = await verifyBoth(file, true);
    expect(signedParallel).toEqual(signedSequential);
    expect(signedParallel).toMatchObject({ ok: true, count: log.events, checkpoints: { uncovered: 0 } });
  });

  test.each([
    {
      name: 'a key smuggled in after data, hash recomputed over the text that holds it',
      type: 'execution.completed',
      columns: { data: '{},"dz":2' },
      reason: 'data is not valid JSON',
    },
    {
      name: 'data written with its keys swapped, hash recomputed over those bytes',
      type: 'approval.granted',
      columns: { data: '{"planDigest":"p","comment":"c"}' },
      reason: "hash does not match the record's content",
    },
    {
      name: 'data with a space, hash recomputed',
      type: 'approval.granted',
      columns: { data: '{"comment": "c","planDigest":"p"}' },
      reason: "hash does not match the record's content",
    },
    {
      name: 'data with an escape JSON.stringify does not write, hash recomputed',
      type: 'approval.granted',
      columns: { data: '{"comment":"a\\/b","planDigest":"p"}' },
      reason: "hash does not match the record's content",
    },
    {
      name: 'data as a number written long, hash recomputed',
      type: 'step.started',
      columns: { data: '{"commandId":"c","index":0.0,"phase":"main","step":"work"}' },
      reason: "hash does not match the record's content",
    },
    {
      name: 'data that is two values, hash recomputed',
      type: 'execution.completed',
      columns: { data: '{}{}' },
      reason: 'data is not valid JSON',
    },
  ])('$name: named as the walk names it', async ({ type, columns, reason }) => {
    const file = await copy();
    const seq = seqOf(file, type);
    forge(file, seq, columns, storedBytes);
    const [parallel, sequential] = await verifyBoth(file);
    expect(parallel).toEqual(sequential);
    expect(parallel).toEqual({ ok: false, seq, check: 'chain', reason });
  });

  test('a prev_hash carrying text of its own after the real one, hash recomputed: a link that does not match', async () => {
    const file = await copy();
    const seq = seqOf(file, 'execution.running');
    const prev = raw(
      file,
      (db) => (db.prepare('select hash from audit_events where seq = ?').get(seq - 1) as { hash: string }).hash,
    );
    forge(file, seq, { prev_hash: `${prev}\n{}` }, storedBytes);
    const [parallel, sequential] = await verifyBoth(file);
    expect(parallel).toEqual(sequential);
    expect(parallel).toEqual({
      ok: false,
      seq,
      check: 'chain',
      reason: "prevHash does not match the previous record's hash",
    });
  });

  test('a column that is not text: no shortcut, no crash, the walk’s sentence', async () => {
    const file = await copy();
    const seq = seqOf(file, 'execution.running');
    raw(file, (db) => {
      unguard(db);
      db.prepare("update audit_events set actor = x'00ff' where seq = ?").run(seq);
    });
    const [parallel, sequential] = await verifyBoth(file);
    expect(parallel).toEqual(sequential);
    expect(parallel).toMatchObject({
      ok: false,
      seq,
      check: 'chain',
      reason: expect.stringMatching(/^content cannot be hashed/),
    });
  });

  test('a record whose type is not in the vocabulary, hash recomputed: the schema names it', async () => {
    const file = await copy();
    const seq = seqOf(file, 'execution.running');
    forge(file, seq, { type: 'execution.teleported' }, storedBytes);
    const [parallel, sequential] = await verifyBoth(file);
    expect(parallel).toEqual(sequential);
    expect(parallel).toMatchObject({ ok: false, seq, check: 'schema' });
  });
});

describe('the side tables checked inside SQLite', () => {
  const check = (file: string) => {
    const db = new SQLite(file, { readonly: true });
    try {
      return sideTablesSurelyMatchIndex(db);
    } finally {
      db.close();
    }
  };
  const someRun = (file: string) =>
    raw(
      file,
      (db) =>
        db.prepare('select id, created_at from executions order by id limit 1 offset 7').get() as {
          id: string;
          created_at: string;
        },
    );

  test('an intact log: vouched for', async () => {
    expect(check(await copy())).toBe(true);
  });

  test.each([
    {
      name: 'a target row deleted',
      change: (db: SQLite.Database, run: { id: string }) =>
        db.prepare('delete from execution_targets where execution_id = ?').run(run.id),
      problem:
        /the execution_targets table does not match the executions index for mx-b\d+: target i-[0-9a-f]+ missing/,
    },
    {
      name: 'an approver row added',
      change: (db: SQLite.Database, run: { id: string; created_at: string }) =>
        db
          .prepare('insert into execution_approvers (approver, created_at, execution_id) values (?, ?, ?)')
          .run('mallory', run.created_at, run.id),
      problem:
        /the execution_approvers table does not match the executions index for mx-b\d+: approver mallory not in the log/,
    },
    {
      name: 'a target row moved to another time',
      change: (db: SQLite.Database, run: { id: string }) =>
        db
          .prepare("update execution_targets set created_at = '2020-01-01T00:00:00.000Z' where execution_id = ?")
          .run(run.id),
      problem:
        /the execution_targets table does not match the executions index for mx-b\d+: target i-[0-9a-f]+ missing; .*not in the log$/,
    },
  ])('$name: not vouched for, and verify names it as before', async ({ change, problem }) => {
    const file = await copy();
    const run = someRun(file);
    raw(file, (db) => change(db, run));
    expect(check(file)).toBe(false);
    const [parallel, sequential] = await verifyBoth(file);
    expect(parallel).toEqual(sequential);
    expect(parallel).toMatchObject({ ok: false, check: 'index', reason: expect.stringMatching(problem) });
  });

  test('an index whose targets hold an array, beside a side row of that array as text: not vouched for', async () => {
    // json_each gives an array element as its JSON text; checkFilterTables sees an array, not that text.
    const file = await copy();
    const run = someRun(file);
    raw(file, (db) => {
      db.prepare(`update executions set targets = '[["i-1"]]' where id = ?`).run(run.id);
      db.prepare('delete from execution_targets where execution_id = ?').run(run.id);
      db.prepare('insert into execution_targets (instance_id, created_at, execution_id) values (?, ?, ?)').run(
        '["i-1"]',
        run.created_at,
        run.id,
      );
    });
    expect(check(file)).toBe(false);
  });

  test('an index row whose targets are not JSON is never vouched for, and never throws', async () => {
    const file = await copy();
    const run = someRun(file);
    raw(file, (db) => db.prepare("update executions set targets = 'not json' where id = ?").run(run.id));
    expect(check(file)).toBe(false);
  });
});
