/**
 * A run's proof (issue 12, mutation round four): an empty proof, each refusal's sentence, a
 * record listed as appended later that is not later, and the count of a run no checkpoint covers.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { GENESIS_HASH, chainHash, type AuditRecord } from '../../src/core/audit-chain.ts';
import { checkpointSigner } from '../../src/core/audit-checkpoint.ts';
import { verifyRunProof } from '../../src/core/run-proof.ts';

/** A chain of `n` records; the third of each three belongs to mx-other, the rest to mx-run. */
function chain(n: number): AuditRecord[] {
  const out: AuditRecord[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const event = {
      eventId: `e${seq}`,
      executionId: seq % 3 === 0 ? 'mx-other' : 'mx-run',
      type: 'step.started' as const,
      actor: 'system',
      at: '2026-11-30T10:00:00.000Z',
      data: { step: 'work', index: 0, phase: 'main', commandId: `c${seq}` },
    };
    const hash = chainHash(prev, event);
    out.push({ ...event, seq, prevHash: prev, hash, recordedAt: event.at });
    prev = hash;
  }
  return out;
}

describe('verifyRunProof refusals say what is wrong', () => {
  const none = new Map();

  test('a proof without records is refused naming the run', () => {
    expect(verifyRunProof({ executionId: 'mx-run', records: [], checkpoint: null, after: [] }, none)).toEqual({
      ok: false,
      check: 'shape',
      seq: 0,
      reason: 'the proof holds no record of mx-run',
    });
  });

  test('a proof that starts at another run’s record names that record', () => {
    const records = chain(6).slice(2);
    expect(verifyRunProof({ executionId: 'mx-run', records, checkpoint: null, after: [] }, none)).toEqual({
      ok: false,
      check: 'shape',
      seq: 3,
      reason: 'the proof starts at record #3, which is not a record of mx-run',
    });
  });

  test('a broken link is reported at its record, with the chain’s reason', () => {
    const records = chain(5).map((r) => (r.seq === 4 ? { ...r, actor: 'mallory' } : r));
    const v = verifyRunProof({ executionId: 'mx-run', records, checkpoint: null, after: [] }, none);
    expect(v).toMatchObject({ ok: false, check: 'chain', seq: 4 });
    expect(v.ok === false && v.reason).toMatch(/^record #4: \S/);
  });

  test('a record listed as appended later must come after the segment: its last record does not', () => {
    const records = chain(5);
    const v = verifyRunProof(
      { executionId: 'mx-run', records: records.slice(0, 4), checkpoint: null, after: [records[3]!] },
      none,
    );
    expect(v).toEqual({
      ok: false,
      check: 'shape',
      seq: 4,
      reason: 'record #4 is listed as appended later, but is not a later record of mx-run',
    });
    const earlier = verifyRunProof(
      { executionId: 'mx-run', records: records.slice(0, 4), checkpoint: null, after: [records[1]!] },
      none,
    );
    expect(earlier).toMatchObject({ ok: false, check: 'shape', seq: 2 });
  });

  test('a checkpoint past the proof’s last record is refused naming both', () => {
    const signer = checkpointSigner(generateKeyPairSync('ed25519').privateKey);
    const records = chain(6);
    const cp = signer.sign({ seq: 6, hash: records[5]!.hash }, new Date('2026-11-30T10:01:00Z'));
    const v = verifyRunProof(
      { executionId: 'mx-run', records: records.slice(0, 5), checkpoint: cp, after: [] },
      new Map([[signer.keyId, signer.publicKey]]),
    );
    expect(v).toEqual({
      ok: false,
      check: 'shape',
      seq: 6,
      reason: "the checkpoint covers #6, but the proof's records end at #5",
    });
  });
});

describe('verifyRunProof without a checkpoint', () => {
  test('counts the run’s records in the segment and those appended later, and lists them all as uncovered', () => {
    const records = chain(7);
    const v = verifyRunProof(
      { executionId: 'mx-run', records: records.slice(0, 5), checkpoint: null, after: [records[6]!] },
      new Map(),
    );
    expect(v).toEqual({
      ok: true,
      runRecords: 5,
      covered: 0,
      from: 1,
      to: 5,
      checkpoint: null,
      uncovered: [1, 2, 4, 5, 7],
    });
  });
});
