/**
 * Step requests and activity runs for the in-process tests of the SSM activities: a fresh run's
 * step request (planned as the server plans it), an activity run in the Temporal SDK's own mock
 * activity context, and the failure an activity ends with.
 */
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { expect } from 'vitest';
import type { StepRequest } from '../../src/core/execution.ts';
import { buildPlan } from '../../src/core/plan.ts';
import { parseRunbook } from '../../src/core/runbook.ts';

import { REGION } from '../integration/devfleet-helpers.ts';
let runs = 0;

/**
 * A step request of a fresh run of runbook `name` on `targets` (execution ids start with
 * `idPrefix`), its step's script and settings changed by `step`.
 */
export function stepRequest(
  name: string,
  idPrefix: string,
  targets: readonly string[],
  step: Record<string, unknown> = {},
  over: Partial<StepRequest> = {},
): StepRequest {
  const runbook = parseRunbook({
    name,
    version: 1,
    description: 'ssm activity tests',
    roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
    targets: { tags: { Env: 'staging' } },
    steps: [{ name: 'only', script: 'echo hello', timeoutSeconds: 30 }],
  });
  const { plan } = buildPlan({
    executionId: `${idPrefix}${String(++runs).padStart(4, '0')}${Math.random().toString(36).slice(2, 6)}`,
    runbook,
    runbookDigest: 'f'.repeat(64),
    rawParams: {},
    targets: targets.map((instanceId) => ({ instanceId })),
    requester: 'alice',
    reason: 'mutants',
    region: REGION,
    now: new Date(),
  });
  return {
    executionId: plan.executionId,
    stepIndex: 0,
    phase: 'main',
    step: { ...plan.steps[0]!, ...step },
    instanceIds: [...targets],
    credentials: {
      executionId: plan.executionId,
      roleArn: plan.roleArn,
      region: REGION,
      sessionPolicy: plan.sessionPolicy,
      durationSeconds: plan.budgetSeconds,
      sourceIdentity: plan.requester,
      runbook: `${name}@1`,
      approvers: ['bob'],
    },
    notBefore: new Date().toISOString(),
    ...over,
  };
}

export const activityEnv = (info: ConstructorParameters<typeof MockActivityEnvironment>[0] = {}) =>
  new MockActivityEnvironment(info);

/** Runs an activity function in a mock activity context. */
export const runActivity = <P extends unknown[], R>(fn: (...a: P) => Promise<R>, ...args: P): Promise<R> =>
  activityEnv().run<P, R, typeof fn>(fn, ...args);

/** The ApplicationFailure `p` rejects with (the test fails if it resolves or rejects otherwise). */
export const failureOf = async (p: Promise<unknown>): Promise<ApplicationFailure> => {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ApplicationFailure);
  return e as ApplicationFailure;
};
