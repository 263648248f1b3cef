/**
 * `audit verify` checks each record against the vocabulary through predicates compiled from the
 * vocabulary's own zod schemas (src/core/audit-event-check.ts), and rebuilds the index with a fast
 * path for times already normalised (src/core/execution-index.ts). Both are shortcuts that must
 * never accept what the exact path refuses: here every event type, and thousands of variants of
 * each, are judged by both.
 */
import { describe, expect, test } from 'vitest';
import { UNCOMPILED_AUDIT_EVENT_TYPES, fitsAuditVocabulary } from '../../src/core/audit-event-check.ts';
import { AUDIT_EVENT_TYPES, checkAuditEvent, type AuditEventType } from '../../src/core/audit-events.ts';
import { normalizeIsoTime } from '../../src/core/execution-index.ts';
import { runEvents } from '../helpers/web-ui.ts';

const at = '2026-01-01T00:00:00.000Z';
const env = (type: AuditEventType, data: Record<string, unknown>, executionId: string | null = 'mx-1') => ({
  eventId: `mx-1:${type}`,
  executionId,
  type,
  actor: 'alice',
  at,
  data,
});
const stepRef = { step: 'work', index: 0, phase: 'main' };
const run = runEvents({
  id: 'mx-1',
  runbook: 'rb',
  operator: 'alice',
  approvers: ['bob'],
  at,
  targets: ['i-1', 'i-2'],
  end: 'completed',
});
/** At least one well-formed event of every type, with optional fields set. */
const SAMPLES = [
  ...run,
  env('approval.rejected', { planDigest: 'p', comment: 'no', groups: ['ops'], policies: ['p1'] }),
  env('approval.refused', { code: 'SELF_APPROVAL', reason: 'own change', extra: { any: 1 } }, null),
  env('access.denied', {
    action: 'readAudit',
    reason: 'no',
    count: 3,
    since: at,
    until: '2026-01-01T00:01:00.000Z',
  }),
  env('request.refused', { code: 'USAGE', reason: 'bad', method: 'GET' }, null),
  env('step.completed', {
    ...stepRef,
    attempt: 2,
    ok: false,
    cancelled: true,
    error: 'x',
    retrying: true,
    continuedOnError: true,
  }),
  env('step.skipped', { ...stepRef, reason: 'condition false' }),
  env('execution.failed', { reason: 'step failed' }),
  env('execution.expired', {}),
  env('execution.cancelled', { reason: 'stop', policies: ['p'] }),
  env('execution.rejected', { reason: 'no' }),
  env('execution.completed', { failedSteps: ['a'] }),
  env(
    'runbook.published',
    { name: 'rb', version: 2, digest: 'd', source: { kind: 'git', path: 'rb.yaml', commit: 'abc', clean: true } },
    null,
  ),
  env('runbook.reviewed', { name: 'rb', version: 2, digest: 'd', decision: 'approve', comment: 'ok' }, null),
  env('runbook.deprecated', { name: 'rb', version: 1, digest: 'd', reason: 'old' }, null),
  env('policy.reloaded', { file: 'p.cedar', digest: 'd', applied: false, reason: 'parse error' }, null),
];

/** Values put in place of each field, and added as unknown keys. */
const ODD: unknown[] = [
  null,
  '',
  'x',
  'a'.repeat(201),
  0,
  -1,
  1.5,
  2 ** 53,
  true,
  [],
  ['x'],
  {},
  '2026-02-30T00:00:00.000Z',
  '2026-01-01T00:00:00Z',
  'completed',
  'approved',
  'main',
];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every variant of `value` with one change: a field removed, replaced by an odd value, or a key added. */
function* variants(value: Json): Generator<Json> {
  if (Array.isArray(value)) {
    yield [...value, 'extra'];
    for (let i = 0; i < value.length; i++) {
      for (const odd of ODD) yield value.map((v, j) => (j === i ? (odd as Json) : v));
      for (const inner of variants(value[i]!)) yield value.map((v, j) => (j === i ? inner : v));
    }
  } else if (typeof value === 'object' && value !== null) {
    yield { ...value, unknownKey: 'x' };
    const text = JSON.stringify(value);
    yield JSON.parse(text === '{}' ? '{"__proto__":1}' : `{"__proto__":1,${text.slice(1)}`) as Json;
    for (const key of Object.keys(value)) {
      const { [key]: _, ...without } = value;
      yield without;
      for (const odd of ODD) yield { ...value, [key]: odd as Json };
      for (const inner of variants(value[key]!)) yield { ...value, [key]: inner };
    }
  }
}

describe('the compiled vocabulary', () => {
  test('covers every event type, and takes each well-formed sample', () => {
    expect(UNCOMPILED_AUDIT_EVENT_TYPES).toEqual([]);
    expect(new Set(SAMPLES.map((s) => s.type))).toEqual(new Set(AUDIT_EVENT_TYPES));
    for (const sample of SAMPLES) {
      expect(checkAuditEvent(sample)).toMatchObject({ ok: true });
      expect({ type: sample.type, fits: fitsAuditVocabulary(sample) }).toEqual({ type: sample.type, fits: true });
    }
  });

  test('never takes an event its schema refuses, over thousands of one-change variants', () => {
    let judged = 0;
    let refused = 0;
    const laxer: string[] = [];
    const stricter: string[] = [];
    for (const sample of SAMPLES) {
      // JSON round trip: the walk judges what JSON.parse made of a stored row.
      for (const variant of variants(JSON.parse(JSON.stringify(sample)) as Json)) {
        const fits = fitsAuditVocabulary(variant);
        const ok = checkAuditEvent(variant).ok;
        judged++;
        if (!ok) refused++;
        if (fits && !ok) laxer.push(JSON.stringify(variant));
        if (!fits && ok) stricter.push(JSON.stringify(variant));
      }
    }
    expect(judged).toBeGreaterThan(5000);
    expect(refused).toBeGreaterThan(2000);
    expect(laxer).toEqual([]);
    // Stricter only where it says so: an undeclared __proto__ key, which zod skips in loose objects.
    for (const s of stricter) expect(s).toContain('"__proto__"');
  });

  test('anything that is not an event of a known type is left to the schema', () => {
    for (const odd of [null, undefined, 1, 'x', [], {}, { type: 'no.such.type' }, { type: '__proto__' }]) {
      expect(fitsAuditVocabulary(odd)).toBe(false);
    }
  });
});

describe('normalizeIsoTime', () => {
  const exact = (s: string) => {
    const ms = Date.parse(s);
    return Number.isNaN(ms) ? 'refused' : new Date(ms).toISOString();
  };
  const fast = (s: string) => {
    try {
      return normalizeIsoTime(s);
    } catch {
      return 'refused';
    }
  };
  test('answers exactly as the round trip through Date, for every field in and out of range', () => {
    const pad = (n: number, w: number) => String(n).padStart(w, '0');
    const cases: string[] = [
      '2026-01-01T00:00:00Z',
      '2026-01-01T00:00:00.5Z',
      '+002026-01-01T00:00:00.000Z',
      '2026-01-01T00:00:00.000+01:00',
      '2026-0a-01T00:00:00.000Z',
      '2026-01-01 00:00:00.000Z',
      'not a time',
    ];
    for (const y of [0, 1, 1900, 1970, 2000, 2024, 2100, 2400, 9999])
      for (let m = 0; m <= 13; m++)
        for (let d = 0; d <= 32; d++)
          for (const [h, mi, s] of [
            [0, 0, 0],
            [23, 59, 59],
            [24, 0, 0],
            [12, 60, 0],
            [12, 0, 60],
          ] as const)
            cases.push(
              `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}T${pad(h, 2)}:${pad(mi, 2)}:${pad(s, 2)}.${pad(d * 7, 3)}Z`,
            );
    const differ = cases.filter((c) => fast(c) !== exact(c));
    expect(differ).toEqual([]);
    // The fast path is taken: a February 29th of a leap year comes back as it was.
    expect(fast('2024-02-29T23:59:59.999Z')).toBe('2024-02-29T23:59:59.999Z');
    expect(fast('2025-02-29T00:00:00.000Z')).toBe('2025-03-01T00:00:00.000Z');
  });
});
