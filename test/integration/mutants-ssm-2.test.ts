/**
 * The SSM activities (src/activities/ssm.ts) for what mutation round five left alive (issue 12,
 * round six): the batches of a step on more than 50 instances (runBatch, cancelBatches and the
 * batch's token and step.started id), a percentage rate control on few instances, a ListCommands
 * or ListCommandInvocations page without its list, and a refusal without a message.
 *
 * Everything runs in-process against devfleet with the real AWS SDK clients and a real SQLite
 * audit store (idempotent on eventId; instance records several to a write, as a worker's are), the
 * activities built as the worker builds them. The SSM clients talk to devfleet through
 * a small proxy speaking SSM's JSON protocol, which forwards every call unless a test answers it
 * itself: that is how a test gets an answer devfleet never gives (a page without the field, an
 * error without a message, a refused cancel) or loses an answer devfleet gave, and still the SDK
 * parses every answer as it would AWS's.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { createSsmClient, createStsClient } from '../../src/activities/aws.ts';
import { createActivities } from '../../src/activities/index.ts';
import { batchToken, dispatchToken, type BatchRequest } from '../../src/activities/ssm.ts';
import type { NewAuditEvent } from '../../src/core/audit.ts';
import { instanceEventId } from '../../src/core/audit-events.ts';
import type { StepRequest } from '../../src/core/execution.ts';
import { sendRefusal } from '../../src/core/ssm-output.ts';
import { defaultFleetConfig } from '../../src/devfleet/config.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { startSsmProxy, type SsmProxy } from '../helpers/ssm-proxy.ts';
import { activityEnv as env, failureOf, runActivity as run, stepRequest } from '../helpers/activity-requests.ts';
import { REGION, ROOT, startHarness, type Harness } from './devfleet-helpers.ts';

const WEB_1 = 'i-0d3f1ee7000000001';
const WEB_2 = 'i-0d3f1ee7000000002';

let fleet: Harness;
let proxy: SsmProxy;
let home: string;
let audit: AuditStore;
const clients: SSMClient[] = [];

beforeAll(async () => {
  fleet = await startHarness({ config: defaultFleetConfig(ROOT) });
  proxy = await startSsmProxy(fleet.fleet.endpoint);
  home = await mkdtemp(join(tmpdir(), 'mutants-ssm-2-'));
  audit = await openAuditStore({ kind: 'sqlite', file: join(home, 'audit.db') });
});
afterAll(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await audit?.close();
  await proxy?.close();
  await fleet?.close();
  if (home) await rm(home, { recursive: true, force: true });
});
afterEach(() => {
  proxy.answer = () => undefined;
});

/**
 * A worker's activities as the worker builds them (createActivities), on the audit store, whose
 * SSM calls go through the proxy. `events` keeps each event as the activities handed it to the
 * store (the store keeps the first of an eventId); `rejectWith` makes the client itself reject a
 * call of that operation with a value.
 */
function worker(opts: { rejectWith?: { operation: string; value: unknown } } = {}) {
  const events: NewAuditEvent[] = [];
  const activities = createActivities({
    audit: {
      append: (e) => {
        events.push(e);
        return audit.append(e);
      },
      appendMany: (many, options) => {
        events.push(...many);
        return audit.appendMany(many, options);
      },
    },
    sts: createStsClient({ region: REGION, endpoint: fleet.fleet.endpoint, baseCredentials: ROOT }),
    ssmFor: (credentials) => {
      const client = createSsmClient({ region: REGION, endpoint: proxy.endpoint }, credentials);
      clients.push(client);
      const reject = opts.rejectWith;
      if (reject) {
        const send = client.send.bind(client) as (command: unknown) => Promise<unknown>;
        client.send = (command: { constructor: { name: string } }) =>
          command.constructor.name === `${reject.operation}Command`
            ? // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- what reaches the activity is not always an Error
              Promise.reject(reject.value)
            : send(command);
      }
      return client;
    },
    pollIntervalMs: { min: 50, max: 200 },
    deliveryTimeoutSeconds: 60,
  });
  return Object.assign(activities, { events });
}

/** A step request for a fresh run on `targets`, its script and settings changed by `step`. */
const request = (
  targets: readonly string[] = [WEB_1, WEB_2],
  step: Record<string, unknown> = {},
  over: Partial<StepRequest> = {},
): StepRequest => stepRequest('mutants-ssm-2', 'mx-mss2', targets, step, over);
/** The SendCommand calls the proxy saw whose token starts with `token` (one run's, or one step's). */
const sent = (token: string) =>
  proxy.calls.filter((c) => c.operation === 'SendCommand' && String(c.input['Comment']).startsWith(token));
/** The step records of a run in the store, in the order they were appended (credential records left out). */
const recordsOf = async (executionId: string) =>
  (await audit.list({ executionId }))
    .filter((r) => r.type.startsWith('step.'))
    .map((r) => ({ eventId: r.eventId, type: r.type, actor: r.actor, data: r.data }));

describe('a rate control, a page and a refusal devfleet never sends', () => {
  test('a step at 1 % on two instances runs one at a time: the second wave gets the step timeout on top of delivery', async () => {
    const req = request([WEB_1, WEB_2], { maxConcurrency: '1%', timeoutSeconds: 40 });
    const { commandId } = await run(worker().dispatchStep, req);
    expect(sent(dispatchToken(req)).map((c) => [c.input['MaxConcurrency'], c.input['TimeoutSeconds']])).toEqual([
      ['1%', 60 + 40],
    ]);
    expect(commandId).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('answers devfleet never gives, through the SDK', () => {
  test('a ListCommands page without its Commands field holds no command: dispatch goes on and sends', async () => {
    proxy.answer = (operation) => (operation === 'ListCommands' ? { json: {} } : undefined);
    const req = request([WEB_1]);
    await expect(run(worker().dispatchStep, req)).resolves.toMatchObject({ adopted: false });
    expect(sent(dispatchToken(req))).toHaveLength(1);
  });

  test('a ListCommandInvocations page without its CommandInvocations field adds nothing to the pages before it', async () => {
    // The command's listing and its instance's details are made up here. The first page lists the
    // instance, done; the last page comes without the field. A page that added anything would
    // leave the step unfinished: after ten polls the proxy refuses the listing, to end the test.
    let firstPages = 0;
    proxy.answer = (operation, input) => {
      if (operation === 'GetCommandInvocation')
        return {
          json: { Status: 'Success', StatusDetails: 'Success', ResponseCode: 0, StandardOutputContent: 'ok\n' },
        };
      if (operation !== 'ListCommandInvocations') return undefined;
      if (input['NextToken'] === 'last') return { json: {} };
      if (++firstPages > 10) return { status: 400, json: { __type: 'InvalidCommandId', message: 'polled too often' } };
      const invocation = { InstanceId: WEB_1, Status: 'Success', StatusDetails: 'Success' };
      return { json: { CommandInvocations: [invocation], NextToken: 'last' } };
    };
    const outcome = await run(worker().awaitStep, { ...request([WEB_1]), commandId: 'c-last-page-bare' });
    expect(firstPages).toBe(1);
    expect(outcome.instances.map((i) => [i.instanceId, i.status, i.stdout])).toEqual([[WEB_1, 'Success', 'ok\n']]);
    expect(outcome.ok).toBe(true);
  });

  test('UnsupportedPlatformType without a message is still the one-sentence refusal (the SDK says UnknownError)', async () => {
    proxy.answer = (operation) =>
      operation === 'SendCommand' ? { status: 400, json: { __type: 'UnsupportedPlatformType' } } : undefined;
    const f = await failureOf(run(worker().dispatchStep, request([WEB_1])));
    expect([f.type, f.nonRetryable, f.message]).toEqual([
      'SSM_COMMAND_FAILED',
      true,
      sendRefusal('UnsupportedPlatformType', 'UnknownError'),
    ]);
  });

  test('a refusal that reaches the activity with no message at all says nothing in its place', async () => {
    // Not from the SDK, which fills in UnknownError (above): a rejection that is not an Error.
    const w = worker({ rejectWith: { operation: 'SendCommand', value: { name: 'UnsupportedPlatformType' } } });
    const f = await failureOf(run(w.dispatchStep, request([WEB_1])));
    expect([f.type, f.nonRetryable, f.message]).toEqual([
      'SSM_COMMAND_FAILED',
      true,
      sendRefusal('UnsupportedPlatformType', ''),
    ]);
  });
});

/** What a batch answers for an instance that succeeded: its status and exit code, no output. */
const succeeded = (instanceId: string) => ({
  instanceId,
  status: 'Success',
  statusDetails: 'Success',
  responseCode: 0,
});

describe('one batch of a step on more than 50 instances (runBatch)', () => {
  test("sends the batch's instances once, with the batch's own token and share of the rate control, records it started and each instance once, and answers no output", async () => {
    const w = worker();
    // The step's own rate control differs from the batch's share: the batch's is what SSM gets.
    const step = request([WEB_1, WEB_2], { maxConcurrency: '50%', maxErrors: '1', script: 'echo batch' });
    const req: BatchRequest = { ...step, batch: 1, maxConcurrency: '1', maxErrors: '0' };
    const outcome = await run(w.runBatch, req);
    const token = `${dispatchToken(step)} batch 2`;
    expect(batchToken(req)).toBe(token);
    expect(sent(dispatchToken(step)).map((c) => c.input)).toStrictEqual([
      {
        DocumentName: 'AWS-RunShellScript',
        InstanceIds: [WEB_1, WEB_2],
        Parameters: { commands: ['echo batch'], executionTimeout: ['30'] },
        // One at a time on two instances: the second wave gets the step's timeout on top.
        TimeoutSeconds: 60 + 30,
        Comment: token,
        MaxConcurrency: '1',
        MaxErrors: '0',
      },
    ]);
    expect(outcome).toStrictEqual({ commandId: outcome.commandId, instances: [succeeded(WEB_1), succeeded(WEB_2)] });
    expect(outcome.commandId).toMatch(/^[0-9a-f-]{36}$/);
    const { commandId } = outcome;
    expect(await recordsOf(req.executionId)).toStrictEqual([
      {
        eventId: `${req.executionId}:step.started:main:0:batch:1`,
        type: 'step.started',
        actor: 'mechanic',
        data: { step: 'only', index: 0, phase: 'main', commandId },
      },
      ...[WEB_1, WEB_2].map((id) => ({
        eventId: instanceEventId(req.executionId, 'main', 0, id),
        type: 'step.instance',
        actor: 'mechanic',
        data: expect.objectContaining({ commandId, instanceId: id, status: 'Success', stdout: 'batch\n' }) as unknown,
      })),
    ]);
    // As handed to the store: no attempt field on a first attempt.
    expect(w.events.find((e) => e.type === 'step.started')!.data).toStrictEqual({
      step: 'only',
      index: 0,
      phase: 'main',
      commandId,
    });
  });

  test.each([
    [1, '', ''],
    [2, ' attempt 2', ':attempt:2'],
    [3, ' attempt 3', ':attempt:3'],
  ])(
    'a retried step (attempt %i) gives its batch its own token and step.started id, and says the attempt',
    async (attempt, inToken, inId) => {
      const w = worker();
      const step = request([WEB_1], {}, { attempt });
      const req: BatchRequest = { ...step, batch: 0, maxConcurrency: '50', maxErrors: '0' };
      const { commandId } = await run(w.runBatch, req);
      expect(sent(`mechanic ${req.executionId} `).map((c) => c.input['Comment'])).toEqual([
        `mechanic ${req.executionId} step 0${inToken} batch 1`,
      ]);
      const started = (await recordsOf(req.executionId)).filter((r) => r.type === 'step.started');
      expect(started).toStrictEqual([
        {
          eventId: `${req.executionId}:step.started:main:0:batch:0${inId}`,
          type: 'step.started',
          actor: 'mechanic',
          data: { step: 'only', index: 0, phase: 'main', attempt, commandId },
        },
      ]);
    },
  );

  test("each batch of a step is its own command; a batch's retry adopts its own command, and records nothing twice", async () => {
    const w = worker();
    const step = request([WEB_1, WEB_2]);
    const batch = (n: number, instanceIds: string[]): BatchRequest => ({
      ...step,
      instanceIds,
      batch: n,
      maxConcurrency: '50',
      maxErrors: '0',
    });
    const first = await run(w.runBatch, batch(0, [WEB_1]));
    const second = await run(w.runBatch, batch(1, [WEB_2]));
    expect(first.commandId).not.toBe(second.commandId);
    expect(sent(dispatchToken(step)).map((c) => [c.input['Comment'], c.input['InstanceIds']])).toEqual([
      [`${dispatchToken(step)} batch 1`, [WEB_1]],
      [`${dispatchToken(step)} batch 2`, [WEB_2]],
    ]);
    const before = await recordsOf(step.executionId);
    // The worker died after the second batch's command was sent: Temporal runs the activity again.
    const retried = await env({ attempt: 2 }).run(w.runBatch, batch(1, [WEB_2]));
    expect(retried).toStrictEqual(second);
    expect(sent(dispatchToken(step))).toHaveLength(2);
    expect(await recordsOf(step.executionId)).toStrictEqual(before);
    expect(before.map((r) => r.eventId)).toEqual([
      `${step.executionId}:step.started:main:0:batch:0`,
      instanceEventId(step.executionId, 'main', 0, WEB_1),
      `${step.executionId}:step.started:main:0:batch:1`,
      instanceEventId(step.executionId, 'main', 0, WEB_2),
    ]);
  });

  test('a batch whose SendCommand answer was lost adopts the command SSM accepted: one send, one run', async () => {
    let dropped = 0;
    proxy.answer = (operation) => (operation === 'SendCommand' && dropped++ === 0 ? { drop: true } : undefined);
    const w = worker();
    const step = request([WEB_1]);
    const req: BatchRequest = { ...step, batch: 0, maxConcurrency: '50', maxErrors: '0' };
    const outcome = await run(w.runBatch, req);
    expect(dropped).toBe(1);
    expect(sent(dispatchToken(step))).toHaveLength(1);
    expect(outcome.instances).toStrictEqual([succeeded(WEB_1)]);
    expect((await recordsOf(step.executionId)).map((r) => [r.type, r.data['commandId']])).toEqual([
      ['step.started', outcome.commandId],
      ['step.instance', outcome.commandId],
    ]);
  });

  test('beats while SSM is slow to take the batch, and stops beating once it follows the command', async () => {
    proxy.answer = (operation) => (operation === 'SendCommand' ? { delayMs: 2_500 } : undefined);
    const w = worker();
    // The script waits for a file the test writes after the tenth poll: with pauses of 50 ms growing
    // to 200, the follow lasts over a second, longer than the send's beat interval.
    const go = `go-${randomUUID()}`;
    const req: BatchRequest = {
      ...request([WEB_1], { script: `while [ ! -e ${go} ]; do sleep 0.05; done; echo done` }),
      batch: 0,
      maxConcurrency: '50',
      maxErrors: '0',
    };
    const running = env();
    const beats: unknown[] = [];
    let polls = 0;
    running.on('heartbeat', (d: unknown) => {
      beats.push(d);
      if (d !== undefined && ++polls === 10) writeFileSync(join(fleet.dataDir, 'instances', WEB_1, 'root', go), '');
    });
    await running.run(w.runBatch, req);
    // The send's beats carry nothing; the follow's say how many instances are done.
    const firstPoll = beats.findIndex((b) => b !== undefined);
    expect(firstPoll).toBeGreaterThanOrEqual(1);
    expect(polls).toBeGreaterThan(10);
    expect(beats.slice(firstPoll).filter((b) => b === undefined)).toEqual([]);
    expect(beats.at(-1)).toEqual(expect.objectContaining({ done: 1, of: 1 }));
  });
});

describe('cancelling the batches of a step (cancelBatches)', () => {
  /** Starts batches `numbers` of a step of long scripts and waits until each is sent and recorded started. */
  async function started(numbers: readonly number[], script = 'sleep 30') {
    const w = worker();
    const step = request([WEB_1, WEB_2], { script });
    const ids = [WEB_1, WEB_2];
    // One instance each (the first batch on web-1, the second on web-2), so their records differ.
    const runs = numbers.map((n, i) =>
      run(w.runBatch, { ...step, instanceIds: [ids[i]!], batch: n, maxConcurrency: '50', maxErrors: '0' }),
    );
    const commandIds = await vi.waitFor(
      async () => {
        const records = (await recordsOf(step.executionId)).filter((r) => r.type === 'step.started');
        expect(records).toHaveLength(numbers.length);
        return numbers.map((n) => records.find((r) => r.eventId.endsWith(`:batch:${n}`))!.data['commandId'] as string);
      },
      { timeout: 120_000, interval: 50 },
    );
    return { w, step, runs, commandIds };
  }
  const cancels = (commandIds: readonly string[]) =>
    proxy.calls.filter((c) => c.operation === 'CancelCommand' && commandIds.includes(String(c.input['CommandId'])));

  test('cancels exactly the batches named that SSM shows, and answers those it does not show yet', async () => {
    const { w, step, runs, commandIds } = await started([0, 2]);
    // Batch 1 was never sent (a batch still being sent looks the same): it is answered, not cancelled.
    await expect(run(w.cancelBatches, { ...step, batches: [0, 1, 2] })).resolves.toEqual([1]);
    expect(cancels(commandIds).map((c) => c.input)).toStrictEqual(commandIds.map((CommandId) => ({ CommandId })));
    // Each batch's own activity follows its command to the end and records it.
    const outcomes = await Promise.all(runs);
    expect(outcomes.map((o) => [o.commandId, o.instances.map((i) => [i.instanceId, i.status])])).toEqual([
      [commandIds[0], [[WEB_1, 'Cancelled']]],
      [commandIds[1], [[WEB_2, 'Cancelled']]],
    ]);
    expect((await recordsOf(step.executionId)).filter((r) => r.type === 'step.instance')).toHaveLength(2);
  });

  test('a batch SSM will no longer cancel is passed over and the next one is still cancelled; a cancel that may work if retried fails the attempt', async () => {
    const { w, step, runs, commandIds } = await started([0, 1]);
    const [one, two] = commandIds as [string, string];
    proxy.answer = (operation, input) =>
      operation === 'CancelCommand' && input['CommandId'] === one
        ? { status: 400, json: { __type: 'InvalidCommandId', message: `Command ${one} cannot be cancelled.` } }
        : undefined;
    await expect(run(w.cancelBatches, { ...step, batches: [0, 1] })).resolves.toEqual([]);
    expect(cancels(commandIds).map((c) => c.input['CommandId'])).toEqual([one, two]);
    await expect(runs[1]).resolves.toMatchObject({ instances: [{ status: 'Cancelled' }] });

    proxy.answer = (operation) =>
      operation === 'CancelCommand' ? { status: 400, json: { __type: 'TooManyUpdates', message: 'busy' } } : undefined;
    const f = await failureOf(run(w.cancelBatches, { ...step, batches: [0] }));
    expect([f.type, f.nonRetryable, f.message]).toEqual(['SSM_UNAVAILABLE', false, 'TooManyUpdates: busy']);

    proxy.answer = () => undefined;
    await expect(run(w.cancelBatches, { ...step, batches: [0] })).resolves.toEqual([]);
    await expect(runs[0]).resolves.toMatchObject({ instances: [{ status: 'Cancelled' }] });
  });
});
