/**
 * The integrity proof of one run: its records are in the audit chain that a signed checkpoint
 * vouches for. Pure (node:crypto through the chain and checkpoint modules): the store gathers the
 * proof (src/store/run-queries.ts), and the web UI and the evidence pack verify it with this code.
 *
 * Why the proof carries every record from the run's first to the checkpoint, other runs' included:
 * a record's hash is sha256 over the previous hash and the record's whole canonical content, so a
 * verifier can only recompute the link through a record it can read. A proof that left other
 * records out (keeping only their hashes) would let a forger claim any hash for them and so link a
 * forged record to a genuine signed head.
 */
import type { KeyObject } from 'node:crypto';
import { verifyChain, type AuditRecord } from './audit-chain.ts';
import { checkpointProblem, type Checkpoint } from './audit-checkpoint.ts';

export interface RunProof {
  readonly executionId: string;
  /**
   * Contiguous records of the chain, from the run's first record: to the checkpoint's seq when a
   * checkpoint covers any of the run, else to the run's last record.
   */
  readonly records: readonly AuditRecord[];
  /** The oldest signed checkpoint at or after the run's last record; else the newest one at or after its first; else null. */
  readonly checkpoint: Checkpoint | null;
  /** The run's own records after the checkpoint: appended since the newest signature, not covered yet. */
  readonly after: readonly AuditRecord[];
}

export type RunProofVerdict =
  | {
      readonly ok: true;
      /** The run's own records, and how many of them the checkpoint covers. */
      readonly runRecords: number;
      readonly covered: number;
      /** The segment of the chain checked: first and last seq. */
      readonly from: number;
      readonly to: number;
      readonly checkpoint: {
        readonly seq: number;
        readonly hash: string;
        readonly at: string;
        readonly keyId: string;
      } | null;
      /** The run's records no signed checkpoint covers yet (appended since the newest). */
      readonly uncovered: readonly number[];
    }
  | {
      readonly ok: false;
      /** What broke: the hash links, the checkpoint (signature, key, or the head it names), or the proof's shape. */
      readonly check: 'chain' | 'checkpoint' | 'shape';
      readonly seq: number;
      readonly reason: string;
    };

/**
 * Checks a run's proof: the segment's records link (each hash recomputed from its content and the
 * previous hash), the checkpoint's signature verifies with a trusted key, and the checkpoint names
 * exactly the hash of the segment's last record. The run's records after the checkpoint are reported
 * as uncovered, not as a failure: they were appended after the newest signature.
 */
export function verifyRunProof(proof: RunProof, trusted: ReadonlyMap<string, KeyObject>): RunProofVerdict {
  const records = proof.records;
  const first = records[0];
  if (!first) return { ok: false, check: 'shape', seq: 0, reason: `the proof holds no record of ${proof.executionId}` };
  if (first.executionId !== proof.executionId) {
    return {
      ok: false,
      check: 'shape',
      seq: first.seq,
      reason: `the proof starts at record #${first.seq}, which is not a record of ${proof.executionId}`,
    };
  }
  const chain = verifyChain(records, first.prevHash, first.seq);
  if (!chain.ok) return { ok: false, check: 'chain', seq: chain.seq, reason: `record #${chain.seq}: ${chain.reason}` };
  const last = records[records.length - 1]!;
  const own = records.filter((r) => r.executionId === proof.executionId);
  const later = proof.after.filter((r) => r.executionId === proof.executionId && r.seq > last.seq);
  if (later.length !== proof.after.length) {
    const odd = proof.after.find((r) => !later.includes(r))!;
    return {
      ok: false,
      check: 'shape',
      seq: odd.seq,
      reason: `record #${odd.seq} is listed as appended later, but is not a later record of ${proof.executionId}`,
    };
  }
  const cp = proof.checkpoint;
  if (cp === null) {
    return {
      ok: true,
      runRecords: own.length + later.length,
      covered: 0,
      from: first.seq,
      to: last.seq,
      checkpoint: null,
      uncovered: [...own, ...later].map((r) => r.seq),
    };
  }
  const problem = checkpointProblem(cp, trusted);
  if (problem)
    return { ok: false, check: 'checkpoint', seq: cp.seq, reason: `the checkpoint of #${cp.seq} ${problem}` };
  if (last.seq !== cp.seq) {
    return {
      ok: false,
      check: 'shape',
      seq: cp.seq,
      reason: `the checkpoint covers #${cp.seq}, but the proof's records end at #${last.seq}`,
    };
  }
  if (last.hash !== cp.hash) {
    return {
      ok: false,
      check: 'checkpoint',
      seq: cp.seq,
      reason: `record #${cp.seq} is not the record the checkpoint signed: its hash differs`,
    };
  }
  return {
    ok: true,
    runRecords: own.length + later.length,
    covered: own.length,
    from: first.seq,
    to: last.seq,
    checkpoint: { seq: cp.seq, hash: cp.hash, at: cp.at, keyId: cp.keyId },
    uncovered: later.map((r) => r.seq),
  };
}
