import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ListCommandsCommand, type Command } from '@aws-sdk/client-ssm';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ExecutionInput, ExecutionView } from '../../src/core/execution.ts';
import { viewFromAudit } from '../../src/core/execution-view.ts';
import { buildPlan } from '../../src/core/plan.ts';
import { parseRunbook } from '../../src/core/runbook.ts';
import { DEMO_ROLE_ARN, defaultFleetConfig, parseFleetConfig, readCommandLog } from '../../src/devfleet/index.ts';
import { readCallLog } from '../../src/devfleet/call-log.ts';
import type { CommandLogEntry } from '../../src/devfleet/command-log.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { WORKFLOWS_PATH } from '../../src/temporal/worker.ts';
import { cancelUpdate, runbookExecution, statusQuery, voteUpdate } from '../../workflows/runbook-execution.ts';
import { startActivityStack, type ActivityStack } from '../helpers/activity-stack.ts';
import { REGION, ROOT, type Harness } from './devfleet-helpers.ts';

/**
 * Issue 11, part 1: a step on more than 50 instances, through the real workflow on a real Temporal
 * dev server and the real activities against devfleet. 120 instances: three SendCommands of at
 * most 50 ids, each instance run once (devfleet's command log), maxConcurrency and maxErrors held
 * across the batches, and lost SendCommand answers (batches 1 and 2) that still send each batch once.
 */

const N = 120;
const hex = (n: number) => `i-${(0xf000 + n).toString(16).padStart(17, '0')}`;
const nameOf = (n: number) => `node-${String(n).padStart(3, '0')}`;
const IDS = Array.from({ length: N }, (_, n) => hex(n));

let fleet: Harness;
let home: string;
let audit: AuditStore;
let stack: ActivityStack;
let client: Client;
let taskQueue: string;

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'mechanic-fanout-'));
  audit = await openAuditStore({ kind: 'sqlite', file: path.join(home, 'audit.db') });
  stack = await startActivityStack({
    name: 'fanout',
    audit,
    fleet: parseFleetConfig({
      ...defaultFleetConfig(ROOT),
      callLog: true,
      // The answers of the fleet's first two SendCommands are lost after SSM accepted them: the
      // first run's batches 1 and 2.
      faults: { sendCommand: { acceptThen: 'drop', times: 2 } },
      instances: IDS.map((id, n) => ({ id, name: `host-${n}`, tags: { Name: nameOf(n), Fleet: 'big' } })),
    }),
  });
  ({ fleet, client, taskQueue } = stack);
}, 120_000);

afterAll(async () => {
  await stack?.close();
  await audit?.close();
  if (home) await rm(home, { recursive: true, force: true });
}, 60_000);

/** A one-step runbook on the 120 instances tagged Fleet=big. */
function input(step: Record<string, unknown>): ExecutionInput {
  const runbook = parseRunbook({
    name: 'fan-out',
    version: 1,
    description: 'a step on 120 instances',
    roleArn: DEMO_ROLE_ARN,
    targets: { tags: { Fleet: 'big' } },
    steps: [{ name: 'work', timeoutSeconds: 60, ...step }],
  });
  return buildPlan({
    executionId: `mx-fan${randomUUID().slice(0, 8)}`,
    runbook,
    runbookDigest: 'f'.repeat(64),
    rawParams: {},
    targets: IDS.map((instanceId, n) => ({ instanceId, name: nameOf(n) })),
    requester: 'alice',
    reason: 'fan-out test',
    region: REGION,
    now: new Date(),
  });
}

async function start(given: ExecutionInput): Promise<WorkflowHandle<typeof runbookExecution>> {
  const handle = await client.workflow.start(runbookExecution, {
    taskQueue,
    workflowId: given.plan.executionId,
    args: [given],
  });
  await handle.executeUpdate(voteUpdate, {
    args: [{ approver: 'bob', decision: 'approve', planDigest: given.planDigest }],
  });
  return handle;
}

/** devfleet's record of what ran for a run: one entry per started invocation. */
const ranFor = async (executionId: string): Promise<CommandLogEntry[]> =>
  (await readCommandLog(fleet.dataDir)).filter((e) => e.comment.startsWith(`mechanic ${executionId} `));

/** The run's commands as SSM holds them, in batch order. */
async function commandsOf(executionId: string): Promise<Command[]> {
  const { ssm } = await fleet.assume();
  const out = await ssm.send(new ListCommandsCommand({ MaxResults: 50 }));
  return (out.Commands ?? [])
    .filter((c) => c.Comment?.startsWith(`mechanic ${executionId} `))
    .sort((a, b) => a.Comment!.localeCompare(b.Comment!, 'en', { numeric: true }));
}

/** The most invocations running at once, from the order of their starts and ends. */
function mostAtOnce(log: readonly CommandLogEntry[]): number {
  const marks = log.flatMap((e) => [
    { at: Date.parse(e.startedAt), d: 1 },
    { at: Date.parse(e.finishedAt!), d: -1 },
  ]);
  // An end and a start at the same instant: the end came first (devfleet frees a slot, then fills it).
  marks.sort((a, b) => a.at - b.at || a.d - b.d);
  let now = 0;
  let most = 0;
  for (const m of marks) most = Math.max(most, (now += m.d));
  return most;
}

/** The workflow types and activities a history scheduled. */
async function shapeOf(handle: { fetchHistory(): ReturnType<WorkflowHandle['fetchHistory']> }) {
  const history = await handle.fetchHistory();
  const events = history.events ?? [];
  return {
    history,
    events: events.length,
    children: events.flatMap((e) => e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowType?.name ?? []),
    activities: events.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []),
  };
}

describe('a step on 120 instances', () => {
  let given: ExecutionInput;
  let view: ExecutionView;

  test('is sent as three SendCommands of at most 50 ids, each sent once though two answers were lost, and runs on every instance once', async () => {
    given = input({ script: 'echo "ran on $MECHANIC_INSTANCE_NAME"' });
    const handle = await start(given);
    view = await handle.result();
    expect(view.status).toBe('completed');

    // devfleet took three SendCommands, and lost the answers of the first two: each was adopted.
    const sends = (await readCallLog(fleet.dataDir)).filter((c) => c.operation === 'SendCommand');
    expect(sends).toHaveLength(3);
    const commands = await commandsOf(given.plan.executionId);
    expect(commands.map((c) => [c.Comment, c.InstanceIds?.length])).toEqual([
      [`mechanic ${given.plan.executionId} step 0 batch 1`, 50],
      [`mechanic ${given.plan.executionId} step 0 batch 2`, 50],
      [`mechanic ${given.plan.executionId} step 0 batch 3`, 20],
    ]);
    expect(commands.flatMap((c) => c.InstanceIds)).toEqual(IDS);

    // Every instance ran exactly once.
    const log = await ranFor(given.plan.executionId);
    expect(log.map((e) => e.instanceId).sort()).toEqual([...IDS].sort());
    expect(log.every((e) => e.status === 'Success')).toBe(true);

    // The view counts every instance and lists those that did not succeed (none); outputs are in
    // the audit log, never in the workflow.
    const step = view.steps[0]!;
    expect(step.status).toBe('succeeded');
    expect(step.summary).toEqual({ total: N, byStatus: { Success: N } });
    expect(step.instances).toEqual([]);
    const records = await audit.list({ executionId: given.plan.executionId, limit: 1000 });
    const results = records.filter((r) => r.type === 'step.instance');
    expect(results).toHaveLength(N);
    expect(results.find((r) => r.data['instanceId'] === IDS[77])?.data['stdout']).toBe(`ran on ${nameOf(77)}\n`);
    expect(records.filter((r) => r.type === 'step.started').map((r) => r.data['commandId'])).toEqual(
      commands.map((c) => c.CommandId),
    );
    expect(records.filter((r) => r.type === 'step.completed').map((r) => [r.data['ok'], r.data['instances']])).toEqual([
      [true, undefined],
    ]);

    // The run's history holds one child for the step; the child one activity per batch.
    const parent = await shapeOf(handle);
    expect(parent.children).toEqual(['fanOutStep']);
    expect(parent.activities).not.toContain('dispatchStep');
    const child = await shapeOf(client.workflow.getHandle(`${given.plan.executionId}:main-step-0`));
    // The child loads the plan's ids first (the fan-out-targets patch), then sends its batches.
    expect(child.activities).toEqual(['planTargets', 'runBatch', 'runBatch', 'runBatch']);
    // Both replay against today's code (what the recorded fixtures pin for the future).
    await Worker.runReplayHistory({ workflowsPath: WORKFLOWS_PATH }, parent.history, given.plan.executionId);
    await Worker.runReplayHistory(
      { workflowsPath: WORKFLOWS_PATH },
      child.history,
      `${given.plan.executionId}:main-step-0`,
    );
    if (process.env['RECORD_HISTORIES'] === '1') {
      const dir = fileURLToPath(new URL('../replay/histories/', import.meta.url));
      await writeFile(path.join(dir, 'fan-out.json'), historyToJSON(parent.history));
      await writeFile(path.join(dir, 'fan-out-step.json'), historyToJSON(child.history));
    }
  }, 180_000);

  test('maxConcurrency holds across the batches: never more than 30 instances at once', async () => {
    const run = input({ script: 'sleep 0.3\necho done', maxConcurrency: 30 });
    const result = await (await start(run)).result();
    expect(result.status).toBe('completed');
    const log = await ranFor(run.plan.executionId);
    expect(log).toHaveLength(N);
    const most = mostAtOnce(log);
    expect(most).toBeLessThanOrEqual(30);
    expect(most).toBeGreaterThan(1);
    // Each batch was sent with the step's bound as its own, one batch at a time.
    const commands = await commandsOf(run.plan.executionId);
    expect(commands.map((c) => c.MaxConcurrency)).toEqual(['30', '30', '30']);
  }, 180_000);

  test('maxConcurrency above 50 runs batches side by side, and still never more than the bound', async () => {
    const run = input({ script: 'sleep 0.5\necho done', maxConcurrency: 100 });
    const result = await (await start(run)).result();
    expect(result.status).toBe('completed');
    const log = await ranFor(run.plan.executionId);
    expect(log).toHaveLength(N);
    expect(mostAtOnce(log)).toBeLessThanOrEqual(100);
    // Two batches of 50 ran side by side: more than one SendCommand's worth at once.
    expect(mostAtOnce(log)).toBeGreaterThan(50);
  }, 180_000);

  test('maxErrors counts across the step: once more instances failed than it allows, no further batch is sent', async () => {
    // Two failures in batch 1 (within maxErrors 2), a third in batch 2: batch 3 is never sent.
    const failing = [nameOf(0), nameOf(1), nameOf(60)];
    const run = input({
      script: `case "$MECHANIC_INSTANCE_NAME" in ${failing.join('|')}) echo broken >&2; exit 3;; esac\necho fine`,
      maxErrors: 2,
    });
    const result = await (await start(run)).result();
    expect(result.status).toBe('failed');
    expect(result.reason).toBe('step "work" failed');

    const commands = await commandsOf(run.plan.executionId);
    // Batch 2 went out with what was left of the budget (0): SSM stops it at its first failure.
    expect(commands.map((c) => [c.Comment?.split(' ').pop(), c.MaxErrors])).toEqual([
      ['1', '2'],
      ['2', '0'],
    ]);
    const ran = await ranFor(run.plan.executionId);
    expect(ran.some((e) => IDS.indexOf(e.instanceId) >= 100)).toBe(false);
    expect(ran.filter((e) => e.status === 'Failed').map((e) => e.responseCode)).toEqual([3, 3, 3]);

    const step = result.steps[0]!;
    expect(step.status).toBe('failed');
    expect(step.summary).toEqual({ total: N, byStatus: { Success: N - 23, Failed: 3, Terminated: 20 } });
    expect(
      step.instances.filter((i) => i.statusDetails === 'Failed').map((i) => [i.instanceId, i.responseCode]),
    ).toEqual([0, 1, 60].map((n) => [IDS[n], 3]));
    const notRun = step.instances.filter((i) => i.statusDetails === 'Terminated');
    expect(notRun.map((i) => [i.instanceId, i.status, i.responseCode])).toEqual(
      IDS.slice(100).map((id) => [id, 'Cancelled', -1]),
    );
    // The step's record names the instances never sent; the others have their own records.
    const completed = (await audit.list({ executionId: run.plan.executionId, limit: 1000 })).find(
      (r) => r.type === 'step.completed',
    );
    expect((completed?.data['instances'] as { instanceId: string; status: string }[]).map((i) => i.instanceId)).toEqual(
      IDS.slice(100),
    );
    expect(completed?.data['ok']).toBe(false);
    // The view rebuilt from the audit log alone tells the same story (the same counts, the same
    // unsuccessful instances listed), with each listed instance's recorded output.
    const rebuilt = viewFromAudit(await audit.list({ executionId: run.plan.executionId, limit: 1000 }));
    expect(rebuilt!.steps[0]!.summary).toEqual(step.summary);
    expect(rebuilt!.steps[0]!.instances.map((i) => [i.instanceId, i.statusDetails])).toEqual(
      step.instances.map((i) => [i.instanceId, i.statusDetails]),
    );
    expect(rebuilt!.steps[0]!.instances.find((i) => i.instanceId === IDS[0])?.stderr).toMatch(/^broken\n/);
    expect(rebuilt!.steps[0]!.status).toBe('failed');
  }, 180_000);

  test('a retried step goes out again, as batches, only where it failed; each attempt its own commands', async () => {
    // node-000 … node-059 fail their first run (a marker in the instance's folder), then succeed.
    const run = input({
      script:
        'case "$MECHANIC_INSTANCE_NAME" in node-0[0-5]?) if [ ! -f tried ]; then touch tried; exit 5; fi;; esac\necho ok',
      maxErrors: '100%',
      retries: 1,
      retryDelaySeconds: 1,
    });
    const result = await (await start(run)).result();
    expect(result.status).toBe('completed');
    const step = result.steps[0]!;
    expect([step.status, step.attempt]).toEqual(['succeeded', 2]);
    expect(step.summary).toEqual({ total: N, byStatus: { Success: N } });
    const commands = await commandsOf(run.plan.executionId);
    const id = run.plan.executionId;
    expect(commands.map((c) => [c.Comment, c.InstanceIds?.length])).toEqual(
      expect.arrayContaining([
        [`mechanic ${id} step 0 batch 1`, 50],
        [`mechanic ${id} step 0 batch 2`, 50],
        [`mechanic ${id} step 0 batch 3`, 20],
        [`mechanic ${id} step 0 attempt 2 batch 1`, 50],
        [`mechanic ${id} step 0 attempt 2 batch 2`, 10],
      ]),
    );
    expect(commands).toHaveLength(5);
    // The 60 that failed ran twice, the others once.
    const runs = new Map<string, number>();
    for (const e of await ranFor(id)) runs.set(e.instanceId, (runs.get(e.instanceId) ?? 0) + 1);
    expect(IDS.map((i, n) => runs.get(i) === (n < 60 ? 2 : 1)).every(Boolean)).toBe(true);
  }, 180_000);

  test('a retry on 50 instances or fewer goes out directly, and the step is still counted over all its instances', async () => {
    // node-000 … node-009 fail their first run, then succeed: the second attempt is one command.
    const run = input({
      // (Its own marker: the instances' folders keep the other retry test's.)
      script:
        'case "$MECHANIC_INSTANCE_NAME" in node-00?) if [ ! -f tried-few ]; then touch tried-few; exit 5; fi;; esac\necho ok',
      maxErrors: '100%',
      retries: 1,
      retryDelaySeconds: 1,
    });
    const result = await (await start(run)).result();
    expect(result.status).toBe('completed');
    const step = result.steps[0]!;
    expect([step.status, step.attempt]).toEqual(['succeeded', 2]);
    // Not the first attempt's counts, nor a list of every instance: all of them, counted.
    expect(step.summary).toEqual({ total: N, byStatus: { Success: N } });
    expect(step.instances).toEqual([]);
    const rebuilt = viewFromAudit(await audit.list({ executionId: run.plan.executionId, limit: 1000 }));
    expect(rebuilt!.steps[0]!.summary).toEqual(step.summary);
    expect(rebuilt!.steps[0]!.instances).toEqual([]);
    expect((await commandsOf(run.plan.executionId)).map((c) => c.InstanceIds?.length)).toEqual(
      expect.arrayContaining([50, 50, 20, 10]),
    );
  }, 180_000);

  test('a cancel during the step stops sending, cancels the batch under way, and the run says so', async () => {
    const run = input({ script: 'sleep 30', maxConcurrency: 10 });
    const handle = await start(run);
    // Wait for the first batch to be running on devfleet.
    for (;;) {
      if ((await ranFor(run.plan.executionId)).length > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await handle.executeUpdate(cancelUpdate, { args: [{ by: 'alice', reason: 'enough' }] });
    const result = await handle.result();
    expect(result.status).toBe('cancelled');
    const step = result.steps[0]!;
    expect(step.status).toBe('cancelled');
    // Only the first batch was ever sent; what was running there was cancelled.
    const commands = await commandsOf(run.plan.executionId);
    expect(commands).toHaveLength(1);
    expect(commands[0]?.Status).toBe('Cancelled');
    const ran = await ranFor(run.plan.executionId);
    expect(ran.length).toBeLessThanOrEqual(10);
    expect(ran.every((e) => e.status === 'Cancelled')).toBe(true);
    // Every instance is cancelled: those of the batch under way in SSM, the rest never sent.
    expect(step.summary).toEqual({ total: N, byStatus: { Cancelled: N } });
    expect(step.instances).toHaveLength(100);
    expect((await handle.query(statusQuery)).status).toBe('cancelled');
  }, 180_000);
});
