/**
 * `audit verify` walks a large SQLite log on threads that load one module esbuild bundles in
 * memory (src/store/verify-parallel.ts). Should esbuild fail, verify must still answer — on one
 * thread, with the very verdict the threads give — not fail for a missing optimisation.
 */
import { describe, expect, test, vi } from 'vitest';
import { openAuditStore } from '../../src/store/audit-log.ts';
import { signingWith } from '../../src/store/checkpoints.ts';
import { filledLog, raw, unguard } from '../helpers/raw-sqlite.ts';

vi.mock('esbuild', () => ({
  build: () => Promise.reject(new Error('esbuild is not installed here')),
}));

const log = filledLog('mechanic-verify-no-bundle-', 2000);

async function verify(file: string, threads: number) {
  const store = await openAuditStore(
    { kind: 'sqlite', file },
    { signing: signingWith(log.signer, undefined), verifyInParallel: { threads, fromRecords: 1 } },
  );
  try {
    return await store.verify();
  } finally {
    await store.close();
  }
}

describe('audit verify without esbuild', () => {
  test('an intact log and a broken one get the verdicts of the record-by-record walk', async () => {
    const file = await log.copy();
    const intact = await verify(file, 3);
    expect(intact).toMatchObject({ ok: true, count: log.events });
    expect(intact).toEqual(await verify(file, 1));

    raw(file, (db) => {
      unguard(db);
      db.prepare("update audit_events set actor = 'mallory' where seq = ?").run(1234);
    });
    const broken = await verify(file, 3);
    expect(broken).toEqual({
      ok: false,
      seq: 1234,
      check: 'chain',
      reason: "hash does not match the record's content",
    });
    expect(broken).toEqual(await verify(file, 1));
  });
});
