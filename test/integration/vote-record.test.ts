/**
 * The vote that decides an approval waits for one audit write, not two: its record
 * (`approval.granted`) and the run's start (`execution.running`) are written by one local activity,
 * in one transaction, in the workflow task that answers the vote. The records, their ids, order and
 * content and the chain are those of the two writes it replaces, and a worker SIGKILLed inside
 * that write, before or after it reached the log, still leaves each record exactly once.
 *
 * Real parts: a Temporal dev server, the real workflow code, the real audit activities writing to a
 * real SQLite audit log (the crash cases in a worker process of their own, which kills itself with
 * SIGKILL at the chosen point); credentials and steps are object-literal fakes (no AWS call is on
 * this path).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import type { temporal as Proto } from '@temporalio/proto';
import { NativeConnection, Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createActivities } from '../../src/activities/index.ts';
import { createStsClient, ssmClients } from '../../src/activities/aws.ts';
import type { Vote } from '../../src/core/approval.ts';
import type { NewAuditEvent } from '../../src/core/audit.ts';
import { workflowEventId, type AuditEventType } from '../../src/core/audit-events.ts';
import type { ExecutionInput } from '../../src/core/execution.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { WORKFLOWS_PATH } from '../../src/temporal/worker.ts';
import { DECIDING_VOTE_PATCH, runbookExecution, voteUpdate } from '../../workflows/runbook-execution.ts';
import { fakeActivities } from '../helpers/fake-activities.ts';
import { waitFor } from '../helpers/parts.ts';
import { testInput } from '../helpers/plans.ts';
import { quietTemporalLogs, startTestTemporal, type TestTemporal } from '../helpers/temporal.ts';

const CHILD = fileURLToPath(new URL('../helpers/vote-record-worker.ts', import.meta.url));

type HistoryEvent = Proto.api.history.v1.IHistoryEvent;

/** The records a run writes in order, as the two separate writes numbered them before. */
const STORY: readonly AuditEventType[] = [
  'execution.requested',
  'approval.granted',
  'execution.running',
  'credentials.issued',
  'step.started',
  'step.completed',
  'step.started',
  'step.completed',
  'execution.completed',
];

describe('the deciding vote’s record and the run’s start', () => {
  let home: string;
  let temporal: TestTemporal;
  let connection: Connection;
  let native: NativeConnection;
  let client: Client;
  let audit: AuditStore;
  let bundle: WorkflowBundleWithSourceMap;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    quietTemporalLogs();
    home = await mkdtemp(path.join(tmpdir(), 'mechanic-vote-record-'));
    temporal = await startTestTemporal();
    connection = await Connection.connect({ address: temporal.address });
    native = await NativeConnection.connect({ address: temporal.address });
    client = new Client({ connection, namespace: temporal.namespace });
    audit = await openAuditStore({ kind: 'sqlite', file: path.join(home, 'audit.db') });
    bundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: silent });
  }, 120_000);
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await native?.close();
    await connection?.close();
    await temporal?.teardown();
    await audit?.close();
    if (home) await rm(home, { recursive: true, force: true });
  }, 60_000);

  /** The real audit activities (counting the writes of several records), fakes for the rest. */
  function activities() {
    const aws = { region: 'us-east-1', endpoint: 'http://127.0.0.1:1' };
    const real = createActivities({
      audit,
      sts: createStsClient(aws),
      ssmFor: ssmClients(aws),
      pollIntervalMs: { min: 100, max: 500 },
      deliveryTimeoutSeconds: 60,
    });
    const together: NewAuditEvent['type'][][] = [];
    const acts = {
      ...fakeActivities().activities,
      recordEvent: real.recordEvent,
      async recordEvents(events: readonly NewAuditEvent[]) {
        together.push(events.map((e) => e.type));
        await real.recordEvents(events);
      },
    };
    return { acts, together };
  }

  async function withWorker<T>(taskQueue: string, acts: object, fn: () => Promise<T>): Promise<T> {
    const worker = await Worker.create({
      connection: native,
      namespace: temporal.namespace,
      taskQueue,
      workflowBundle: bundle,
      activities: acts,
    });
    return worker.runUntil(fn());
  }

  const start = (taskQueue: string, input: ExecutionInput) =>
    client.workflow.start(runbookExecution, { taskQueue, workflowId: input.plan.executionId, args: [input] });
  const approve = (approver: string, input: ExecutionInput) => ({
    args: [{ approver, decision: 'approve', planDigest: input.planDigest }] as [Vote],
  });

  /** The run's records, as ids, types, actors and data (what readers, views and exports use). */
  async function recordsOf(id: string) {
    const records = await audit.list({ executionId: id });
    return records.map((r) => ({
      eventId: r.eventId,
      type: r.type,
      actor: r.actor,
      data: r.data,
      seq: r.seq,
      at: r.at,
    }));
  }

  /** The ids the workflow gives its records: numbered in the order they are recorded. */
  const idsOf = (id: string, types: readonly AuditEventType[]) => types.map((t, i) => workflowEventId(id, i, t));

  test('the workflow task that answers the deciding vote runs one local activity, which writes both records in one transaction', async () => {
    const input = testInput();
    const id = input.plan.executionId;
    const taskQueue = `vote-record-${id}`;
    const { acts, together } = activities();
    const { view, events } = await withWorker(taskQueue, acts, async () => {
      const handle = await start(taskQueue, input);
      expect(await handle.executeUpdate(voteUpdate, approve('bob', input))).toEqual({
        status: 'approved',
        approvedBy: ['bob'],
      });
      return { view: await handle.result(), events: (await handle.fetchHistory()).events ?? [] };
    });
    expect(view.status).toBe('completed');

    // One local activity in the task whose completion carried the vote's answer: both records.
    expect(answeringTasks(events)).toEqual([{ localActivities: 1 }]);
    expect(together).toEqual([['approval.granted', 'execution.running']]);
    expect(patchesOf(events)).toEqual(['local-records', DECIDING_VOTE_PATCH]);

    // The records are those of two separate writes: same ids, order, actors and content.
    const records = await recordsOf(id);
    expect(records.map((r) => r.eventId)).toEqual(idsOf(id, STORY));
    expect(records.slice(1, 3).map(({ type, actor, data }) => ({ type, actor, data }))).toEqual([
      { type: 'approval.granted', actor: 'bob', data: { planDigest: input.planDigest } },
      { type: 'execution.running', actor: 'mechanic', data: { approvedBy: ['bob'] } },
    ]);
    // In the chain one after the other, and the chain holds.
    expect(records[2]!.seq).toBe(records[1]!.seq + 1);
    expect(await audit.verify()).toMatchObject({ ok: true });
    // The run's history replays against today's code.
    await Worker.runReplayHistory({ workflowBundle: bundle }, { events }, id);
  }, 120_000);

  test('with a quorum of two, the first vote is recorded alone and the deciding one with the run’s start, numbered as before', async () => {
    const input = testInput({ required: 2 });
    const id = input.plan.executionId;
    const taskQueue = `vote-record-${id}`;
    const { acts, together } = activities();
    const { view, history } = await withWorker(taskQueue, acts, async () => {
      const handle = await start(taskQueue, input);
      expect(await handle.executeUpdate(voteUpdate, approve('bob', input))).toMatchObject({ status: 'pending' });
      expect(await handle.executeUpdate(voteUpdate, approve('carol', input))).toEqual({
        status: 'approved',
        approvedBy: ['bob', 'carol'],
      });
      return { view: await handle.result(), history: await handle.fetchHistory() };
    });
    const events = history.events ?? [];
    expect(view.status).toBe('completed');
    // Bob's vote: its own record. Carol's, deciding: one local activity for both records.
    expect(answeringTasks(events)).toEqual([{ localActivities: 1 }, { localActivities: 1 }]);
    expect(together).toEqual([['approval.granted', 'execution.running']]);
    const records = await recordsOf(id);
    const types: AuditEventType[] = ['execution.requested', 'approval.granted', ...STORY.slice(1)];
    expect(records.map((r) => r.eventId)).toEqual(idsOf(id, types));
    expect(records.slice(1, 4).map(({ actor, data }) => ({ actor, data }))).toEqual([
      { actor: 'bob', data: { planDigest: input.planDigest } },
      { actor: 'carol', data: { planDigest: input.planDigest } },
      { actor: 'mechanic', data: { approvedBy: ['bob', 'carol'] } },
    ]);
    expect(await audit.verify()).toMatchObject({ ok: true });
    // Both ways a vote is recorded, in one history: the replay suite keeps them (test/replay).
    if (process.env['RECORD_HISTORIES'] === '1') {
      const file = fileURLToPath(new URL('../replay/histories/deciding-vote-record.json', import.meta.url));
      await writeFile(file, historyToJSON(history));
    }
  }, 120_000);

  /** Starts the worker process that kills itself; resolves with the signal that ended it. */
  function crashingWorker(taskQueue: string, crash: 'before-write' | 'after-write'): Promise<NodeJS.Signals | null> {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', CHILD, temporal.address, temporal.namespace, taskQueue, path.join(home, 'audit.db'), crash],
      {
        env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    children.push(child);
    return new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  }

  test.each(['before-write', 'after-write'] as const)(
    'a worker SIGKILLed in the deciding vote’s write (%s) still leaves each record exactly once, and the run goes on',
    async (crash) => {
      const input = testInput();
      const id = input.plan.executionId;
      const taskQueue = `vote-record-${id}`;
      const died = crashingWorker(taskQueue, crash);
      const handle = await start(taskQueue, input);
      // Recorded by the worker process: it polls.
      await waitFor('the request to be recorded', async () => ((await recordsOf(id)).length > 0 ? true : undefined));
      // The vote is taken by the worker process, which dies inside the write of its records.
      const voted = handle.executeUpdate(voteUpdate, approve('bob', input));
      voted.catch(() => undefined);
      expect(await died).toBe('SIGKILL');
      const written = await recordsOf(id);
      expect(written.map((r) => r.type)).toEqual(
        crash === 'before-write'
          ? ['execution.requested']
          : ['execution.requested', 'approval.granted', 'execution.running'],
      );

      // Another worker takes the task the dead one never completed: the vote is answered, the run runs.
      const { acts } = activities();
      const view = await withWorker(taskQueue, acts, async () => {
        expect(await voted).toEqual({ status: 'approved', approvedBy: ['bob'] });
        return handle.result();
      });
      expect(view.status).toBe('completed');
      const records = await recordsOf(id);
      expect(records.map((r) => r.eventId)).toEqual(idsOf(id, STORY));
      // What the dead attempt wrote stands as it was written.
      expect(records.slice(0, written.length)).toEqual(written);
      expect(await audit.verify()).toMatchObject({ ok: true });
    },
    180_000,
  );
});

const silent = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} };

/**
 * For each workflow task whose completion answered a vote (wrote an update's completion), the
 * local activities that task ran first: the markers its completion wrote.
 */
function answeringTasks(events: readonly HistoryEvent[]): { localActivities: number }[] {
  const out: { localActivities: number }[] = [];
  let markers = 0;
  let answering = false;
  const endOfTask = () => {
    if (answering) out.push({ localActivities: markers });
    answering = false;
    markers = 0;
  };
  for (const e of events) {
    if (e.workflowTaskCompletedEventAttributes || e.workflowTaskScheduledEventAttributes) endOfTask();
    if (e.markerRecordedEventAttributes?.markerName === 'core_local_activity') markers++;
    if (e.workflowExecutionUpdateCompletedEventAttributes) answering = true;
  }
  endOfTask();
  return out;
}

/** The patch ids a history's markers hold, in the order the run asked them. */
function patchesOf(events: readonly HistoryEvent[]): string[] {
  return events
    .filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch')
    .flatMap((e) =>
      Object.values(e.markerRecordedEventAttributes?.details ?? {}).flatMap((d) =>
        (d.payloads ?? []).map(
          (p) => (JSON.parse(Buffer.from(p.data ?? new Uint8Array()).toString()) as { id: string }).id,
        ),
      ),
    );
}
