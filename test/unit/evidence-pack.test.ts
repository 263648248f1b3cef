import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chainHash } from '../../src/core/audit-chain.ts';
import { auditEvent, requestedEvent } from '../../src/core/audit-events.ts';
import { checkpointSigner, keyIdOf } from '../../src/core/audit-checkpoint.ts';
import {
  serializeEvidencePack,
  verifyEvidencePack,
  type EvidencePack,
  type PackVerdict,
} from '../../src/core/evidence-pack.ts';
import { buildPlan } from '../../src/core/plan.ts';
import { digestOf } from '../../src/core/canonical.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { signingWith } from '../../src/store/checkpoints.ts';
import { openDatabase } from '../../src/store/db.ts';
import { createEvidenceSource } from '../../src/store/evidence.ts';
import { createRunbookStore, parseRunbookText } from '../../src/store/runbook-registry.ts';
import type { Database } from '../../src/store/schema.ts';

/**
 * The evidence pack over a real SQLite audit log with signed checkpoints and a real registry: a run
 * recorded between other runs' records, packed, verified; then each part changed by one byte, which
 * verification must name. (The same on a real run of the embedded stack: test/integration/evidence-pack.test.ts.)
 */

const YAML = `name: pack-demo
version: 2
description: Something to pack.
roleArn: arn:aws:iam::123456789012:role/mechanic-runner
targets:
  tags: { Role: web }
steps:
  - name: hello
    timeoutSeconds: 30
    script: echo hello
`;
const RUN = 'mx-packdemo01';
const parseRunbookYaml = (yaml: string) => parseRunbookText(yaml, 'runbook.yaml').runbook;

describe('evidence pack', () => {
  let dir: string;
  let audit: AuditStore;
  let db: Kysely<Database>;
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  let pack: EvidencePack;
  let text: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mechanic-pack-'));
    const loc = { kind: 'sqlite' as const, file: path.join(dir, 'audit.db') };
    audit = await openAuditStore(loc, { signing: signingWith(checkpointSigner(privateKey), undefined) });
    db = await openDatabase(loc);
    const registry = createRunbookStore(db, { audit });
    const [published] = await registry.publish('carol', [{ path: 'pack-demo.yaml', text: YAML }]);
    const { plan, planDigest } = buildPlan({
      executionId: RUN,
      runbook: parseRunbookYaml(YAML),
      runbookDigest: published!.digest,
      rawParams: {},
      targets: [{ instanceId: 'i-0d3f1ee7000000001', name: 'web-1' }],
      requester: 'alice',
      reason: 'pack test',
      region: 'us-east-1',
      now: new Date('2026-11-01T00:00:00Z'),
    });
    const at = '2026-11-01T00:00:01.000Z';
    const other = (n: number) =>
      auditEvent('access.denied', {
        eventId: `none:access.denied:${n}`,
        executionId: null,
        actor: 'mallory',
        at,
        data: { action: 'readAudit', reason: 'mallory may not read the audit log' },
      });
    await audit.append(requestedEvent({ plan, planDigest }));
    await audit.append(other(1));
    await audit.append(
      auditEvent('approval.granted', {
        eventId: `${RUN}:vote:bob`,
        executionId: RUN,
        actor: 'bob',
        at,
        data: { planDigest, comment: 'looks right', groups: ['approver'] },
      }),
    );
    await audit.append(other(2));
    await audit.append(
      auditEvent('execution.running', {
        eventId: `${RUN}:running`,
        executionId: RUN,
        actor: 'mechanic',
        at,
        data: { approvedBy: ['bob'] },
      }),
    );
    await audit.append(
      auditEvent('execution.completed', {
        eventId: `${RUN}:completed`,
        executionId: RUN,
        actor: 'mechanic',
        at,
        data: {},
      }),
    );
    await audit.append(other(3)); // after the end's checkpoint: not in the pack
    pack = await createEvidenceSource(db, { audit, keys: new Map([[keyIdOf(publicKey), publicKey]]) }).pack(
      RUN,
      'dave',
    );
    text = serializeEvidencePack(pack);
  });
  afterAll(async () => {
    await db?.destroy();
    await audit?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const verify = (p: unknown, key = publicKey): PackVerdict =>
    verifyEvidencePack(p, { parseRunbookYaml, ...(key ? { publicKey: key } : {}) });
  /** A copy of the pack, changed by `edit`. */
  const changed = (edit: (p: EvidencePack) => void): EvidencePack => {
    const p = JSON.parse(text) as EvidencePack;
    edit(p);
    return p;
  };
  /** One character of a string replaced by another of the same kind (one byte, for ASCII). */
  const flip = (s: string, at = s.length - 2): string => {
    const c = s[at]!;
    const next = /[0-9a-f]/.test(c) ? (c === '0' ? '1' : '0') : c === 'a' ? 'b' : 'a';
    return s.slice(0, at) + next + s.slice(at + 1);
  };
  const problem = (v: PackVerdict) => (v.ok ? 'OK' : v.problem);

  test('a pack of a recorded run verifies, with what it proves in the summary', () => {
    const verdict = verify(JSON.parse(text));
    expect(verdict).toMatchObject({
      ok: true,
      summary: {
        executionId: RUN,
        runbook: { name: 'pack-demo', version: 2 },
        status: 'completed',
        events: 4,
        votes: { approvals: 1, rejections: 0, forOtherPlans: 0 },
        keySource: 'given',
      },
    });
    // The segment runs from the request to the checkpoint of the run's end, other records included.
    expect(pack.proof.records.map((r) => r.actor)).toEqual(['mallory', 'mallory']);
    expect(pack.checkpoint.seq).toBe(pack.events.at(-1)!.seq);
    expect(pack.runbook.yaml).toBe(YAML);
    expect(pack.votes).toEqual([
      expect.objectContaining({
        decision: 'approve',
        voter: 'bob',
        comment: 'looks right',
        planDigest: pack.events[0]!.data['planDigest'],
      }),
    ]);
    // Canonical: keys sorted, no whitespace, one line.
    expect(text.trimEnd()).not.toMatch(/\n|": /);
  });

  test('without --key the pack verifies against its own key, and says so', () => {
    expect(verifyEvidencePack(JSON.parse(text), { parseRunbookYaml })).toMatchObject({
      ok: true,
      summary: { keySource: 'pack' },
    });
  });

  test.each<[string, (p: EvidencePack) => void, RegExp]>([
    [
      "an event's data",
      (p) => (p.events[1]!.data['comment'] = 'looks wrong'),
      /^event #\d+ \(approval\.granted\): hash does not match the record's content/,
    ],
    [
      "an event's actor",
      (p) => (p.events[1]!.actor = 'eve'),
      /^event #\d+ \(approval\.granted\): hash does not match the record's content/,
    ],
    [
      "an event's hash",
      (p) => (p.events[1]!.hash = flip(p.events[1]!.hash)),
      /^event #\d+ \(approval\.granted\): hash does not match the record's content/,
    ],
    [
      "a proof record's data",
      (p) => (p.proof.records[0]!.data['reason'] = 'x'),
      /^record #\d+ of the proof: hash does not match the record's content/,
    ],
    [
      'a removed event',
      (p) => p.events.splice(1, 1),
      /^record #\d+ is missing from the pack: the chain cannot be followed/,
    ],
    ['a removed request', (p) => p.events.splice(0, 1), /^proof\.from is #\d+, but the run's first event is #\d+/],
    [
      'the last record removed',
      (p) => p.events.pop(),
      /^the checkpoint covers #\d+, but the proof's records end at #\d+/,
    ],
    [
      'an event hidden among the proof',
      (p) => p.proof.records.push(p.events.splice(1, 1)[0]!),
      /is an event of mx-packdemo01, but it is missing from the events/,
    ],
    ["the checkpoint's seq", (p) => (p.checkpoint.seq -= 1), /^proof\.to is #\d+, but the checkpoint covers #\d+/],
    [
      "the checkpoint's seq and proof.to together",
      (p) => {
        p.checkpoint.seq -= 1;
        p.proof.to -= 1;
      },
      /^the checkpoint of #\d+ has a signature that does not match/,
    ],
    [
      "the checkpoint's hash",
      (p) => (p.checkpoint.hash = flip(p.checkpoint.hash)),
      /^the checkpoint of #\d+ has a signature that does not match/,
    ],
    [
      "the checkpoint's time",
      (p) => (p.checkpoint.at = p.checkpoint.at.replace(/\d(?=\.\d{3}Z$)/, (d) => String((Number(d) + 1) % 10))),
      /has a signature that does not match/,
    ],
    [
      'the signature',
      (p) => (p.checkpoint.signature = flip(p.checkpoint.signature, 5)),
      /^the checkpoint of #\d+ has a signature that does not match/,
    ],
    [
      'the runbook YAML',
      (p) => (p.runbook.yaml = p.runbook.yaml.replace('echo hello', 'echo hellp')),
      /^runbook\.yaml does not read as the runbook version/,
    ],
    [
      'the runbook YAML made invalid',
      (p) => (p.runbook.yaml = p.runbook.yaml.replace('steps:', 'stepz:')),
      /^runbook\.yaml is not a valid runbook/,
    ],
    [
      'the runbook definition',
      (p) => ((p.runbook.definition['description'] as string) += '!'),
      /^runbook\.definition does not match runbook\.digest/,
    ],
    [
      'the runbook digest',
      (p) => (p.runbook.digest = flip(p.runbook.digest)),
      /^runbook\.definition does not match runbook\.digest/,
    ],
    ['a vote', (p) => (p.votes[0]!.voter = 'eve'), /^votes\[0\] does not match the vote recorded in event #\d+/],
    ['a vote left out', (p) => p.votes.pop(), /^votes lists 0 votes, but the run's events record 1/],
    ['the key id', (p) => (p.key.keyId = flip(p.key.keyId)), /^key\.keyId \w+ is not the id of key\.publicKey/],
    [
      'the format version',
      (p) => ((p as { version: number }).version = 2),
      /format version 2, which this mechanic does not read/,
    ],
    ['a field removed', (p) => delete (p as Partial<EvidencePack>).checkpoint, /^the pack is malformed at checkpoint/],
  ])('one change to %s fails, naming it', (_what, edit, expected) => {
    expect(problem(verify(changed(edit)))).toMatch(expected);
  });

  test('a pack whose events were re-hashed after an edit fails at the checkpoint', () => {
    // A forger who recomputes every hash after changing a vote still cannot match the signed head.
    const p = changed((q) => (q.events[1]!.data['comment'] = 'forged'));
    const all = [...p.events, ...p.proof.records].sort((a, b) => a.seq - b.seq);
    let prev = all[0]!.prevHash;
    for (const r of all) {
      r.prevHash = prev;
      r.hash = chainHashOf(r);
      prev = r.hash;
    }
    p.votes[0]!.comment = 'forged';
    expect(problem(verify(p))).toMatch(/is not the record the checkpoint signed/);
  });

  /** What a holder of the signing key could forge: every hash recomputed and the checkpoint signed again. */
  const resigned = (p: EvidencePack): EvidencePack => {
    const all = [...p.events, ...p.proof.records].sort((a, b) => a.seq - b.seq);
    let prev = all[0]!.prevHash;
    for (const r of all) {
      r.prevHash = prev;
      r.hash = chainHashOf(r);
      prev = r.hash;
    }
    p.checkpoint = checkpointSigner(privateKey).sign({ seq: p.checkpoint.seq, hash: prev }, new Date(p.checkpoint.at));
    return p;
  };

  test('a pack that starts after the request fails, though its chain still links to the checkpoint', () => {
    const p = changed((q) => {
      q.events.shift();
      q.proof.records = q.proof.records.filter((r) => r.seq > q.events[0]!.seq);
      q.proof.from = q.events[0]!.seq;
    });
    expect(problem(verify(p))).toMatch(
      /^the run's first event #\d+ is approval\.granted, not its request: events before it are missing/,
    );
  });

  test('even signed again, a plan that is not the one its digest names fails', () => {
    const p = resigned(changed((q) => ((q.events[0]!.data['plan'] as { reason: string }).reason = 'another reason')));
    expect(problem(verify(p))).toMatch(/^the plan in event #\d+ does not match its planDigest/);
  });

  test('a runbook version other than the one the plan pinned fails, though it is a valid published version', () => {
    const other = YAML.replace('version: 2', 'version: 3').replace('echo hello', 'echo goodbye');
    const definition = parseRunbookYaml(other) as unknown as Record<string, unknown>;
    const p = changed(
      (q) => (q.runbook = { ...q.runbook, version: 3, yaml: other, definition, digest: digestOf(definition) }),
    );
    expect(problem(verify(p))).toMatch(/^the runbook in the pack \(digest \w+\) is not the version the plan pinned/);
  });

  test("a pack signed by another key fails against the auditor's key", () => {
    const other = generateKeyPairSync('ed25519').publicKey;
    expect(problem(verify(JSON.parse(text), other))).toMatch(
      /^the checkpoint is signed by key \w+, not by the key you gave/,
    );
  });

  test('a run that is not in the log, and a run still going, are answered', async () => {
    const source = createEvidenceSource(db, { audit, keys: new Map([[keyIdOf(publicKey), publicKey]]) });
    await expect(source.pack('mx-nosuchrun', 'dave')).rejects.toMatchObject({ code: 'EXECUTION_NOT_FOUND' });
    // A pack too large for memory is refused with one sentence.
    await expect(
      createEvidenceSource(db, { audit, keys: new Map([[keyIdOf(publicKey), publicKey]]), maxRecords: 2 }).pack(
        RUN,
        'dave',
      ),
    ).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringMatching(/spans \d+ records .* mechanic audit export/),
    });
  });
});

function chainHashOf(r: EvidencePack['events'][number]): string {
  return chainHash(r.prevHash, { ...r, type: r.type as 'execution.requested' });
}
