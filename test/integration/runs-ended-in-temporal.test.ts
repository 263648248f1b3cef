/**
 * Runs that Temporal ends without the run recording its end. The run takes a vote (its validator
 * passes), but is terminated from Temporal while it cannot yet write its request record, so the
 * vote's handler is still waiting for that record: the voter is told in one sentence that the run
 * has ended, on the record, and so is a voter after that (not that there is no such execution).
 * The API server's sweep then records the end of every such run as `execution.failed`, with what
 * Temporal says — who terminated it and why, or the failure of a run that failed as a workflow —
 * at the time Temporal closed it, once however often it sweeps; the run's status says so from then.
 *
 * Real parts: a Temporal dev server (its visibility store answers the sweep's query), the real
 * workflow code on a real worker whose activities write to a real SQLite audit log, the real
 * execution service and Cedar policies. The worker's audit store refuses, for the runs the test
 * names, to write the run's request record (a fault: the store is busy); the server's own write of
 * that record has gone through, as launch does it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createActivities } from '../../src/activities/index.ts';
import { createStsClient, ssmClients } from '../../src/activities/aws.ts';
import { DEMO_USERS } from '../../src/authz/users.ts';
import { requestedEvent } from '../../src/core/audit-events.ts';
import { UserError } from '../../src/core/errors.ts';
import type { ExecutionInput } from '../../src/core/execution.ts';
import { ENDED_OUTSIDE_QUERY, recordRunsEndedInTemporal } from '../../src/server/ended-runs.ts';
import type { ExecutionService } from '../../src/server/executions.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { searchAttributes } from '../../src/temporal/search-attributes.ts';
import { WORKFLOWS_PATH } from '../../src/temporal/worker.ts';
import { runbookExecution } from '../../workflows/runbook-execution.ts';
import { rejectionOf } from '../helpers/core-samples.ts';
import { NO_AWS, serviceWithoutAws } from '../helpers/service.ts';
import { waitFor } from '../helpers/parts.ts';
import { testInput } from '../helpers/plans.ts';
import { quietTemporalLogs, startTestTemporal, type TestTemporal } from '../helpers/temporal.ts';

const TASK_QUEUE = 'vote-run-ended';
const user = (id: string) => DEMO_USERS.find((u) => u.id === id)!;

let home: string;
let temporal: TestTemporal;
let connection: Connection;
let native: NativeConnection;
let client: Client;
let audit: AuditStore;
let service: ExecutionService;
let worker: Worker | undefined;
let running: Promise<void> | undefined;
/** Runs whose request record the worker's store refuses to write, and how often it was asked. */
const busyFor = new Set<string>();
let requestWrites = 0;
const log = { info() {}, error() {} };

beforeAll(async () => {
  quietTemporalLogs();
  home = await mkdtemp(path.join(tmpdir(), 'mechanic-vote-run-ended-'));
  temporal = await startTestTemporal();
  connection = await Connection.connect({ address: temporal.address });
  native = await NativeConnection.connect({ address: temporal.address });
  client = new Client({ connection, namespace: temporal.namespace });
  audit = await openAuditStore({ kind: 'sqlite', file: path.join(home, 'audit.db') });
  // The worker's view of the store: busy for the run's request record, as is for everything else.
  const busy: AuditStore = Object.create(audit) as AuditStore;
  busy.append = (event) => {
    if (event.type !== 'execution.requested' || !busyFor.has(event.executionId!)) return audit.append(event);
    requestWrites++;
    return Promise.reject(new Error('the audit store is busy'));
  };
  worker = await Worker.create({
    connection: native,
    namespace: temporal.namespace,
    taskQueue: TASK_QUEUE,
    workflowsPath: WORKFLOWS_PATH,
    activities: createActivities({
      audit: busy,
      sts: createStsClient(NO_AWS),
      ssmFor: ssmClients(NO_AWS),
      pollIntervalMs: { min: 100, max: 1000 },
      deliveryTimeoutSeconds: 60,
    }),
  });
  running = worker.run();
  service = await serviceWithoutAws({ client, taskQueue: TASK_QUEUE, audit });
}, 180_000);

afterAll(async () => {
  if (worker?.getState() === 'RUNNING') worker.shutdown();
  await running;
  await native?.close();
  await connection?.close();
  await audit?.close();
  await temporal?.teardown();
  if (home) await rm(home, { recursive: true, force: true });
});

/** Started as launch starts it: the workflow with its search attributes, then the request on the record. */
async function launched(input: ExecutionInput): Promise<WorkflowHandle<typeof runbookExecution>> {
  const handle = await client.workflow.start(runbookExecution, {
    taskQueue: TASK_QUEUE,
    workflowId: input.plan.executionId,
    args: [input],
    typedSearchAttributes: [
      { key: searchAttributes.runbook, value: input.plan.runbook.name },
      { key: searchAttributes.operator, value: input.plan.requester },
      { key: searchAttributes.status, value: 'awaiting_approval' },
    ],
  });
  await audit.append(requestedEvent(input));
  return handle;
}

/**
 * Sweeps until a sweep has recorded `id` (Temporal's visibility lags its closes a little), two at
 * once each time, as two API servers would.
 */
async function sweptUntil(id: string, closedAfter?: Date): Promise<void> {
  await waitFor(`the sweep to record the end of ${id}`, async () => {
    const swept = await Promise.all([1, 2].map(() => recordRunsEndedInTemporal({ client, audit, log }, closedAfter)));
    return swept.flat().includes(id) ? true : undefined;
  });
}

const ends = async (id: string) =>
  (await audit.list({ executionId: id })).filter(
    (r) => r.type.startsWith('execution.') && r.type !== 'execution.requested' && r.type !== 'execution.running',
  );

const refusal = (p: Promise<unknown>) => rejectionOf(p, UserError);

test('a vote the run took before it was terminated, and one sent after, are told the run has ended, on the record', async () => {
  const input = testInput();
  const id = input.plan.executionId;
  busyFor.add(id);
  const handle = await launched(input);
  await waitFor('the run to try to write its request', async () => (requestWrites > 0 ? true : undefined));

  const vote = refusal(service.vote(user('bob'), id, { decision: 'approve', planDigest: input.planDigest }));
  await waitFor('the run to take the vote', async () =>
    ((await handle.fetchHistory()).events ?? []).some((e) => e.workflowExecutionUpdateAcceptedEventAttributes)
      ? true
      : undefined,
  );
  await client.workflowService.terminateWorkflowExecution({
    namespace: temporal.namespace,
    workflowExecution: { workflowId: id },
    reason: 'stuck; stopped from the Temporal UI',
    identity: 'erin@example.com',
  });

  const sentence = `execution ${id} has ended in Temporal; it can no longer be approved, and "mechanic status ${id}" shows how it ended`;
  const taken = await vote;
  expect([taken.code, taken.message]).toEqual(['EXECUTION_FINISHED', sentence]);
  const after = await refusal(service.vote(user('carol'), id, { decision: 'reject', planDigest: input.planDigest }));
  expect([after.code, after.message]).toEqual(['EXECUTION_FINISHED', sentence]);

  const refused = (await audit.list({ executionId: id })).filter((r) => r.type === 'approval.refused');
  expect(refused.map((r) => [r.actor, r.data['code'], r.data['reason']])).toEqual([
    ['bob', 'EXECUTION_FINISHED', sentence],
    ['carol', 'EXECUTION_FINISHED', sentence],
  ]);
}, 120_000);

test('the sweep records the end of the terminated run once, with who and why, and its status says so', async () => {
  const id = [...busyFor][0]!;
  await sweptUntil(id);
  const reason =
    'it ended in Temporal without recording its end: terminated by "erin@example.com": "stuck; stopped from the Temporal UI"';
  const recorded = await ends(id);
  expect(recorded.map((r) => [r.type, r.actor, r.data])).toEqual([['execution.failed', 'mechanic', { reason }]]);
  const closed = (await client.workflow.getHandle(id).describe()).closeTime!;
  expect(recorded[0]!.at).toBe(closed.toISOString());

  // Swept again (a second server, or the next tick): nothing more is written.
  expect(await recordRunsEndedInTemporal({ client, audit, log })).toEqual([]);
  expect(await ends(id)).toHaveLength(1);

  // The run answers a query as it stood when terminated; its status is what the record says.
  const view = await service.get(id);
  expect([view.status, view.reason]).toEqual(['failed', reason]);
  expect((await audit.getExecution(id))?.status).toBe('failed');
  const late = await refusal(service.vote(user('dave'), id, { decision: 'approve', planDigest: 'a'.repeat(64) }));
  expect(late.code).toBe('EXECUTION_FINISHED');
  expect((await audit.verify()).ok).toBe(true);
}, 120_000);

test('a run that failed as a workflow (its request record conflicts) is recorded failed with the failure', async () => {
  const input = testInput();
  const id = input.plan.executionId;
  // The record on file is not the run's own: the run's write of its request conflicts, and the
  // workflow fails there, before any vote.
  await audit.append({ ...requestedEvent(input), at: '2026-01-01T00:00:00.000Z' });
  await client.workflow.start(runbookExecution, {
    taskQueue: TASK_QUEUE,
    workflowId: id,
    args: [input],
    typedSearchAttributes: [{ key: searchAttributes.status, value: 'awaiting_approval' }],
  });
  await expect(client.workflow.getHandle(id).result()).rejects.toThrow();
  await sweptUntil(id);
  const [end] = await ends(id);
  expect(end?.type).toBe('execution.failed');
  expect(end?.data['reason']).toMatch(
    /^it ended in Temporal without recording its end: it failed: "audit event \S+ was already recorded \(seq \d+\) with different content"$/,
  );
  expect((await service.get(id)).status).toBe('failed');
}, 120_000);

test('a run terminated before any worker took it (it cannot be queried at all) reads as failed from its records', async () => {
  const input = testInput();
  const id = input.plan.executionId;
  // On a task queue no worker polls: the run is closed before its first workflow task.
  await client.workflow.start(runbookExecution, {
    taskQueue: `${TASK_QUEUE}-nobody`,
    workflowId: id,
    args: [input],
    typedSearchAttributes: [{ key: searchAttributes.status, value: 'awaiting_approval' }],
  });
  await audit.append(requestedEvent(input));
  await client.workflow.getHandle(id).terminate('started by mistake');
  // Once Temporal lists it as closed: a sweep that looks only at runs closed later leaves it, one
  // that looks at those closed since an hour ago records it.
  await waitFor('Temporal to list the run as ended', async () => {
    for await (const run of client.workflow.list({ query: ENDED_OUTSIDE_QUERY }))
      if (run.workflowId === id) return true;
    return undefined;
  });
  expect(await recordRunsEndedInTemporal({ client, audit, log }, new Date(Date.now() + 60_000))).toEqual([]);
  await sweptUntil(id, new Date(Date.now() - 3_600_000));
  const view = await service.get(id);
  expect([view.status, view.reason]).toEqual([
    'failed',
    expect.stringMatching(
      /^it ended in Temporal without recording its end: terminated by "[^"]+": "started by mistake"$/,
    ),
  ]);
}, 120_000);
