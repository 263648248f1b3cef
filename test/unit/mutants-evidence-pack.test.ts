/**
 * The evidence pack's checks, each on a pack built in memory (issue 12, mutation round four):
 * the votes read from the events, the path of a malformed field, records doubled or left out,
 * keys that are no Ed25519 PEM, events of another run or out of order, a second request, a
 * runbook of another name or version, and what the summary counts. The pack over a real store
 * is test/unit/evidence-pack.test.ts.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { GENESIS_HASH, chainHash } from '../../src/core/audit-chain.ts';
import { checkpointSigner, keyIdOf } from '../../src/core/audit-checkpoint.ts';
import { auditEvent, requestedEvent, type NewAuditEvent } from '../../src/core/audit-events.ts';
import { digestOf } from '../../src/core/canonical.ts';
import {
  buildEvidencePack,
  verifyEvidencePack,
  votesOf,
  type EvidencePack,
  type PackRecord,
} from '../../src/core/evidence-pack.ts';
import { buildPlan } from '../../src/core/plan.ts';
import { parseRunbook } from '../../src/core/runbook.ts';

const RUN = 'mx-mutants01';
const AT = '2026-11-01T00:00:01.000Z';
const DEFINITION = {
  name: 'pack-demo',
  version: 2,
  description: 'Something to pack.',
  roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
  targets: { tags: { Role: 'web' } },
  steps: [{ name: 'hello', timeoutSeconds: 30, script: 'echo hello' }],
};

/** A run recorded among other records, packed and signed; `extra` events are appended to the run. */
function fixture(extra: (planDigest: string, request: NewAuditEvent) => NewAuditEvent[] = () => []) {
  const runbook = parseRunbook(DEFINITION);
  const digest = digestOf(runbook);
  const { plan, planDigest } = buildPlan({
    executionId: RUN,
    runbook,
    runbookDigest: digest,
    rawParams: {},
    targets: [{ instanceId: 'i-0d3f1ee7000000001', name: 'web-1' }],
    requester: 'alice',
    reason: 'pack test',
    region: 'us-east-1',
    now: new Date('2026-11-01T00:00:00Z'),
  });
  const other = (n: number) =>
    auditEvent('access.denied', {
      eventId: `none:access.denied:${n}`,
      executionId: null,
      actor: 'mallory',
      at: AT,
      data: { action: 'readAudit', reason: 'mallory may not read the audit log' },
    });
  const request = requestedEvent({ plan, planDigest });
  const events: NewAuditEvent[] = [
    ...Array.from({ length: 10 }, (_, i) => other(i)),
    request,
    other(10),
    ...extra(planDigest, request),
  ];
  let prev = GENESIS_HASH;
  const segment: PackRecord[] = events.map((e, i) => {
    const hash = chainHash(prev, e);
    const r = { ...e, seq: i + 1, prevHash: prev, hash, recordedAt: AT };
    prev = hash;
    return r;
  });
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const signer = checkpointSigner(privateKey);
  const run = segment.slice(10);
  const last = run.at(-1)!;
  const pack = buildEvidencePack({
    executionId: RUN,
    createdAt: AT,
    createdBy: 'dave',
    runbook: { name: 'pack-demo', version: 2, digest, yaml: 'the yaml', definition: runbook },
    segment: run,
    checkpoint: signer.sign({ seq: last.seq, hash: last.hash }, new Date(AT)),
    publicKey,
  });
  const options = { publicKey, parseRunbookYaml: () => runbook };
  /** Re-signs a changed pack's head so only the change under test is wrong. */
  const resign = (p: EvidencePack): EvidencePack => {
    const head = [...p.events, ...p.proof.records].sort((a, b) => a.seq - b.seq).at(-1)!;
    return { ...p, checkpoint: signer.sign({ seq: head.seq, hash: head.hash }, new Date(AT)) };
  };
  return { pack, planDigest, options, resign, publicKey };
}

const problemOf = (v: ReturnType<typeof verifyEvidencePack>) => (v.ok ? 'OK' : v.problem);
const copy = (p: EvidencePack): EvidencePack => JSON.parse(JSON.stringify(p)) as EvidencePack;

function vote(
  type: 'approval.granted' | 'approval.rejected',
  actor: string,
  data: Record<string, unknown>,
): NewAuditEvent {
  return auditEvent(type, { eventId: `${RUN}:vote:${actor}`, executionId: RUN, actor, at: AT, data } as never);
}

describe('votesOf', () => {
  test('reads approvals and rejections in order, with comment and groups only when recorded', () => {
    const { pack, planDigest } = fixture((d) => [
      vote('approval.rejected', 'carol', { planDigest: d, comment: 'not now', groups: ['sre'] }),
      vote('approval.granted', 'bob', { planDigest: d }),
    ]);
    expect(votesOf(pack.events)).toEqual([
      { seq: 13, decision: 'reject', voter: 'carol', at: AT, planDigest, comment: 'not now', groups: ['sre'] },
      { seq: 14, decision: 'approve', voter: 'bob', at: AT, planDigest },
    ]);
  });
});

describe('verifyEvidencePack names what is wrong', () => {
  test('a malformed field is named by its path; a pack that is no object, as the pack', () => {
    const { pack, options } = fixture();
    const p = copy(pack);
    (p.events[0] as { seq: number }).seq = -1;
    expect(problemOf(verifyEvidencePack(p, options))).toMatch(/^the pack is malformed at events\[0\]\.seq: /);
    expect(problemOf(verifyEvidencePack('a pack', options))).toMatch(/^the pack is malformed at the pack: /);
  });

  test('a record doubled, and several records left out, are named', () => {
    const { pack, options, resign } = fixture();
    const twice = copy(pack);
    twice.proof.records.push(copy(pack).events[0]!);
    twice.proof.records.at(-1)!.executionId = null;
    expect(problemOf(verifyEvidencePack(resign(twice), options))).toMatch(/^record #11 /);
    const {
      pack: longer,
      options: o2,
      resign: r2,
    } = fixture((d) => [
      vote('approval.granted', 'bob', { planDigest: d }),
      auditEvent('access.denied', {
        eventId: 'none:x',
        executionId: null,
        actor: 'mallory',
        at: AT,
        data: { action: 'readAudit', reason: 'no' },
      }),
      auditEvent('access.denied', {
        eventId: 'none:y',
        executionId: null,
        actor: 'mallory',
        at: AT,
        data: { action: 'readAudit', reason: 'no' },
      }),
      vote('approval.granted', 'erin', { planDigest: d }),
    ]);
    const gap = copy(longer);
    gap.proof.records = gap.proof.records.filter((r) => r.seq < 14);
    expect(problemOf(verifyEvidencePack(r2(gap), o2))).toBe(
      'records #14–#15 are missing from the pack: the chain cannot be followed from #13 to #16',
    );
  });

  test('a key that is no PEM, or not Ed25519, is refused', () => {
    const { pack, options } = fixture();
    const notPem = copy(pack);
    notPem.key.publicKey = 'not a key';
    expect(problemOf(verifyEvidencePack(notPem, options))).toBe('key.publicKey is not a PEM public key');
    const rsa = copy(pack);
    rsa.key.publicKey = generateKeyPairSync('rsa', { modulusLength: 1024 })
      .publicKey.export({ type: 'spki', format: 'pem' })
      .toString();
    expect(problemOf(verifyEvidencePack(rsa, options))).toBe('key.publicKey is not an Ed25519 key');
  });

  test("without the auditor's key, a checkpoint naming another key than the pack's is refused naming both", () => {
    const { pack } = fixture();
    const { publicKey: otherKey } = fixture();
    const p = copy(pack);
    p.key.publicKey = otherKey.export({ type: 'spki', format: 'pem' }).toString();
    p.key.keyId = keyIdOf(otherKey);
    expect(problemOf(verifyEvidencePack(p, { parseRunbookYaml: () => ({}) }))).toBe(
      `the checkpoint names key ${pack.checkpoint.keyId}, but the pack's key is ${keyIdOf(otherKey)}`,
    );
  });

  test('an event of another run, or of no run, among the events is named', () => {
    const { pack, options, resign } = fixture((d) => [vote('approval.granted', 'bob', { planDigest: d })]);
    const p = copy(pack);
    p.events[1]!.executionId = null;
    expect(problemOf(verifyEvidencePack(resign(p), options))).toBe(
      `events[1] (record #13) belongs to no execution, not to ${RUN}`,
    );
    p.events[1]!.executionId = 'mx-other';
    expect(problemOf(verifyEvidencePack(resign(p), options))).toBe(
      `events[1] (record #13) belongs to mx-other, not to ${RUN}`,
    );
  });

  test('events out of order, or the same record twice among them, are named', () => {
    const { pack, options } = fixture((d) => [
      vote('approval.granted', 'bob', { planDigest: d }),
      vote('approval.granted', 'erin', { planDigest: d }),
    ]);
    const swapped = copy(pack);
    swapped.events = [swapped.events[0]!, swapped.events[2]!, swapped.events[1]!];
    expect(problemOf(verifyEvidencePack(swapped, options))).toBe('events[2] (record #13) is out of order');
    const doubled = copy(pack);
    doubled.events = [doubled.events[0]!, doubled.events[1]!, doubled.events[1]!, doubled.events[2]!];
    expect(problemOf(verifyEvidencePack(doubled, options))).toBe('events[2] (record #13) is out of order');
  });

  test('a proof record before proof.from is named', () => {
    const { pack, options } = fixture();
    const p = copy(pack);
    p.proof.records.unshift({ ...p.proof.records[0]!, seq: 5 });
    expect(problemOf(verifyEvidencePack(p, options))).toBe('the proof holds record #5, before proof.from');
  });

  test('a broken link past record #9 is named as the event, with the chain’s reason', () => {
    const { pack, options } = fixture((d) => [vote('approval.granted', 'bob', { planDigest: d })]);
    const p = copy(pack);
    p.events[1]!.actor = 'eve';
    expect(problemOf(verifyEvidencePack(p, options))).toMatch(/^event #13 \(approval\.granted\): hash does not match/);
  });

  test('a second request of the run is refused', () => {
    const { pack, options } = fixture((_d, request) => [{ ...request, eventId: `${RUN}:requested:again` }]);
    expect(problemOf(verifyEvidencePack(pack, options))).toBe('event #13 is a second request of the run');
  });

  test('a runbook of another version or name than the run ran is refused, naming both', () => {
    const { pack, options } = fixture();
    for (const [edit, name, version] of [
      [(p: EvidencePack) => (p.runbook.version = 3), 'pack-demo', 3],
      [(p: EvidencePack) => (p.runbook.name = 'other'), 'other', 2],
    ] as const) {
      const p = copy(pack);
      edit(p);
      expect(problemOf(verifyEvidencePack(p, options))).toBe(
        `the runbook in the pack is ${name}@${version}, but the run ran pack-demo@2`,
      );
    }
  });

  test('digests in the sentences are their first 12 characters', () => {
    const { pack, options } = fixture();
    const p = copy(pack);
    p.runbook.definition = { ...p.runbook.definition, description: 'changed' };
    expect(problemOf(verifyEvidencePack(p, options))).toBe(
      `runbook.definition does not match runbook.digest ${pack.runbook.digest.slice(0, 12)}`,
    );
  });
});

describe('the summary', () => {
  test('a run that got its approval and started is running; votes for another plan are counted apart', () => {
    const { pack, options, planDigest } = fixture((d) => [
      vote('approval.granted', 'bob', { planDigest: d }),
      vote('approval.rejected', 'carol', { planDigest: 'an-older-plan' }),
      vote('approval.granted', 'erin', { planDigest: 'an-older-plan' }),
      auditEvent('execution.running', {
        eventId: `${RUN}:running`,
        executionId: RUN,
        actor: 'mechanic',
        at: AT,
        data: { approvedBy: ['bob'] },
      }),
    ]);
    const verdict = verifyEvidencePack(pack, options);
    expect(verdict).toEqual({
      ok: true,
      summary: expect.objectContaining({
        planDigest,
        status: 'running',
        events: 5,
        votes: { approvals: 1, rejections: 0, forOtherPlans: 2 },
        proof: { from: 11, to: 16, records: 6 },
        keySource: 'given',
      }),
    });
  });

  test('a run with its request only awaits approval; a rejection for its plan is counted', () => {
    const { pack, options } = fixture((d) => [vote('approval.rejected', 'carol', { planDigest: d })]);
    expect(verifyEvidencePack(pack, options)).toMatchObject({
      ok: true,
      summary: { status: 'awaiting_approval', votes: { approvals: 0, rejections: 1, forOtherPlans: 0 } },
    });
  });
});
