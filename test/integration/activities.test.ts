import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createActivities, type MechanicActivities } from '../../src/activities/index.ts';
import { createSsmClient, createStsClient } from '../../src/activities/aws.ts';
import { readCommandLog } from '../../src/devfleet/command-log.ts';
import type { NewAuditEvent } from '../../src/core/audit.ts';
import type { StepRequest } from '../../src/core/execution.ts';
import { dispatchToken } from '../../src/activities/ssm.ts';
import { testInput } from '../helpers/plans.ts';
import { defaultFleetConfig } from '../../src/devfleet/config.ts';
import { REGION, ROOT, startHarness, waitCommand, type Harness } from './devfleet-helpers.ts';
import { AuditEventConflictError } from '../../src/store/audit-log.ts';

/**
 * The real activities against devfleet with the real AWS SDK clients: exactly-once dispatch,
 * scoped credentials, and a re-issue when the worker has lost its lease.
 */
describe('activities against devfleet', () => {
  let fleet: Harness;
  let events: NewAuditEvent[];
  let activities: MechanicActivities;
  const env = new MockActivityEnvironment();
  // The environment's run() cannot infer the result type from the function; this wrapper can.
  const run = <P extends unknown[], R>(fn: (...a: P) => Promise<R>, ...args: P): Promise<R> =>
    env.run<P, R, typeof fn>(fn, ...args);

  const fresh = () => {
    const aws = { region: REGION, endpoint: fleet.fleet.endpoint, baseCredentials: ROOT };
    return createActivities({
      audit: { append: async (e: NewAuditEvent) => events.push(e) },
      sts: createStsClient(aws),
      ssmFor: (c) => createSsmClient(aws, c),
      pollIntervalMs: { min: 50, max: 200 },
      deliveryTimeoutSeconds: 60,
    });
  };

  const request = (input = testInput(), index = 0): StepRequest => ({
    executionId: input.plan.executionId,
    stepIndex: index,
    phase: 'main',
    step: input.plan.steps[index]!,
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
  });

  beforeAll(async () => {
    fleet = await startHarness();
  });
  afterAll(async () => {
    await fleet?.close();
  });

  /** The host's own count of its runs: the step's script appends a line to a file in its sandbox. */
  const witnessed = async (h: Harness, instanceId: string, file: string): Promise<number> => {
    const text = await readFile(join(h.dataDir, 'instances', instanceId, 'root', file), 'utf8').catch(() => '');
    return text.split('\n').filter(Boolean).length;
  };

  test.each([
    ['503', 0],
    ['drop', 0],
    ['503', 1_000], // and ListCommands shows the command only a second after it was sent
  ] as const)(
    'SendCommand accepted but answered with %s (ListCommands lag %i ms): one command, one run per host',
    async (acceptThen, listCommandsLagMs) => {
      // A fleet of its own: the fault counts SendCommand calls from its start.
      const lossy = await startHarness({
        config: {
          ...defaultFleetConfig(ROOT),
          faults: { sendCommand: { acceptThen, times: 1 }, listCommandsLagMs },
        },
      });
      try {
        events = [];
        const aws = { region: REGION, endpoint: lossy.fleet.endpoint, baseCredentials: ROOT };
        const worker = createActivities({
          audit: { append: async (e: NewAuditEvent) => events.push(e) },
          sts: createStsClient(aws),
          ssmFor: (c) => createSsmClient(aws, c),
          pollIntervalMs: { min: 50, max: 200 },
          deliveryTimeoutSeconds: 60,
        });
        const base = request();
        const req = { ...base, step: { ...base.step, script: 'echo run >> witness\necho ran' } };

        // As Temporal would: the activity is retried after a retryable failure (maximumAttempts 5).
        const failures: unknown[] = [];
        let dispatched: { commandId: string; adopted: boolean } | undefined;
        while (!dispatched && failures.length < 5) {
          dispatched = await run(worker.dispatchStep, req).catch((e: unknown) => {
            if (!(e instanceof ApplicationFailure) || e.nonRetryable) throw e;
            failures.push(e);
            return undefined;
          });
        }
        const outcome = await run(worker.awaitStep, { ...req, commandId: dispatched!.commandId });
        expect(outcome.ok).toBe(true);

        for (const id of req.instanceIds) expect(await witnessed(lossy, id, 'witness')).toBe(1);
        const log = (await readCommandLog(lossy.dataDir)).filter((e) => e.comment === dispatchToken(req));
        expect(new Set(log.map((e) => e.commandId))).toEqual(new Set([dispatched!.commandId]));
        expect(log.map((e) => e.instanceId).sort()).toEqual(req.instanceIds);
        // The SDK did not send again, and the attempt whose answer was lost looked until it
        // found the command (Temporal retries immediately here, so a miss would have sent twice).
        expect(failures).toEqual([]);
        expect(dispatched!.adopted).toBe(true);
      } finally {
        await lossy.close();
      }
    },
  );

  test('a retried dispatch looks long enough for a command an earlier attempt sent, though ListCommands lags', async () => {
    const lagging = await startHarness({
      config: { ...defaultFleetConfig(ROOT), faults: { listCommandsLagMs: 1_000 } },
    });
    try {
      events = [];
      const aws = { region: REGION, endpoint: lagging.fleet.endpoint, baseCredentials: ROOT };
      const worker = createActivities({
        audit: { append: async (e: NewAuditEvent) => events.push(e) },
        sts: createStsClient(aws),
        ssmFor: (c) => createSsmClient(aws, c),
        pollIntervalMs: { min: 50, max: 200 },
        deliveryTimeoutSeconds: 60,
      });
      const base = request();
      const req = { ...base, step: { ...base.step, script: 'echo run >> witness' } };
      // The first attempt sent the command, then its worker died before the answer came back.
      const first = await run(worker.dispatchStep, req);
      const retried = await new MockActivityEnvironment({ attempt: 2 }).run(worker.dispatchStep, req);
      expect(retried).toEqual({ commandId: first.commandId, adopted: true });
      await run(worker.awaitStep, { ...req, commandId: first.commandId });
      for (const id of req.instanceIds) expect(await witnessed(lagging, id, 'witness')).toBe(1);
    } finally {
      await lagging.close();
    }
  });

  test('a throttled SendCommand is still retried by the SDK: throttling proves it was not accepted', async () => {
    // Call 1 is the find (ListCommands), call 2 the SendCommand, which is throttled.
    const throttled = await startHarness({
      config: {
        ...defaultFleetConfig(ROOT),
        instances: defaultFleetConfig(ROOT).instances.map((i) => ({ ...i, faults: { throttleEveryNth: 2 } })),
      },
    });
    try {
      events = [];
      const aws = { region: REGION, endpoint: throttled.fleet.endpoint, baseCredentials: ROOT };
      const worker = createActivities({
        audit: { append: async (e: NewAuditEvent) => events.push(e) },
        sts: createStsClient(aws),
        ssmFor: (c) => createSsmClient(aws, c),
        pollIntervalMs: { min: 50, max: 200 },
        deliveryTimeoutSeconds: 60,
      });
      const req = request();
      const dispatched = await run(worker.dispatchStep, req);
      expect(dispatched.adopted).toBe(false);
      // devfleet logs a start once it is on disk: wait for the command to end, not for time.
      const { credentials } = await throttled.assume();
      await waitCommand(throttled.ssm(credentials, 10), dispatched.commandId);
      const log = await readCommandLog(throttled.dataDir);
      expect(new Set(log.map((e) => e.commandId))).toEqual(new Set([dispatched.commandId]));
    } finally {
      await throttled.close();
    }
  });

  test('a dispatch retried after the send adopts the command it already sent', async () => {
    events = [];
    activities = fresh();
    const req = request();
    const lease = await run(activities.issueCredentials, req.credentials);
    expect(lease.accessKeyId).toMatch(/^ASIA/);
    expect(JSON.stringify(lease)).not.toMatch(/secret|token/i);

    const first = await run(activities.dispatchStep, req);
    const again = await run(activities.dispatchStep, req); // as after a lost response
    expect(first.adopted).toBe(false);
    expect(again).toEqual({ commandId: first.commandId, adopted: true });

    const outcome = await run(activities.awaitStep, { ...req, commandId: first.commandId });
    expect(outcome.ok).toBe(true);
    expect(outcome.instances.map((i) => [i.instanceId, i.status, i.stdout.trim()])).toEqual([
      ['i-0d3f1ee7000000001', 'Success', 'hello'],
      ['i-0d3f1ee7000000002', 'Success', 'hello'],
    ]);
    const log = (await readCommandLog(fleet.dataDir)).filter((e) => e.comment === `mechanic ${req.executionId} step 0`);
    expect(log).toHaveLength(2);
    expect(events.filter((e) => e.type === 'step.instance')).toHaveLength(2);
  });

  test('step.instance is stamped when recorded, after the step.started before it; a retried await keeps the first record', async () => {
    // Like the audit store: idempotent on eventId, a conflict when the same id comes with other content.
    const stored = new Map<string, string>();
    const log: NewAuditEvent[] = [];
    const aws = { region: REGION, endpoint: fleet.fleet.endpoint, baseCredentials: ROOT };
    const worker = createActivities({
      audit: {
        append: async (e: NewAuditEvent) => {
          const text = JSON.stringify(e);
          const before = stored.get(e.eventId);
          if (before !== undefined && before !== text) throw new AuditEventConflictError(e.eventId, 1);
          if (before === undefined) log.push(e);
          stored.set(e.eventId, text);
        },
      },
      sts: createStsClient(aws),
      ssmFor: (c) => createSsmClient(aws, c),
      pollIntervalMs: { min: 50, max: 200 },
      deliveryTimeoutSeconds: 60,
    });
    const req = request();
    const { commandId } = await run(worker.dispatchStep, req);
    // The scripts finish before the workflow records step.started (as when the answer comes late).
    const { ssm } = await fleet.assume();
    await waitCommand(ssm, commandId);
    const started = new Date().toISOString();

    await run(worker.awaitStep, { ...req, commandId });
    const instances = log.filter((e) => e.type === 'step.instance');
    expect(instances).toHaveLength(2);
    for (const e of instances) expect(Date.parse(e.at)).toBeGreaterThanOrEqual(Date.parse(started));
    expect(Date.parse(instances[1]!.at)).toBeGreaterThanOrEqual(Date.parse(instances[0]!.at));

    // A retry of the same await (e.g. after a worker died while recording) records nothing new.
    await run(worker.awaitStep, { ...req, commandId });
    expect(log.filter((e) => e.type === 'step.instance')).toEqual(instances);
  });

  test('a worker that lost its lease re-issues credentials, and says so in the audit log', async () => {
    events = [];
    const req = request();
    await run(fresh().issueCredentials, req.credentials); // issued by the "old" worker
    const restarted = fresh(); // a new worker process: no lease in memory
    const { commandId } = await run(restarted.dispatchStep, req);
    expect(commandId).toBeTruthy();
    expect(events.map((e) => [e.type, e.data['reason']])).toEqual([['credentials.issued', 'reissued']]);
  });

  test('the session policy keeps a run on its planned instances', async () => {
    events = [];
    activities = fresh();
    const req = { ...request(), instanceIds: ['i-0d3f1ee7000000003'] }; // db-1, not in the plan
    await expect(run(activities.dispatchStep, req)).rejects.toMatchObject({
      type: 'SSM_COMMAND_FAILED',
      nonRetryable: true,
    });
  });

  test('after a run releases its credentials, a stray attempt cannot mint new ones', async () => {
    events = [];
    activities = fresh();
    const req = request();
    await run(activities.issueCredentials, req.credentials);
    await run(activities.releaseCredentials, req.executionId);
    await expect(run(activities.dispatchStep, req)).rejects.toMatchObject({
      type: 'CREDENTIALS_RELEASED',
      nonRetryable: true,
    });
    expect(events).toEqual([]);
  });
});
