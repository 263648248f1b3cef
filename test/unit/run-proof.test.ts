/**
 * A run's proof: its records link in the hash chain up to a checkpoint signed by a trusted key.
 * Each way of forging or breaking it is named.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { GENESIS_HASH, chainHash, type AuditRecord } from '../../src/core/audit-chain.ts';
import { checkpointSigner } from '../../src/core/audit-checkpoint.ts';
import { verifyRunProof, type RunProof } from '../../src/core/run-proof.ts';

const signer = checkpointSigner(generateKeyPairSync('ed25519').privateKey);
const other = checkpointSigner(generateKeyPairSync('ed25519').privateKey);
const trusted = new Map([[signer.keyId, signer.publicKey]]);

/** A chain of `n` records; every third belongs to mx-other, the rest to mx-run. */
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

function proofOf(records: AuditRecord[], cpSeq: number, s = signer): RunProof {
  const cut = records.filter((r) => r.seq >= 2 && r.seq <= cpSeq);
  const cp = s.sign({ seq: cpSeq, hash: records[cpSeq - 1]!.hash }, new Date('2026-11-30T10:01:00Z'));
  const after = records.filter((r) => r.seq > cpSeq && r.executionId === 'mx-run');
  return { executionId: 'mx-run', records: cut, checkpoint: cp, after };
}

describe('verifyRunProof', () => {
  const records = chain(12);

  test('an intact proof verifies, names the checkpoint and the records not yet covered', () => {
    const v = verifyRunProof(proofOf(records, 9), trusted);
    expect(v).toEqual({
      ok: true,
      runRecords: 7,
      covered: 5,
      from: 2,
      to: 9,
      checkpoint: expect.objectContaining({ seq: 9, keyId: signer.keyId }),
      uncovered: [10, 11],
    });
  });

  test('one changed byte in any record of the segment, even another run’s, breaks the chain there', () => {
    const proof = proofOf(records, 9);
    const changed = proof.records.map((r) => (r.seq === 6 ? { ...r, data: { ...r.data, commandId: 'c6x' } } : r));
    expect(verifyRunProof({ ...proof, records: changed }, trusted)).toMatchObject({
      ok: false,
      check: 'chain',
      seq: 6,
    });
  });

  test('a record left out of the segment is found', () => {
    const proof = proofOf(records, 9);
    const missing = proof.records.filter((r) => r.seq !== 5);
    expect(verifyRunProof({ ...proof, records: missing }, trusted)).toMatchObject({
      ok: false,
      check: 'chain',
      seq: 6,
    });
  });

  test('a checkpoint signed by an untrusted key, or with a changed field, is refused', () => {
    expect(verifyRunProof(proofOf(records, 9, other), trusted)).toMatchObject({ ok: false, check: 'checkpoint' });
    const proof = proofOf(records, 9);
    const moved = { ...proof.checkpoint!, at: '2026-11-30T11:00:00.000Z' };
    expect(verifyRunProof({ ...proof, checkpoint: moved }, trusted)).toMatchObject({
      ok: false,
      check: 'checkpoint',
      reason: expect.stringContaining('has a signature that does not match'),
    });
  });

  test('a genuine checkpoint of another head does not vouch for this segment', () => {
    const proof = proofOf(records, 9);
    const elsewhere = signer.sign({ seq: 9, hash: 'a'.repeat(64) }, new Date('2026-11-30T10:01:00Z'));
    expect(verifyRunProof({ ...proof, checkpoint: elsewhere }, trusted)).toMatchObject({
      ok: false,
      check: 'checkpoint',
      reason: 'record #9 is not the record the checkpoint signed: its hash differs',
    });
    const short = { ...proof, records: proof.records.filter((r) => r.seq <= 8) };
    expect(verifyRunProof(short, trusted)).toMatchObject({ ok: false, check: 'shape' });
  });

  test('a segment that does not start at a record of the run, and a foreign “later” record, are refused', () => {
    const proof = proofOf(records, 9);
    const fromOther = { ...proof, records: proof.records.filter((r) => r.seq >= 3) };
    expect(verifyRunProof(fromOther, trusted)).toMatchObject({ ok: false, check: 'shape', seq: 3 });
    const foreign = { ...proof, after: [records[11]!] };
    expect(verifyRunProof(foreign, trusted)).toMatchObject({ ok: false, check: 'shape', seq: 12 });
  });

  test('without a checkpoint the links are still checked, and every record is uncovered', () => {
    const v = verifyRunProof(
      { executionId: 'mx-run', records: records.slice(1, 5), checkpoint: null, after: [] },
      trusted,
    );
    expect(v).toMatchObject({ ok: true, checkpoint: null, covered: 0, uncovered: [2, 4, 5] });
  });
});
