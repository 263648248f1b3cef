/**
 * Issue 11, part 1: a fan-out step's instance list stays out of the run's history. A step sent to
 * every target of the plan starts its child workflow with the plan's digest and no ids; the child
 * loads them from the run's request record (an activity: the ids land in the child's history, not
 * the run's), and sends its batches as before, each instance once. A request record that does not
 * hold the run's plan fails the step with one sentence, and nothing is sent.
 *
 * Real parts: a Temporal dev server, the real workflow code on a real worker whose real activities
 * run the step on devfleet's light instances and read and write a real SQLite audit log.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createPlanTargets } from '../../src/activities/plan-targets.ts';
import { requestedEvent } from '../../src/core/audit-events.ts';
import type { ExecutionInput, ExecutionView } from '../../src/core/execution.ts';
import { buildPlan } from '../../src/core/plan.ts';
import { parseRunbook } from '../../src/core/runbook.ts';
import { DEMO_ROLE_ARN, defaultFleetConfig, parseFleetConfig, readCommandLog } from '../../src/devfleet/index.ts';
import { lightInstanceId } from '../../src/devfleet/config.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { WORKFLOWS_PATH } from '../../src/temporal/worker.ts';
import { runbookExecution, statusQuery, voteUpdate } from '../../workflows/runbook-execution.ts';
import type { FanOutInput } from '../../workflows/fan-out.ts';
import { startActivityStack, type ActivityStack } from '../helpers/activity-stack.ts';
import { waitFor } from '../helpers/parts.ts';
import { raw, unguard } from '../helpers/raw-sqlite.ts';
import { REGION, ROOT, type Harness } from './devfleet-helpers.ts';

const N = 60;
const IDS = Array.from({ length: N }, (_, k) => lightInstanceId(0, k + 1));

let home: string;
let auditFile: string;
let audit: AuditStore;
let stack: ActivityStack;
let fleet: Harness;
let client: Client;
let taskQueue: string;

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'mechanic-fanout-targets-'));
  auditFile = path.join(home, 'audit.db');
  audit = await openAuditStore({ kind: 'sqlite', file: auditFile });
  stack = await startActivityStack({
    name: 'fanout-targets',
    audit,
    fleet: parseFleetConfig({
      ...defaultFleetConfig(ROOT),
      lightInstances: [{ count: N, namePrefix: 'node', tags: { Fleet: 'light' }, commandMs: 20 }],
    }),
  });
  ({ fleet, client, taskQueue } = stack);
}, 180_000);

afterAll(async () => {
  await stack?.close();
  await audit?.close();
  if (home) await rm(home, { recursive: true, force: true });
}, 60_000);

/** A one-step runbook on the 60 light instances, planned now. */
function planned(): ExecutionInput {
  return buildPlan({
    executionId: `mx-ft${randomUUID().slice(0, 8)}`,
    runbook: parseRunbook({
      name: 'fleet-wide',
      version: 1,
      description: 'a step on 60 light instances',
      roleArn: DEMO_ROLE_ARN,
      targets: { tags: { Fleet: 'light' } },
      steps: [{ name: 'work', script: 'echo hi', timeoutSeconds: 60 }],
    }),
    runbookDigest: 'f'.repeat(64),
    rawParams: {},
    targets: IDS.map((instanceId, k) => ({ instanceId, name: `node-${k + 1}` })),
    requester: 'alice',
    reason: 'fan-out targets',
    region: REGION,
    now: new Date(),
  });
}

/** Started as launch starts it (the workflow, then the request on the record), waiting for approval. */
async function start(given: ExecutionInput): Promise<WorkflowHandle<typeof runbookExecution>> {
  const handle = await client.workflow.start(runbookExecution, {
    taskQueue,
    workflowId: given.plan.executionId,
    args: [given],
  });
  await audit.append(requestedEvent(given));
  await waitFor('the run to wait for approval', async () =>
    (await handle.query(statusQuery)).status === 'awaiting_approval' ? true : undefined,
  );
  return handle;
}

const approve = (handle: WorkflowHandle<typeof runbookExecution>, given: ExecutionInput) =>
  handle.executeUpdate(voteUpdate, { args: [{ approver: 'bob', decision: 'approve', planDigest: given.planDigest }] });

/** The text of every payload under `value` (the data converter here is plain JSON). */
function payloadTexts(value: unknown): string[] {
  if (value instanceof Uint8Array) return [Buffer.from(value).toString('utf8')];
  if (typeof value !== 'object' || value === null) return [];
  return Object.values(value).flatMap(payloadTexts);
}

/** The JSON value of the first payload of `payloads` (an input or a result). */
function firstPayload(payloads: { payloads?: { data?: Uint8Array | null }[] | null } | null | undefined): unknown {
  return JSON.parse(Buffer.from(payloads?.payloads?.[0]?.data ?? new Uint8Array()).toString('utf8'));
}

const ranFor = async (executionId: string) =>
  (await readCommandLog(fleet.dataDir)).filter((e) => e.comment.startsWith(`mechanic ${executionId} `));

describe('a fan-out step to every target of the plan', () => {
  test('starts its child with the plan digest and no ids; the child loads them, and each instance runs once', async () => {
    const given = planned();
    const handle = await start(given);
    await approve(handle, given);
    const view: ExecutionView = await handle.result();
    expect(view.status).toBe('completed');
    expect(view.steps[0]!.summary).toEqual({ total: N, byStatus: { Success: N } });
    const log = await ranFor(given.plan.executionId);
    expect(log.map((e) => e.instanceId).sort()).toEqual([...IDS].sort());

    const parent = await handle.fetchHistory();
    const events = parent.events ?? [];
    const started = events.flatMap((e) => e.startChildWorkflowExecutionInitiatedEventAttributes ?? []);
    expect(started).toHaveLength(1);
    // The run took the patched branch, and says so in its history.
    const patches = events.flatMap((e) =>
      e.markerRecordedEventAttributes?.markerName === 'core_patch' ? payloadTexts(e.markerRecordedEventAttributes) : [],
    );
    expect(patches.some((t) => t.includes('"fan-out-targets"'))).toBe(true);
    const childInput = firstPayload(started[0]!.input) as FanOutInput;
    expect(childInput.request.instanceIds).toEqual([]);
    expect(childInput.allTargets).toEqual({ planDigest: given.planDigest });
    // The ids are in the run's history once per run (its input, its request's record and its
    // result each hold the plan), never once per step.
    const withIds = events.filter((e) => payloadTexts(e).some((t) => IDS.some((id) => t.includes(id))));
    expect(
      withIds.map((e) =>
        e.workflowExecutionStartedEventAttributes
          ? 'started'
          : e.workflowExecutionCompletedEventAttributes
            ? 'completed'
            : (e.activityTaskScheduledEventAttributes?.activityType?.name ?? String(e.eventType)),
      ),
    ).toEqual(['started', 'recordEvent', 'completed']);

    const childHandle = client.workflow.getHandle(`${given.plan.executionId}:main-step-0`);
    const child = await childHandle.fetchHistory();
    const activities = (child.events ?? []).flatMap(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? [],
    );
    expect(activities).toEqual(['planTargets', 'runBatch', 'runBatch']);
    const loaded = (child.events ?? []).flatMap((e) => e.activityTaskCompletedEventAttributes?.result ?? []);
    expect(firstPayload(loaded[0])).toEqual(IDS);

    // Both replay against today's code.
    await Worker.runReplayHistory({ workflowsPath: WORKFLOWS_PATH }, parent, given.plan.executionId);
    await Worker.runReplayHistory({ workflowsPath: WORKFLOWS_PATH }, child, `${given.plan.executionId}:main-step-0`);
    if (process.env['RECORD_HISTORIES'] === '1') {
      const dir = fileURLToPath(new URL('../replay/histories/', import.meta.url));
      await writeFile(path.join(dir, 'fan-out-targets.json'), historyToJSON(parent));
      await writeFile(path.join(dir, 'fan-out-targets-step.json'), historyToJSON(child));
    }
  }, 180_000);

  test('whose request record no longer holds the plan fails with one sentence, and sends nothing', async () => {
    const given = planned();
    const handle = await start(given);
    // The run writes the request too (the same record, idempotent): edited before that write, the
    // run would meet a conflicting record at its start and end there, before any vote or step.
    await waitFor('the run to record its request', async () =>
      ((await handle.fetchHistory()).events ?? []).some((e) => e.activityTaskCompletedEventAttributes)
        ? true
        : undefined,
    );
    raw(auditFile, (db) => {
      unguard(db);
      db.prepare(`update audit_events set data = json_set(data, '$.plan.reason', 'changed') where event_id = ?`).run(
        requestedEvent(given).eventId,
      );
    });
    await approve(handle, given);
    const view: ExecutionView = await handle.result();
    expect(view.status).toBe('failed');
    const seq = (await audit.list({ executionId: given.plan.executionId, limit: 1 }))[0]!.seq;
    expect(view.steps[0]!.reason).toBe(
      `the request record of ${given.plan.executionId} in the audit log (#${seq}) does not hold the plan the run was started with (digest ${given.planDigest.slice(0, 12)}); run "mechanic audit verify" to find what changed`,
    );
    expect(await ranFor(given.plan.executionId)).toEqual([]);
  }, 180_000);

  test('a worker without the audit log, or a log without the run’s request, refuses to load them, saying so', async () => {
    await expect(
      createPlanTargets(undefined)({ executionId: 'mx-none', planDigest: 'a'.repeat(64) }),
    ).rejects.toMatchObject({
      type: 'CONFIG_INVALID',
      nonRetryable: true,
      message:
        'this worker cannot read the audit log, so it cannot load the targets of mx-none; start it with its audit store',
    });
    await expect(
      createPlanTargets(audit.db)({ executionId: 'mx-none', planDigest: 'a'.repeat(64) }),
    ).rejects.toMatchObject({
      type: 'AUDIT_CHAIN_BROKEN',
      nonRetryable: true,
      message:
        'the request record of mx-none is missing from the audit log, though the run recorded it before its first step; run "mechanic audit verify" to find what changed',
    });
  });
});
