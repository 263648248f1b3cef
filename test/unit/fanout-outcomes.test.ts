import { describe, expect, test } from 'vitest';
import type { BatchInstance } from '../../src/activities/ssm.ts';
import { compactOutcomes, fanOutInstances, type FanOutResult } from '../../workflows/fan-out.ts';

/**
 * A fan-out step's result carries every instance's outcome as indexes into its few distinct
 * outcomes (compactOutcomes); the run reads it back, and reads the lists of results recorded
 * before that form, the same way (fanOutInstances).
 */

const ids = ['i-a', 'i-b', 'i-c', 'i-d', 'i-e', 'i-f'];
const at = (instanceId: string, statusDetails: string, responseCode: number, status = statusDetails) =>
  ({ instanceId, status, statusDetails, responseCode }) satisfies BatchInstance;

describe('a fan-out result, packed and read back', () => {
  // i-c's batch could not run (no result); i-e and i-f were never sent. Within a batch, SSM's order.
  const results = [
    at('i-b', 'Success', 0),
    at('i-a', 'Failed', 2),
    at('i-d', 'Success', 0),
    at('i-e', 'Terminated', -1, 'Cancelled'),
    at('i-f', 'Terminated', -1, 'Cancelled'),
  ];

  test('each distinct outcome once, each instance an index in target order, -1 for none', () => {
    expect(compactOutcomes(ids, results, 2)).toEqual({
      kinds: [
        ['Success', 'Success', 0],
        ['Failed', 'Failed', 2],
        ['Cancelled', 'Terminated', -1],
      ],
      of: [1, 0, -1, 0, 2, 2],
      notSent: 2,
    });
  });

  test('reads back every instance with a result, in target order, and the never-sent tail', () => {
    const packed: FanOutResult = { ok: false, commandIds: ['c1'], outcomes: compactOutcomes(ids, results, 2) };
    expect(fanOutInstances(packed, ids)).toEqual({
      instances: [
        at('i-a', 'Failed', 2),
        at('i-b', 'Success', 0),
        at('i-d', 'Success', 0),
        at('i-e', 'Terminated', -1, 'Cancelled'),
        at('i-f', 'Terminated', -1, 'Cancelled'),
      ],
      notSent: 2,
    });
  });

  test('a result recorded before the packed form: its lists, sent then never sent', () => {
    const old: FanOutResult = {
      ok: false,
      commandIds: ['c1'],
      instances: results.slice(0, 3),
      notSent: results.slice(3),
    };
    expect(fanOutInstances(old, ids)).toEqual({ instances: results, notSent: 2 });
    expect(fanOutInstances({ ok: true, commandIds: [], instances: results.slice(0, 1) }, ids)).toEqual({
      instances: results.slice(0, 1),
      notSent: 0,
    });
  });

  test('10,000 successes take about two bytes an instance', () => {
    const many = Array.from({ length: 10_000 }, (_, i) => `i-${String(i).padStart(17, '0')}`);
    const packed = compactOutcomes(
      many,
      many.map((id) => at(id, 'Success', 0)),
      0,
    );
    expect(JSON.stringify(packed).length).toBeLessThan(25_000);
    expect(fanOutInstances({ ok: true, commandIds: [], outcomes: packed }, many).instances).toHaveLength(10_000);
  });
});
