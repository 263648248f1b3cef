import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { Context } from '@temporalio/activity';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createActivities, type MechanicActivities } from '../../src/activities/index.ts';
import { createSsmClient, createStsClient } from '../../src/activities/aws.ts';
import { dispatchToken } from '../../src/activities/ssm.ts';
import { parseNewAuditEvent } from '../../src/core/audit-chain.ts';
import type { NewAuditEvent } from '../../src/core/audit.ts';
import type { ExecutionInput, StepOutcome, StepRequest } from '../../src/core/execution.ts';
import { viewFromAudit } from '../../src/core/execution-view.ts';
import { buildPlan } from '../../src/core/plan.ts';
import { parseRunbook } from '../../src/core/runbook.ts';
import { DEMO_INSTANCE_IDS, DEMO_ROLE_ARN, readCommandLog } from '../../src/devfleet/index.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { WORKFLOWS_PATH } from '../../src/temporal/worker.ts';
import { cancelUpdate, runbookExecution, statusQuery, voteUpdate } from '../../workflows/runbook-execution.ts';
import { outcome } from '../helpers/fake-activities.ts';
import { quietTemporalLogs, startTestTemporal, type TestTemporal } from '../helpers/temporal.ts';
import { REGION, ROOT, startHarness, type Harness } from './devfleet-helpers.ts';

/**
 * Step controls (issue 10) through the real workflow on a real Temporal dev server: a condition
 * decided at plan time skips a step, which is never sent; a failed step with retries is sent
 * again as a new command; a step with continueOnError fails and the run goes on, ending
 * `completed` with the failure named. First with object-literal activities (exact attempt logic,
 * cancellation between attempts, the recorded history), then with the real activities on devfleet,
 * whose command log proves what was sent.
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

const WEB = [DEMO_INSTANCE_IDS['web-1'], DEMO_INSTANCE_IDS['web-2']];

/** A runbook with the given steps, planned for web-1 and web-2 (`mode` decides conditions). */
function input(steps: unknown[], onFailure: unknown[], rawParams: Record<string, unknown> = {}): ExecutionInput {
  const runbook = parseRunbook({
    name: 'step-controls',
    version: 1,
    description: 'step controls under test',
    roleArn: DEMO_ROLE_ARN,
    parameters: { mode: { type: 'enum', values: ['quick', 'full'], default: 'quick' } },
    targets: { instanceIds: WEB },
    steps,
    onFailure,
  });
  const { plan, planDigest } = buildPlan({
    executionId: `mx-ctl${randomUUID().slice(0, 8)}`,
    runbook,
    runbookDigest: 'f'.repeat(64),
    rawParams,
    targets: [
      { instanceId: WEB[0]!, name: 'web-1' },
      { instanceId: WEB[1]!, name: 'web-2' },
    ],
    requester: 'alice',
    reason: 'step controls test',
    region: REGION,
    now: new Date(),
  });
  return { plan, planDigest };
}

async function runToEnd(activities: object, given: ExecutionInput, during?: (h: Handle) => Promise<void>) {
  quietTemporalLogs();
  const taskQueue = `controls-${randomUUID()}`;
  const worker = await Worker.create({
    connection: native,
    namespace: temporal.namespace,
    taskQueue,
    workflowsPath: WORKFLOWS_PATH,
    activities,
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
    await during?.(handle);
    return { view: await handle.result(), history: await handle.fetchHistory() };
  });
}
type Handle = ReturnType<Client['workflow']['getHandle']>;

/** Object-literal activities: `failures[step]` is how many first attempts of that step fail ('always': every one). */
function scripted(failures: Record<string, number | 'always'>) {
  const events: NewAuditEvent[] = [];
  const dispatched: StepRequest[] = [];
  const seen = new Set<string>();
  const activities = {
    async recordEvent(e: NewAuditEvent) {
      if (seen.has(e.eventId)) return;
      seen.add(e.eventId);
      events.push(e);
    },
    async recordEvents(list: readonly NewAuditEvent[]) {
      for (const e of list) await activities.recordEvent(e);
    },
    async issueCredentials() {
      return { accessKeyId: 'ASIATEST', expiration: '2026-11-01T01:00:00.000Z', policyDigest: 'd'.repeat(64) };
    },
    async releaseCredentials() {},
    async dispatchStep(req: StepRequest) {
      dispatched.push(req);
      return { commandId: `cmd-${req.stepIndex}-${req.attempt ?? 1}`, adopted: false };
    },
    async awaitStep(req: StepRequest & { commandId: string }): Promise<StepOutcome> {
      const fail = failures[req.step.name];
      const failed = fail === 'always' || (fail !== undefined && (req.attempt ?? 1) <= fail);
      return outcome(req, failed ? 'Failed' : 'Success', failed ? 1 : 0);
    },
    async cancelStep(req: StepRequest & { commandId: string }): Promise<StepOutcome> {
      Context.current().heartbeat();
      return outcome(req, 'Cancelled', -1);
    },
  } as unknown as MechanicActivities;
  const sent = () => dispatched.map((d) => `${d.phase}:${d.step.name}#${d.attempt ?? '-'}`);
  return { events, dispatched, sent, activities };
}

/** The patch ids a history's markers record. */
function patchesOf(historyJson: string): string[] {
  const { events } = JSON.parse(historyJson) as {
    events: {
      markerRecordedEventAttributes?: {
        markerName?: string;
        details?: Record<string, { payloads?: { data?: string }[] }>;
      };
    }[];
  };
  // Local activities (the run's records) leave markers too; only core_patch ones name a patch.
  const patches = events.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch');
  return patches.flatMap((e) =>
    Object.values(e.markerRecordedEventAttributes?.details ?? {}).flatMap((d) =>
      (d.payloads ?? []).map((p) => (JSON.parse(Buffer.from(p.data ?? '', 'base64').toString()) as { id: string }).id),
    ),
  );
}

const brief = (e: NewAuditEvent) => {
  const d = e.data as { step?: string; attempt?: number; ok?: boolean; retrying?: boolean; continuedOnError?: boolean };
  return [
    e.type,
    d.step,
    d.attempt,
    d.ok === undefined ? undefined : d.ok ? 'ok' : 'failed',
    d.retrying ? 'retrying' : undefined,
    d.continuedOnError ? 'went on' : undefined,
  ]
    .filter((x) => x !== undefined)
    .join(' ');
};

describe('the workflow with step controls', () => {
  test('skips by condition, retries as new sends, goes on past an allowed failure, and completes saying so', async () => {
    const fake = scripted({ flaky: 1, optional: 'always' });
    const given = input(
      [
        { name: 'full-only', script: 'echo full', condition: { param: 'mode', equals: 'full' } },
        { name: 'flaky', script: 'echo flaky', retries: 2, retryDelaySeconds: 1 },
        { name: 'optional', script: 'exit 1', continueOnError: true },
        { name: 'last', script: 'echo last' },
      ],
      [{ name: 'cleanup', script: 'echo cleanup' }],
    );
    const { view, history } = await runToEnd(fake.activities, given);
    // The replay suite keeps this run's history: local records with step controls, the path of
    // every new run whose plan uses them. (step-controls.json, recorded before local records, stays
    // as it was: it stands for runs in flight, so this writes a file of its own.)
    if (process.env['RECORD_HISTORIES'] === '1') {
      const file = fileURLToPath(new URL('../replay/histories/step-controls-local-records.json', import.meta.url));
      await writeFile(file, historyToJSON(history));
    }
    for (const event of fake.events) expect(() => parseNewAuditEvent(event)).not.toThrow();
    expect(fake.sent()).toEqual(['main:flaky#1', 'main:flaky#2', 'main:optional#-', 'main:last#-']);
    expect(view.status).toBe('completed');
    expect(view.reason).toBe('completed, but step "optional" failed and the run went on past it (continueOnError)');
    expect(view.steps.map((s) => `${s.name}:${s.status}`)).toEqual([
      'full-only:skipped',
      'flaky:succeeded',
      'optional:failed',
      'last:succeeded',
      'cleanup:skipped',
    ]);
    expect(view.steps[0]!.reason).toBe('its condition (mode is "full") does not hold: mode is "quick"');
    expect(view.steps[1]).toMatchObject({ attempt: 2, commandId: 'cmd-1-2' });
    expect(view.steps[2]!.continuedOnError).toBe(true);
    expect(fake.events.map(brief)).toEqual([
      'execution.requested',
      'approval.granted',
      'execution.running',
      'credentials.issued',
      'step.skipped full-only',
      'step.started flaky 1',
      'step.completed flaky 1 failed retrying',
      'step.started flaky 2',
      'step.completed flaky 2 ok',
      'step.started optional',
      'step.completed optional failed went on',
      'step.started last',
      'step.completed last ok',
      'execution.completed',
    ]);
    expect(fake.events.at(-1)!.data).toEqual({ reason: view.reason, failedSteps: ['optional'] });
    // The audit log alone tells the same story.
    const rebuilt = viewFromAudit(fake.events)!;
    expect(rebuilt.unreadable).toBeUndefined();
    expect(rebuilt.steps).toEqual(view.steps.map((s) => ({ ...s, instances: expect.any(Array) })));
    expect(rebuilt.status).toBe('completed');
    expect(rebuilt.reason).toBe(view.reason);
    // The branch is marked in history, so a change to it is caught by the replay suite.
    expect(patchesOf(historyToJSON(history))).toEqual(['local-records', 'step-controls', 'deciding-vote-record']);
  });

  test('a step that fails every attempt fails the run after 1 + retries sends; onFailure skips its own false condition', async () => {
    const fake = scripted({ flaky: 'always' });
    const given = input(
      [
        { name: 'flaky', script: 'exit 1', retries: 2, retryDelaySeconds: 1 },
        { name: 'never', script: 'echo never' },
      ],
      [
        { name: 'full-report', script: 'echo report', condition: { param: 'mode', equals: 'full' } },
        { name: 'cleanup', script: 'echo cleanup', retries: 1 },
      ],
    );
    const { view } = await runToEnd(fake.activities, given);
    expect(fake.sent()).toEqual(['main:flaky#1', 'main:flaky#2', 'main:flaky#3', 'onFailure:cleanup#1']);
    expect(view.status).toBe('failed');
    expect(view.reason).toBe('step "flaky" failed');
    expect(view.steps.map((s) => `${s.name}:${s.status}`)).toEqual([
      'flaky:failed',
      'never:skipped',
      'full-report:skipped',
      'cleanup:succeeded',
    ]);
    expect(view.steps[0]).toMatchObject({ attempt: 3 });
    expect(view.steps[0]!.continuedOnError).toBeUndefined();
    const completions = fake.events.filter((e) => e.type === 'step.completed' && e.data['step'] === 'flaky');
    expect(completions.map((e) => [e.data['attempt'], e.data['retrying']])).toEqual([
      [1, true],
      [2, true],
      [3, undefined],
    ]);
  });

  test('a cancel between two attempts ends the step cancelled; nothing else is sent', async () => {
    const fake = scripted({ flaky: 'always' });
    const given = input(
      [
        { name: 'flaky', script: 'exit 1', retries: 1, retryDelaySeconds: 3600 },
        { name: 'never', script: 'echo never' },
      ],
      [{ name: 'cleanup', script: 'echo cleanup' }],
    );
    const { view } = await runToEnd(fake.activities, given, async (handle) => {
      for (let i = 0; !fake.events.some((e) => e.data['retrying'] === true); i++) {
        if (i > 200) throw new Error('the first attempt never failed');
        await new Promise((r) => setTimeout(r, 50));
      }
      expect((await handle.query(statusQuery)).steps[0]).toMatchObject({ status: 'running', attempt: 1 });
      await handle.executeUpdate(cancelUpdate, { args: [{ by: 'alice', reason: 'enough' }] });
    });
    expect(view.status).toBe('cancelled');
    expect(fake.sent()).toEqual(['main:flaky#1']);
    expect(view.steps.map((s) => `${s.name}:${s.status}`)).toEqual([
      'flaky:cancelled',
      'never:skipped',
      'cleanup:skipped',
    ]);
    expect(fake.events.map(brief).slice(-2)).toEqual(['step.completed flaky 1 failed', 'execution.cancelled']);
  });
});

describe('on devfleet, with the real activities and the SQLite audit store', () => {
  let fleet: Harness;
  let home: string;
  let audit: AuditStore;

  beforeAll(async () => {
    fleet = await startHarness();
    home = await mkdtemp(path.join(tmpdir(), 'mechanic-controls-'));
    audit = await openAuditStore({ kind: 'sqlite', file: path.join(home, 'audit.db') });
  });
  afterAll(async () => {
    await audit?.close();
    await fleet?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  const real = () => {
    const aws = { region: REGION, endpoint: fleet.fleet.endpoint, baseCredentials: ROOT };
    return createActivities({
      audit,
      sts: createStsClient(aws),
      ssmFor: (c) => createSsmClient(aws, c),
      pollIntervalMs: { min: 50, max: 200 },
      deliveryTimeoutSeconds: 60,
    });
  };
  const hostFile = (instanceId: string, file: string) =>
    readFile(path.join(fleet.dataDir, 'instances', instanceId, 'root', file), 'utf8').catch(() => '');

  test('a false condition is never sent, a step failing once on one host succeeds on a second command sent only there, a failure allowed to happen is gone past', async () => {
    const given = input(
      [
        { name: 'full-only', script: 'echo full-only >> ran.log', condition: { param: 'mode', equals: 'full' } },
        { name: 'quick-only', script: 'echo quick-only >> ran.log', condition: { param: 'mode', notEquals: 'full' } },
        {
          name: 'flaky',
          // Fails the first time on web-1 only (its marker file is not there yet), then succeeds.
          script: [
            'echo flaky >> ran.log',
            `if [ "$AWS_SSM_INSTANCE_ID" = ${WEB[0]} ] && [ ! -e flaky.marker ]; then touch flaky.marker; echo not yet >&2; exit 3; fi`,
            'echo flaky ok',
          ].join('\n'),
          retries: 2,
          retryDelaySeconds: 1,
        },
        { name: 'optional', script: 'echo optional >> ran.log\nexit 7', continueOnError: true },
        { name: 'last', script: 'echo last >> ran.log' },
      ],
      [{ name: 'cleanup', script: 'echo cleanup >> ran.log' }],
    );
    const id = given.plan.executionId;
    const { view } = await runToEnd(real(), given);

    // devfleet's command log: what was sent, by dispatch token.
    const log = (await readCommandLog(fleet.dataDir)).filter((e) => e.comment.startsWith(`mechanic ${id} `));
    const sent = [...new Set(log.map((e) => `${e.comment.slice(`mechanic ${id} `.length)}`))];
    expect(sent).toEqual(['step 1', 'step 2', 'step 2 attempt 2', 'step 3', 'step 4']);
    const flakyCommands = new Set(log.filter((e) => / 2( attempt \d)?$/.test(e.comment)).map((e) => e.commandId));
    expect(flakyCommands.size).toBe(2);
    expect(
      log
        .filter((e) => e.comment === dispatchToken({ executionId: id, stepIndex: 2, phase: 'main', attempt: 2 }))
        .map((e) => [e.instanceId, e.status, e.responseCode])
        .sort(),
    ).toEqual([[WEB[0], 'Success', 0]]);
    // Each host ran what the plan said, in order, and never the skipped step nor onFailure; the
    // retry went only to web-1, where the step had failed.
    const ranOn = async (i: number) => (await hostFile(WEB[i]!, 'ran.log')).trim().split('\n');
    expect(await ranOn(0)).toEqual(['quick-only', 'flaky', 'flaky', 'optional', 'last']);
    expect(await ranOn(1)).toEqual(['quick-only', 'flaky', 'optional', 'last']);

    expect(view.status).toBe('completed');
    expect(view.reason).toBe('completed, but step "optional" failed and the run went on past it (continueOnError)');
    expect(view.steps.map((s) => `${s.name}:${s.status}`)).toEqual([
      'full-only:skipped',
      'quick-only:succeeded',
      'flaky:succeeded',
      'optional:failed',
      'last:succeeded',
      'cleanup:skipped',
    ]);
    expect(view.steps[2]!.attempt).toBe(2);
    // web-2's success from the first attempt, web-1's from the second.
    expect(view.steps[2]!.instances.map((i) => [i.instanceId, i.stdout.trim()])).toEqual([
      [WEB[1], 'flaky ok'],
      [WEB[0], 'flaky ok'],
    ]);
    expect(view.steps[3]!.instances.map((i) => i.responseCode)).toEqual([7, 7]);

    // The audit log holds each attempt's per-host results under their own ids, and the store
    // verifies; the view rebuilt from it alone matches the workflow's.
    const records = await audit.list({ executionId: id });
    const flakyResults = records.filter((r) => r.type === 'step.instance' && r.data['step'] === 'flaky');
    expect(flakyResults.map((r) => [r.data['attempt'], r.data['instanceId'], r.data['responseCode']]).sort()).toEqual([
      [1, WEB[0], 3],
      [1, WEB[1], 0],
      [2, WEB[0], 0],
    ]);
    expect(records.find((r) => r.type === 'step.skipped')?.data).toMatchObject({
      step: 'full-only',
      reason: 'its condition (mode is "full") does not hold: mode is "quick"',
    });
    expect(records.at(-1)).toMatchObject({ type: 'execution.completed', data: { failedSteps: ['optional'] } });
    expect(await audit.verify()).toMatchObject({ ok: true });
    const rebuilt = viewFromAudit(records)!;
    const brief = (v: typeof view) =>
      v.steps.map((s) => [
        s.name,
        s.status,
        s.attempt,
        s.continuedOnError,
        s.instances.map((i) => i.instanceId).sort(),
      ]);
    expect(brief(rebuilt)).toEqual(brief(view));
    expect(rebuilt.status).toBe('completed');
  });
});
