/**
 * A vote for a run that ends under it. The run takes the vote (its validator passes), but ends in
 * Temporal before the vote is done: here it is terminated from Temporal while it cannot yet write
 * its request record, so the vote's handler is still waiting for that record. The voter is told in
 * one sentence that the run has ended, and the refusal is on the record; a vote sent after that is
 * told the same, not that there is no such execution (the run's records still say it waits).
 *
 * Real parts: a Temporal dev server, the real workflow code on a real worker whose activities write
 * to a real SQLite audit log, the real execution service and Cedar policies. The worker's audit
 * store refuses, for a while, to write the run's request record (a fault: the store is busy); the
 * server's own write of that record has gone through, as launch does it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createActivities } from '../../src/activities/index.ts';
import { createInventory } from '../../src/activities/inventory.ts';
import { createStsClient, ssmClients } from '../../src/activities/aws.ts';
import { loadCedarAuthorizer } from '../../src/authz/cedar-authorizer.ts';
import { DEMO_USERS } from '../../src/authz/users.ts';
import { requestedEvent } from '../../src/core/audit-events.ts';
import { UserError } from '../../src/core/errors.ts';
import { createExecutionService, type ExecutionService } from '../../src/server/executions.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { loadRunbookRegistry } from '../../src/store/runbook-registry.ts';
import { WORKFLOWS_PATH } from '../../src/temporal/worker.ts';
import { runbookExecution } from '../../workflows/runbook-execution.ts';
import { waitFor } from '../helpers/parts.ts';
import { testInput } from '../helpers/plans.ts';
import { quietTemporalLogs, startTestTemporal, type TestTemporal } from '../helpers/temporal.ts';

const TASK_QUEUE = 'vote-run-ended';
const user = (id: string) => DEMO_USERS.find((u) => u.id === id)!;
const aws = { region: 'us-east-1', endpoint: 'http://127.0.0.1:1' };

let home: string;
let temporal: TestTemporal;
let connection: Connection;
let native: NativeConnection;
let client: Client;
let audit: AuditStore;
let service: ExecutionService;
let worker: Worker | undefined;
let running: Promise<void> | undefined;
/** How often the worker's store was asked to write a request record (and refused). */
let requestWrites = 0;

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
    if (event.type !== 'execution.requested') return audit.append(event);
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
      sts: createStsClient(aws),
      ssmFor: ssmClients(aws),
      pollIntervalMs: { min: 100, max: 1000 },
      deliveryTimeoutSeconds: 60,
    }),
  });
  running = worker.run();
  service = createExecutionService({
    client,
    taskQueue: TASK_QUEUE,
    registry: await loadRunbookRegistry('runbooks'),
    inventory: createInventory({ sts: createStsClient(aws), ssmFor: ssmClients(aws) }),
    audit,
    region: 'us-east-1',
    settings: { heartbeatTimeoutSeconds: 60 },
    authorizer: await loadCedarAuthorizer(),
  });
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

const refusal = async (p: Promise<unknown>): Promise<UserError> => {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(UserError);
  return e as UserError;
};

test('a vote the run took before it was terminated, and one sent after, are told the run has ended, on the record', async () => {
  // Started as launch starts it: the workflow, then the request on the record.
  const input = testInput();
  const id = input.plan.executionId;
  const handle = await client.workflow.start(runbookExecution, {
    taskQueue: TASK_QUEUE,
    workflowId: id,
    args: [input],
  });
  await audit.append(requestedEvent(input));
  await waitFor('the run to try to write its request', async () => (requestWrites > 0 ? true : undefined));

  const vote = refusal(service.vote(user('bob'), id, { decision: 'approve', planDigest: input.planDigest }));
  await waitFor('the run to take the vote', async () =>
    ((await handle.fetchHistory()).events ?? []).some((e) => e.workflowExecutionUpdateAcceptedEventAttributes)
      ? true
      : undefined,
  );
  await handle.terminate('stopped by an operator in Temporal');

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
