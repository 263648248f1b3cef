import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createActivities } from '../../src/activities/index.ts';
import { createSsmClient, createStsClient } from '../../src/activities/aws.ts';
import { loadConfig } from '../../src/config.ts';
import type { NewAuditEvent } from '../../src/core/audit.ts';
import type { StepRequest } from '../../src/core/execution.ts';
import { testInput } from '../helpers/plans.ts';
import { REGION, ROOT, startHarness, type Harness } from './devfleet-helpers.ts';

/**
 * How a running command is followed: the first and largest pause between two looks at it
 * (MECHANIC_POLL_MIN_MS, MECHANIC_POLL_MAX_MS), counted as devfleet is asked — the real activity,
 * the real SDK client, a step that runs on the hosts for a known time. Counts, not clocks: a slow
 * machine only makes fewer looks, so each bound is checked from the side load cannot cross.
 */
describe('following a step polls from MECHANIC_POLL_MIN_MS, backing off to MECHANIC_POLL_MAX_MS', () => {
  let fleet: Harness;
  beforeAll(async () => {
    fleet = await startHarness();
  });
  afterAll(async () => {
    await fleet?.close();
  });

  /** Runs a step of `seconds` on the hosts and answers how many times awaitStep listed its invocations. */
  let detailsInFlight = 0;
  let mostDetailsInFlight = 0;
  let recorded: NewAuditEvent[] = [];
  const polls = async (pollIntervalMs: { min: number; max: number }, seconds: number): Promise<number> => {
    let listed = 0;
    detailsInFlight = mostDetailsInFlight = 0;
    recorded = [];
    const aws = { region: REGION, endpoint: fleet.fleet.endpoint, baseCredentials: ROOT };
    const activities = createActivities({
      audit: { append: async (e: NewAuditEvent) => recorded.push(e) },
      sts: createStsClient(aws),
      ssmFor: (c) => {
        const client = createSsmClient(aws, c);
        client.middlewareStack.add(
          (next, context) => async (args) => {
            if (context.commandName === 'ListCommandInvocationsCommand') listed++;
            if (context.commandName !== 'GetCommandInvocationCommand') return next(args);
            mostDetailsInFlight = Math.max(mostDetailsInFlight, ++detailsInFlight);
            try {
              return await next(args);
            } finally {
              detailsInFlight--;
            }
          },
          { step: 'initialize', name: 'countListCommandInvocations' },
        );
        return client;
      },
      pollIntervalMs,
      deliveryTimeoutSeconds: 60,
    });
    const input = testInput();
    const step = { ...input.plan.steps[0]!, script: `sleep ${seconds}\necho done` };
    const req: StepRequest = {
      executionId: input.plan.executionId,
      stepIndex: 0,
      phase: 'main',
      step,
      instanceIds: input.plan.targets.map((t) => t.instanceId),
      credentials: {
        executionId: input.plan.executionId,
        roleArn: input.plan.roleArn,
        region: REGION,
        sessionPolicy: input.plan.sessionPolicy,
        durationSeconds: input.plan.budgetSeconds,
        sourceIdentity: input.plan.requester,
        runbook: 'test-runbook@3',
        approvers: ['bob'],
      },
      notBefore: new Date().toISOString(),
    };
    const env = new MockActivityEnvironment();
    // The environment's run() cannot infer the result type from the function; this wrapper can.
    const run = <P extends unknown[], R>(fn: (...a: P) => Promise<R>, ...args: P): Promise<R> =>
      env.run<P, R, typeof fn>(fn, ...args);
    const { commandId } = await run(activities.dispatchStep, req);
    listed = 0;
    const outcome = await run(activities.awaitStep, { ...req, commandId });
    expect(outcome.ok).toBe(true);
    return listed;
  };

  test('the first pause is MIN: a 3 s step is looked at many times at 100 ms, at most five at 1 s', async () => {
    // At 100 ms (plus up to a quarter of jitter) a 3 s step is looked at about 27 times; load makes
    // each look slower, so fewer, but never as few as a 1 s pause allows. At 1 s: at most 1 + 3 / 1.
    expect(await polls({ min: 1000, max: 1000 }, 3)).toBeLessThanOrEqual(5);
    expect(await polls({ min: 100, max: 100 }, 3)).toBeGreaterThanOrEqual(10);
  });

  test('the pause grows by half each time up to MAX: from 100 ms with no ceiling, a 3 s step is looked at eight times at most', async () => {
    // Looks at 0, 0.1, 0.25, 0.48, 0.81, 1.32, 2.08 and 3.22 s at the earliest: jitter and load only
    // lengthen a pause, so a worker that never grew its pause would look about 27 times.
    expect(await polls({ min: 100, max: 60_000 }, 3)).toBeLessThanOrEqual(8);
  });

  test("a step's end fetches its instances' outputs together, and records them in SSM's order", async () => {
    await polls({ min: 100, max: 100 }, 0);
    // Every instance's GetCommandInvocation overlaps the others' instead of waiting its turn.
    expect(testInput().plan.targets.length).toBeGreaterThan(1);
    expect(mostDetailsInFlight).toBe(testInput().plan.targets.length);
    const instances = recorded
      .filter((e) => e.type === 'step.instance')
      .map((e) => (e.data as { instanceId: string }).instanceId);
    expect(instances).toEqual(testInput().plan.targets.map((t) => t.instanceId));
  });

  test('the defaults start at 100 ms and back off to 15 s', () => {
    const { ssm } = loadConfig({});
    expect({ min: ssm.pollMinMs, max: ssm.pollMaxMs }).toEqual({ min: 100, max: 15_000 });
    const set = loadConfig({ MECHANIC_POLL_MIN_MS: '250', MECHANIC_POLL_MAX_MS: '5000' }).ssm;
    expect({ min: set.pollMinMs, max: set.pollMaxMs }).toEqual({ min: 250, max: 5000 });
  });
});
