import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ListCommandsCommand } from '@aws-sdk/client-ssm';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { formatExecution } from '../../cli/format.ts';
import { createActivities } from '../../src/activities/index.ts';
import { createSsmClient, createStsClient } from '../../src/activities/aws.ts';
import { dispatchToken } from '../../src/activities/ssm.ts';
import type { ExecutionInput, ExecutionView } from '../../src/core/execution.ts';
import { viewFromAudit } from '../../src/core/execution-view.ts';
import { buildPlan } from '../../src/core/plan.ts';
import { parseRunbook } from '../../src/core/runbook.ts';
import { sendRefusal, truncationNote } from '../../src/core/ssm-output.ts';
import {
  DEMO_INSTANCE_IDS,
  DEMO_ROLE_ARN,
  defaultFleetConfig,
  readCommandLog,
  type FleetConfig,
} from '../../src/devfleet/index.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { WORKFLOWS_PATH } from '../../src/temporal/worker.ts';
import { runbookExecution, voteUpdate } from '../../workflows/runbook-execution.ts';
import { quietTemporalLogs, startTestTemporal, type TestTemporal } from '../helpers/temporal.ts';
import { REGION, ROOT, startHarness, type Harness } from './devfleet-helpers.ts';

/**
 * Issue 11, part 5, through the whole run: the real workflow on a real Temporal dev server, the
 * real activities and AWS SDK, devfleet showing what AWS does on a bad day — an agent that is not
 * connected, invocations that end Undeliverable or DeliveryTimedOut or pass through Delayed,
 * throttling bursts, a lost SendCommand answer while ListCommands lags, output SSM cut at its
 * limit — and mechanic surviving each and telling the truth about it.
 */

const WEB1 = DEMO_INSTANCE_IDS['web-1'];
const WEB2 = DEMO_INSTANCE_IDS['web-2'];
const DB1 = DEMO_INSTANCE_IDS['db-1'];
const NAMES: Record<string, string> = { [WEB1]: 'web-1', [WEB2]: 'web-2', [DB1]: 'db-1' };

let temporal: TestTemporal;
let connection: Connection;
let native: NativeConnection;
let client: Client;
let home: string;
let audit: AuditStore;
const fleets: Harness[] = [];

beforeAll(async () => {
  temporal = await startTestTemporal();
  connection = await Connection.connect({ address: temporal.address });
  native = await NativeConnection.connect({ address: temporal.address });
  client = new Client({ connection, namespace: temporal.namespace });
  home = await mkdtemp(path.join(tmpdir(), 'mechanic-aws-faults-'));
  audit = await openAuditStore({ kind: 'sqlite', file: path.join(home, 'audit.db') });
});
afterAll(async () => {
  for (const f of fleets) await f.close();
  await audit?.close();
  await native?.close();
  await connection?.close();
  await temporal?.teardown();
  if (home) await rm(home, { recursive: true, force: true });
});

/** The demo fleet (web-1, web-2, db-1) with per-instance changes and service faults. */
async function fleetOf(
  change: Partial<Record<string, Partial<FleetConfig['instances'][number]>>>,
  faults?: FleetConfig['faults'],
  timeScale = 1,
): Promise<Harness> {
  const base = defaultFleetConfig(ROOT);
  const config: FleetConfig = {
    ...base,
    instances: base.instances.map((i) => ({ ...i, ...change[i.id] })),
    ...(faults ? { faults } : {}),
  };
  const h = await startHarness({ config, timeScale });
  fleets.push(h);
  return h;
}

function input(targets: readonly string[], steps: readonly Record<string, unknown>[]): ExecutionInput {
  const runbook = parseRunbook({
    name: 'aws-faults',
    version: 1,
    description: 'AWS behaviour under test',
    roleArn: DEMO_ROLE_ARN,
    targets: { instanceIds: [...targets] },
    steps: steps.map((s) => ({ timeoutSeconds: 60, ...s })),
  });
  return buildPlan({
    executionId: `mx-aws${randomUUID().slice(0, 8)}`,
    runbook,
    runbookDigest: 'f'.repeat(64),
    rawParams: {},
    targets: targets.map((instanceId) => ({ instanceId, name: NAMES[instanceId]! })),
    requester: 'alice',
    reason: 'aws faults test',
    region: REGION,
    now: new Date(),
  });
}

async function runToEnd(
  fleet: Harness,
  given: ExecutionInput,
  deliveryTimeoutSeconds = 60,
): Promise<{ view: ExecutionView; history: Awaited<ReturnType<WorkflowHandle['fetchHistory']>> }> {
  quietTemporalLogs();
  const aws = { region: REGION, endpoint: fleet.fleet.endpoint, baseCredentials: ROOT };
  const taskQueue = `aws-faults-${randomUUID()}`;
  const worker = await Worker.create({
    connection: native,
    namespace: temporal.namespace,
    taskQueue,
    workflowsPath: WORKFLOWS_PATH,
    activities: createActivities({
      audit,
      sts: createStsClient(aws),
      ssmFor: (c) => createSsmClient(aws, c),
      pollIntervalMs: { min: 50, max: 200 },
      deliveryTimeoutSeconds,
    }),
  });
  return worker.runUntil(async () => {
    const handle = await client.workflow.start(runbookExecution, {
      taskQueue,
      workflowId: given.plan.executionId,
      args: [given],
    });
    await handle.executeUpdate(voteUpdate, {
      args: [{ approver: 'bob', decision: 'approve', planDigest: given.planDigest }],
    });
    const view = await handle.result();
    return { view, history: await handle.fetchHistory() };
  });
}

const recordsOf = async (executionId: string) =>
  (await audit.list({ limit: 10_000 })).filter((r) => r.executionId === executionId);
const ranFor = async (fleet: Harness, executionId: string) =>
  (await readCommandLog(fleet.dataDir)).filter((e) => e.comment.startsWith(`mechanic ${executionId} `));
const commandsFor = async (fleet: Harness, executionId: string) => {
  const { ssm } = await fleet.assume();
  const out = await ssm.send(new ListCommandsCommand({}));
  return (out.Commands ?? []).filter((c) => c.Comment?.startsWith(`mechanic ${executionId} `));
};
/** How many times each activity type was started (every attempt counts). */
const attempts = (history: { events?: readonly unknown[] | null }, activity: string) =>
  (history.events ?? []).filter(
    (e) =>
      (e as { activityTaskScheduledEventAttributes?: { activityType?: { name?: string } } })
        .activityTaskScheduledEventAttributes?.activityType?.name === activity,
  ).length;

describe('an instance SendCommand refuses', () => {
  test('whose agent is not connected: the step fails at once, in one sentence naming it; nothing is sent or retried', async () => {
    const fleet = await fleetOf({ [WEB2]: { faults: { offline: true } } });
    const given = input([WEB1, WEB2], [{ name: 'work', script: 'echo hi' }]);
    const { view, history } = await runToEnd(fleet, given);

    expect(view.status).toBe('failed');
    expect(view.reason).toBe('step "work" failed');
    expect(view.steps[0]).toMatchObject({ status: 'failed', instances: [] });
    const completed = (await recordsOf(given.plan.executionId)).find((r) => r.type === 'step.completed');
    const sentence = sendRefusal(
      'InvalidInstanceId',
      `Instances [[${WEB2}]] not in a valid state for account 123456789012`,
    );
    expect(completed?.data).toMatchObject({ step: 'work', ok: false, error: sentence });
    expect(sentence).toContain(`instance ${WEB2} `);
    // Every view says why: the live one, the one rebuilt from the log, and `mechanic status`.
    expect(view.steps[0]?.reason).toBe(sentence);
    expect(viewFromAudit(await recordsOf(given.plan.executionId))?.steps[0]?.reason).toBe(sentence);
    expect(formatExecution(view)).toContain(`work  failed — ${sentence}`);
    // One dispatch, not a retry loop; nothing reached SSM or ran.
    expect(attempts(history, 'dispatchStep')).toBe(1);
    expect(await commandsFor(fleet, given.plan.executionId)).toEqual([]);
    expect(await ranFor(fleet, given.plan.executionId)).toEqual([]);
  }, 120_000);

  test('whose platform the document does not run on (Windows): the same, naming it', async () => {
    const fleet = await fleetOf({ [DB1]: { platform: 'Windows' } });
    const given = input([WEB1, DB1], [{ name: 'work', script: 'echo hi' }]);
    const { view } = await runToEnd(fleet, given);
    expect(view.status).toBe('failed');
    const completed = (await recordsOf(given.plan.executionId)).find((r) => r.type === 'step.completed');
    expect(completed?.data['error']).toBe(
      sendRefusal(
        'UnsupportedPlatformType',
        `Cannot perform operation for instance id ${DB1} of platform type Windows`,
      ),
    );
    expect(await ranFor(fleet, given.plan.executionId)).toEqual([]);
  }, 120_000);
});

describe('invocation statuses', () => {
  test('DeliveryTimedOut, Undeliverable and Success in one step: each shown as that status, the step fails, only the healthy host ran', async () => {
    // timeScale 0.1: the 30 s delivery timeout passes after 3 s; db-1's first delivery fails (Delayed) for 0.5 s.
    const fleet = await fleetOf(
      {
        [WEB1]: { faults: { unresponsive: true } },
        [WEB2]: { faults: { undeliverable: true } },
        [DB1]: { faults: { delayedMs: 500 } },
      },
      undefined,
      0.1,
    );
    const given = input([WEB1, WEB2, DB1], [{ name: 'work', script: 'echo ran on $MECHANIC_INSTANCE_NAME' }]);
    const { view } = await runToEnd(fleet, given, 30);

    expect(view.status).toBe('failed');
    expect(view.reason).toBe('step "work" failed');
    const shown = view.steps[0]!.instances.map((i) => [i.instanceId, i.status, i.statusDetails, i.responseCode]);
    expect(shown.sort()).toEqual(
      [
        [WEB1, 'TimedOut', 'DeliveryTimedOut', -1],
        [WEB2, 'Failed', 'Undeliverable', -1],
        [DB1, 'Success', 'Success', 0],
      ].sort(),
    );
    // The audit log says the same, and so does the view rebuilt from it and `mechanic status`.
    const records = await recordsOf(given.plan.executionId);
    const recorded = records
      .filter((r) => r.type === 'step.instance')
      .map((r) => [r.data['instanceId'], r.data['status'], r.data['statusDetails'], r.data['responseCode']]);
    expect(recorded.sort()).toEqual(shown.sort());
    expect(
      viewFromAudit(records)
        ?.steps[0]?.instances.map((i) => i.statusDetails)
        .sort(),
    ).toEqual(['DeliveryTimedOut', 'Success', 'Undeliverable'].sort());
    const text = formatExecution(view);
    expect(text).toContain(`${WEB1}  DeliveryTimedOut  exit -1`);
    expect(text).toContain(`${WEB2}  Undeliverable  exit -1`);
    expect(text).toContain(`${DB1}  Success  exit 0`);
    // devfleet ran it on db-1 only, once.
    expect((await ranFor(fleet, given.plan.executionId)).map((e) => [e.instanceId, e.status])).toEqual([
      [DB1, 'Success'],
    ]);
  }, 120_000);

  test('Delayed is not final: mechanic keeps following until the retried delivery runs, and the run completes', async () => {
    const fleet = await fleetOf({ [WEB1]: { faults: { delayedMs: 1_500 } } });
    const given = input([WEB1], [{ name: 'work', script: 'echo delivered' }]);
    const { view } = await runToEnd(fleet, given);
    expect(view.status).toBe('completed');
    expect(view.steps[0]!.instances).toMatchObject([
      { instanceId: WEB1, status: 'Success', statusDetails: 'Success', stdout: 'delivered\n' },
    ]);
    expect(await ranFor(fleet, given.plan.executionId)).toHaveLength(1);
  }, 120_000);
});

describe('throttling bursts', () => {
  test('a three-step run completes under a per-API rate, each command sent once and run once per host', async () => {
    const fleet = await fleetOf({}, { throttle: { ratePerSecond: 4, burst: 2 } });
    const given = input(
      [WEB1, WEB2, DB1],
      ['one', 'two', 'three'].map((name) => ({ name, script: `echo ${name}` })),
    );
    const { view } = await runToEnd(fleet, given);
    expect(view.status).toBe('completed');
    // devfleet did throttle mechanic's calls …
    const throttled = Object.values(fleet.fleet.throttledCalls()).reduce((a, b) => a + b, 0);
    expect(throttled).toBeGreaterThan(0);
    // … and still each step is one command, run once on each host.
    const commands = await commandsFor(fleet, given.plan.executionId);
    expect(commands.map((c) => c.Comment).sort()).toEqual(
      [0, 1, 2].map((i) => dispatchToken({ executionId: given.plan.executionId, stepIndex: i, phase: 'main' })).sort(),
    );
    const ran = await ranFor(fleet, given.plan.executionId);
    expect(ran).toHaveLength(9);
    expect(new Set(ran.map((e) => `${e.commandId}/${e.instanceId}`)).size).toBe(9);
    expect(ran.every((e) => e.status === 'Success')).toBe(true);
  }, 180_000);
});

describe('eventual consistency', () => {
  test('a SendCommand answer lost while ListCommands lags: the run still sends the step once', async () => {
    const fleet = await fleetOf({}, { sendCommand: { acceptThen: '503', times: 1 }, listCommandsLagMs: 1_500 });
    const given = input([WEB1, WEB2, DB1], [{ name: 'work', script: 'echo once' }]);
    const { view } = await runToEnd(fleet, given);
    expect(view.status).toBe('completed');
    const commands = await commandsFor(fleet, given.plan.executionId);
    expect(commands).toHaveLength(1);
    const ran = await ranFor(fleet, given.plan.executionId);
    expect(ran.map((e) => e.instanceId).sort()).toEqual([WEB1, WEB2, DB1].sort());
    expect(new Set(ran.map((e) => e.commandId))).toEqual(new Set([commands[0]!.CommandId]));
  }, 120_000);
});

describe('output SSM cut at its limits', () => {
  test('is marked truncated by SSM in the view, the audit log, the rebuilt view and mechanic status; shorter output is not', async () => {
    const fleet = await fleetOf({});
    const given = input(
      [WEB1],
      [
        {
          name: 'chatty',
          script: "head -c 30000 /dev/zero | tr '\\0' a\nhead -c 9000 /dev/zero | tr '\\0' b >&2",
        },
        { name: 'quiet', script: "head -c 23999 /dev/zero | tr '\\0' a" },
      ],
    );
    const { view } = await runToEnd(fleet, given);
    expect(view.status).toBe('completed');
    const [chatty, quiet] = view.steps.map((s) => s.instances[0]!);
    expect(chatty!.truncatedBySsm).toEqual(['stdout', 'stderr']);
    expect(quiet).not.toHaveProperty('truncatedBySsm');

    const records = await recordsOf(given.plan.executionId);
    const instances = records.filter((r) => r.type === 'step.instance');
    expect(instances.map((r) => r.data['truncatedBySsm'])).toEqual([['stdout', 'stderr'], undefined]);
    expect((instances[0]!.data['stdout'] as string).length).toBe(24_000);
    expect(viewFromAudit(records)?.steps.map((s) => s.instances[0]?.truncatedBySsm)).toEqual([
      ['stdout', 'stderr'],
      undefined,
    ]);
    const text = formatExecution(view);
    expect(text).toContain(`[${truncationNote('stdout')}]`);
    expect(text).toContain(`[${truncationNote('stderr')}]`);
    expect(text.split(truncationNote('stdout')).length).toBe(2); // once: only the chatty step
  }, 120_000);
});
