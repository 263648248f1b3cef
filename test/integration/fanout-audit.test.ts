/**
 * Issue 11, part 1: a step on 10,000 instances writes 10,000 step.instance records, and its run's
 * index row holds a 10,000-entry target list. The store appends several records in one transaction
 * (appendMany), exactly as if they were appended one after another, and the batch activity hands
 * it a batch's instances a few dozen at a time. Against real databases (SQLite, and PostgreSQL when
 * it is installed) and, for the activity, devfleet through the real SDK.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createActivities } from '../../src/activities/index.ts';
import { createSsmClient, createStsClient } from '../../src/activities/aws.ts';
import type { BatchRequest } from '../../src/activities/ssm.ts';
import type { NewAuditEvent } from '../../src/core/audit.ts';
import { instanceEventId } from '../../src/core/audit-events.ts';
import { buildPlan } from '../../src/core/plan.ts';
import { parseRunbook } from '../../src/core/runbook.ts';
import { defaultFleetConfig, lightInstanceId } from '../../src/devfleet/config.ts';
import { readCommandLog } from '../../src/devfleet/command-log.ts';
import { loadAuditSigning } from '../../src/store/checkpoints.ts';
import { AuditEventConflictError, openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { runSample } from '../helpers/audit-samples.ts';
import { postgresBackend, sqliteBackend, storeBackends } from '../helpers/postgres.ts';
import { REGION, ROOT, startHarness, type Harness } from './devfleet-helpers.ts';

const dirs: string[] = [];
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const backends = storeBackends(
  'appendMany',
  sqliteBackend('mechanic-batch-', (dir, n) => join(dir, `case-${n}.db`)),
  () => postgresBackend('batch'),
);

const T0 = '2026-03-01T09:00:00.000Z';
const plus = (seconds: number) => new Date(Date.parse(T0) + seconds * 1000).toISOString();

/** A run's request on `targets` instances (only what the store reads of it). */
function requested(executionId: string, targets: readonly string[]): NewAuditEvent {
  return {
    eventId: `${executionId}:0000:execution.requested`,
    executionId,
    type: 'execution.requested',
    actor: 'alice',
    at: T0,
    data: {
      runbook: { name: 'fleet-step', version: 1, digest: 'd'.repeat(64), description: 'One step on the fleet.' },
      params: {},
      targets: [...targets],
      planDigest: 'p'.repeat(64),
      reason: 'fleet bench',
      requester: 'alice',
      plan: {
        executionId,
        runbook: { name: 'fleet-step', version: 1, digest: 'd'.repeat(64), description: 'One step on the fleet.' },
        requester: 'alice',
        reason: 'fleet bench',
        targets: targets.map((instanceId) => ({ instanceId })),
        steps: [{ name: 'hello' }],
        onFailure: [],
        approval: { required: 1, expiresAfterSeconds: 3600 },
        createdAt: T0,
      },
    },
  };
}

/** One instance's result, as a batch activity records it. */
function instance(executionId: string, instanceId: string, second: number): NewAuditEvent {
  return {
    eventId: instanceEventId(executionId, 'main', 0, instanceId, undefined),
    executionId,
    type: 'step.instance',
    actor: 'mechanic',
    at: plus(second),
    data: {
      step: 'hello',
      index: 0,
      phase: 'main',
      commandId: 'cmd-1',
      instanceId,
      status: 'Success',
      statusDetails: 'Success',
      responseCode: 0,
      stdout: `hello from ${instanceId}\n`,
      stderr: '',
      outputSha256: 'f'.repeat(64),
    },
  };
}

for (const backend of backends) {
  describe(`appendMany on ${backend.name}`, () => {
    const open: AuditStore[] = [];
    beforeAll(() => backend.setup(), 120_000);
    afterAll(async () => {
      for (const s of open) await s.close();
      await backend.teardown();
    }, 60_000);

    const signedStore = async () => {
      const loc = await backend.fresh();
      const signing = await loadAuditSigning(join(tempDir('mechanic-batch-key-'), 'audit-key.pem'), {
        create: true,
        store: loc,
      });
      const store = await openAuditStore(loc, { signing });
      open.push(store);
      return store;
    };
    const plainStore = async () => {
      const store = await openAuditStore(await backend.fresh());
      open.push(store);
      return store;
    };
    const checkpointSeqs = async (store: AuditStore) =>
      (await store.db.selectFrom('audit_checkpoints').select('seq').orderBy('seq').execute()).map((r) => Number(r.seq));
    const chainOf = async (store: AuditStore) =>
      (await store.list({ limit: 10_000 })).map((r) => [r.seq, r.eventId, r.prevHash, r.hash]);

    test('writes the chain, the index and the checkpoints that one append after another writes', async () => {
      // Two runs in one batch, the first ending in its middle, then a late vote on the ended run
      // (signed where it is written, as anything after an end is), then the second run's steps.
      const a = runSample('mx-batch-a', T0);
      const b = runSample('mx-batch-b', plus(60)).slice(0, -1);
      const late: NewAuditEvent = {
        eventId: 'mx-batch-a:late:approval.granted',
        executionId: 'mx-batch-a',
        type: 'approval.granted',
        actor: 'erin',
        at: plus(50),
        data: { planDigest: 'p'.repeat(64) },
      };
      const events = [...a, late, ...b];
      const oneByOne = await signedStore();
      for (const e of events) await oneByOne.append(e);
      const batched = await signedStore();
      const records = await batched.appendMany(events);

      expect(records.map((r) => r.seq)).toEqual(events.map((_, i) => i + 1));
      expect(await chainOf(batched)).toEqual(await chainOf(oneByOne));
      for (const id of ['mx-batch-a', 'mx-batch-b'])
        expect(await batched.getExecution(id)).toEqual(await oneByOne.getExecution(id));
      // The first record (a new log), the first run's end and the late vote after it.
      expect(await checkpointSeqs(batched)).toEqual([1, a.length, a.length + 1]);
      expect(await checkpointSeqs(batched)).toEqual(await checkpointSeqs(oneByOne));
      expect(await batched.verify()).toMatchObject({ ok: true, count: events.length, executions: 2 });
    });

    test('a run on 10,000 instances: its instance records leave its target list as it was, each target filterable once', async () => {
      const id = 'mx-batch-10k';
      const targets = Array.from({ length: 10_000 }, (_, n) => lightInstanceId(0, n + 1));
      const store = await plainStore();
      await store.append(requested(id, targets));
      await store.appendMany(targets.slice(0, 50).map((t, n) => instance(id, t, n + 1)));
      await store.appendMany(targets.slice(50, 100).map((t, n) => instance(id, t, n + 51)));

      const summary = await store.getExecution(id);
      expect(summary?.targets).toEqual(targets);
      expect(summary?.updatedAt).toBe(plus(100));
      const filters = await store.db
        .selectFrom('execution_targets')
        .select((eb) => [eb.fn.countAll<number>().as('rows'), eb.fn.count<number>('instance_id').distinct().as('ids')])
        .where('execution_id', '=', id)
        .executeTakeFirstOrThrow();
      expect([Number(filters.rows), Number(filters.ids)]).toEqual([10_000, 10_000]);
      // Verify checks each of those rows against the index without scanning the list once per row.
      expect(await store.verify()).toMatchObject({ ok: true, count: 101 });
    });

    test('an id recorded with other content refuses the whole batch; keepRecorded keeps the stored record and goes on', async () => {
      const id = 'mx-batch-conflict';
      const store = await plainStore();
      const [i1, i2, i3] = ['i-00000000000000001', 'i-00000000000000002', 'i-00000000000000003'];
      await store.append(requested(id, [i1, i2, i3]));
      const first = await store.append(instance(id, i1, 1));
      // A retried batch: i1 again with a later stamp, and two instances not recorded yet.
      const retried = [instance(id, i1, 9), instance(id, i2, 10), instance(id, i3, 11)];

      await expect(store.appendMany(retried)).rejects.toBeInstanceOf(AuditEventConflictError);
      expect((await store.list({ executionId: id })).map((r) => r.eventId)).toEqual([
        `${id}:0000:execution.requested`,
        first.eventId,
      ]);

      const kept = await store.appendMany(retried, { keepRecorded: true });
      expect(kept[0]).toEqual(first);
      expect(kept.map((r) => r.seq)).toEqual([first.seq, first.seq + 1, first.seq + 2]);
      // The same events again (as recorded) answer the stored records, without keepRecorded too.
      expect(await store.appendMany([instance(id, i2, 10)])).toEqual([kept[1]]);
      expect((await store.getExecution(id))?.updatedAt).toBe(plus(11));
      expect(await store.verify()).toMatchObject({ ok: true, count: 4 });
    });

    test('an event that does not fit the vocabulary refuses the whole batch, nothing written', async () => {
      const id = 'mx-batch-invalid';
      const store = await plainStore();
      await store.append(requested(id, ['i-00000000000000001']));
      const bad = { ...instance(id, 'i-00000000000000002', 2), data: { step: 'hello' } };
      await expect(store.appendMany([instance(id, 'i-00000000000000001', 1), bad])).rejects.toThrow();
      expect(await store.list({ executionId: id })).toHaveLength(1);
      expect(await store.appendMany([])).toEqual([]);
    });
  });
}

describe('a batch of 50 instances through the real activities and devfleet', () => {
  const COUNT = 50;
  const ids = Array.from({ length: COUNT }, (_, n) => lightInstanceId(0, n + 1));
  let fleet: Harness;
  let audit: AuditStore;
  /** How many events each appendMany the activities made carried. */
  const writes: number[] = [];
  let singles = 0;

  beforeAll(async () => {
    fleet = await startHarness({
      config: {
        ...defaultFleetConfig(ROOT),
        lightInstances: [{ count: COUNT, namePrefix: 'node', tags: { Role: 'fleet' }, commandMs: 50 }],
      },
    });
    audit = await openAuditStore({ kind: 'sqlite', file: join(tempDir('mechanic-batch-act-'), 'audit.db') });
  }, 60_000);
  afterAll(async () => {
    await audit?.close();
    await fleet?.close();
  }, 60_000);

  const activities = () => {
    const aws = { region: REGION, endpoint: fleet.fleet.endpoint, baseCredentials: ROOT };
    return createActivities({
      audit: {
        append: (e: NewAuditEvent) => {
          singles++;
          return audit.append(e);
        },
        appendMany: (events: readonly NewAuditEvent[], options: { keepRecorded: true }) => {
          writes.push(events.length);
          return audit.appendMany(events, options);
        },
      },
      sts: createStsClient(aws),
      ssmFor: (c) => createSsmClient(aws, c),
      pollIntervalMs: { min: 50, max: 200 },
      deliveryTimeoutSeconds: 60,
    });
  };

  // The environment's run() cannot infer the result type from the function; this wrapper can.
  const runIn = <P extends unknown[], R>(env: MockActivityEnvironment, fn: (...a: P) => Promise<R>, ...args: P) =>
    env.run<P, R, typeof fn>(fn, ...args);

  const batchRequest = (): BatchRequest => {
    const runbook = parseRunbook({
      name: 'fleet-step',
      version: 1,
      description: 'One step on the light fleet.',
      roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
      targets: { tags: { Role: 'fleet' } },
      steps: [{ name: 'hello', script: 'echo hello', timeoutSeconds: 60 }],
    });
    const { plan } = buildPlan({
      executionId: `mx-batchact${Math.random().toString(36).slice(2, 8)}`,
      runbook,
      runbookDigest: 'e'.repeat(64),
      rawParams: {},
      targets: ids.map((instanceId) => ({ instanceId })),
      requester: 'alice',
      reason: 'batched records',
      region: REGION,
      now: new Date(),
    });
    return {
      executionId: plan.executionId,
      stepIndex: 0,
      phase: 'main',
      step: plan.steps[0]!,
      instanceIds: ids,
      credentials: {
        executionId: plan.executionId,
        roleArn: plan.roleArn,
        region: REGION,
        sessionPolicy: plan.sessionPolicy,
        durationSeconds: plan.budgetSeconds,
        sourceIdentity: plan.requester,
        runbook: 'fleet-step@1',
        approvers: ['bob'],
      },
      notBefore: new Date().toISOString(),
      batch: 0,
      maxConcurrency: '50',
      maxErrors: '0',
    };
  };

  test("records the batch's 50 instances in two writes, and a retried batch keeps what the first attempt recorded", async () => {
    const req = batchRequest();
    const w = activities();
    const outcome = await runIn(new MockActivityEnvironment(), w.runBatch, req);
    expect(outcome.instances.map((i) => [i.instanceId, i.status])).toEqual(ids.map((id) => [id, 'Success']));
    const instanceRecords = async () =>
      (await audit.list({ executionId: req.executionId })).filter((r) => r.type === 'step.instance');
    const recorded = await instanceRecords();
    expect(recorded.map((r) => r.data['instanceId'])).toEqual(ids);
    for (const r of recorded)
      expect(r.data['stdout']).toContain(`(${String(r.data['instanceId'])}): ran 1 command line`);
    // 25 a write: two transactions for the batch's instances; only its step.started (and the
    // credentials' record) alone.
    expect(writes).toEqual([25, 25]);
    const alone = singles;

    // The worker died after recording, before Temporal heard: the retry adopts the command and
    // records again, later stamps and all, which keeps the first records instead of failing.
    const again = await runIn(new MockActivityEnvironment({ attempt: 2 }), activities().runBatch, req);
    expect(again.commandId).toBe(outcome.commandId);
    expect(await instanceRecords()).toEqual(recorded);
    expect(writes).toEqual([25, 25, 25, 25]);
    expect(singles - alone).toBeLessThanOrEqual(2);
    // Each instance ran the step once.
    const log = (await readCommandLog(fleet.dataDir)).filter((e) => e.comment.includes(req.executionId));
    expect(log.map((e) => e.instanceId).sort()).toEqual([...ids].sort());
  }, 120_000);
});
