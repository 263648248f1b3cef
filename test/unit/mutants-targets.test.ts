/**
 * Targets, for the mutants the target tests left alive (issue 12, mutation round five): the
 * look-ups of a parameter that names only ids, the code and wording of each refusal (one value or
 * several), a count that is not a percentage, and how a step on many instances is cut into batches
 * with its rate control spread over them (fanOutOf and countsAsError had no unit test).
 */
import { describe, expect, test } from 'vitest';
import {
  countsAsError,
  describeSelector,
  fanOutOf,
  lookupsFor,
  rateLimitCount,
  selectTargets,
  type FleetInstance,
} from '../../src/core/targets.ts';

const A = 'i-0aaaaaaaaaaaaaaa1';
const B = 'i-0aaaaaaaaaaaaaaa2';
const fleet: FleetInstance[] = [
  { id: A, name: 'web-1', tags: { Role: 'web' }, online: true },
  { id: B, name: 'web-2', tags: { Role: 'web' }, online: true },
];
const caught = (fn: () => unknown): { code?: string; message: string } => {
  try {
    fn();
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new Error('expected a refusal');
};

describe('lookupsFor', () => {
  test('a parameter naming only instance ids looks up those ids and nothing by name', () => {
    expect(lookupsFor('rb', { fromParameter: 'hosts' }, { hosts: [A, B] })).toStrictEqual({
      wanted: [{ instanceIds: [A, B] }],
      values: [A, B],
    });
  });
  test('an empty value is a targets refusal', () => {
    expect(caught(() => lookupsFor('rb', { fromParameter: 'hosts' }, { hosts: [] })).code).toBe('TARGETS_INVALID');
  });
});

describe('refusals, one or several', () => {
  test('names and ids of a bound are listed with commas', () => {
    expect(describeSelector({ names: ['web-1', 'web-2'] })).toBe('names web-1, web-2');
    expect(describeSelector({ instanceIds: [A, B] })).toBe(`instances ${A}, ${B}`);
  });
  test('a parameter scope without values matches nothing (it names no instance)', () => {
    expect(caught(() => selectTargets('rb', { fromParameter: 'hosts' }, fleet)).message).toBe(
      "no instance matches the targets of rb; check the fleet's tags",
    );
  });
  test('Name tags nobody carries', () => {
    expect(caught(() => selectTargets('rb', { names: ['db-9'] }, fleet)).message).toBe(
      'rb targets the instance named db-9, but no managed instance carries that Name tag; check the names',
    );
    expect(caught(() => selectTargets('rb', { names: ['db-8', 'db-9'] }, fleet)).message).toBe(
      'rb targets the instances named db-8, db-9, but no managed instance carries those Name tags; check the names',
    );
  });
  test('parameter values that name nothing', () => {
    const one = caught(() => selectTargets('rb', { fromParameter: 'hosts' }, fleet, [], { values: ['db-9'] }));
    expect(one).toMatchObject({
      code: 'TARGETS_INVALID',
      message:
        'parameter "hosts" names db-9, which is neither the id nor the Name tag of a managed instance; check the value',
    });
    const two = caught(() => selectTargets('rb', { fromParameter: 'hosts' }, fleet, [], { values: ['db-8', 'db-9'] }));
    expect(two.message).toBe(
      'parameter "hosts" names db-8, db-9, which are neither the id nor the Name tag of a managed instance; check the values',
    );
  });
});

describe('rateLimitCount', () => {
  test('a count is that count, for concurrency and errors alike', () => {
    expect(rateLimitCount('5', 10, 'concurrency')).toBe(5);
    expect(rateLimitCount('3', 10, 'errors')).toBe(3);
    expect(rateLimitCount('0', 10, 'errors')).toBe(0);
  });
});

describe('fanOutOf', () => {
  const ids = (n: number) => Array.from({ length: n }, (_, i) => `i-0${String(i).padStart(16, '0')}`);

  test.each([
    // [targets, maxConcurrency, maxErrors, batch sizes, parallel, per batch, error budget]
    [0, undefined, undefined, [], 1, 1, 0],
    [30, undefined, undefined, [30], 1, 30, 0],
    [120, undefined, undefined, [50, 50, 20], 1, 50, 0],
    [120, '100%', '10%', [50, 50, 20], 2, 50, 12],
    [120, '1%', undefined, [50, 50, 20], 1, 2, 0], // 1.2 instances at once is 2
    [200, '75', '3', [50, 50, 50, 50], 1, 50, 3],
    [200, '10', undefined, [50, 50, 50, 50], 1, 10, 0],
    [300, '120', undefined, [50, 50, 50, 50, 50, 50], 2, 50, 0],
    [2_000, '100%', undefined, Array<number>(40).fill(50), 20, 50, 0],
  ] as const)(
    '%i instances, maxConcurrency %s, maxErrors %s: batches %j, %i at once, %i each, %i errors allowed',
    (n, maxConcurrency, maxErrors, sizes, parallel, perBatch, budget) => {
      const targets = ids(n);
      const f = fanOutOf(targets, {
        ...(maxConcurrency ? { maxConcurrency } : {}),
        ...(maxErrors ? { maxErrors } : {}),
      });
      expect(f.batches.map((b) => b.length)).toEqual(sizes);
      expect(f.batches.flat()).toEqual(targets);
      expect([f.parallel, f.perBatchConcurrency, f.errorBudget]).toEqual([parallel, perBatch, budget]);
    },
  );
});

describe('countsAsError', () => {
  test.each([
    ['Failed', true],
    ['ExecutionTimedOut', true],
    ['Success', false],
    ['Undeliverable', false],
    ['DeliveryTimedOut', false],
    ['', false],
  ])('%j counts toward maxErrors: %s', (details, counts) => {
    expect(countsAsError(details)).toBe(counts);
  });
});
