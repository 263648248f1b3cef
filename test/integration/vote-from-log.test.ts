/**
 * A vote is decided from the run's own records, not from a status query to a worker that may be
 * busy: with the run's worker stopped after the run reached awaiting_approval, an own-run vote and
 * a vote for another plan are refused from the audit log with one audited sentence, and no query is
 * sent; an allowed vote waits for the run's update as before, and is counted and recorded once a
 * worker takes it. A log a little behind the run only means a later refusal from the workflow's
 * validator: two votes by one person sent before either is recorded both pass the log, and the run
 * takes one and refuses the other, on the record.
 *
 * Real parts: a Temporal dev server, the real workflow code on a real worker whose activities write
 * to a real SQLite audit log, the real execution service and Cedar policies. The plan needs two
 * approvals, so the run never leaves the approval stage for STS or SSM until the race at the end
 * rejects it. The server's Temporal client counts the queries and updates it sends (an interceptor
 * that only counts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection, type WorkflowClientInterceptor } from '@temporalio/client';
import { NativeConnection, Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createActivities } from '../../src/activities/index.ts';
import { createStsClient, ssmClients } from '../../src/activities/aws.ts';
import { DEMO_USERS } from '../../src/authz/users.ts';
import { requestedEvent } from '../../src/core/audit-events.ts';
import { UserError } from '../../src/core/errors.ts';
import type { ExecutionInput } from '../../src/core/execution.ts';
import type { ExecutionService } from '../../src/server/executions.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { WORKFLOWS_PATH } from '../../src/temporal/worker.ts';
import { runbookExecution, statusQuery } from '../../workflows/runbook-execution.ts';
import { rejectionOf } from '../helpers/core-samples.ts';
import { NO_AWS, serviceWithoutAws } from '../helpers/service.ts';
import { waitFor } from '../helpers/parts.ts';
import { testInput } from '../helpers/plans.ts';
import { quietTemporalLogs, startTestTemporal, type TestTemporal } from '../helpers/temporal.ts';

const TASK_QUEUE = 'vote-from-log';
const silent = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} };
const user = (id: string) => DEMO_USERS.find((u) => u.id === id)!;

describe('a vote is decided from the run’s records while its worker cannot answer', () => {
  let home: string;
  let temporal: TestTemporal;
  let connection: Connection;
  let native: NativeConnection;
  let audit: AuditStore;
  let service: ExecutionService;
  let bundle: WorkflowBundleWithSourceMap;
  let worker: { stop(): Promise<void> } | undefined;
  let input: ExecutionInput;
  let id: string;
  /** What the service's Temporal client sent: status queries, and updates (counted as they leave). */
  const sent = { queries: 0, updates: 0 };

  /** A worker for the run's task queue, with the real activities writing to the audit log. */
  async function startWorker(): Promise<{ stop(): Promise<void> }> {
    const w = await Worker.create({
      connection: native,
      namespace: temporal.namespace,
      taskQueue: TASK_QUEUE,
      workflowBundle: bundle,
      activities: createActivities({
        audit,
        sts: createStsClient(NO_AWS),
        ssmFor: ssmClients(NO_AWS),
        pollIntervalMs: { min: 100, max: 1000 },
        deliveryTimeoutSeconds: 60,
      }),
    });
    const running = w.run();
    return {
      async stop() {
        if (w.getState() === 'RUNNING') w.shutdown();
        await running;
      },
    };
  }

  const records = async (type: string) => (await audit.list({ executionId: id })).filter((r) => r.type === type);

  const refusal = (p: Promise<unknown>) => rejectionOf(p, UserError);

  beforeAll(async () => {
    quietTemporalLogs();
    home = await mkdtemp(path.join(tmpdir(), 'mechanic-vote-from-log-'));
    temporal = await startTestTemporal();
    connection = await Connection.connect({ address: temporal.address });
    native = await NativeConnection.connect({ address: temporal.address });
    const counting: WorkflowClientInterceptor = {
      query: (q, next) => {
        sent.queries++;
        return next(q);
      },
      startUpdate: (u, next) => {
        sent.updates++;
        return next(u);
      },
    };
    const client = new Client({ connection, namespace: temporal.namespace, interceptors: { workflow: [counting] } });
    audit = await openAuditStore({ kind: 'sqlite', file: path.join(home, 'audit.db') });
    bundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: silent });
    service = await serviceWithoutAws({
      client,
      taskQueue: TASK_QUEUE,
      audit,
      // Long enough for a worker to be started while a vote waits for the run to take it.
      updateDeadlineMs: 120_000,
    });

    // Started as launch starts it: the workflow, then the request on the record.
    input = testInput({ required: 2 });
    id = input.plan.executionId;
    worker = await startWorker();
    await client.workflow.start(runbookExecution, { taskQueue: TASK_QUEUE, workflowId: id, args: [input] });
    await audit.append(requestedEvent(input));
    // The run is waiting for approval, as its worker says; then the worker stops.
    await waitFor('the run to wait for approval', async () => {
      const view = await client.workflow.getHandle(id).query(statusQuery);
      return view.status === 'awaiting_approval' ? view : undefined;
    });
    await worker.stop();
    worker = undefined;
    sent.queries = 0;
    sent.updates = 0;
  }, 180_000);

  afterAll(async () => {
    await worker?.stop();
    await native?.close();
    await connection?.close();
    await audit?.close();
    await temporal?.teardown();
    if (home) await rm(home, { recursive: true, force: true });
  });

  test('the requester’s own vote is refused from the log, on the record, without asking the run', async () => {
    const e = await refusal(service.vote(user('alice'), id, { decision: 'approve', planDigest: input.planDigest }));
    expect(e.code).toBe('APPROVAL_SELF');
    expect(e.message).toBe('alice requested this execution and cannot approve or reject it');
    expect(await records('approval.refused')).toEqual([
      expect.objectContaining({ actor: 'alice', data: expect.objectContaining({ code: 'APPROVAL_SELF' }) }),
    ]);
    expect(sent).toEqual({ queries: 0, updates: 0 });
  }, 60_000);

  test('what an approver is shown (Slack’s reject dialog, the confirm page) is read from the log, without asking the run', async () => {
    const view = await service.approvalView(id);
    expect(view).toMatchObject({ status: 'awaiting_approval', planDigest: input.planDigest });
    expect(view.plan.runbook.name).toBe(input.plan.runbook.name);
    expect(sent).toEqual({ queries: 0, updates: 0 });
  }, 60_000);

  test('a vote for another plan is refused from the log, on the record, without asking the run', async () => {
    const e = await refusal(service.vote(user('bob'), id, { decision: 'approve', planDigest: 'a'.repeat(64) }));
    expect(e.code).toBe('APPROVAL_PLAN_MISMATCH');
    expect(e.message).toBe('the plan you reviewed is not the plan of this execution; review it again');
    expect((await records('approval.refused')).map((r) => [r.actor, r.data['code']])).toEqual([
      ['alice', 'APPROVAL_SELF'],
      ['bob', 'APPROVAL_PLAN_MISMATCH'],
    ]);
    expect(sent).toEqual({ queries: 0, updates: 0 });
  }, 60_000);

  test('an allowed vote waits for the run to take it, then counts and is recorded', async () => {
    const vote = service.vote(user('bob'), id, { decision: 'approve', planDigest: input.planDigest });
    // Sent to the run, which has no worker: nothing is counted or recorded until one comes.
    await waitFor('the vote to be sent', async () => (sent.updates === 1 ? true : undefined));
    expect(await records('approval.granted')).toEqual([]);
    worker = await startWorker();
    expect(await vote).toEqual({ status: 'pending', approvedBy: ['bob'], missing: 1 });
    expect((await records('approval.granted')).map((r) => r.actor)).toEqual(['bob']);
    expect(sent.queries).toBe(0);
    await worker.stop();
    worker = undefined;
  }, 120_000);

  test('two votes by one person sent before either is recorded: the run takes one and refuses the other, on the record', async () => {
    sent.updates = 0;
    const comment = 'not in this window';
    const votes = [1, 2].map(() =>
      service.vote(user('carol'), id, { decision: 'reject', planDigest: input.planDigest, comment }).then(
        (state) => ({ state }),
        (e: unknown) => ({ e }),
      ),
    );
    // Both passed the log's checks (it has no vote of carol's) and went to the run.
    await waitFor('both votes to be sent', async () => (sent.updates === 2 ? true : undefined));
    worker = await startWorker();
    const outcomes = await Promise.all(votes);
    const taken = outcomes.flatMap((o) => ('state' in o ? [o.state] : []));
    const refused = outcomes.flatMap((o) => ('e' in o ? [o.e] : []));
    expect(taken).toEqual([{ status: 'rejected', by: 'carol', comment }]);
    expect(refused).toHaveLength(1);
    const e = refused[0];
    expect(e).toBeInstanceOf(UserError);
    // The second is refused by the run: as a repeat, or as too late for a run that has just ended.
    const { code, message } = e as UserError;
    expect(['APPROVAL_DUPLICATE', 'EXECUTION_FINISHED']).toContain(code);
    expect(message).not.toContain('\n');
    expect(message).toMatch(/^(carol already rejected this execution|this execution is no longer waiting|execution )/);
    const onRecord = (await records('approval.refused')).filter((r) => r.actor === 'carol');
    expect(onRecord.map((r) => r.data['code'])).toEqual([code]);
    expect(onRecord[0]?.data['reason']).toBe(message);
    expect((await records('approval.rejected')).map((r) => r.actor)).toEqual(['carol']);
    expect(sent.queries).toBe(0);
  }, 120_000);

  test('a cancel also knows the run from its records: the rejected run says it has ended, without a query', async () => {
    await waitFor('the run to end', async () =>
      (await records('execution.rejected')).length === 1 ? true : undefined,
    );
    const e = await refusal(service.cancel(user('alice'), id, 'wrong window'));
    expect(e.code).toBe('EXECUTION_FINISHED');
    expect(e.message).toBe(`execution ${id} has already ended (rejected); it can no longer be cancelled`);
    expect(sent.queries).toBe(0);
  }, 60_000);
});
