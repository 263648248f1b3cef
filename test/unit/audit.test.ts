import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import {
  END_EVENT_OF,
  GENESIS_HASH,
  assertChainIntact,
  checkpointMessage,
  checkpointProblem,
  checkpointSigner,
  diffSummaries,
  foldExecution,
  instanceEventId,
  readAuditEvent,
  refusalEvent,
  refusalEventId,
  reissuedEventId,
  workflowEventId,
  canonicalJson,
  chainHash,
  parseNewAuditEvent,
  projectExecution,
  verifyChain,
  type AuditEvent,
  type AuditRecord,
  type ExecutionSummary,
  type NewAuditEvent,
} from '../../src/core/audit.ts';

function ev(overrides: Partial<NewAuditEvent> & Pick<NewAuditEvent, 'eventId' | 'type'>): NewAuditEvent {
  return { executionId: 'exec-1', actor: 'mechanic', at: '2025-01-01T00:00:00.000Z', data: {}, ...overrides };
}

function chain(events: readonly NewAuditEvent[]): AuditRecord[] {
  let prevHash = GENESIS_HASH;
  return events.map((event, i) => {
    const hash = chainHash(prevHash, event);
    const record = { ...event, seq: i + 1, prevHash, hash, recordedAt: '2025-01-01T00:00:01.000Z' };
    prevHash = hash;
    return record;
  });
}

const plan = {
  executionId: 'exec-1',
  runbook: { name: 'restart-nginx', version: 3, digest: 'sha256:rb', description: 'Restart nginx.' },
  requester: 'alice',
  reason: 'INC-42 stuck workers',
  params: { service: 'nginx', graceful: true },
  targets: [{ instanceId: 'i-0123' }, { instanceId: 'i-0456' }],
  roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
  region: 'eu-west-1',
  steps: [{ name: 'restart', script: 'systemctl restart nginx', timeoutSeconds: 60 }],
  onFailure: [],
  approval: { required: 1, expiresAfterSeconds: 3600 },
  budgetSeconds: 900,
  sessionPolicy: '{}',
  createdAt: '2025-01-01T10:00:00Z',
};

const story: NewAuditEvent[] = [
  ev({
    eventId: 'exec-1:requested',
    type: 'execution.requested',
    actor: 'alice',
    at: '2025-01-01T10:00:00Z',
    data: {
      runbook: plan.runbook,
      params: plan.params,
      targets: ['i-0123', 'i-0456'],
      planDigest: 'plan-abc',
      reason: 'INC-42 stuck workers',
      requester: 'alice',
      plan,
    },
  }),
  ev({
    eventId: 'exec-1:approval:bob',
    type: 'approval.granted',
    actor: 'bob',
    at: '2025-01-01T10:05:00Z',
    data: { planDigest: 'plan-abc' },
  }),
  ev({
    eventId: 'exec-1:credentials',
    type: 'credentials.issued',
    at: '2025-01-01T10:05:01Z',
    data: {
      accessKeyId: 'ASIAEXAMPLE',
      expiration: '2025-01-01T11:05:01Z',
      policyDigest: 'd'.repeat(64),
      roleArn: plan.roleArn,
      reason: 'approved',
    },
  }),
  ev({
    eventId: 'exec-1:running',
    type: 'execution.running',
    at: '2025-01-01T10:05:02Z',
    data: { approvedBy: ['bob'] },
  }),
  ev({
    eventId: 'exec-1:step.started:0',
    type: 'step.started',
    at: '2025-01-01T10:05:03Z',
    data: { step: 'restart', index: 0, phase: 'main', commandId: 'cmd-0' },
  }),
  ev({ eventId: 'exec-1:completed', type: 'execution.completed', at: '2025-01-01T10:06:00.250Z' }),
];

/** The story's events checked against the vocabulary, as the store hands them to the projection. */
const typed = (events: readonly NewAuditEvent[]): AuditEvent[] => events.map((e) => parseNewAuditEvent(e));

describe('canonicalJson', () => {
  test('sorts keys at every depth and writes no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: null, y: 'x' }], c: true } })).toBe(
      '{"a":{"c":true,"d":[3,{"y":"x","z":null}]},"b":1}',
    );
  });

  test('is independent of insertion order', () => {
    const one = { type: 'x', data: { b: 2, a: 1 }, at: 't' };
    const two = { at: 't', data: { a: 1, b: 2 }, type: 'x' };
    expect(canonicalJson(one)).toBe(canonicalJson(two));
  });

  test('is stable across a JSON round trip (what the database stores)', () => {
    const value = { n: 0.1, big: 1e21, neg: -5, s: 'line\n"quoted" ü \u2028', arr: [], obj: {} };
    const once = canonicalJson(value);
    expect(canonicalJson(JSON.parse(once))).toBe(once);
  });

  test('sorts keys by code unit, not locale', () => {
    expect(canonicalJson({ b: 1, B: 2, a: 3, _: 4 })).toBe('{"B":2,"_":4,"a":3,"b":1}');
  });

  test('omits undefined object properties, like JSON', () => {
    expect(canonicalJson({ a: undefined, b: 1 })).toBe('{"b":1}');
  });

  test.each([
    ['undefined at top level', undefined],
    ['undefined inside an array', [1, undefined]],
    ['a hole in an array', [1, , 3]],
    ['a function', { f: () => 1 }],
    ['NaN', { n: Number.NaN }],
    ['Infinity', [Number.POSITIVE_INFINITY]],
    ['a bigint', { b: 1n }],
    ['a symbol', { s: Symbol('x') }],
    ['a Date', { d: new Date(0) }],
    ['a class instance', { m: new Map() }],
  ])('rejects %s', (_name, value) => {
    expect(() => canonicalJson(value)).toThrow(/not JSON-safe/);
  });

  test('rejects a cycle', () => {
    const a: Record<string, unknown> = {};
    a.self = a;
    expect(() => canonicalJson(a)).toThrow(/circular/);
  });

  test('accepts the same object twice when it is not a cycle', () => {
    const shared = { x: 1 };
    expect(canonicalJson({ a: shared, b: shared })).toBe('{"a":{"x":1},"b":{"x":1}}');
  });
});

describe('chainHash', () => {
  test('is sha256 hex over prevHash, a newline and the canonical event', async () => {
    const { createHash } = await import('node:crypto');
    const event = story[0]!;
    const expected = createHash('sha256')
      .update(GENESIS_HASH + '\n' + canonicalJson(event))
      .digest('hex');
    expect(chainHash(GENESIS_HASH, event)).toBe(expected);
    expect(expected).toMatch(/^[0-9a-f]{64}$/);
  });

  test('ignores store fields, so a record hashes like its event', () => {
    const [record] = chain([story[0]!]);
    expect(chainHash(GENESIS_HASH, record!)).toBe(record!.hash);
  });

  test('depends on the previous hash', () => {
    expect(chainHash(GENESIS_HASH, story[0]!)).not.toBe(chainHash('f'.repeat(64), story[0]!));
  });
});

describe('parseNewAuditEvent', () => {
  test('refuses unknown fields, bad types and non-ISO times', () => {
    expect(() => parseNewAuditEvent({ ...story[0], extra: 1 })).toThrow(/invalid audit event/);
    expect(() => parseNewAuditEvent({ ...story[0], type: 'execution.exploded' })).toThrow(/invalid audit event/);
    expect(() => parseNewAuditEvent({ ...story[0], at: 'yesterday' })).toThrow(/invalid audit event/);
    expect(() => parseNewAuditEvent({ ...story[0], eventId: '' })).toThrow(/invalid audit event/);
  });

  test('refuses data that would not survive storage', () => {
    // A refusal's data is open to context the server adds; that context must still survive storage.
    const denied = ev({ eventId: 'd', type: 'access.denied', data: { action: 'a', reason: 'r', when: new Date() } });
    expect(() => parseNewAuditEvent(denied)).toThrow(/not JSON-safe/);
  });

  test('drops undefined properties so the stored record equals the returned one', () => {
    const parsed = parseNewAuditEvent(ev({ eventId: 'e', type: 'execution.failed', data: { reason: undefined } }));
    expect(parsed.data).toEqual({});
    expect('reason' in parsed.data).toBe(false);
  });
});

describe('verifyChain', () => {
  test('accepts an intact chain', () => {
    expect(verifyChain(chain(story))).toEqual({ ok: true, count: story.length });
    expect(verifyChain([])).toEqual({ ok: true, count: 0 });
  });

  test('finds altered data at that record', () => {
    const records = chain(story);
    records[2] = { ...records[2]!, data: { ...records[2]!.data, accessKeyId: 'ASIA-other' } };
    expect(verifyChain(records)).toEqual({ ok: false, seq: 3, reason: "hash does not match the record's content" });
  });

  test('finds an altered actor, time or type', () => {
    for (const change of [
      { actor: 'mallory' },
      { at: '2025-01-01T10:05:00.001Z' },
      { type: 'approval.refused' as const },
    ]) {
      const records = chain(story);
      records[1] = { ...records[1]!, ...change };
      expect(verifyChain(records)).toMatchObject({ ok: false, seq: 2 });
    }
  });

  test('finds a rewritten hash at the next record', () => {
    // Recomputing one record's hash after editing it just moves the break to its successor.
    const records = chain(story);
    const edited = { ...records[1]!, actor: 'mallory' };
    records[1] = { ...edited, hash: chainHash(edited.prevHash, edited) };
    expect(verifyChain(records)).toEqual({
      ok: false,
      seq: 3,
      reason: "prevHash does not match the previous record's hash",
    });
  });

  test('finds an altered prevHash', () => {
    const records = chain(story);
    records[3] = { ...records[3]!, prevHash: 'a'.repeat(64) };
    expect(verifyChain(records)).toMatchObject({ ok: false, seq: 4, reason: expect.stringMatching(/prevHash/) });
  });

  test('finds two records swapped', () => {
    const records = chain(story);
    const [third, fourth] = [records[2]!, records[3]!];
    records[2] = { ...fourth, seq: 3 };
    records[3] = { ...third, seq: 4 };
    expect(verifyChain(records)).toMatchObject({ ok: false, seq: 3 });
  });

  test('finds a removed record', () => {
    const records = chain(story);
    records.splice(2, 1);
    expect(verifyChain(records)).toMatchObject({ ok: false, seq: 4 });
  });

  test('checks seq continuity when told where to start', () => {
    const records = chain(story);
    expect(verifyChain(records, GENESIS_HASH, 1)).toEqual({ ok: true, count: 6 });
    expect(verifyChain(records, GENESIS_HASH, 2)).toMatchObject({
      ok: false,
      seq: 1,
      reason: expect.stringMatching(/expected seq 2/),
    });
  });

  test('verifies a later page from its predecessor hash', () => {
    const records = chain(story);
    expect(verifyChain(records.slice(3), records[2]!.hash, 4)).toEqual({ ok: true, count: 3 });
    expect(verifyChain(records.slice(3))).toMatchObject({ ok: false, seq: 4 });
  });

  test('assertChainIntact names the broken seq', () => {
    expect(assertChainIntact({ ok: true, count: 2 })).toEqual({ count: 2 });
    expect(() => assertChainIntact({ ok: false, seq: 7, reason: 'x' })).toThrow(
      expect.objectContaining({ code: 'AUDIT_CHAIN_BROKEN', message: 'audit log chain is broken at seq 7: x' }),
    );
  });
});

describe('projectExecution', () => {
  function replay(events: readonly NewAuditEvent[]): ExecutionSummary | undefined {
    return typed(events).reduce<ExecutionSummary | undefined>((s, e) => projectExecution(s, e), undefined);
  }

  test('a typical story: requested → granted → running → completed', () => {
    expect(replay(story.slice(0, 1))).toEqual({
      id: 'exec-1',
      runbookName: 'restart-nginx',
      runbookVersion: 3,
      operator: 'alice',
      reason: 'INC-42 stuck workers',
      status: 'awaiting_approval',
      planDigest: 'plan-abc',
      params: { service: 'nginx', graceful: true },
      targets: ['i-0123', 'i-0456'],
      approvals: [],
      createdAt: '2025-01-01T10:00:00.000Z',
      updatedAt: '2025-01-01T10:00:00.000Z',
      finishedAt: null,
    });
    expect(replay(story.slice(0, 2))).toMatchObject({ status: 'awaiting_approval', approvals: ['bob'] });
    expect(replay(story.slice(0, 4))).toMatchObject({ status: 'running', updatedAt: '2025-01-01T10:05:02.000Z' });
    expect(replay(story)).toMatchObject({
      status: 'completed',
      approvals: ['bob'],
      finishedAt: '2025-01-01T10:06:00.250Z',
      updatedAt: '2025-01-01T10:06:00.250Z',
    });
  });

  test('events before the request, or without an execution, index nothing', () => {
    const [granted] = typed([story[1]!]);
    expect(projectExecution(undefined, granted!)).toBeUndefined();
    const summary = replay(story.slice(0, 1));
    const [denied] = typed([
      ev({
        eventId: 'd',
        type: 'access.denied',
        executionId: null,
        actor: 'eve',
        data: { action: 'audit:read', reason: 'no' },
      }),
    ]);
    expect(projectExecution(summary, denied!)).toBe(summary);
  });

  test('an approval for another plan does not count, nor does the same approver twice', () => {
    const s = replay([
      ...story.slice(0, 2),
      ev({ eventId: 'x', type: 'approval.granted', actor: 'carol', data: { planDigest: 'plan-other' } }),
      ev({ eventId: 'y', type: 'approval.granted', actor: 'bob', data: { planDigest: 'plan-abc' } }),
    ]);
    expect(s?.approvals).toEqual(['bob']);
  });

  test('a terminal status is final', () => {
    const s = replay([
      story[0]!,
      ev({ eventId: 'r', type: 'execution.rejected', at: '2025-01-01T11:00:00Z', data: { reason: 'no' } }),
      ev({ eventId: 'run', type: 'execution.running', at: '2025-01-01T11:01:00Z', data: { approvedBy: [] } }),
      ev({ eventId: 'c', type: 'execution.completed', at: '2025-01-01T11:02:00Z' }),
      ev({
        eventId: 'g',
        type: 'approval.granted',
        actor: 'bob',
        at: '2025-01-01T11:03:00Z',
        data: { planDigest: 'plan-abc' },
      }),
    ]);
    expect(s).toMatchObject({
      status: 'rejected',
      finishedAt: '2025-01-01T11:00:00.000Z',
      updatedAt: '2025-01-01T11:03:00.000Z',
      approvals: [],
    });
  });

  test.each([
    ['execution.failed', 'failed'],
    ['execution.expired', 'expired'],
    ['execution.cancelled', 'cancelled'],
  ] as const)('%s ends the execution as %s', (type, status) => {
    expect(replay([story[0]!, ev({ eventId: 't', type })])).toMatchObject({ status });
  });

  test('updatedAt never moves backwards', () => {
    const s = replay([story[0]!, { ...story[4]!, eventId: 'old', at: '2024-12-31T00:00:00Z' }]);
    expect(s?.updatedAt).toBe('2025-01-01T10:00:00.000Z');
  });

  test('foldExecution gives what projectExecution gives, in place; projectExecution changes nothing it is given', () => {
    const stories = [
      story,
      [
        ...story.slice(0, 2),
        ev({ eventId: 'x', type: 'approval.granted', actor: 'carol', data: { planDigest: 'plan-other' } }),
        ev({ eventId: 'y', type: 'approval.granted', actor: 'carol', data: { planDigest: 'plan-abc' } }),
        { ...story[0]!, eventId: 'twice', at: '2025-01-01T12:00:00Z' },
        ...story.slice(2),
      ],
      [
        story[0]!,
        ev({ eventId: 'r', type: 'execution.rejected', at: '2025-01-01T11:00:00Z', data: { reason: 'no' } }),
        ev({ eventId: 'run', type: 'execution.running', at: '2025-01-01T11:01:00Z', data: { approvedBy: [] } }),
        ev({ eventId: 'g', type: 'approval.granted', actor: 'bob', data: { planDigest: 'plan-abc' } }),
        { ...story[4]!, eventId: 'old', at: '2024-12-31T00:00:00Z' },
      ],
    ];
    for (const events of stories) {
      let projected: ExecutionSummary | undefined;
      let folded: ExecutionSummary | undefined;
      for (const event of typed(events)) {
        const before = structuredClone(projected);
        const next = projectExecution(projected, event);
        expect(projected).toEqual(before);
        if (projected !== undefined) expect(next).not.toBe(projected);
        projected = next;
        folded = foldExecution(folded, event);
        expect(folded).toEqual(projected);
      }
      expect(folded?.approvals).toEqual(events === story ? ['bob'] : events.length === 5 ? [] : ['bob', 'carol']);
    }
  });

  test('diffSummaries names each field that differs from the log', () => {
    const fromLog = replay(story)!;
    expect(diffSummaries(fromLog, fromLog)).toEqual([]);
    expect(diffSummaries({ ...fromLog, status: 'failed', approvals: [] }, fromLog)).toEqual([
      'status is "failed", the log says "completed"',
      'approvals is [], the log says ["bob"]',
    ]);
  });
});

describe('the audit vocabulary', () => {
  test('refuses a request without what the index needs, naming the event and the field', () => {
    expect(() => parseNewAuditEvent(ev({ eventId: 'bad', type: 'execution.requested', data: { params: {} } }))).toThrow(
      /invalid audit event: execution.requested bad does not fit its schema:[\s\S]*planDigest/,
    );
  });

  test("refuses a typo in the data of mechanic's own events", () => {
    expect(() => parseNewAuditEvent({ ...story[4]!, data: { ...story[4]!.data, comandId: 'cmd-0' } })).toThrow(
      /step.started exec-1:step.started:0 does not fit its schema/,
    );
    expect(() => parseNewAuditEvent({ ...story[1]!, data: {} })).toThrow(/planDigest/);
    // A writer bug, typed so that an activity does not retry it forever.
    expect(() => parseNewAuditEvent({ ...story[1]!, data: {} })).toThrow(
      expect.objectContaining({ code: 'AUDIT_EVENT_INVALID' }),
    );
  });

  test('refuses an execution event without an execution, but not a refusal', () => {
    expect(() => parseNewAuditEvent({ ...story[1]!, executionId: null })).toThrow(/executionId/);
    const refusal = refusalEvent('access.denied', {
      executionId: null,
      actor: 'eve',
      at: '2025-01-01T10:00:00Z',
      unique: 'u-1',
      data: { action: 'audit:read', reason: 'eve is not an auditor', path: '/api/audit' },
    });
    expect(parseNewAuditEvent(refusal)).toEqual(refusal);
    expect(refusal.eventId).toBe('none:access.denied:u-1');
  });

  test('names a stored record that does not fit, with its seq', () => {
    const [record] = chain([{ ...story[1]!, data: { planDigest: 7 } }]);
    expect(readAuditEvent(record!)).toEqual({
      ok: false,
      problem: expect.stringMatching(/^record #1: approval.granted exec-1:approval:bob does not fit its schema/),
    });
    expect(readAuditEvent(chain(story)[0]!)).toMatchObject({ ok: true, event: { type: 'execution.requested' } });
  });

  test('validation never changes what is hashed', () => {
    const withExtraPlanField = { ...story[0]!, data: { ...story[0]!.data, plan: { ...plan, future: 'field' } } };
    expect(parseNewAuditEvent(withExtraPlanField)).toEqual(withExtraPlanField);
  });

  test('event ids keep the formats recorded logs and histories hold', () => {
    expect(workflowEventId('mx-1', 7, 'step.started')).toBe('mx-1:0007:step.started');
    expect(instanceEventId('mx-1', 'onFailure', 2, 'i-1')).toBe('mx-1:step.instance:onFailure:2:i-1');
    expect(reissuedEventId('mx-1', 'ASIA1')).toBe('mx-1:credentials.reissued:ASIA1');
    expect(refusalEventId('mx-1', 'approval.refused', 'u')).toBe('mx-1:approval.refused:u');
    expect(END_EVENT_OF.cancelled).toBe('execution.cancelled');
  });
});

describe('checkpoints', () => {
  const { privateKey } = generateKeyPairSync('ed25519');
  const signer = checkpointSigner(privateKey);
  const trusted = new Map([[signer.keyId, signer.publicKey]]);
  const head = { seq: 6, hash: chain(story)[5]!.hash };

  test('a checkpoint verifies with its key, and with nothing else', () => {
    const cp = signer.sign(head, new Date('2025-01-01T10:06:01Z'));
    expect(cp).toMatchObject({ seq: 6, hash: head.hash, at: '2025-01-01T10:06:01.000Z', keyId: signer.keyId });
    expect(checkpointProblem(cp, trusted)).toBeUndefined();
    const other = checkpointSigner(generateKeyPairSync('ed25519').privateKey);
    expect(checkpointProblem(other.sign(head, new Date()), trusted)).toMatch(/not a trusted audit key/);
  });

  test.each([
    ['seq', { seq: 5 }],
    ['hash', { hash: 'a'.repeat(64) }],
    ['time', { at: '2030-01-01T00:00:00.000Z' }],
  ])('a checkpoint whose %s was changed does not verify', (_, change) => {
    const cp = signer.sign(head, new Date('2025-01-01T10:06:01Z'));
    expect(checkpointProblem({ ...cp, ...change }, trusted)).toMatch(/signature that does not match/);
  });

  test('the signed bytes are domain-separated canonical JSON', () => {
    expect(checkpointMessage({ seq: 1, hash: 'h', at: 't', keyId: 'k' }).toString()).toBe(
      'mechanic audit checkpoint v1\n{"at":"t","hash":"h","keyId":"k","seq":1}',
    );
  });

  test('only an Ed25519 private key signs', () => {
    expect(() => checkpointSigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey)).toThrow(/Ed25519/);
  });
});
