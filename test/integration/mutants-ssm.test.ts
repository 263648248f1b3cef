/**
 * The SSM activities (src/activities/ssm.ts) against an in-process devfleet with the real AWS SDK
 * clients, for what the activity tests left unpinned (issue 12, mutation round five): the exact
 * SendCommand and ListCommands mechanic sends, the delivery timeout of a rate-limited step, how
 * long a retried or unconfirmed dispatch looks before it sends or fails, heartbeats, the output an
 * instance's record and result hold (redacted, capped, marked when SSM cut it), the stamp of a
 * record, a failing instance, cancelling, and how each SDK error becomes a Temporal failure.
 *
 * Every client is a real SSMClient against devfleet; a test that needs an answer devfleet never
 * gives (an SDK error of a given name, an answer without a command id) replaces that one call.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { CredentialLeases } from '../../src/activities/credentials.ts';
import { createSsmClient, createStsClient, SendCommandOutcomeUnknownError } from '../../src/activities/aws.ts';
import { createSsmActivities, dispatchToken } from '../../src/activities/ssm.ts';
import type { NewAuditEvent } from '../../src/core/audit.ts';
import type { StepRequest } from '../../src/core/execution.ts';
import { REDACTED } from '../../src/core/redact.ts';
import { SSM_OUTPUT_LIMITS, sendRefusal } from '../../src/core/ssm-output.ts';
import { defaultFleetConfig } from '../../src/devfleet/config.ts';
import { activityEnv as env, failureOf, runActivity as run, stepRequest } from '../helpers/activity-requests.ts';
import { REGION, ROOT, startHarness, type Harness } from './devfleet-helpers.ts';

const WEB_1 = 'i-0d3f1ee7000000001';
const WEB_2 = 'i-0d3f1ee7000000002';
const GONE = 'i-0eeeeeeeeeeeeeee9'; // an instance whose agent is not connected
const FAILS = 'i-0fa11fa11fa11fa11'; // every command fails there with exit code 1

interface Call {
  readonly name: string;
  readonly input: Record<string, unknown>;
}
/** Replaces one SSM call: return an answer (or throw) instead of asking devfleet; undefined asks devfleet. */
type Hook = (name: string, input: Record<string, unknown>) => Promise<unknown> | undefined;

let fleet: Harness;
const clients: SSMClient[] = [];

beforeAll(async () => {
  const config = defaultFleetConfig(ROOT);
  fleet = await startHarness({
    config: {
      ...config,
      instances: [
        ...config.instances,
        { id: GONE, tags: { Role: 'gone' }, faults: { offline: true } },
        { id: FAILS, tags: { Role: 'fails' }, faults: { failAlways: true } },
      ],
    },
  });
});
afterAll(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await fleet?.close();
});

/** A worker's activities whose SSM calls are recorded (and, through `hook`, replaced one by one). */
function worker(
  opts: {
    hook?: Hook;
    append?: (e: NewAuditEvent) => Promise<unknown>;
    lookupMs?: number;
    deliveryTimeoutSeconds?: number;
  } = {},
) {
  const calls: Call[] = [];
  const events: NewAuditEvent[] = [];
  const aws = { region: REGION, endpoint: fleet.fleet.endpoint, baseCredentials: ROOT };
  const record = opts.append ?? (async (e: NewAuditEvent) => events.push(e));
  // As createActivities builds them, with the look-up budget it leaves at its default (15 s) set.
  const leases = new CredentialLeases({ sts: createStsClient(aws), record });
  const activities = createSsmActivities({
    leases,
    record,
    ssmFor: (credentials) => {
      const client = createSsmClient(aws, credentials);
      clients.push(client);
      const send = client.send.bind(client) as (command: unknown) => Promise<unknown>;
      client.send = async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
        const name = command.constructor.name.replace(/Command$/, '');
        calls.push({ name, input: JSON.parse(JSON.stringify(command.input)) as Record<string, unknown> });
        const replaced = opts.hook?.(name, command.input);
        if (replaced !== undefined) return await replaced;
        return await send(command);
      };
      return client;
    },
    pollIntervalMs: { min: 50, max: 200 },
    deliveryTimeoutSeconds: opts.deliveryTimeoutSeconds ?? 60,
    ...(opts.lookupMs !== undefined ? { unconfirmedSendLookupMs: opts.lookupMs } : {}),
  });
  const named = (name: string) => calls.filter((c) => c.name === name);
  /**
   * The calls that begin a look-up or a send, in order: a page after the first (NextToken) is part
   * of the same look-up, and how many there are depends on the commands other tests left in devfleet.
   */
  const firstPages = () => calls.filter((c) => c.input['NextToken'] === undefined).map((c) => c.name);
  return { activities, leases, calls, named, firstPages, events };
}

/** A step request for a fresh run on `targets`, its script and settings changed by `step`. */
const request = (
  targets: readonly string[] = [WEB_1, WEB_2],
  step: Record<string, unknown> = {},
  over: Partial<StepRequest> = {},
): StepRequest => stepRequest('mutants-ssm', 'mx-mssm', targets, step, over);
/** An SDK error as the client throws it: a name and a message. */
const sdkError = (name: string, message = `${name} from the test`) => Object.assign(new Error(message), { name });
const stepInstances = (events: readonly NewAuditEvent[]) => events.filter((e) => e.type === 'step.instance');
const sha = (text: string) => createHash('sha256').update(text).digest('hex');

describe('what dispatch sends', () => {
  test("one SendCommand: the shell document, the planned instances, the script's lines, its timeout, the token and SSM's defaults stated", async () => {
    const w = worker();
    const req = request([WEB_1, WEB_2], { script: 'echo one\necho two', timeoutSeconds: 45 });
    const sent = await run(w.activities.dispatchStep, req);
    expect(sent.adopted).toBe(false);
    expect(w.named('SendCommand').map((c) => c.input)).toStrictEqual([
      {
        DocumentName: 'AWS-RunShellScript',
        InstanceIds: [WEB_1, WEB_2],
        Parameters: { commands: ['echo one', 'echo two'], executionTimeout: ['45'] },
        TimeoutSeconds: 60,
        Comment: dispatchToken(req),
        MaxConcurrency: '50',
        MaxErrors: '0',
      },
    ]);
    // It looked for an earlier send first: the shell document's commands since five minutes before the run was planned.
    const after = new Date(Date.parse(req.notBefore) - 5 * 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    expect(w.named('ListCommands')[0]!.input).toStrictEqual({
      Filters: [
        { key: 'InvokedAfter', value: after },
        { key: 'DocumentName', value: 'AWS-RunShellScript' },
      ],
      MaxResults: 50,
    });
    expect(w.firstPages()).toEqual(['ListCommands', 'SendCommand']);
  });

  test.each([
    // [targets, maxConcurrency, maxErrors, step timeout, delivery timeout sent]
    [[WEB_1, WEB_2], '1', '1', 40, 60 + 40], // two waves: the second gets the step's timeout again
    [[WEB_1, WEB_2], '50%', '0', 40, 60 + 40], // 50 % of two is one at a time
    [[WEB_1, WEB_2], '2', '0', 40, 60], // one wave
    [[WEB_1, WEB_2], '1', '0', 2_592_000, 2_592_000], // never past SSM's longest, 30 days
    [[], '1', '0', 40, 60], // no targets: no waves to add
  ] as const)(
    'a step on %j at most %s at once (maxErrors %s, timeout %i s) asks SSM to deliver within %i s',
    async (targets, maxConcurrency, maxErrors, timeoutSeconds, delivery) => {
      // The answer is made up here: only what is sent matters, and no command should run.
      const w = worker({
        hook: (name) => (name === 'SendCommand' ? Promise.resolve({ Command: { CommandId: 'c-made-up' } }) : undefined),
      });
      const req = request([WEB_1, WEB_2], { maxConcurrency, maxErrors, timeoutSeconds }, { instanceIds: targets });
      await run(w.activities.dispatchStep, req);
      expect(w.named('SendCommand')[0]!.input).toMatchObject({
        TimeoutSeconds: delivery,
        MaxConcurrency: maxConcurrency,
        MaxErrors: maxErrors,
        Parameters: { executionTimeout: [String(timeoutSeconds)] },
      });
    },
  );

  test('a worker told to give SSM less than 30 s to deliver still gives it 30 (SSM refuses less)', async () => {
    const w = worker({ deliveryTimeoutSeconds: 5 });
    await run(w.activities.dispatchStep, request([WEB_1]));
    expect(w.named('SendCommand')[0]!.input['TimeoutSeconds']).toBe(30);
  });

  test.each([[{ Command: {} }], [{}]])(
    'an answer without a command id (%j) is a retryable failure that says so',
    async (answer) => {
      const w = worker({ hook: (name) => (name === 'SendCommand' ? Promise.resolve(answer) : undefined) });
      const f = await failureOf(run(w.activities.dispatchStep, request([WEB_1])));
      expect([f.type, f.nonRetryable, f.message]).toEqual([
        'SSM_INCOMPLETE',
        false,
        'SSM accepted the command without a command id',
      ]);
    },
  );
});

describe('how long dispatch looks for an earlier send', () => {
  test('a first attempt that finds nothing sends at once: one look-up', async () => {
    const w = worker({ lookupMs: 600 });
    await run(w.activities.dispatchStep, request([WEB_1]));
    expect(w.firstPages()).toEqual(['ListCommands', 'SendCommand']);
  });

  test('a retried attempt looks again after 250 ms and then until the budget is spent (600 ms: three look-ups), then sends', async () => {
    const w = worker({ lookupMs: 600 });
    await env({ attempt: 2 }).run(w.activities.dispatchStep, request([WEB_1]));
    expect(w.firstPages()).toEqual(['ListCommands', 'ListCommands', 'ListCommands', 'SendCommand']);
  });

  test('a budget of 2 s: pauses of 250, 500 and 1,000 ms, then the 250 left (five look-ups)', async () => {
    const w = worker({ lookupMs: 2_000 });
    await env({ attempt: 3 }).run(w.activities.dispatchStep, request([WEB_1]));
    expect(w.firstPages()).toEqual([...Array<string>(5).fill('ListCommands'), 'SendCommand']);
  });

  test('a refusal is not looked for again: SSM said no, so nothing was sent', async () => {
    const w = worker({ lookupMs: 600 });
    const f = await failureOf(run(w.activities.dispatchStep, request([GONE])));
    expect(f.nonRetryable).toBe(true);
    expect(w.firstPages()).toEqual(['ListCommands', 'SendCommand']);
  });

  test('a lost answer that ListCommands does not show within the budget fails the attempt as unconfirmed (retryable)', async () => {
    // The retry that adopts it is test/integration/activities.test.ts › a retried dispatch looks long enough….
    const lossy = await startHarness({
      config: {
        ...defaultFleetConfig(ROOT),
        faults: { sendCommand: { acceptThen: 'drop', times: 1 }, listCommandsLagMs: 60_000 },
      },
    });
    try {
      const aws = { region: REGION, endpoint: lossy.fleet.endpoint, baseCredentials: ROOT };
      const record = async () => undefined;
      const activities = createSsmActivities({
        leases: new CredentialLeases({ sts: createStsClient(aws), record }),
        record,
        ssmFor: (credentials) => {
          const client = createSsmClient(aws, credentials);
          clients.push(client);
          return client;
        },
        pollIntervalMs: { min: 50, max: 200 },
        deliveryTimeoutSeconds: 60,
        unconfirmedSendLookupMs: 300,
      });
      const f = await failureOf(run(activities.dispatchStep, request([WEB_1])));
      expect([f.type, f.nonRetryable]).toEqual(['SSM_SEND_UNCONFIRMED', false]);
      expect(f.message).toMatch(
        /^SendCommandOutcomeUnknown: SSM may have accepted the command, but its answer was lost/,
      );
    } finally {
      await lossy.close();
    }
  });
});

describe('heartbeats', () => {
  test('dispatch beats while SSM is slow to answer, and stops when it returns', async () => {
    const slow = worker({
      hook: (name) =>
        name === 'SendCommand'
          ? new Promise((resolve) => setTimeout(() => resolve({ Command: { CommandId: 'c-slow' } }), 2_500))
          : undefined,
    });
    const dispatching = env();
    const beats: unknown[] = [];
    dispatching.on('heartbeat', (d: unknown) => beats.push(d));
    await dispatching.run(slow.activities.dispatchStep, request([WEB_1]));
    expect(beats.length).toBeGreaterThanOrEqual(1);
    const after = beats.length;
    // Something that takes longer than a beat's interval: a real step of 1.5 s.
    const w = worker();
    const req = request([WEB_1], { script: 'sleep 1.5; echo done' });
    const { commandId } = await run(w.activities.dispatchStep, req);
    await run(w.activities.awaitStep, { ...req, commandId });
    expect(beats).toHaveLength(after);
  });

  test('await beats once per poll with how many instances are done of how many', async () => {
    const w = worker();
    // The scripts wait for a file the test writes after the first poll, so there are at least two.
    const req = request([WEB_1, WEB_2], { script: 'while [ ! -e go ]; do sleep 0.05; done; echo done' });
    const { commandId } = await run(w.activities.dispatchStep, req);
    const awaiting = env();
    const beats: { poll: number; done: number; of: number }[] = [];
    awaiting.on('heartbeat', (d: { poll: number; done: number; of: number }) => {
      beats.push(d);
      if (beats.length === 1) {
        for (const id of req.instanceIds) writeFileSync(join(fleet.dataDir, 'instances', id, 'root', 'go'), '');
      }
    });
    await awaiting.run(w.activities.awaitStep, { ...req, commandId });
    expect(beats.length).toBeGreaterThan(1);
    expect(beats[0]).toEqual({ poll: 1, done: 0, of: 2 });
    expect(beats.map((b) => b.poll)).toEqual(beats.map((_, i) => i + 1));
    expect(beats.at(-1)).toEqual({ poll: beats.length, done: 2, of: 2 });
    expect(w.named('ListCommandInvocations')).toHaveLength(beats.length);
  });
});

describe("an instance's record and result", () => {
  const secret = 'AKIAABCDEFGHIJKLMNOP';

  test('output is redacted in both; the record keeps up to 24,000 characters, the result a preview of 2,000; the digest covers the record', async () => {
    const w = worker();
    const script = `echo "key ${secret}"; head -c 3000 /dev/zero | tr '\\0' a; echo; echo "warn password=hunter2" >&2`;
    const req = request([WEB_1], { script });
    const { commandId } = await run(w.activities.dispatchStep, req);
    const outcome = await run(w.activities.awaitStep, { ...req, commandId });
    const [record] = stepInstances(w.events);
    const data = record!.data;
    const stdout = `key ${REDACTED}\n${'a'.repeat(3000)}\n`;
    expect(data['stdout']).toBe(stdout);
    expect(data['stderr']).toBe(`warn password=${REDACTED}\n`);
    expect(data['outputSha256']).toBe(sha(`${stdout}\u0000warn password=${REDACTED}\n`));
    expect(data).not.toHaveProperty('truncatedBySsm');
    expect(data).not.toHaveProperty('attempt');
    const [result] = outcome.instances;
    expect(result!.stdout).toBe(`${stdout.slice(0, 2000)}\n[… ${stdout.length - 2000} more characters not shown]`);
    expect(result!.stderr).toBe(`warn password=${REDACTED}\n`);
    expect(result!.outputSha256).toBe(data['outputSha256']);
    expect(result).not.toHaveProperty('truncatedBySsm');
    expect(record).toMatchObject({
      eventId: `${req.executionId}:step.instance:main:0:${WEB_1}`,
      executionId: req.executionId,
      actor: 'mechanic',
    });
    expect(data).toMatchObject({
      step: 'only',
      index: 0,
      phase: 'main',
      commandId,
      instanceId: WEB_1,
      status: 'Success',
      statusDetails: 'Success',
      responseCode: 0,
    });
  });

  test('output SSM cut at its limit is marked in both, stream by stream; the record keeps 24,000 characters', async () => {
    const w = worker();
    const { stdout: outLimit, stderr: errLimit } = SSM_OUTPUT_LIMITS;
    const req = request([WEB_1], {
      script: `head -c ${outLimit + 500} /dev/zero | tr '\\0' o; head -c ${errLimit} /dev/zero | tr '\\0' e >&2`,
    });
    const { commandId } = await run(w.activities.dispatchStep, req);
    const outcome = await run(w.activities.awaitStep, { ...req, commandId });
    const data = stepInstances(w.events)[0]!.data;
    expect(data['truncatedBySsm']).toEqual(['stdout', 'stderr']);
    expect(outcome.instances[0]!.truncatedBySsm).toEqual(['stdout', 'stderr']);
    expect(data['stdout']).toBe('o'.repeat(outLimit));
    expect(data['stderr']).toBe('e'.repeat(errLimit));
  });

  test('a failing instance: its exit code and status; the step is not ok', async () => {
    const w = worker();
    const req = request([WEB_1, WEB_2], { script: 'echo bye; exit 3' });
    const { commandId } = await run(w.activities.dispatchStep, req);
    const outcome = await run(w.activities.awaitStep, { ...req, commandId });
    expect(outcome.ok).toBe(false);
    expect(outcome.commandId).toBe(commandId);
    expect(outcome.instances.map((i) => [i.instanceId, i.status, i.statusDetails, i.responseCode])).toEqual([
      [WEB_1, 'Failed', 'Failed', 3],
      [WEB_2, 'Failed', 'Failed', 3],
    ]);
  });

  test('one instance failing of two is enough for the step not to be ok', async () => {
    const w = worker();
    const req = request([WEB_1, FAILS]);
    const { commandId } = await run(w.activities.dispatchStep, req);
    const outcome = await run(w.activities.awaitStep, { ...req, commandId });
    expect(outcome.ok).toBe(false);
    expect(outcome.instances.map((i) => [i.instanceId, i.status, i.responseCode])).toEqual([
      [WEB_1, 'Success', 0],
      [FAILS, 'Failed', 1],
    ]);
  });

  test("a retried step's record carries its attempt, in its data and its id", async () => {
    const w = worker();
    const req = request([WEB_1], {}, { attempt: 2 });
    const { commandId } = await run(w.activities.dispatchStep, req);
    await run(w.activities.awaitStep, { ...req, commandId });
    const record = stepInstances(w.events)[0]!;
    expect(record.data['attempt']).toBe(2);
    expect(record.eventId).toBe(`${req.executionId}:step.instance:main:0:${WEB_1}:attempt:2`);
  });

  test('a record is stamped no earlier than the attempt was scheduled, even when that is later than now', async () => {
    const w = worker();
    const req = request([WEB_1, WEB_2]);
    const { commandId } = await run(w.activities.dispatchStep, req);
    const scheduled = Date.now() + 3_600_000;
    await env({ currentAttemptScheduledTimestampMs: scheduled }).run(w.activities.awaitStep, { ...req, commandId });
    expect(stepInstances(w.events).map((e) => e.at)).toEqual([
      new Date(scheduled).toISOString(),
      new Date(scheduled).toISOString(),
    ]);
  });

  test('a record that cannot be written fails the attempt (only a conflict with an earlier record is passed over)', async () => {
    const w = worker({
      append: async (e) => {
        if (e.type === 'step.instance') throw new Error('the audit store is down');
      },
    });
    const req = request([WEB_1]);
    const { commandId } = await run(w.activities.dispatchStep, req);
    await expect(run(w.activities.awaitStep, { ...req, commandId })).rejects.toThrow('the audit store is down');
  });

  test('outputs are fetched at most five at a time, and recorded in SSM order', async () => {
    // Twelve invocations of one command, answered by GetCommandInvocation slowly enough to overlap.
    const ids = Array.from({ length: 12 }, (_, i) => `i-0${String(i).padStart(16, '0')}`);
    const invocations = ids.map((id) => ({ InstanceId: id, Status: 'Success', StatusDetails: 'Success' }));
    let inFlight = 0;
    let peak = 0;
    const w = worker({
      hook: (name, input) => {
        if (name === 'ListCommandInvocations') return Promise.resolve({ CommandInvocations: invocations });
        if (name !== 'GetCommandInvocation') return undefined;
        peak = Math.max(peak, ++inFlight);
        return new Promise((resolve) =>
          setTimeout(() => {
            inFlight--;
            resolve({
              Status: 'Success',
              StatusDetails: 'Success',
              ResponseCode: 0,
              StandardOutputContent: `${String(input['InstanceId'])}\n`,
            });
          }, 50),
        );
      },
    });
    const req = request(ids);
    const outcome = await run(w.activities.awaitStep, { ...req, commandId: 'c-twelve' });
    expect(peak).toBe(5);
    expect(outcome.instances.map((i) => i.instanceId)).toEqual(ids);
    expect(outcome.instances.map((i) => i.stdout)).toEqual(ids.map((id) => `${id}\n`));
    expect(stepInstances(w.events).map((e) => e.data['instanceId'])).toEqual(ids);
    expect(outcome.ok).toBe(true);
  });
});

describe('answers devfleet never gives (made up here)', () => {
  const answering = (lists: unknown[][], details: (instanceId: string) => Record<string, unknown>) => {
    let listed = 0;
    return worker({
      hook: (name, input) => {
        if (name === 'ListCommandInvocations') {
          const invocations = lists[Math.min(listed++, lists.length - 1)];
          return Promise.resolve({ CommandInvocations: invocations });
        }
        if (name === 'GetCommandInvocation') return Promise.resolve(details(String(input['InstanceId'])));
        return undefined;
      },
    });
  };

  test('fields SSM leaves out: the status and details come from the listing, the exit code is -1, the output empty', async () => {
    const w = answering([[{ InstanceId: WEB_1, Status: 'Failed', StatusDetails: 'Undeliverable' }]], () => ({}));
    const outcome = await run(w.activities.awaitStep, { ...request([WEB_1]), commandId: 'c-sparse' });
    expect(outcome).toStrictEqual({
      commandId: 'c-sparse',
      ok: false,
      instances: [
        {
          instanceId: WEB_1,
          status: 'Failed',
          statusDetails: 'Undeliverable',
          responseCode: -1,
          stdout: '',
          stderr: '',
          outputSha256: sha('\u0000'),
        },
      ],
    });
  });

  test('with no status anywhere, an instance counts as Failed with no details', async () => {
    // Listed as Success (so polling ends), but the invocation answers nothing and the listing had no details.
    const w = answering([[{ InstanceId: WEB_1, Status: 'Success' }]], () => ({ Status: undefined }));
    const first = await run(w.activities.awaitStep, { ...request([WEB_1]), commandId: 'c-bare' });
    expect(first.instances[0]).toMatchObject({ status: 'Success', statusDetails: '' });
    const v = answering([[{ InstanceId: WEB_1, Status: 'Cancelled' }]], () => ({}));
    const second = await run(v.activities.awaitStep, { ...request([WEB_1]), commandId: 'c-bare' });
    expect(second.instances[0]).toMatchObject({ status: 'Cancelled', statusDetails: '' });
  });

  test('an invocation without an instance id is asked for and recorded as unknown, and the planned instance counts as missing', async () => {
    const w = answering([[{ Status: 'Success' }]], (id) => ({
      Status: 'Success',
      StatusDetails: 'Success',
      ResponseCode: 0,
      StandardOutputContent: id,
    }));
    const outcome = await run(w.activities.awaitStep, { ...request([WEB_1]), commandId: 'c-anon' });
    expect(w.named('GetCommandInvocation').map((c) => c.input['InstanceId'])).toEqual(['unknown']);
    expect(outcome.instances.map((i) => [i.instanceId, i.status, i.stdout])).toEqual([
      ['unknown', 'Success', 'unknown'],
    ]);
    expect(outcome.ok).toBe(false);
  });

  test('a listing with fewer invocations than targets, or one still running, is polled again', async () => {
    const done = (id: string) => ({ InstanceId: id, Status: 'Success', StatusDetails: 'Success' });
    const w = answering(
      [[done(WEB_1)], [done(WEB_1), { InstanceId: WEB_2, Status: 'InProgress' }], [done(WEB_1), done(WEB_2)]],
      () => ({ Status: 'Success', StatusDetails: 'Success', ResponseCode: 0 }),
    );
    const outcome = await run(w.activities.awaitStep, { ...request([WEB_1, WEB_2]), commandId: 'c-late' });
    expect(w.named('ListCommandInvocations')).toHaveLength(3);
    expect(outcome.ok).toBe(true);
    expect(outcome.instances.map((i) => i.instanceId)).toEqual([WEB_1, WEB_2]);
  });

  test('the listing is read to its last page, fifty at a time', async () => {
    const page = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => ({
        InstanceId: `i-0${String(from + i).padStart(16, '0')}`,
        Status: 'Success',
      }));
    let listed = 0;
    const w = worker({
      hook: (name, input) => {
        if (name === 'ListCommandInvocations') {
          listed++;
          return Promise.resolve(
            input['NextToken'] === 'two'
              ? { CommandInvocations: page(50, 3) }
              : { CommandInvocations: page(0, 50), NextToken: 'two' },
          );
        }
        if (name === 'GetCommandInvocation')
          return Promise.resolve({ Status: 'Success', StatusDetails: 'Success', ResponseCode: 0 });
        return undefined;
      },
    });
    const ids = page(0, 53).map((i) => i.InstanceId);
    const outcome = await run(w.activities.awaitStep, { ...request(ids), commandId: 'c-paged' });
    expect(listed).toBe(2);
    expect(w.named('ListCommandInvocations').map((c) => c.input)).toStrictEqual([
      { CommandId: 'c-paged', MaxResults: 50 },
      { CommandId: 'c-paged', MaxResults: 50, NextToken: 'two' },
    ]);
    expect(outcome.instances).toHaveLength(53);
    expect(outcome.ok).toBe(true);
  });

  test('an earlier send on a later page of ListCommands is found and adopted', async () => {
    const req = request([WEB_1]);
    const token = dispatchToken(req);
    const commands = (from: number) =>
      Array.from({ length: 50 }, (_, i) => ({ CommandId: `c-${from + i}`, Comment: `other ${i}` }));
    const w = worker({
      hook: (name, input) =>
        name === 'ListCommands'
          ? Promise.resolve(
              input['NextToken'] === 'more'
                ? { Commands: [{ CommandId: 'c-mine', Comment: token }] }
                : { Commands: commands(0), NextToken: 'more' },
            )
          : undefined,
    });
    await expect(run(w.activities.dispatchStep, req)).resolves.toEqual({ commandId: 'c-mine', adopted: true });
    expect(w.named('SendCommand')).toHaveLength(0);
  });
});

describe('cancelling a step', () => {
  test('cancels the command and records the final statuses', async () => {
    const w = worker();
    const req = request([WEB_1, WEB_2], { script: 'sleep 30' });
    const { commandId } = await run(w.activities.dispatchStep, req);
    const outcome = await run(w.activities.cancelStep, { ...req, commandId });
    expect(w.named('CancelCommand').map((c) => c.input)).toStrictEqual([{ CommandId: commandId }]);
    expect(outcome.ok).toBe(false);
    expect(outcome.instances.map((i) => [i.instanceId, i.status])).toEqual([
      [WEB_1, 'Cancelled'],
      [WEB_2, 'Cancelled'],
    ]);
    expect(stepInstances(w.events)).toHaveLength(2);
  });

  test('a command SSM will no longer cancel (a non-retryable refusal) still gets its statuses recorded', async () => {
    const w = worker({
      hook: (name) => (name === 'CancelCommand' ? Promise.reject(sdkError('InvalidCommandId')) : undefined),
    });
    const req = request([WEB_1]);
    const { commandId } = await run(w.activities.dispatchStep, req);
    const outcome = await run(w.activities.cancelStep, { ...req, commandId });
    expect(outcome.ok).toBe(true);
    expect(stepInstances(w.events)).toHaveLength(1);
  });

  test('a cancel that may work if retried fails the attempt, so Temporal retries it', async () => {
    const w = worker({
      hook: (name) => (name === 'CancelCommand' ? Promise.reject(sdkError('ThrottlingException')) : undefined),
    });
    const req = request([WEB_1]);
    const { commandId } = await run(w.activities.dispatchStep, req);
    const f = await failureOf(run(w.activities.cancelStep, { ...req, commandId }));
    expect([f.type, f.nonRetryable]).toEqual(['SSM_UNAVAILABLE', false]);
    expect(stepInstances(w.events)).toHaveLength(0);
  });
});

describe('SDK errors as Temporal failures', () => {
  /** The SDK's rejection as it comes, which need not be an Error (a string, a bare object). */
  const rejection = (error: unknown): Promise<never> =>
    new Promise((_resolve, reject: (reason: unknown) => void) => {
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- what the SDK throws is not always an Error
      reject(error);
    });
  const failing = (error: unknown) =>
    worker({ hook: (name) => (name === 'ListCommands' ? rejection(error) : undefined) });

  test.each(['ExpiredTokenException', 'UnrecognizedClientException'])(
    '%s: the credentials were refused; the lease is dropped, so the next attempt is issued new ones',
    async (name) => {
      let refuse = true;
      const w = worker({
        hook: (call) => (call === 'ListCommands' && refuse ? Promise.reject(sdkError(name, 'no')) : undefined),
      });
      const req = request([WEB_1]);
      await w.leases.issue(req.credentials, 'approved');
      const f = await failureOf(run(w.activities.dispatchStep, req));
      expect([f.type, f.nonRetryable, f.message]).toEqual([
        'CREDENTIALS_REFUSED',
        false,
        `the run's credentials were refused (${name}: no); re-issuing`,
      ]);
      refuse = false;
      await run(w.activities.dispatchStep, req);
      // Issuing records nothing here (the workflow does); a re-issue inside the activity is audited.
      expect(w.events.filter((e) => e.type === 'credentials.issued').map((e) => e.data['reason'])).toEqual([
        'reissued',
      ]);
    },
  );

  test.each([
    'InvalidDocument',
    'InvalidParameters',
    'AccessDeniedException',
    'InvalidCommandId',
    'MaxDocumentSizeExceeded',
    'DuplicateInstanceId',
  ])('%s ends the step: not retryable, named with its message', async (name) => {
    const f = await failureOf(run(failing(sdkError(name, 'said no')).activities.dispatchStep, request([WEB_1])));
    expect([f.type, f.nonRetryable, f.message]).toEqual(['SSM_COMMAND_FAILED', true, `${name}: said no`]);
  });

  test('an instance SSM cannot reach is refused in one sentence naming it, not retried', async () => {
    const w = worker();
    const f = await failureOf(run(w.activities.dispatchStep, request([GONE])));
    expect(f.type).toBe('SSM_COMMAND_FAILED');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(new RegExp(`^SSM refused to send the step to instance ${GONE} \\(InvalidInstanceId: `));
    const error = sdkError('UnsupportedPlatformType', `Instance ${WEB_1} is Windows.`);
    const g = await failureOf(run(failing(error).activities.dispatchStep, request([WEB_1])));
    expect([g.type, g.nonRetryable, g.message]).toEqual([
      'SSM_COMMAND_FAILED',
      true,
      sendRefusal('UnsupportedPlatformType', `Instance ${WEB_1} is Windows.`),
    ]);
  });

  test('anything else may pass: retryable, named; an error without a name or message still says what it was', async () => {
    const f = await failureOf(run(failing(sdkError('InternalServerError', 'busy')).activities.dispatchStep, request()));
    expect([f.type, f.nonRetryable, f.message]).toEqual(['SSM_UNAVAILABLE', false, 'InternalServerError: busy']);
    const g = await failureOf(run(failing('socket hang up').activities.dispatchStep, request()));
    expect([g.type, g.message]).toEqual(['SSM_UNAVAILABLE', 'Error: socket hang up']);
    const h = await failureOf(run(failing({ name: 'Odd' }).activities.dispatchStep, request()));
    expect(h.message).toBe('Odd: [object Object]');
  });

  test('a send whose outcome is unknown is retryable as unconfirmed', async () => {
    const lost = new SendCommandOutcomeUnknownError(sdkError('InternalServerError', 'upstream closed'));
    const w = worker({
      lookupMs: 1,
      hook: (name) => (name === 'SendCommand' ? Promise.reject(lost) : undefined),
    });
    const f = await failureOf(run(w.activities.dispatchStep, request([WEB_1])));
    expect([f.type, f.nonRetryable, f.message]).toEqual([
      'SSM_SEND_UNCONFIRMED',
      false,
      `SendCommandOutcomeUnknown: ${lost.message}`,
    ]);
  });

  test('a failure already made for Temporal passes unchanged', async () => {
    const made = ApplicationFailure.nonRetryable('made earlier', 'SOMETHING_ELSE');
    const f = await failureOf(run(failing(made).activities.dispatchStep, request([WEB_1])));
    expect(f).toBe(made);
  });
});
