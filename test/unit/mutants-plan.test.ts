/**
 * Tests for the mutants Stryker found alive in src/core/plan.ts (docs/mutation.md). Runbooks
 * are parsed inside each test, never when the file loads.
 */
import { describe, expect, test } from 'vitest';
import { buildPlan, type PlanInput } from '../../src/core/plan.ts';
import { parseRunbook } from '../../src/core/runbook.ts';

function caught(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a throw, but nothing was thrown');
}

/** A plan input whose runbook has one step of `timeoutSeconds` and nothing on failure. */
function oneStep(timeoutSeconds: number, reason = 'INC-42: workers stuck'): PlanInput {
  return {
    executionId: 'exec-0001',
    runbook: parseRunbook({
      name: 'long-job',
      version: 1,
      description: 'Run the long job.',
      roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
      targets: { tags: { Role: 'batch' } },
      steps: [{ name: 'job', script: 'run-job', timeoutSeconds }],
    }),
    runbookDigest: 'rb-digest-1',
    rawParams: {},
    targets: [{ instanceId: 'i-0aaaaaaaaaaaaaaa1' }],
    requester: 'alice@example.com',
    reason,
    region: 'eu-west-1',
    now: new Date('2025-01-01T10:00:00.000Z'),
  };
}

describe('the credential budget', () => {
  // A step costs its timeout plus 60 s of delivery and polling; the run adds 300 s.
  test('steps that fill exactly the 12 hours STS allows are planned with all of it', () => {
    expect(buildPlan(oneStep(43_200 - 300 - 60)).plan.budgetSeconds).toBe(43_200);
  });

  test('one second more is refused, naming the runbook and what to do', () => {
    const e = caught(() => buildPlan(oneStep(43_200 - 300 - 60 + 1)));
    expect(e.code).toBe('RUNBOOK_INVALID');
    expect(e.message).toBe(
      "long-job's steps may take longer than the 12 hours STS credentials can last; shorten their timeouts",
    );
  });
});

describe('the reason', () => {
  test('a reason with a direction-changing character is refused with what is wrong', () => {
    const e = caught(() => buildPlan(oneStep(60, 'INC-42 \u202eredaolnwod')));
    expect(e.code).toBe('USAGE');
    expect(e.message).toBe(
      'the reason contains a right-to-left override (U+202E); control, direction-changing and invisible characters are never allowed, so remove it',
    );
  });
});
