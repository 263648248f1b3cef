import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DescribeInstanceInformationCommand,
  DescribeInstancePropertiesCommand,
  GetCommandInvocationCommand,
  ListCommandInvocationsCommand,
  ListCommandsCommand,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { afterEach, describe, expect, test } from 'vitest';
import { readCommandLog, type FleetConfig } from '../../src/devfleet/index.ts';
import {
  fleetWith,
  sendCommand,
  startHarness,
  until,
  waitCommand,
  waitInvocation,
  type Harness,
} from './devfleet-helpers.ts';

/**
 * AWS behaviour devfleet shows (issue 11, part 5), each through the real SDK: an agent that is
 * not connected refused as AWS refuses it, the invocation statuses Delayed, Undeliverable,
 * InvalidPlatform and the command status SSM computes from them, and per-API throttling.
 */

const A = 'i-0ccccccccccccccc1';
const B = 'i-0ccccccccccccccc2';
const C = 'i-0ccccccccccccccc3';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

type Instance = FleetConfig['instances'][number];
const instance = (id: string, extra: Partial<Instance> = {}): Instance => ({
  id,
  name: `host-${id.slice(-1)}`,
  tags: { Role: 'app', Name: `app-${id.slice(-1)}` },
  ...extra,
});

const byRole = { Targets: [{ Key: 'tag:Role', Values: ['app'] }] };
const commandOf = async (ssm: SSMClient, commandId: string) =>
  (await ssm.send(new ListCommandsCommand({ CommandId: commandId }))).Commands?.[0];

describe('an instance whose agent is not connected (faults.offline)', () => {
  test('is ConnectionLost, and SendCommand naming it is refused with InvalidInstanceId as AWS words it; nothing is stored or run', async () => {
    h = await startHarness({ config: fleetWith([instance(A, { faults: { offline: true } }), instance(B)]) });
    const { ssm } = await h.assume();
    const info = await ssm.send(new DescribeInstanceInformationCommand({}));
    expect(info.InstanceInformationList?.map((i) => [i.InstanceId, i.PingStatus])).toEqual([
      [A, 'ConnectionLost'],
      [B, 'Online'],
    ]);
    const props = await ssm.send(new DescribeInstancePropertiesCommand({}));
    expect(props.InstanceProperties?.map((i) => [i.InstanceId, i.PingStatus])).toEqual([
      [A, 'ConnectionLost'],
      [B, 'Online'],
    ]);

    // The whole call is refused, even for the healthy instance beside it.
    await expect(sendCommand(ssm, [B, A], ['touch ran'])).rejects.toMatchObject({
      name: 'InvalidInstanceId',
      message: `Instances [[${A}]] not in a valid state for account 123456789012`,
    });
    expect((await ssm.send(new ListCommandsCommand({}))).Commands).toEqual([]);
    expect(await readCommandLog(h.dataDir)).toEqual([]);
  });

  test('reached through tag targets it gets an Undeliverable invocation, which does not stop the command succeeding', async () => {
    h = await startHarness({ config: fleetWith([instance(A, { faults: { offline: true } }), instance(B)]) });
    const { ssm } = await h.assume();
    // MaxErrors 0: an Undeliverable invocation does not count toward it, so B still runs.
    const cmd = await sendCommand(ssm, [], ['echo ran'], { ...byRole, MaxConcurrency: '1', MaxErrors: '0' });
    const invs = await waitCommand(ssm, cmd.CommandId!);
    expect(invs.map((i) => [i.InstanceId, i.Status, i.StatusDetails, i.CommandPlugins?.[0]?.ResponseCode])).toEqual([
      [A, 'Failed', 'Undeliverable', -1],
      [B, 'Success', 'Success', 0],
    ]);
    // SSM: "if a command has five invocations, four of which return the status Undeliverable and
    // one of which returns the status Success, then the parent command's status is Success".
    expect(await commandOf(ssm, cmd.CommandId!)).toMatchObject({
      Status: 'Success',
      StatusDetails: 'Success',
      ErrorCount: 0,
    });
    const filtered = await ssm.send(
      new ListCommandInvocationsCommand({
        CommandId: cmd.CommandId,
        Filters: [{ key: 'Status', value: 'Undeliverable' }],
      }),
    );
    expect(filtered.CommandInvocations?.map((i) => i.InstanceId)).toEqual([A]);
    expect((await readCommandLog(h.dataDir)).map((e) => e.instanceId)).toEqual([B]);
  });
});

describe('faults.undeliverable: accepted, never delivered', () => {
  test('ends Failed / Undeliverable with ResponseCode -1 without running; all Undeliverable makes the command Failed', async () => {
    h = await startHarness({ config: fleetWith([instance(A, { faults: { undeliverable: true } })]) });
    const { ssm } = await h.assume();
    const cmd = await sendCommand(ssm, [A], ['touch ran']);
    const got = await waitInvocation(ssm, cmd.CommandId!, A);
    expect(got).toMatchObject({
      Status: 'Failed',
      StatusDetails: 'Undeliverable',
      ResponseCode: -1,
      StandardOutputContent: '',
    });
    expect(await commandOf(ssm, cmd.CommandId!)).toMatchObject({ Status: 'Failed', StatusDetails: 'Undeliverable' });
    await expect(readFile(join(h.dataDir, 'instances', A, 'root', 'ran'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readCommandLog(h.dataDir)).toEqual([]);
  });
});

describe('platforms (instance.platform)', () => {
  test('naming a Windows instance is refused with UnsupportedPlatformType; a tag target gets InvalidPlatform', async () => {
    h = await startHarness({ config: fleetWith([instance(A, { platform: 'Windows' }), instance(B)]) });
    const { ssm } = await h.assume();
    const info = await ssm.send(
      new DescribeInstanceInformationCommand({ Filters: [{ Key: 'PlatformTypes', Values: ['Windows'] }] }),
    );
    expect(info.InstanceInformationList?.map((i) => [i.InstanceId, i.PlatformType])).toEqual([[A, 'Windows']]);

    await expect(sendCommand(ssm, [A], ['true'])).rejects.toMatchObject({
      name: 'UnsupportedPlatformType',
      message: `Cannot perform operation for instance id ${A} of platform type Windows`,
    });

    const cmd = await sendCommand(ssm, [], ['echo ran'], byRole);
    const invs = await waitCommand(ssm, cmd.CommandId!);
    expect(invs.map((i) => [i.InstanceId, i.Status, i.StatusDetails, i.CommandPlugins?.[0]?.ResponseCode])).toEqual([
      [A, 'Failed', 'InvalidPlatform', -1],
      [B, 'Success', 'Success', 0],
    ]);
    // InvalidPlatform does not count toward MaxErrors, but does make the command Incomplete.
    expect(await commandOf(ssm, cmd.CommandId!)).toMatchObject({
      Status: 'Failed',
      StatusDetails: 'Incomplete',
      ErrorCount: 0,
    });
    expect((await readCommandLog(h.dataDir)).map((e) => e.instanceId)).toEqual([B]);
  });
});

describe('faults.delayedMs: SSM retries a failed delivery', () => {
  test('the invocation is Delayed (not final; its plugin Pending), then runs once and succeeds', async () => {
    h = await startHarness({ config: fleetWith([instance(A, { faults: { delayedMs: 2_000 } })]) });
    const { ssm } = await h.assume();
    const cmd = await sendCommand(ssm, [A], ['echo ran']);
    const delayed = await waitInvocation(ssm, cmd.CommandId!, A, (s) => s !== 'Pending');
    expect(delayed).toMatchObject({ Status: 'Delayed', StatusDetails: 'Delayed', ResponseCode: -1 });
    const listed = await ssm.send(
      new ListCommandInvocationsCommand({
        CommandId: cmd.CommandId,
        Details: true,
        Filters: [{ key: 'Status', value: 'Delayed' }],
      }),
    );
    expect(listed.CommandInvocations?.map((i) => [i.Status, i.CommandPlugins?.[0]?.Status])).toEqual([
      ['Delayed', 'Pending'],
    ]);
    expect(await commandOf(ssm, cmd.CommandId!)).toMatchObject({ Status: 'InProgress' });
    expect(await readCommandLog(h.dataDir)).toEqual([]);

    const got = await waitInvocation(ssm, cmd.CommandId!, A);
    expect(got).toMatchObject({ Status: 'Success', StandardOutputContent: 'ran\n' });
    expect((await readCommandLog(h.dataDir)).map((e) => e.status)).toEqual(['Success']);
  });

  test('a delay longer than the delivery timeout ends DeliveryTimedOut, never run', async () => {
    h = await startHarness({ config: fleetWith([instance(A, { faults: { delayedMs: 5_000 } })]), timeScale: 0.01 });
    const { ssm } = await h.assume();
    const cmd = await sendCommand(ssm, [A], ['touch ran'], { TimeoutSeconds: 30 }); // 300 ms
    const got = await waitInvocation(ssm, cmd.CommandId!, A);
    expect(got).toMatchObject({ Status: 'TimedOut', StatusDetails: 'DeliveryTimedOut', ResponseCode: -1 });
    expect(await readCommandLog(h.dataDir)).toEqual([]);
  });

  test('a Delayed invocation is Terminated like a pending one when MaxErrors is exceeded', async () => {
    h = await startHarness({
      config: fleetWith([
        instance(A, { faults: { failAlways: true, slowMs: 200 } }),
        instance(B, { faults: { delayedMs: 60_000 } }),
      ]),
    });
    const { ssm } = await h.assume();
    const cmd = await sendCommand(ssm, [A, B], ['true'], { MaxErrors: '0' });
    const invs = await waitCommand(ssm, cmd.CommandId!);
    expect(invs.map((i) => [i.InstanceId, i.Status, i.StatusDetails])).toEqual([
      [A, 'Failed', 'Failed'],
      [B, 'Cancelled', 'Terminated'],
    ]);
  });
});

describe('command status from its invocations', () => {
  test('a success beside a delivery timeout is Incomplete (DeliveryTimedOut decides between Success and Incomplete)', async () => {
    h = await startHarness({
      config: fleetWith([instance(A), instance(B, { faults: { unresponsive: true } })]),
      timeScale: 0.01,
    });
    const { ssm } = await h.assume();
    const cmd = await sendCommand(ssm, [A, B], ['true'], { TimeoutSeconds: 30 });
    await waitCommand(ssm, cmd.CommandId!);
    expect(await commandOf(ssm, cmd.CommandId!)).toMatchObject({
      Status: 'Failed',
      StatusDetails: 'Incomplete',
      ErrorCount: 0,
      DeliveryTimedOutCount: 1,
    });
  });
});

describe('faults.throttle: a token bucket per API', () => {
  test('a burst beyond the bucket is answered ThrottlingException "Rate exceeded", per operation, and refills with time', async () => {
    h = await startHarness({
      // One token back every 5 s: a burst spread out by a loaded machine still meets an empty bucket.
      config: { ...fleetWith([instance(A)]), faults: { throttle: { ratePerSecond: 0.2, burst: 3 } } },
    });
    const { credentials } = await h.assume();
    const once = h.ssm(credentials, 1); // no SDK retries: see what each call gets
    const burst = await Promise.allSettled(Array.from({ length: 5 }, () => once.send(new ListCommandsCommand({}))));
    const refused = burst.filter((r) => r.status === 'rejected').map((r) => r.reason as Error);
    expect(burst.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    expect(refused.map((e) => [e.name, e.message])).toEqual([
      ['ThrottlingException', 'Rate exceeded'],
      ['ThrottlingException', 'Rate exceeded'],
    ]);
    expect(h.fleet.throttledCalls()).toEqual({ ListCommands: 2 });
    // Another API has its own bucket.
    await expect(once.send(new DescribeInstanceInformationCommand({}))).resolves.toBeDefined();
    // A refused SendCommand took no effect.
    const sends = await Promise.allSettled(Array.from({ length: 4 }, () => sendCommand(once, [A], ['echo once'])));
    const sent = sends.filter((r) => r.status === 'fulfilled').length;
    expect(sent).toBe(3);
    await until(async () => ((await readCommandLog(h!.dataDir)).length === sent ? true : undefined));
    // The bucket refills at its rate (waits for a state: a token, never for an exact time).
    await until(
      async () =>
        await once
          .send(new ListCommandsCommand({}))
          .then(() => true)
          .catch(() => undefined),
    );
  });

  test('the SDK backs off and retries a throttled call; `operations` narrows the limit', async () => {
    h = await startHarness({
      config: {
        ...fleetWith([instance(A), instance(B), instance(C)]),
        faults: { throttle: { ratePerSecond: 5, burst: 1, operations: ['GetCommandInvocation'] } },
      },
    });
    const { ssm, credentials } = await h.assume();
    const cmd = await sendCommand(ssm, [A, B, C], ['echo ok']);
    await waitCommand(ssm, cmd.CommandId!);
    // Enough attempts that a loaded machine's jitter cannot use them all up while three callers
    // share one token a fifth of a second (the SDK's default is three).
    const patient = h.ssm(credentials, 10);
    const outs = await Promise.all(
      [A, B, C].map((id) =>
        patient.send(new GetCommandInvocationCommand({ CommandId: cmd.CommandId, InstanceId: id })),
      ),
    );
    expect(outs.map((o) => o.Status)).toEqual(['Success', 'Success', 'Success']);
    expect(outs.some((o) => (o.$metadata.attempts ?? 1) > 1)).toBe(true);
    expect(Object.keys(h.fleet.throttledCalls())).toEqual(['GetCommandInvocation']);
  });
});
