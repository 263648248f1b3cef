/**
 * queuedSeconds (src/core/plan.ts), the waves a rate-limited step runs in, for the survivors of the
 * whole mutation run: the only tests had a concurrency of 1 (where `targets / 1` and `targets * 1`
 * agree) and no retries.
 *
 * Killed: 44:41 `s.skipped !== undefined` → false (a skipped step queues nothing); 44:68
 * `targets === 0` → false (no targets, no waves: not minus one); 45:27 `targets * …` (4 targets,
 * 2 at a time: 2 waves); 45:79 `'concurrency'` → "" (a percentage rounds up to at least one
 * instance at a time, not down to none); 46:10 `/ (1 + retries)` and 46:44 `1 - retries` (each
 * wave after the first may take every attempt).
 *
 * Equivalent, left alive:
 * - 131:73 `runbook.parameters[name]?.type` → `.type`: `name` is a key of that same object, from
 *   Object.keys, and every parameter the schema lets through is an object.
 * - 170:7 `acceptedMinutes !== undefined` → true: without maxCredentialMinutes the bound is
 *   `undefined * 60`, NaN, and `budgetSeconds > NaN` is false: nothing is refused either way.
 */
import { describe, expect, test } from 'vitest';
import { queuedSeconds, type PlannedStep } from '../../src/core/plan.ts';

const step = (over: Partial<PlannedStep> = {}): PlannedStep => ({
  name: 'restart',
  script: 'systemctl restart web',
  timeoutSeconds: 600,
  ...over,
});

describe('queuedSeconds: each wave after the first may take the step again', () => {
  test('4 targets, 2 at a time: two waves, one more timeout', () => {
    expect(queuedSeconds(step({ maxConcurrency: '2' }), 4)).toBe(600);
    expect(queuedSeconds(step({ maxConcurrency: '2' }), 5)).toBe(1200);
  });

  test('a percentage is at least one instance at a time: 25 % of 3 targets runs them one by one', () => {
    expect(queuedSeconds(step({ maxConcurrency: '25%' }), 3)).toBe(1200);
    expect(queuedSeconds(step({ maxConcurrency: '50%' }), 4)).toBe(600);
  });

  test('a retried step: each later wave may take every attempt', () => {
    // 3 targets one at a time, two retries: 2 more waves of 3 attempts of 100 s.
    expect(queuedSeconds(step({ maxConcurrency: '1', timeoutSeconds: 100, retries: 2 }), 3)).toBe(600);
    expect(queuedSeconds(step({ maxConcurrency: '1', timeoutSeconds: 100, retries: 1 }), 2)).toBe(200);
  });

  test('a skipped step, and a step on no target, queue nothing', () => {
    expect(queuedSeconds(step({ maxConcurrency: '1', skipped: 'mode is not "full"' }), 3)).toBe(0);
    expect(queuedSeconds(step({ maxConcurrency: '1' }), 0)).toBe(0);
    expect(queuedSeconds(step({ maxConcurrency: '10%' }), 0)).toBe(0);
  });
});
