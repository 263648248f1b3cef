import { describe, expect, test } from 'vitest';
import { buildSessionPolicy } from '../../src/core/session-policy.ts';
import { countsAsError, fanOutOf, MAX_BATCH, MAX_TARGETS } from '../../src/core/targets.ts';

/** Issue 11 part 1: how a step on more than 50 instances is split, and its rate control spread. */

const ids = (n: number) => Array.from({ length: n }, (_, i) => `i-${i.toString(16).padStart(17, '0')}`);

describe('fanOutOf', () => {
  test('batches of at most 50 ids, in target order, covering every instance once', () => {
    const all = ids(120);
    const fan = fanOutOf(all, {});
    expect(fan.batches.map((b) => b.length)).toEqual([50, 50, 20]);
    expect(fan.batches.flat()).toEqual(all);
    expect(fanOutOf(ids(MAX_TARGETS), {}).batches).toHaveLength(MAX_TARGETS / MAX_BATCH);
  });

  test.each([
    // [targets, maxConcurrency, parallel batches, each batch's MaxConcurrency]
    [120, undefined, 1, 50], // SSM's default for one command (50) holds for the whole step
    [120, '30', 1, 30],
    [120, '10%', 1, 12], // a percentage of the whole step's targets, rounded up
    [120, '100', 2, 50],
    [120, '120', 2, 50],
    [120, '75', 1, 50],
    [10_000, '50%', 20, 50], // at most MAX_PARALLEL_BATCHES in flight
    [10_000, '1', 1, 1],
  ] as const)('%i targets, maxConcurrency %s: %i batches at once of %i each', (n, mc, parallel, per) => {
    const fan = fanOutOf(ids(n), mc === undefined ? {} : { maxConcurrency: mc });
    expect([fan.parallel, fan.perBatchConcurrency]).toEqual([parallel, per]);
  });

  test.each([
    [120, undefined, 0], // SSM's default: stop at the first failure
    [120, '2', 2],
    [120, '10%', 12], // of the whole step, rounded down
    [10_000, '1%', 100],
  ] as const)('%i targets, maxErrors %s: a budget of %i failures for the whole step', (n, me, budget) => {
    expect(fanOutOf(ids(n), me === undefined ? {} : { maxErrors: me }).errorBudget).toBe(budget);
  });

  test('Failed and ExecutionTimedOut count as errors, as SSM counts them; nothing else does', () => {
    expect(['Failed', 'ExecutionTimedOut'].every(countsAsError)).toBe(true);
    expect(
      ['Success', 'Terminated', 'Cancelled', 'DeliveryTimedOut', 'Undeliverable', 'AccessDenied'].some(countsAsError),
    ).toBe(false);
  });
});

describe('the session policy of a run on thousands of instances', () => {
  test('falls back to the runbook’s tag bound, and stays within what STS takes', () => {
    const policy = buildSessionPolicy({
      region: 'us-east-1',
      accountId: '123456789012',
      instanceIds: ids(MAX_TARGETS),
      scope: { tags: { Fleet: 'big' } },
    });
    expect(policy).toContain('"ssm:resourceTag/Fleet":"big"');
    expect(policy).not.toContain(ids(1)[0]);
    expect(policy.length).toBeLessThan(2048);
  });

  test('a list of ids too long to name is refused in one sentence', () => {
    expect(() =>
      buildSessionPolicy({
        region: 'us-east-1',
        accountId: '123456789012',
        instanceIds: ids(MAX_TARGETS),
        scope: { instanceIds: ids(50) },
      }),
    ).toThrow('the session policy for 10000 instances is larger than STS allows; target fewer instances');
  });
});
