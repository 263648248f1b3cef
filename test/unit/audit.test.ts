import { describe, expect, test } from 'vitest';
import {
  GENESIS_HASH,
  assertChainIntact,
  canonicalJson,
  chainHash,
  parseNewAuditEvent,
  projectExecution,
  verifyChain,
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

const story: NewAuditEvent[] = [
  ev({
    eventId: 'exec-1:requested',
    type: 'execution.requested',
    actor: 'alice',
    at: '2025-01-01T10:00:00Z',
    data: {
      runbook: { name: 'restart-nginx', version: 3, digest: 'sha256:rb' },
      params: { service: 'nginx', graceful: true },
      targets: ['i-0123', 'i-0456'],
      planDigest: 'plan-abc',
      reason: 'INC-42 stuck workers',
      requester: 'alice',
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
    data: { keyId: 'ASIA…' },
  }),
  ev({ eventId: 'exec-1:running', type: 'execution.running', at: '2025-01-01T10:05:02Z' }),
  ev({ eventId: 'exec-1:step.started:0', type: 'step.started', at: '2025-01-01T10:05:03Z', data: { step: 0 } }),
  ev({ eventId: 'exec-1:completed', type: 'execution.completed', at: '2025-01-01T10:06:00.250Z' }),
];

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
    expect(() => parseNewAuditEvent({ ...story[0], data: { when: new Date() } })).toThrow(/not JSON-safe/);
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
    records[2] = { ...records[2]!, data: { keyId: 'ASIA-other' } };
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
    return events.reduce<ExecutionSummary | undefined>((s, e) => projectExecution(s, e), undefined);
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
    expect(projectExecution(undefined, story[1]!)).toBeUndefined();
    const summary = replay(story.slice(0, 1));
    const denied = ev({ eventId: 'd', type: 'access.denied', executionId: null, actor: 'eve' });
    expect(projectExecution(summary, denied)).toBe(summary);
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
      ev({ eventId: 'run', type: 'execution.running', at: '2025-01-01T11:01:00Z' }),
      ev({ eventId: 'c', type: 'execution.completed', at: '2025-01-01T11:02:00Z' }),
      ev({ eventId: 'g', type: 'approval.granted', actor: 'bob', at: '2025-01-01T11:03:00Z' }),
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
    const s = replay([story[0]!, ev({ eventId: 'old', type: 'step.started', at: '2024-12-31T00:00:00Z' })]);
    expect(s?.updatedAt).toBe('2025-01-01T10:00:00.000Z');
  });

  test('a request without what the index needs is a writer bug', () => {
    expect(() =>
      projectExecution(undefined, ev({ eventId: 'bad', type: 'execution.requested', data: { params: {} } })),
    ).toThrow(/execution.requested bad has invalid data/);
  });

  test('the operator falls back to the actor', () => {
    const data = { ...story[0]!.data };
    delete data.requester;
    expect(projectExecution(undefined, { ...story[0]!, data })?.operator).toBe('alice');
  });
});
