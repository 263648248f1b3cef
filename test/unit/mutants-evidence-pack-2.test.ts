/**
 * The evidence pack's survivors of mutation round four (docs/mutation.md), each on a pack built
 * and signed in memory: a vote's optional fields, a pack of an empty segment, one record left
 * out, an event outside the vocabulary, a request whose plan is not the run's or pins another
 * runbook, the digests' 12 characters in each sentence, the summary's checkpoint, a pack that is
 * `null`, and an error of the caller's parser that is no verdict on the pack.
 *
 * The whole run on 56f4ca8 left two alive here. 305:38 (`plan.runbook?.digest` →
 * `plan.runbook.digest`): the vocabulary refuses a request whose plan has no runbook object before
 * the runbook is compared, so the `?.` could never act; it is gone, and the two tests on a plan
 * without a runbook or its digest pin that order. 275:58 (`/^record #\d+: /` → `/record #\d+: /`)
 * is equivalent: a chain failure's reason is always built as `record #<seq>: …`, so the first
 * match, the only one `replace` touches, is at index 0 with or without the anchor.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { GENESIS_HASH, chainHash } from '../../src/core/audit-chain.ts';
import { checkpointSigner } from '../../src/core/audit-checkpoint.ts';
import { auditEvent, readAuditEvent, requestedEvent, type NewAuditEvent } from '../../src/core/audit-events.ts';
import { digestOf } from '../../src/core/canonical.ts';
import {
  buildEvidencePack,
  verifyEvidencePack,
  votesOf,
  type EvidencePack,
  type PackRecord,
} from '../../src/core/evidence-pack.ts';
import { buildPlan, type Plan } from '../../src/core/plan.ts';
import { parseRunbook, type Runbook } from '../../src/core/runbook.ts';

const RUN = 'mx-mutants02';
const AT = '2026-11-02T00:00:01.000Z';
const DEFINITION = {
  name: 'pack-two',
  version: 4,
  description: 'Something else to pack.',
  roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
  targets: { tags: { Role: 'web' } },
  steps: [{ name: 'hello', timeoutSeconds: 30, script: 'echo hello' }],
};
const RUNBOOK: Runbook = parseRunbook(DEFINITION);
const DIGEST = digestOf(RUNBOOK);
const OTHER_RUNBOOK: Runbook = parseRunbook({ ...DEFINITION, description: 'Another text, another digest.' });
const OTHER_DIGEST = digestOf(OTHER_RUNBOOK);
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const signer = checkpointSigner(privateKey);

function planFor(executionId = RUN): Plan {
  return buildPlan({
    executionId,
    runbook: RUNBOOK,
    runbookDigest: DIGEST,
    rawParams: {},
    targets: [{ instanceId: 'i-0d3f1ee7000000001', name: 'web-1' }],
    requester: 'alice',
    reason: 'pack test',
    region: 'us-east-1',
    now: new Date('2026-11-02T00:00:00Z'),
  }).plan;
}

/** The run's request as the workflow writes it, with `data` changed by `edit` (for the run RUN). */
function request(plan: Plan, edit: (data: Record<string, unknown>) => void = () => {}): NewAuditEvent {
  const e = requestedEvent({ plan, planDigest: digestOf(plan) });
  const data = JSON.parse(JSON.stringify(e.data)) as Record<string, unknown>;
  edit(data);
  return { ...e, eventId: `${RUN}:requested`, executionId: RUN, data };
}

const denied = (n: number): NewAuditEvent =>
  auditEvent('access.denied', {
    eventId: `none:access.denied:${n}`,
    executionId: null,
    actor: 'mallory',
    at: AT,
    data: { action: 'readAudit', reason: 'mallory may not read the audit log' },
  });

function vote(type: 'approval.granted' | 'approval.rejected', actor: string, data: object): NewAuditEvent {
  return auditEvent(type, { eventId: `${RUN}:vote:${actor}`, executionId: RUN, actor, at: AT, data } as never);
}

/** Chains `before` and then `run` from the genesis, and packs `run` under a checkpoint on its last record. */
function packOf(
  run: readonly NewAuditEvent[],
  runbook: EvidencePack['runbook'] = {
    name: 'pack-two',
    version: 4,
    digest: DIGEST,
    yaml: 'the yaml',
    definition: RUNBOOK,
  },
): EvidencePack {
  const events = [denied(0), denied(1), ...run];
  let prev = GENESIS_HASH;
  const segment: PackRecord[] = events.map((e, i) => {
    const hash = chainHash(prev, e);
    const r = { ...e, seq: i + 1, prevHash: prev, hash, recordedAt: AT } as PackRecord;
    prev = hash;
    return r;
  });
  const last = segment.at(-1)!;
  return buildEvidencePack({
    executionId: RUN,
    createdAt: AT,
    createdBy: 'dave',
    runbook,
    segment: segment.slice(2),
    checkpoint: signer.sign({ seq: last.seq, hash: last.hash }, new Date(AT)),
    publicKey,
  });
}

const options = { publicKey, parseRunbookYaml: (): unknown => RUNBOOK };
const problemOf = (pack: unknown, opts: Parameters<typeof verifyEvidencePack>[1] = options) => {
  const v = verifyEvidencePack(pack, opts);
  return v.ok ? 'OK' : v.problem;
};

describe('votesOf', () => {
  test('a vote without a comment or groups has no such keys at all (not keys holding undefined)', () => {
    const plan = planFor();
    const votes = votesOf(packOf([request(plan), vote('approval.granted', 'bob', { planDigest: 'p1' })]).events);
    expect(votes).toStrictEqual([{ seq: 4, decision: 'approve', voter: 'bob', at: AT, planDigest: 'p1' }]);
    expect(Object.keys(votes[0]!)).toEqual(['seq', 'decision', 'voter', 'at', 'planDigest']);
  });
});

describe('buildEvidencePack', () => {
  test('a pack of an empty segment starts its proof at the checkpoint', () => {
    const checkpoint = signer.sign({ seq: 7, hash: 'a'.repeat(64) }, new Date(AT));
    const pack = buildEvidencePack({
      executionId: RUN,
      createdAt: AT,
      createdBy: 'dave',
      runbook: { name: 'pack-two', version: 4, digest: DIGEST, yaml: '', definition: RUNBOOK },
      segment: [],
      checkpoint,
      publicKey,
    });
    expect(pack.proof).toEqual({ method: 'segment', from: 7, to: 7, records: [] });
    expect(pack.events).toEqual([]);
    expect(pack.votes).toEqual([]);
  });
});

describe('verifyEvidencePack', () => {
  test('the pack as built verifies, and the summary names the checkpoint it was proven against', () => {
    const pack = packOf([request(planFor())]);
    const verdict = verifyEvidencePack(pack, options);
    expect(verdict).toStrictEqual({
      ok: true,
      summary: {
        executionId: RUN,
        runbook: { name: 'pack-two', version: 4, digest: DIGEST },
        planDigest: digestOf(planFor()),
        status: 'awaiting_approval',
        events: 1,
        votes: { approvals: 0, rejections: 0, forOtherPlans: 0 },
        proof: { from: 3, to: 3, records: 1 },
        checkpoint: { seq: 3, at: AT, keyId: signer.keyId },
        keySource: 'given',
      },
    });
  });

  test('exactly one record left out is named alone', () => {
    const pack = packOf([request(planFor()), denied(2), vote('approval.granted', 'bob', { planDigest: 'p1' })]);
    pack.proof.records = [];
    expect(problemOf(pack)).toBe('record #4 is missing from the pack: the chain cannot be followed from #3 to #5');
  });

  test('an event outside the audit vocabulary is named with what does not fit', () => {
    const odd = vote('approval.granted', 'bob', { planDigest: '' });
    const read = readAuditEvent({ ...odd, seq: 4 });
    expect(read.ok).toBe(false);
    const pack = packOf([request(planFor()), odd]);
    expect(problemOf(pack)).toBe(`event #4 does not fit the audit vocabulary: ${read.ok ? '' : read.problem}`);
  });

  test('a request whose plan does not match its planDigest names the first 12 characters of the digest', () => {
    const wrong = 'f'.repeat(64);
    const pack = packOf([request(planFor(), (d) => (d['planDigest'] = wrong))]);
    expect(problemOf(pack)).toBe(`the plan in event #3 does not match its planDigest ${'f'.repeat(12)}`);
  });

  test('a request carrying the plan of another execution is refused', () => {
    const pack = packOf([request(planFor('mx-another01'))]);
    expect(problemOf(pack)).toBe('the plan in event #3 is for another execution');
  });

  const pinnedAnother = `the runbook in the pack (digest ${OTHER_DIGEST.slice(0, 12)}) is not the version the plan pinned (digest ${DIGEST.slice(0, 12)})`;

  test('a runbook in the pack that is not the digest the request pinned is refused, naming both digests by 12 characters', () => {
    const pack = packOf([request(planFor())], {
      name: 'pack-two',
      version: 4,
      digest: OTHER_DIGEST,
      yaml: 'the yaml',
      definition: OTHER_RUNBOOK,
    });
    expect(problemOf(pack)).toBe(pinnedAnother);
  });

  test("a request whose plan pinned another runbook than the request's own data says is refused", () => {
    // The pack's runbook and the request's data agree; only the plan inside the request differs.
    const plan = planFor();
    const edited = { ...plan, runbook: { ...plan.runbook, digest: OTHER_DIGEST } } as Plan;
    const pack = packOf([request(edited, (d) => (d['runbook'] = plan.runbook))]);
    expect(problemOf(pack)).toBe(
      `the runbook in the pack (digest ${DIGEST.slice(0, 12)}) is not the version the plan pinned (digest ${DIGEST.slice(0, 12)})`,
    );
  });

  test('a signed request whose plan has no runbook is refused by the vocabulary, before the runbook is compared', () => {
    // Only a writer holding the signing key could make one; the verdict is still a sentence, not
    // a TypeError from reading plan.runbook.digest (which relies on this check coming first).
    const { runbook: _pinned, ...bare } = planFor();
    const e = request(planFor(), (d) => {
      d['plan'] = bare;
      d['planDigest'] = digestOf(bare);
    });
    const read = readAuditEvent({ ...e, seq: 3, prevHash: GENESIS_HASH, hash: GENESIS_HASH, recordedAt: AT } as never);
    expect(read.ok).toBe(false);
    expect(problemOf(packOf([e]))).toBe(`event #3 does not fit the audit vocabulary: ${read.ok ? '' : read.problem}`);
  });

  test('a plan whose runbook has no digest is refused as pinning another version', () => {
    const plan = planFor();
    const { digest: _d, ...undigested } = plan.runbook;
    const edited = { ...plan, runbook: undigested } as unknown as Plan;
    const pack = packOf([request(edited, (d) => (d['runbook'] = plan.runbook))]);
    expect(problemOf(pack)).toBe(
      `the runbook in the pack (digest ${DIGEST.slice(0, 12)}) is not the version the plan pinned (digest ${DIGEST.slice(0, 12)})`,
    );
  });

  test('YAML that does not read as the definition names the digest by its first 12 characters', () => {
    const pack = packOf([request(planFor())]);
    expect(problemOf(pack, { publicKey, parseRunbookYaml: () => OTHER_RUNBOOK })).toBe(
      `runbook.yaml does not read as the runbook version with digest ${DIGEST.slice(0, 12)}: the YAML was changed`,
    );
  });

  test('null is a malformed pack, not a crash', () => {
    expect(problemOf(null)).toMatch(/^the pack is malformed at the pack: /);
  });

  test("an error of the caller's own (not a problem found in the pack) is thrown, not reported as the pack's", () => {
    const pack = packOf([request(planFor())]);
    // The parser hands back something no JSON can hold: canonicalJson refuses it with its own error.
    expect(() => verifyEvidencePack(pack, { publicKey, parseRunbookYaml: () => ({ n: Number.NaN }) })).toThrow(/NaN/);
  });
});
