import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import type { AuditRecordInfo } from '../../src/api/schemas.ts';
import { readCallLog } from '../../src/devfleet/call-log.ts';
import { DEMO_ROLE_ARN, lightInstanceId } from '../../src/devfleet/config.ts';
import type { CommandLogEntry } from '../../src/devfleet/command-log.ts';
import { waitFor } from '../helpers/parts.ts';
import { approveRun, startMultiStack, untilEnded, type LaunchedRun, type MultiStack } from '../helpers/multi-stack.ts';

/**
 * Issue 11, parts 1 and 6 together: a step fanned out over 120 instances (three SendCommands of at
 * most 50, two batches out at once) survives its worker being SIGKILLed, twice.
 *
 * - Kill 1 lands between a batch's SendCommand and its answer: devfleet accepts the fleet's first
 *   SendCommand (it is stored and runs) but holds its answer back far longer than the test lasts.
 *   The worker dies waiting for it; the batch's retried activity, on the new worker, finds the
 *   command by its token and adopts it instead of sending it again.
 * - Kill 2 lands while the second step's first batches are running on the hosts: the new worker
 *   follows them to their end and sends the last batch.
 *
 * Both kills wait for states in devfleet's logs, never for times. Then: the run completes, each
 * (step, instance) is in devfleet's command log once, each batch was sent once, each instance's
 * result is recorded once, and the audit chain verifies.
 */

const N = 120;
const COMMAND_MS = 4_000;
const IDS = Array.from({ length: N }, (_, i) => lightInstanceId(0, i + 1));

// maxConcurrency 100: two batches of 50 side by side, then the third.
const RUNBOOK = `name: fan-out-crash
version: 1
description: Two steps on 120 light instances, two batches at a time.
roleArn: ${DEMO_ROLE_ARN}
targets:
  tags:
    Fleet: big
steps:
  - name: first
    timeoutSeconds: 120
    maxConcurrency: 100
    script: echo first
  - name: second
    timeoutSeconds: 120
    maxConcurrency: 100
    script: echo second
`;

/** The step and batch a command-log entry belongs to ("step 0 batch 2"), for one run. */
const batchOf = (e: CommandLogEntry, executionId: string): string | undefined =>
  e.comment.startsWith(`mechanic ${executionId} `) ? e.comment.split(' ').slice(2).join(' ') : undefined;

interface StartedAttempt {
  readonly activity: string;
  readonly attempt: number;
  readonly identity: string;
}

describe('a step on 120 instances whose worker is SIGKILLed twice', () => {
  let stack: MultiStack | undefined;

  beforeAll(async () => {
    stack = await startMultiStack({
      temporalCli: inject('temporalCli'),
      workers: 1,
      servers: 1,
      runbooks: { 'fan-out-crash.yaml': RUNBOOK },
      fleet: (demo) => ({
        ...demo,
        callLog: true,
        lightInstances: [{ count: N, namePrefix: 'node', tags: { Fleet: 'big' }, commandMs: COMMAND_MS }],
        // The fleet's first SendCommand (the run's first batch out) is accepted, and its answer held back.
        faults: { sendCommand: { acceptThen: 'delay', delayMs: 600_000, times: 1 } },
      }),
    });
  }, 600_000);
  afterAll(async () => {
    await stack?.stop();
  }, 120_000);

  test('the run completes; each batch sent once, each (step, instance) run once and recorded once', async () => {
    const s = stack!;
    const worker = s.workers[0]!;
    const launched = await s
      .api(0, 'alice')
      .call('launch', { body: { runbook: 'fan-out-crash', params: {}, reason: 'fan-out crash test' } });
    expect(launched.plan.targets.map((t) => t.instanceId)).toEqual(IDS);
    const run: LaunchedRun = {
      tag: 'fan-out-crash',
      executionId: launched.executionId,
      planDigest: launched.planDigest,
    };
    const id = run.executionId;
    await approveRun(s, 0, run);

    const startedBatches = async () => {
      const counts: Record<string, number> = {};
      for (const e of await s.commandLog()) {
        const b = batchOf(e, id);
        if (b !== undefined) counts[b] = (counts[b] ?? 0) + 1;
      }
      return counts;
    };

    // Kill 1: batches 1 and 2 of step 0 are both accepted (running on the hosts), and devfleet has
    // answered only one of the two SendCommands: the worker is waiting for the other one's answer.
    await waitFor('both first batches accepted, one answer held back', async () => {
      const started = await startedBatches();
      if (started['step 0 batch 1'] !== 50 || started['step 0 batch 2'] !== 50) return undefined;
      const sends = (await readCallLog(s.fleetDir)).filter((c) => c.operation === 'SendCommand');
      return sends.length === 1 ? true : undefined;
    });
    await worker.kill();
    await worker.start();

    // Kill 2: the second step's first batches are out, their commands still running on the hosts.
    await waitFor('step 1 batches running on the hosts', async () => {
      const log = await s.commandLog();
      const running = log.filter(
        (e) => batchOf(e, id)?.startsWith('step 1 batch ') === true && e.finishedAt === undefined,
      );
      return running.length > 0 ? true : undefined;
    });
    await worker.kill();
    await worker.start();

    const view = await untilEnded(s, id);
    const context = s.describe();
    expect({ status: view.status, steps: view.steps.map((st) => [st.status, st.summary]) }, context).toEqual({
      status: 'completed',
      steps: [
        ['succeeded', { total: N, byStatus: { Success: N } }],
        ['succeeded', { total: N, byStatus: { Success: N } }],
      ],
    });

    // devfleet's command log: each (step, instance) once, in three batches per step of 50, 50 and 20.
    const ran = (await s.commandLog()).filter((e) => batchOf(e, id) !== undefined);
    const perStepInstance: Record<string, number> = {};
    for (const e of ran) {
      const key = `${batchOf(e, id)!.split(' batch ')[0]} ${e.instanceId}`;
      perStepInstance[key] = (perStepInstance[key] ?? 0) + 1;
    }
    expect(perStepInstance).toEqual(
      Object.fromEntries(['step 0', 'step 1'].flatMap((st) => IDS.map((i) => [`${st} ${i}`, 1] as const))),
    );
    expect(await startedBatches()).toEqual({
      'step 0 batch 1': 50,
      'step 0 batch 2': 50,
      'step 0 batch 3': 20,
      'step 1 batch 1': 50,
      'step 1 batch 2': 50,
      'step 1 batch 3': 20,
    });
    expect(ran.every((e) => e.status === 'Success')).toBe(true);
    // Six SendCommands in all (the held one is logged once its connection closed with the killed
    // worker): nothing was sent again after either kill.
    const sends = (await readCallLog(s.fleetDir)).filter((c) => c.operation === 'SendCommand');
    expect(sends.map((c) => c.outcome)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'ok']);

    // The kills hit work in flight: in each step a batch's activity ran again, on the new worker.
    const identities = worker.identities;
    expect(identities).toHaveLength(3);
    for (const [step, after] of [
      [0, identities[1]],
      [1, identities[2]],
    ] as const) {
      const attempts = await startedAttempts(s, `${id}:main-step-${step}`);
      const retried = attempts.filter((a) => a.activity === 'runBatch' && a.attempt > 1);
      expect({ step, retried: retried.length > 0, by: [...new Set(retried.map((a) => a.identity))] }).toEqual({
        step,
        retried: true,
        by: [after],
      });
    }

    // The audit log: one step.started per batch (each naming devfleet's command), one step.instance per (step, instance).
    const { records } = await s.api(0, 'dave').call('listAudit', { query: { executionId: id, limit: 10_000 } });
    const started = records.filter((r) => r.type === 'step.started');
    const commandIds = new Map(ran.map((e) => [batchOf(e, id)!, e.commandId]));
    expect(started.map((r) => r.data['commandId']).sort()).toEqual([...new Set(commandIds.values())].sort());
    const instanceRecords = records.filter((r) => r.type === 'step.instance');
    expect(countBy(instanceRecords, (r) => `step ${String(r.data['index'])} ${String(r.data['instanceId'])}`)).toEqual(
      perStepInstance,
    );
    expect(instanceRecords.every((r) => r.data['status'] === 'Success')).toBe(true);

    const verify = await s.cli(0, 'dave', 'audit', 'verify');
    expect(verify.stderr, context).toBe('');
    expect(verify.stdout, context).toMatch(/^audit chain intact/);
  }, 600_000);
});

function countBy(records: readonly AuditRecordInfo[], key: (r: AuditRecordInfo) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of records) counts[key(r)] = (counts[key(r)] ?? 0) + 1;
  return counts;
}

/** Each activity a workflow's history shows started: its type, the attempt that ran last, and the worker's identity. */
async function startedAttempts(stack: MultiStack, workflowId: string): Promise<StartedAttempt[]> {
  const client = await stack.temporalClient();
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const scheduled = new Map<string, string>();
  const out: StartedAttempt[] = [];
  for (const event of history.events ?? []) {
    const s = event.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(String(event.eventId), s.activityType?.name ?? '?');
    const a = event.activityTaskStartedEventAttributes;
    if (a) {
      out.push({
        activity: scheduled.get(String(a.scheduledEventId)) ?? '?',
        attempt: a.attempt ?? 1,
        identity: a.identity ?? '',
      });
    }
  }
  return out;
}
