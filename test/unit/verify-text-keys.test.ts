/**
 * checkEventText takes a record only when its text has exactly the six hashed fields: a data
 * column that smuggles in keys of its own (`{},"dz":2`) makes canonical JSON with a seventh key.
 * Today the vocabulary refuses such an event too (its envelopes are strict), so this pins the
 * shortcut's own guard with a vocabulary that takes anything: the guard must not lean on it.
 */
import { createHash } from 'node:crypto';
import { describe, expect, test, vi } from 'vitest';
import { checkEventText } from '../../src/store/verify-rows.ts';

vi.mock('../../src/core/audit-event-check.ts', () => ({ fitsAuditVocabulary: () => true }));

const prev = 'a'.repeat(64);
const row = (data: string): unknown[] => {
  const chained = `${prev}\n{"actor":"system","at":"2026-01-01T00:00:00.000Z","data":${data},"eventId":"e-1","executionId":"mx-1","type":"execution.completed"}`;
  return [7, chained, createHash('sha256').update(chained, 'utf8').digest('hex')];
};

describe('checkEventText', () => {
  test('takes a record with the six fields', () => {
    expect(checkEventText(row('{}'), prev, 7, new Map())).toMatchObject({ ok: true, seq: 7 });
  });

  test('leaves a record whose data adds a key of its own to checkRow, whatever the vocabulary says', () => {
    expect(checkEventText(row('{},"dz":2'), prev, 7, new Map())).toBeUndefined();
  });

  test('leaves a record out of place, or linked elsewhere, to checkRow', () => {
    expect(checkEventText(row('{}'), prev, 8, new Map())).toBeUndefined();
    expect(checkEventText(row('{}'), 'b'.repeat(64), 7, new Map())).toBeUndefined();
    expect(checkEventText(row('{}'), prev.slice(1), 7, new Map())).toBeUndefined();
  });

  test('leaves a record that differs from what a checkpoint signed at its seq to checkRow', () => {
    const r = row('{}');
    expect(
      checkEventText(r, prev, 7, new Map([[7, [{ hash: r[2] as string, source: 'database' as const }]]])),
    ).toMatchObject({ ok: true });
    expect(
      checkEventText(r, prev, 7, new Map([[7, [{ hash: 'f'.repeat(64), source: 'database' as const }]]])),
    ).toBeUndefined();
  });
});
