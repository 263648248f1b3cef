import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { BatchOutcome, BatchRequest } from '../../src/activities/ssm.ts';
import { buildPlan } from '../../src/core/plan.ts';
import { parseRunbook } from '../../src/core/runbook.ts';
import { MAX_TARGETS } from '../../src/core/targets.ts';
import { WORKFLOWS_PATH } from '../../src/temporal/worker.ts';
import { runbookExecution, voteUpdate } from '../../workflows/runbook-execution.ts';
import { fakeActivities } from '../helpers/fake-activities.ts';
import { quietTemporalLogs, startTestTemporal, type TestTemporal } from '../helpers/temporal.ts';

/**
 * Issue 11, part 1: a run on 10,000 instances (200 batches) keeps every workflow history under
 * 5,000 events and every payload small, on a real Temporal dev server. The batches are
 * object-literal activities (what devfleet would run is proven by fanout.test.ts on 120 instances):
 * this pins the workflow side — one child per step, one activity per batch, no outputs in history.
 */

let temporal: TestTemporal;
let connection: Connection;
let native: NativeConnection;
let client: Client;

beforeAll(async () => {
  temporal = await startTestTemporal();
  connection = await Connection.connect({ address: temporal.address });
  native = await NativeConnection.connect({ address: temporal.address });
  client = new Client({ connection, namespace: temporal.namespace });
}, 60_000);
afterAll(async () => {
  await native?.close();
  await connection?.close();
  await temporal?.teardown();
});

const ids = Array.from({ length: MAX_TARGETS }, (_, i) => `i-${i.toString(16).padStart(17, '0')}`);

test('a step on 10,000 instances: 200 batches, every history under 5,000 events, no output in any payload', async () => {
  quietTemporalLogs();
  const fake = fakeActivities();
  const sent: BatchRequest[] = [];
  const activities = {
    ...fake.activities,
    async runBatch(req: BatchRequest): Promise<BatchOutcome> {
      sent.push(req);
      return {
        commandId: `cmd-${req.batch}`,
        instances: req.instanceIds.map((instanceId) => ({
          instanceId,
          status: 'Success',
          statusDetails: 'Success',
          responseCode: 0,
        })),
      };
    },
  };
  const runbook = parseRunbook({
    name: 'fleet-wide',
    version: 1,
    description: 'a step on the whole fleet',
    roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
    targets: { tags: { Fleet: 'all' } },
    maxConcurrency: '10%',
    steps: [
      { name: 'first', script: 'echo one', timeoutSeconds: 60 },
      { name: 'second', script: 'echo two', timeoutSeconds: 60 },
    ],
  });
  const input = buildPlan({
    executionId: `mx-big${randomUUID().slice(0, 8)}`,
    runbook,
    runbookDigest: 'f'.repeat(64),
    rawParams: {},
    targets: ids.map((instanceId) => ({ instanceId })),
    requester: 'alice',
    reason: 'history bound',
    region: 'us-east-1',
    now: new Date(),
  });
  const taskQueue = `fanout-history-${randomUUID()}`;
  const worker = await Worker.create({
    connection: native,
    namespace: temporal.namespace,
    taskQueue,
    workflowsPath: WORKFLOWS_PATH,
    activities,
  });
  const id = input.plan.executionId;
  const view = await worker.runUntil(async () => {
    const handle = await client.workflow.start(runbookExecution, { taskQueue, workflowId: id, args: [input] });
    await handle.executeUpdate(voteUpdate, {
      args: [{ approver: 'bob', decision: 'approve', planDigest: input.planDigest }],
    });
    return handle.result();
  });
  expect(view.status).toBe('completed');
  expect(view.steps.map((s) => [s.status, s.summary, s.instances.length])).toEqual([
    ['succeeded', { total: MAX_TARGETS, byStatus: { Success: MAX_TARGETS } }, 0],
    ['succeeded', { total: MAX_TARGETS, byStatus: { Success: MAX_TARGETS } }, 0],
  ]);
  // 200 batches a step, each at most 50 ids; 10% of 10,000 is 1,000 at once: 20 batches of 50.
  expect(sent).toHaveLength(400);
  expect(Math.max(...sent.map((b) => b.instanceIds.length))).toBe(50);
  expect(new Set(sent.filter((b) => b.stepIndex === 0).flatMap((b) => b.instanceIds)).size).toBe(MAX_TARGETS);
  expect(new Set(sent.map((b) => b.maxConcurrency))).toEqual(new Set(['50']));

  const histories = {
    parent: await client.workflow.getHandle(id).fetchHistory(),
    first: await client.workflow.getHandle(`${id}:main-step-0`).fetchHistory(),
    second: await client.workflow.getHandle(`${id}:main-step-1`).fetchHistory(),
  };
  const counts = Object.fromEntries(Object.entries(histories).map(([k, h]) => [k, h.events?.length ?? 0]));
  for (const n of Object.values(counts)) expect(n).toBeLessThan(5_000);
  // The run's own history does not grow with batches: a child per step, nothing per batch.
  expect(counts['parent']).toBeLessThan(100);
  // No payload carries output, and none comes near Temporal's 2 MiB limit.
  let largest = 0;
  for (const h of Object.values(histories)) {
    for (const e of h.events ?? []) {
      const attrs = JSON.stringify(e, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString() : v));
      expect(attrs).not.toContain('first on i-');
      largest = Math.max(largest, attrs.length);
    }
  }
  expect(largest).toBeLessThan(2 * 1024 * 1024);
  // A step's result counts its 10,000 instances at a few bytes each (as objects: 1.3 MB, in both
  // the child's history and the run's).
  const results = [
    ...(histories.parent.events ?? []).map((e) => e.childWorkflowExecutionCompletedEventAttributes?.result),
    ...Object.values(histories).map((h) => h.events?.at(-1)?.workflowExecutionCompletedEventAttributes?.result),
  ].flatMap((r) => (r ? [(r.payloads ?? []).reduce((n, p) => n + (p.data?.length ?? 0), 0)] : []));
  expect(results).toHaveLength(2 + 3);
  for (const bytes of results.slice(0, 2)) expect(bytes).toBeLessThan(64 * 1024);
  console.log(`fan-out history: ${JSON.stringify(counts)} events; largest event ${largest} bytes`);
}, 300_000);
