import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Client, Connection, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseNewAuditEvent } from '../../src/core/audit-chain.ts';
import type { ExecutionInput } from '../../src/core/execution.ts';
import { digestOf } from '../../src/core/canonical.ts';
import { cancelUpdate, runbookExecution, statusQuery, voteUpdate } from '../../workflows/runbook-execution.ts';
import { WORKFLOWS_PATH } from '../../src/temporal/worker.ts';
import { fakeActivities, type Fake } from '../helpers/fake-activities.ts';
import { quietTemporalLogs, startTestTemporal, type TestTemporal } from '../helpers/temporal.ts';
import { testInput } from '../helpers/plans.ts';

/**
 * Workflow logic against a real Temporal dev server, with object-literal activities: approvals,
 * refusals, expiry, rejection, failure handling. The real adapters are covered by the spine test.
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
});
afterAll(async () => {
  await native?.close();
  await connection?.close();
  await temporal?.teardown();
});

async function withWorker<T>(fake: Fake, fn: (taskQueue: string) => Promise<T>): Promise<T> {
  quietTemporalLogs();
  const taskQueue = `wf-${randomUUID()}`;
  const worker = await Worker.create({
    connection: native,
    namespace: temporal.namespace,
    taskQueue,
    workflowsPath: WORKFLOWS_PATH,
    activities: fake.activities,
  });
  const result = await worker.runUntil(fn(taskQueue));
  // Every event the workflow wrote must fit the audit vocabulary: the real store refuses one that does not.
  for (const event of fake.events) expect(() => parseNewAuditEvent(event)).not.toThrow();
  return result;
}

const start = (taskQueue: string, input: ExecutionInput) =>
  client.workflow.start(runbookExecution, { taskQueue, workflowId: input.plan.executionId, args: [input] });

const vote = (approver: string, planDigest: string, decision: 'approve' | 'reject' = 'approve', comment?: string) => ({
  approver,
  decision,
  planDigest,
  ...(comment ? { comment } : {}),
});

async function refusal(p: Promise<unknown>): Promise<{ type: string | undefined | null; message: string }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof WorkflowUpdateFailedError && e.cause instanceof ApplicationFailure)
      return { type: e.cause.type, message: e.cause.message };
    throw e;
  }
  throw new Error('the update was accepted but should have been refused');
}

describe('runbookExecution', () => {
  test('refuses bad votes in the validator, runs after a valid one, records the story in order', async () => {
    const fake = fakeActivities();
    const input = testInput();
    const result = await withWorker(fake, async (taskQueue) => {
      const handle = await start(taskQueue, input);
      expect(await refusal(handle.executeUpdate(voteUpdate, { args: [vote('alice', input.planDigest)] }))).toEqual({
        type: 'APPROVAL_SELF',
        message: 'alice requested this execution and cannot approve or reject it',
      });
      expect((await refusal(handle.executeUpdate(voteUpdate, { args: [vote('bob', 'a'.repeat(64))] }))).type).toBe(
        'APPROVAL_PLAN_MISMATCH',
      );
      const state = await handle.executeUpdate(voteUpdate, { args: [vote('bob', input.planDigest)] });
      expect(state).toEqual({ status: 'approved', approvedBy: ['bob'] });
      const view = await handle.result();
      if (process.env['RECORD_HISTORIES'] === '1') {
        const history = await handle.fetchHistory();
        const file = fileURLToPath(new URL('../replay/histories/approved-and-completed.json', import.meta.url));
        await writeFile(file, historyToJSON(history));
      }
      return view;
    });
    expect(result.status).toBe('completed');
    expect(result.steps.map((s) => s.status)).toEqual(['succeeded', 'succeeded', 'skipped']);
    expect(fake.dispatched.map((d) => d.step.name)).toEqual(['first', 'second']);
    expect(fake.events.map((e) => e.type)).toEqual([
      'execution.requested',
      'approval.granted',
      'execution.running',
      'credentials.issued',
      'step.started',
      'step.completed',
      'step.started',
      'step.completed',
      'execution.completed',
    ]);
    // Refused votes never reached history, so they are not in the workflow's audit trail either.
    expect(fake.events.filter((e) => e.type === 'approval.granted').map((e) => e.actor)).toEqual(['bob']);
  });

  test('a step costs two activities and two workflow tasks: its records are local activities in those tasks', async () => {
    const fake = fakeActivities();
    const input = testInput();
    const { result, events } = await withWorker(fake, async (taskQueue) => {
      const handle = await start(taskQueue, input);
      await handle.executeUpdate(voteUpdate, { args: [vote('bob', input.planDigest)] });
      const view = await handle.result();
      const history = await handle.fetchHistory();
      if (process.env['RECORD_HISTORIES'] === '1') {
        const file = fileURLToPath(new URL('../replay/histories/local-records.json', import.meta.url));
        await writeFile(file, historyToJSON(history));
      }
      return { result: view, events: history.events ?? [] };
    });
    expect(result.status).toBe('completed');
    const scheduled = events.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
    // Only the request is an activity of its own: its id and content are shared with the API server's write.
    expect(scheduled).toEqual([
      'recordEvent',
      'issueCredentials',
      'dispatchStep',
      'awaitStep',
      'dispatchStep',
      'awaitStep',
      'releaseCredentials',
    ]);
    const markers = events.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity');
    // Every other record (approval and running in one, credentials, two steps started and
    // completed, the end).
    expect(markers).toHaveLength(fake.events.length - 2);
    expect(fake.events.map((e) => e.type)).toEqual([
      'execution.requested',
      'approval.granted',
      'execution.running',
      'credentials.issued',
      'step.started',
      'step.completed',
      'step.started',
      'step.completed',
      'execution.completed',
    ]);
    // From one step's dispatch to the next: its two activities, two workflow tasks, two records.
    const at = (n: number) =>
      events.findIndex(
        (e, i) =>
          e.activityTaskScheduledEventAttributes?.activityType?.name === 'dispatchStep' &&
          events
            .slice(0, i)
            .filter((x) => x.activityTaskScheduledEventAttributes?.activityType?.name === 'dispatchStep').length === n,
      );
    expect(at(1) - at(0)).toBe(14);
  });

  test('a record a dead worker already wrote stands: a local activity that meets it again does not fail the run', async () => {
    const fake = fakeActivities();
    const input = testInput();
    let conflicts = 0;
    const activities = {
      ...fake.activities,
      // As after a worker died between writing step.started and completing its workflow task: the
      // retried task writes it again with a later stamp, and the store refuses the different content.
      async recordEvent(e: Parameters<typeof fake.activities.recordEvent>[0]) {
        await fake.activities.recordEvent(e);
        if (e.type === 'step.started' && conflicts++ === 0)
          throw ApplicationFailure.nonRetryable('recorded with different content', 'AUDIT_EVENT_CONFLICT');
      },
    };
    const result = await withWorker({ ...fake, activities }, async (taskQueue) => {
      const handle = await start(taskQueue, input);
      await handle.executeUpdate(voteUpdate, { args: [vote('bob', input.planDigest)] });
      return handle.result();
    });
    expect(conflicts).toBe(2);
    expect(result.status).toBe('completed');
    expect(fake.events.filter((e) => e.type === 'step.started')).toHaveLength(2);
  });

  test('a quorum of two needs two different approvers, and the same approver cannot vote twice', async () => {
    const fake = fakeActivities();
    const input = testInput({ required: 2 });
    const result = await withWorker(fake, async (taskQueue) => {
      const handle = await start(taskQueue, input);
      expect(await handle.executeUpdate(voteUpdate, { args: [vote('bob', input.planDigest)] })).toEqual({
        status: 'pending',
        approvedBy: ['bob'],
        missing: 1,
      });
      expect(
        (
          await refusal(
            handle.executeUpdate(voteUpdate, { args: [vote('bob', input.planDigest)], updateId: 'second-bob' }),
          )
        ).type,
      ).toBe('APPROVAL_DUPLICATE');
      expect((await handle.query(statusQuery)).status).toBe('awaiting_approval');
      await handle.executeUpdate(voteUpdate, { args: [vote('carol', input.planDigest)] });
      return handle.result();
    });
    expect(result.status).toBe('completed');
    expect(result.approval).toEqual({ status: 'approved', approvedBy: ['bob', 'carol'] });
  });

  test('a rejection ends the run before any credentials are issued', async () => {
    const fake = fakeActivities();
    const input = testInput();
    const result = await withWorker(fake, async (taskQueue) => {
      const handle = await start(taskQueue, input);
      await handle.executeUpdate(voteUpdate, {
        args: [vote('carol', input.planDigest, 'reject', 'not during the freeze')],
      });
      return handle.result();
    });
    expect(result.status).toBe('rejected');
    expect(result.reason).toBe('rejected by carol: not during the freeze');
    expect(fake.dispatched).toEqual([]);
    expect(fake.events.map((e) => e.type)).toEqual(['execution.requested', 'approval.rejected', 'execution.rejected']);
  });

  test('without enough approvals in time, the run expires and nothing runs', async () => {
    const fake = fakeActivities();
    const input = testInput({ expiresAfterSeconds: 2 });
    const result = await withWorker(fake, async (taskQueue) => {
      const handle = await start(taskQueue, input);
      const view = await handle.result();
      // The workflow has closed: a late vote is refused by the server and changes nothing.
      await expect(handle.executeUpdate(voteUpdate, { args: [vote('bob', input.planDigest)] })).rejects.toThrow();
      expect(fake.events.filter((e) => e.type === 'approval.granted')).toEqual([]);
      return view;
    });
    expect(result.status).toBe('expired');
    expect(fake.dispatched).toEqual([]);
    expect(fake.events.at(-1)?.type).toBe('execution.expired');
  });

  test('a failing step stops the run, skips the rest and runs the onFailure steps', async () => {
    const fake = fakeActivities('first');
    const input = testInput();
    const result = await withWorker(fake, async (taskQueue) => {
      const handle = await start(taskQueue, input);
      await handle.executeUpdate(voteUpdate, { args: [vote('bob', input.planDigest)] });
      return handle.result();
    });
    expect(result.status).toBe('failed');
    expect(result.reason).toBe('step "first" failed');
    expect(result.steps.map((s) => `${s.name}:${s.status}`)).toEqual([
      'first:failed',
      'second:skipped',
      'cleanup:succeeded',
    ]);
    expect(fake.dispatched.map((d) => `${d.phase}:${d.step.name}`)).toEqual(['main:first', 'onFailure:cleanup']);
    expect(fake.events.at(-1)).toMatchObject({ type: 'execution.failed', data: { reason: 'step "first" failed' } });
  });

  test('cancelled while waiting for approval: nothing runs, and who cancelled, allowed by which policies, is recorded', async () => {
    const fake = fakeActivities();
    const input = testInput();
    const result = await withWorker(fake, async (taskQueue) => {
      const handle = await start(taskQueue, input);
      expect(
        await handle.executeUpdate(cancelUpdate, {
          args: [{ by: 'alice', reason: 'wrong release', policies: ['operators-cancel-own'] }],
        }),
      ).toBe('awaiting_approval');
      return handle.result();
    });
    expect(result.status).toBe('cancelled');
    expect(result.reason).toBe('cancelled by alice: wrong release');
    expect(fake.dispatched).toEqual([]);
    expect(fake.events.at(-1)).toEqual(
      expect.objectContaining({
        type: 'execution.cancelled',
        actor: 'alice',
        data: { reason: 'cancelled by alice: wrong release', policies: ['operators-cancel-own'] },
      }),
    );
  });

  test("the validator holds the runbook's approval groups and the high-risk rule, whatever the server let through", async () => {
    const fake = fakeActivities();
    const base = testInput({ required: 2 });
    const plan = {
      ...base.plan,
      runbook: { ...base.plan.runbook, risk: 'high' as const, approvalGroups: ['sre', 'dba'] },
    };
    const input: ExecutionInput = { plan, planDigest: digestOf(plan), launchPolicies: ['operators'] };
    const as = (approver: string, groups: string[]) => ({
      ...vote(approver, input.planDigest),
      groups,
      policies: ['approvers-vote'],
    });
    const result = await withWorker(fake, async (taskQueue) => {
      const handle = await start(taskQueue, input);
      expect(await refusal(handle.executeUpdate(voteUpdate, { args: [as('nick', [])] }))).toEqual({
        type: 'APPROVAL_NOT_ALLOWED',
        message: "nick is in none of this runbook's approval groups (sre, dba); a member of one of them must vote",
      });
      expect(await handle.executeUpdate(voteUpdate, { args: [as('bob', ['sre'])] })).toEqual({
        status: 'pending',
        approvedBy: ['bob'],
        missing: 1,
      });
      expect(await refusal(handle.executeUpdate(voteUpdate, { args: [as('erin', ['sre'])] }))).toEqual({
        type: 'APPROVAL_NOT_ALLOWED',
        message:
          "a high-risk run needs approvals from two different groups, and erin's approval would complete it with every approval from sre; a member of dba must approve",
      });
      expect((await handle.query(statusQuery)).status).toBe('awaiting_approval');
      expect(await handle.executeUpdate(voteUpdate, { args: [as('carol', ['dba'])] })).toEqual({
        status: 'approved',
        approvedBy: ['bob', 'carol'],
      });
      const view = await handle.result();
      if (process.env['RECORD_HISTORIES'] === '1') {
        // Votes with groups and policies, refused votes in between: the replay suite keeps this shape working.
        const file = fileURLToPath(new URL('../replay/histories/high-risk-two-groups.json', import.meta.url));
        await writeFile(file, historyToJSON(await handle.fetchHistory()));
      }
      return view;
    });
    expect(result.status).toBe('completed');
    expect(fake.events[0]).toMatchObject({ type: 'execution.requested', data: { policies: ['operators'] } });
    expect(fake.events.filter((e) => e.type === 'approval.granted').map((e) => [e.actor, e.data])).toEqual([
      ['bob', { planDigest: input.planDigest, groups: ['sre'], policies: ['approvers-vote'] }],
      ['carol', { planDigest: input.planDigest, groups: ['dba'], policies: ['approvers-vote'] }],
    ]);
  });

  test('cancelled while a step runs: its command is cancelled, nothing after it runs, not even onFailure', async () => {
    const fake = fakeActivities(undefined, 'first');
    const input = testInput();
    const result = await withWorker(fake, async (taskQueue) => {
      const handle = await start(taskQueue, input);
      await handle.executeUpdate(voteUpdate, { args: [vote('bob', input.planDigest)] });
      for (let i = 0; (await handle.query(statusQuery)).steps[0]?.status !== 'running'; i++) {
        if (i > 100) throw new Error('the first step never started');
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(await handle.executeUpdate(cancelUpdate, { args: [{ by: 'alice', reason: 'stop' }] })).toBe('running');
      const second = await refusal(
        handle.executeUpdate(cancelUpdate, { args: [{ by: 'alice', reason: 'again' }], updateId: 'again' }),
      );
      expect(second).toEqual({ type: 'EXECUTION_FINISHED', message: 'this execution is already being cancelled' });
      const view = await handle.result();
      if (process.env['RECORD_HISTORIES'] === '1') {
        const file = fileURLToPath(new URL('../replay/histories/cancelled-while-running.json', import.meta.url));
        await writeFile(file, historyToJSON(await handle.fetchHistory()));
      }
      return view;
    });
    expect(result.status).toBe('cancelled');
    expect(result.steps.map((s) => `${s.name}:${s.status}`)).toEqual([
      'first:cancelled',
      'second:skipped',
      'cleanup:skipped',
    ]);
    expect(result.steps[0]!.instances.map((i) => i.status)).toEqual(['Cancelled', 'Cancelled']);
    expect(fake.cancelled).toEqual(['cmd-0']);
    expect(fake.dispatched.map((d) => d.step.name)).toEqual(['first']);
    expect(fake.events.map((e) => e.type).slice(-2)).toEqual(['step.completed', 'execution.cancelled']);
  });
});

test('the dev server runs tuned for interactive latency: queue readers at 1000 polls a second, eager activities', async () => {
  // The same server `mechanic dev` starts (startDevServer): read back from its command line.
  const { stdout } = await promisify(execFile)('ps', ['-ww', '-o', 'args=', '-p', String(temporal.server.pid)]);
  for (const setting of [
    'history.transferProcessorMaxPollRPS=1000',
    'history.timerProcessorMaxPollRPS=1000',
    'history.visibilityProcessorMaxPollRPS=1000',
    'system.enableActivityEagerExecution=true',
  ])
    expect(stdout).toContain(`--dynamic-config-value ${setting}`);
});
