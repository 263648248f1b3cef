/**
 * What `audit verify` proves with the checkpoint signatures, against a real SQLite log forged with
 * database access but without the signing key.
 *
 * The signer vouches for the records since the newest checkpoint row it finds, so it first checks
 * that row's signature: a forger who appends a row after an execution's end and adds a checkpoint
 * row naming that row's true hash with a made-up signature cannot get the next genuine execution
 * end signed over both. The forged row stays the newest checkpoint, and default verify — which
 * checks the newest signature only — names it. A forged row buried below a genuine checkpoint
 * covers nothing the genuine one does not; `verify({ allSignatures: true })` still finds it.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { afterEach, describe, expect, test } from 'vitest';
import { chainHash } from '../../src/core/audit-chain.ts';
import { checkpointCache, checkpointSigner } from '../../src/core/audit-checkpoint.ts';
import type { NewAuditEvent } from '../../src/core/audit-events.ts';
import { canonicalJson } from '../../src/core/canonical.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { loadAuditSigning, type AuditSigning } from '../../src/store/checkpoints.ts';
import { runEvents } from '../helpers/web-ui.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function signedLog(): Promise<{ store: AuditStore; file: string; signing: AuditSigning }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mechanic-verify-sig-'));
  const file = path.join(dir, 'audit.db');
  const loc = { kind: 'sqlite' as const, file };
  const signing = await loadAuditSigning(path.join(dir, 'audit-key.pem'), { create: true, store: loc });
  const store = await openAuditStore(loc, { signing });
  cleanups.push(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { store, file, signing };
}

const run = (id: string, at: string, end: 'completed' | 'rejected' = 'completed') =>
  runEvents({ id, runbook: 'rb', operator: 'alice', approvers: ['bob'], at, targets: ['i-1'], end });

/** Straight into the database, as someone with write access but not the key would. */
function raw<T>(file: string, f: (db: SQLite.Database) => T): T {
  const db = new SQLite(file);
  try {
    return f(db);
  } finally {
    db.close();
  }
}

function forgeAppend(file: string, event: NewAuditEvent): { seq: number; hash: string } {
  return raw(file, (db) => {
    const head = db.prepare('select seq, hash from audit_events order by seq desc limit 1').get() as {
      seq: number;
      hash: string;
    };
    const seq = head.seq + 1;
    const hash = chainHash(head.hash, event);
    db.prepare(
      'insert into audit_events (seq, event_id, execution_id, type, actor, at, data, prev_hash, hash, recorded_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ).run(
      seq,
      event.eventId,
      event.executionId,
      event.type,
      event.actor,
      event.at,
      canonicalJson(event.data),
      head.hash,
      hash,
      event.at,
    );
    return { seq, hash };
  });
}

function forgeCheckpoint(file: string, signing: AuditSigning, cp: { seq: number; hash: string; at: string }): void {
  raw(file, (db) =>
    db
      .prepare(
        'insert into audit_checkpoints (seq, key_id, hash, at, signature, recorded_at) values (?, ?, ?, ?, ?, ?)',
      )
      .run(cp.seq, signing.signer.keyId, cp.hash, cp.at, Buffer.alloc(64, 7).toString('base64'), cp.at),
  );
}

const checkpointSeqs = (file: string) =>
  raw(file, (db) =>
    (db.prepare('select seq from audit_checkpoints order by seq').all() as { seq: number }[]).map((r) => r.seq),
  );

describe('audit verify and the checkpoint signatures', () => {
  test('a forged append laundered through a forged checkpoint row is still found', async () => {
    const { store, file, signing } = await signedLog();
    const first = run('mx-a', '2026-01-01T00:00:00.000Z');
    for (const e of first) await store.append(e);
    const end = first.length; // mx-a's end, signed
    expect(await store.verify()).toMatchObject({ ok: true, checkpoints: { latest: { seq: end } } });

    // An approval forged after mx-a's end, and a checkpoint row naming its true hash, unsigned.
    const forged = forgeAppend(file, {
      eventId: 'mx-a:9999:approval.granted',
      executionId: 'mx-a',
      type: 'approval.granted',
      actor: 'mallory',
      at: '2026-01-01T00:10:00.000Z',
      data: { planDigest: 'whatever' },
    });
    forgeCheckpoint(file, signing, { ...forged, at: new Date().toISOString() });
    // The index as the store would have projected it, so nothing but the signatures tells.
    raw(file, (db) =>
      db.prepare("update executions set updated_at = ? where id = 'mx-a'").run('2026-01-01T00:10:00.000Z'),
    );

    // The next run's end would be signed over the forged rows: the signer checks the checkpoint it
    // builds on, and refuses. Nothing is signed, neither at the end nor when asked.
    const second = run('mx-b', '2026-01-02T00:00:00.000Z', 'rejected');
    for (const e of second) await store.append(e);
    const head = forged.seq + second.length;
    expect(await store.checkpoint()).toBeUndefined();
    expect(checkpointSeqs(file)).toEqual([1, end, forged.seq]);
    // Another process (a store with nothing remembered) refuses too.
    const other = await openAuditStore({ kind: 'sqlite', file }, { signing });
    try {
      await other.append(run('mx-c', '2026-01-03T00:00:00.000Z')[0]!);
      expect(await other.checkpoint()).toBeUndefined();
    } finally {
      await other.close();
    }
    expect(checkpointSeqs(file)).not.toContain(head);

    // The forged row stays the newest checkpoint, and its signature — checked by default — gives it away.
    const verdict = {
      ok: false,
      seq: forged.seq,
      check: 'checkpoint',
      reason: `the checkpoint of record #${forged.seq} has a signature that does not match its seq, hash and time`,
    };
    expect(await store.verify()).toEqual(verdict);
    expect(await store.verify({ allSignatures: true })).toEqual(verdict);
  });

  test("two appenders sign over each other's checkpoints, and neither over a forged one", async () => {
    const { store, file, signing } = await signedLog();
    const other = await openAuditStore({ kind: 'sqlite', file }, { signing });
    cleanups.push(() => other.close());
    // Ends signed alternately: each builds on the other's checkpoint, which it checks once.
    for (const [i, s] of [store, other, store, other].entries())
      for (const e of run(`mx-${i}`, `2026-01-0${i + 1}T00:00:00.000Z`)) await s.append(e);
    const signedSoFar = checkpointSeqs(file);
    expect(signedSoFar).toHaveLength(5); // the first record, and each run's end (and the copy beside the key)
    expect(await store.verify({ allSignatures: true })).toMatchObject({
      ok: true,
      checkpoints: { signaturesChecked: 6 },
    });

    // A checkpoint row forged over the head (its true hash, a made-up signature): both refuse to sign on.
    const headRow = raw(file, (db) =>
      db.prepare('select seq, hash from audit_events order by seq desc limit 1').get(),
    ) as {
      seq: number;
      hash: string;
    };
    for (const e of run('mx-x', '2026-01-09T00:00:00.000Z').slice(0, 2)) await store.append(e);
    const unsignedHead = raw(file, (db) =>
      db.prepare('select seq, hash from audit_events order by seq desc limit 1').get(),
    ) as {
      seq: number;
      hash: string;
    };
    forgeCheckpoint(file, signing, { ...unsignedHead, at: new Date().toISOString() });
    expect(unsignedHead.seq).toBeGreaterThan(headRow.seq);
    for (const s of [other, store]) {
      await s.append(run('mx-x', '2026-01-09T00:00:00.000Z')[2]!);
      expect(await s.checkpoint()).toBeUndefined();
    }
    expect(checkpointSeqs(file)).toEqual([...signedSoFar, unsignedHead.seq]);
    expect(await other.verify()).toMatchObject({
      ok: false,
      seq: unsignedHead.seq,
      check: 'checkpoint',
      reason: expect.stringContaining('has a signature that does not match') as unknown,
    });
  });

  test('a garbage signature on the newest checkpoint fails verify', async () => {
    const { store, file, signing } = await signedLog();
    for (const e of run('mx-a', '2026-01-01T00:00:00.000Z')) await store.append(e);
    const extra = run('mx-b', '2026-01-02T00:00:00.000Z').slice(0, 2); // not ended: not signed
    for (const e of extra) await store.append(e);
    const head = raw(file, (db) =>
      db.prepare('select seq, hash from audit_events order by seq desc limit 1').get(),
    ) as {
      seq: number;
      hash: string;
    };
    forgeCheckpoint(file, signing, { ...head, at: new Date().toISOString() });
    expect(await store.verify()).toEqual({
      ok: false,
      seq: head.seq,
      check: 'checkpoint',
      reason: `the checkpoint of record #${head.seq} has a signature that does not match its seq, hash and time`,
    });
  });

  test('a forged checkpoint buried below a genuine one: default verify need not check it, --all-signatures finds it', async () => {
    const { store, file, signing } = await signedLog();
    for (const e of run('mx-a', '2026-01-01T00:00:00.000Z')) await store.append(e);
    for (const e of run('mx-b', '2026-01-02T00:00:00.000Z')) await store.append(e);
    const at3 = raw(file, (db) => db.prepare('select hash from audit_events where seq = 3').get()) as { hash: string };
    forgeCheckpoint(file, signing, { seq: 3, hash: at3.hash, at: '2026-01-01T00:00:03.000Z' });
    // It names a record the genuine checkpoints above it cover already: it proves nothing, so the
    // default verify, checking the newest signature, passes…
    const seqs = checkpointSeqs(file);
    expect(await store.verify()).toMatchObject({
      ok: true,
      // The newest row's signature and the copy's outside the database; every row's seq and hash.
      checkpoints: { latest: { seq: seqs.at(-1) }, checked: seqs.length + 1, signaturesChecked: 2 },
    });
    // …and every signature checked names it.
    expect(await store.verify({ allSignatures: true })).toEqual({
      ok: false,
      seq: 3,
      check: 'checkpoint',
      reason: 'the checkpoint of record #3 has a signature that does not match its seq, hash and time',
    });
  });

  test('a forged checkpoint is reported before a break the walk finds (signatures are checked alongside it)', async () => {
    const { store, file, signing } = await signedLog();
    const events = run('mx-a', '2026-01-01T00:00:00.000Z');
    for (const e of events) await store.append(e);
    for (const e of run('mx-b', '2026-01-02T00:00:00.000Z')) await store.append(e);
    const at3 = raw(file, (db) => db.prepare('select hash from audit_events where seq = 3').get()) as { hash: string };
    forgeCheckpoint(file, signing, { seq: 3, hash: at3.hash, at: '2026-01-01T00:00:03.000Z' });
    // …and a record edited further on, which the walk finds while the signatures are being checked.
    raw(file, (db) => {
      db.exec('drop trigger audit_events_no_update');
      db.prepare("update audit_events set actor = 'mallory' where seq = 2").run();
    });
    // By default the older signatures are not checked: the walk's break is what is found.
    expect(await store.verify()).toEqual({
      ok: false,
      seq: 2,
      check: 'chain',
      reason: "hash does not match the record's content",
    });
    expect(await store.verify({ allSignatures: true })).toEqual({
      ok: false,
      seq: 3,
      check: 'checkpoint',
      reason: 'the checkpoint of record #3 has a signature that does not match its seq, hash and time',
    });
  });
});

describe('the checkpoints the signer remembers as genuine', () => {
  const signer = checkpointSigner(generateKeyPairSync('ed25519').privateKey);
  const stranger = checkpointSigner(generateKeyPairSync('ed25519').privateKey);
  const trusted = new Map([[signer.keyId, signer.publicKey]]);

  test('only the very checkpoint remembered is taken unchecked: any changed field or extra one is checked anew', () => {
    const cache = checkpointCache(trusted);
    const cp = signer.sign({ seq: 7, hash: 'a'.repeat(64) }, new Date('2026-01-01T00:00:00.000Z'));
    cache.remember(cp);
    expect(cache.problem({ ...cp })).toBeUndefined();
    expect(cache.problem({ ...cp, hash: 'b'.repeat(64) })).toBe(
      'has a signature that does not match its seq, hash and time',
    );
    expect(cache.problem({ ...cp, seq: 8 })).toBe('has a signature that does not match its seq, hash and time');
    expect(cache.problem({ ...cp, extra: 1 })).toMatch(/^is malformed/);
    const foreign = stranger.sign({ seq: 7, hash: 'a'.repeat(64) }, new Date('2026-01-01T00:00:00.000Z'));
    expect(cache.problem(foreign)).toBe(`is signed by key ${stranger.keyId}, which is not a trusted audit key`);
    // A forged checkpoint is never remembered, however often it is asked about.
    const forged = { ...cp, signature: Buffer.alloc(64, 7).toString('base64') };
    expect(cache.problem(forged)).toBeDefined();
    expect(cache.problem(forged)).toBeDefined();
  });

  test('remembering changes the cost, never the answer: genuine checkpoints stay genuine past the cache size', () => {
    const cache = checkpointCache(trusted, 2);
    const cps = [1, 2, 3].map((seq) =>
      signer.sign({ seq, hash: 'a'.repeat(64) }, new Date('2026-01-01T00:00:00.000Z')),
    );
    for (const cp of cps) expect(cache.problem(cp)).toBeUndefined();
    // Remembered or checked, a genuine checkpoint is always genuine: the cache changes the cost, never the answer.
    for (const cp of cps) expect(cache.problem(cp)).toBeUndefined();
  });
});
