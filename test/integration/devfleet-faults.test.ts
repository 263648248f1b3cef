import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  ListCommandsCommand,
  type SendCommandCommand,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { afterEach, describe, expect, test } from 'vitest';
import { readCommandLog, type FleetConfig } from '../../src/devfleet/index.ts';
import {
  fleetWith,
  sendCommand,
  sleep,
  startHarness,
  waitCommand,
  waitInvocation,
  type Harness,
} from './devfleet-helpers.ts';

const A = 'i-0aaaaaaaaaaaaaaa1';
const B = 'i-0aaaaaaaaaaaaaaa2';
const C = 'i-0aaaaaaaaaaaaaaa3';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const instance = (
  id: string,
  faults?: FleetConfig['instances'][number]['faults'],
  tags: Record<string, string> = { Role: 'app' },
) => ({
  id,
  name: id.slice(-2),
  tags,
  ...(faults ? { faults } : {}),
});

function send(
  ssm: SSMClient,
  ids: string[],
  commands: string[],
  extra: Partial<ConstructorParameters<typeof SendCommandCommand>[0]> = {},
) {
  return sendCommand(ssm, ids, commands, extra);
}

describe('faults', () => {
  test('an unresponsive instance (still Online to SSM) stays Pending until the delivery timeout, then DeliveryTimedOut', async () => {
    h = await startHarness({
      config: fleetWith([instance(A, { unresponsive: true }), instance(B)]),
      timeScale: 0.01,
    });
    const { ssm } = await h.assume();
    const info = await ssm.send(new DescribeInstanceInformationCommand({}));
    // SSM has not noticed yet: it accepts the command, which is never picked up.
    expect(info.InstanceInformationList?.map((i) => [i.InstanceId, i.PingStatus])).toEqual([
      [A, 'Online'],
      [B, 'Online'],
    ]);

    const cmd = await send(ssm, [A], ['touch ran'], { TimeoutSeconds: 30 }); // 30 s × 0.01 = 300 ms
    const early = await ssm.send(new GetCommandInvocationCommand({ CommandId: cmd.CommandId, InstanceId: A }));
    expect(early.Status).toBe('Pending');
    const got = await waitInvocation(ssm, cmd.CommandId!, A);
    expect(got).toMatchObject({ Status: 'TimedOut', StatusDetails: 'DeliveryTimedOut', ResponseCode: -1 });
    const listed = await ssm.send(new ListCommandsCommand({ CommandId: cmd.CommandId }));
    expect(listed.Commands?.[0]).toMatchObject({
      Status: 'TimedOut',
      StatusDetails: 'DeliveryTimedOut',
      DeliveryTimedOutCount: 1,
    });
    expect(await readCommandLog(h.dataDir)).toEqual([]);
    await expect(readFile(join(h.dataDir, 'instances', A, 'root', 'ran'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('a slow instance is Pending for slowMs before it runs', async () => {
    h = await startHarness({ config: fleetWith([instance(A, { slowMs: 400 })]) });
    const { ssm } = await h.assume();
    const cmd = await send(ssm, [A], ['echo ok']);
    const requestedAt = cmd.RequestedDateTime!.getTime();
    // Every answer that came back before slowMs had passed says Pending. Only a lower bound on time is checked:
    // a slow machine may see no Pending at all, never a wrong answer.
    const seen: { status: string | undefined; at: number }[] = [];
    const got = await waitInvocation(ssm, cmd.CommandId!, A, (status) => {
      seen.push({ status, at: Date.now() });
      return status === 'Success';
    });
    expect(seen.filter((s) => s.at < requestedAt + 400).every((s) => s.status === 'Pending')).toBe(true);
    expect(got).toMatchObject({ Status: 'Success', StandardOutputContent: 'ok\n' });
    const [entry] = await readCommandLog(h.dataDir);
    expect(Date.parse(entry!.startedAt) - requestedAt).toBeGreaterThanOrEqual(400);
  });

  test('a slow instance that misses the delivery timeout never runs', async () => {
    h = await startHarness({ config: fleetWith([instance(A, { slowMs: 1_000 })]), timeScale: 0.01 });
    const { ssm } = await h.assume();
    const cmd = await send(ssm, [A], ['echo ok'], { TimeoutSeconds: 30 });
    const got = await waitInvocation(ssm, cmd.CommandId!, A);
    expect(got).toMatchObject({ Status: 'TimedOut', StatusDetails: 'DeliveryTimedOut' });
    expect(await readCommandLog(h.dataDir)).toEqual([]);
  });

  test('failAlways fails with exit 1 without running the script', async () => {
    h = await startHarness({ config: fleetWith([instance(A, { failAlways: true })]) });
    const { ssm } = await h.assume();
    const cmd = await send(ssm, [A], ['touch ran']);
    const got = await waitInvocation(ssm, cmd.CommandId!, A);
    expect(got).toMatchObject({ Status: 'Failed', StatusDetails: 'Failed', ResponseCode: 1 });
    await expect(readFile(join(h.dataDir, 'instances', A, 'root', 'ran'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await readCommandLog(h.dataDir)).map((e) => e.status)).toEqual(['Failed']);
  });

  test('throttling is retried by the SDK, and visible to a client that does not retry', async () => {
    h = await startHarness({ config: fleetWith([instance(A, { throttleEveryNth: 2 })]) });
    const { ssm, credentials } = await h.assume();
    const cmd = await send(ssm, [A], ['echo ok']); // call 1
    const outs = [];
    // Calls 2 and 4 are throttled and retried; 3 and 5 answer.
    for (let i = 0; i < 2; i++) outs.push(await ssm.send(new ListCommandsCommand({ CommandId: cmd.CommandId })));
    expect(outs.every((o) => o.Commands?.[0]?.CommandId === cmd.CommandId)).toBe(true);
    expect(outs.map((o) => o.$metadata.attempts)).toEqual([2, 2]);

    const noRetry = h.ssm(credentials, 1);
    const results = await Promise.allSettled([
      noRetry.send(new ListCommandsCommand({})),
      noRetry.send(new ListCommandsCommand({})),
    ]);
    expect(results.filter((r) => r.status === 'rejected').map((r) => (r.reason as Error).name)).toEqual([
      'ThrottlingException',
    ]);
  });
});

describe('a lost SendCommand answer (faults.sendCommand)', () => {
  const lossy = (sendCommand: NonNullable<FleetConfig['faults']>['sendCommand']) => ({
    ...fleetWith([instance(A)]),
    faults: { sendCommand },
  });

  test.each([
    ['503', 'ServiceUnavailable'],
    ['drop', 'TimeoutError'],
  ] as const)(
    'accept then %s: the command runs, the caller is told %s, and the next send is answered',
    async (acceptThen, name) => {
      h = await startHarness({ config: lossy({ acceptThen, times: 1 }) });
      const { credentials } = await h.assume();
      const once = h.ssm(credentials, 1); // no SDK retries: see exactly what one attempt gets
      await expect(send(once, [A], ['echo run >> witness'])).rejects.toMatchObject({ name });
      const listed = await once.send(new ListCommandsCommand({}));
      expect(listed.Commands).toHaveLength(1);
      await waitCommand(once, listed.Commands![0]!.CommandId!);
      expect(await readFile(join(h.dataDir, 'instances', A, 'root', 'witness'), 'utf8')).toBe('run\n');

      const next = await send(once, [A], ['true']); // times: 1
      expect(next.CommandId).toBeTruthy();
      // Its start line is written once its start is durable: wait for it to end, not for time.
      await waitCommand(once, next.CommandId!);
      expect(await readCommandLog(h.dataDir)).toHaveLength(2);
    },
  );

  test('accept then delay: the command is stored and runs before its answer arrives', async () => {
    h = await startHarness({ config: lossy({ acceptThen: 'delay', delayMs: 60_000, times: 1 }) });
    const { ssm, credentials } = await h.assume();
    let answered = false;
    // Closing the harness ends the held request; its error is not this test's subject.
    void send(ssm, [A], ['echo ran']).then(
      () => (answered = true),
      () => undefined,
    );
    const other = h.ssm(credentials, 1);
    // Waits for a state, not for time: the command shows up, and finishes, while the answer is held.
    let commandId: string | undefined;
    while (!commandId) {
      commandId = (await other.send(new ListCommandsCommand({}))).Commands?.[0]?.CommandId;
      if (!commandId) await sleep(20);
    }
    const invs = await waitCommand(other, commandId);
    expect(invs.map((i) => i.Status)).toEqual(['Success']);
    expect(answered).toBe(false);
  });
});

describe('eventual consistency (faults.listCommandsLagMs)', () => {
  test('a new command shows in ListCommands only after the lag', async () => {
    // devfleet's clock stands still unless the test moves it, so the lag is checked without racing real time.
    let clock = Date.now();
    h = await startHarness({
      config: { ...fleetWith([instance(A)]), faults: { listCommandsLagMs: 500 } },
      now: () => clock,
    });
    const { ssm } = await h.assume();
    const cmd = await send(ssm, [A], ['true']);
    const listed = async (input = {}) =>
      ((await ssm.send(new ListCommandsCommand(input))).Commands ?? []).map((c) => c.CommandId!);
    expect(await listed()).toEqual([]);
    expect(await listed({ CommandId: cmd.CommandId })).toEqual([]);
    clock += 499;
    expect(await listed()).toEqual([]);
    clock += 1;
    expect(await listed()).toEqual([cmd.CommandId]);
  });
});

describe('rate control', () => {
  test('MaxConcurrency 1 runs one instance at a time, in target order', async () => {
    h = await startHarness({ config: fleetWith([instance(A), instance(B), instance(C)]) });
    const { ssm } = await h.assume();
    const cmd = await send(ssm, [A, B, C], ['sleep 0.15'], { MaxConcurrency: '1', MaxErrors: '3' });
    await waitCommand(ssm, cmd.CommandId!);
    const log = await readCommandLog(h.dataDir);
    expect(log.map((e) => e.instanceId)).toEqual([A, B, C]);
    for (let i = 1; i < log.length; i++) {
      expect(Date.parse(log[i]!.startedAt)).toBeGreaterThanOrEqual(Date.parse(log[i - 1]!.finishedAt!));
    }
  });

  test('exceeding MaxErrors stops the invocations not yet started (Terminated)', async () => {
    h = await startHarness({ config: fleetWith([instance(A, { failAlways: true }), instance(B), instance(C)]) });
    const { ssm } = await h.assume();
    const cmd = await send(ssm, [A, B, C], ['true'], { MaxConcurrency: '1', MaxErrors: '0' });
    const invs = await waitCommand(ssm, cmd.CommandId!);
    expect(invs.map((i) => [i.InstanceId, i.Status, i.StatusDetails])).toEqual([
      [A, 'Failed', 'Failed'],
      [B, 'Cancelled', 'Terminated'],
      [C, 'Cancelled', 'Terminated'],
    ]);
    const listed = await ssm.send(new ListCommandsCommand({ CommandId: cmd.CommandId }));
    expect(listed.Commands?.[0]).toMatchObject({
      Status: 'Failed',
      StatusDetails: 'Failed',
      ErrorCount: 1,
      CompletedCount: 3,
    });
    expect(await readCommandLog(h.dataDir)).toHaveLength(1);
  });

  test('within MaxErrors the others still run and the command is Incomplete', async () => {
    h = await startHarness({ config: fleetWith([instance(A, { failAlways: true }), instance(B)]) });
    const { ssm } = await h.assume();
    const cmd = await send(ssm, [A, B], ['true'], { MaxErrors: '1' });
    await waitCommand(ssm, cmd.CommandId!);
    const listed = await ssm.send(new ListCommandsCommand({ CommandId: cmd.CommandId }));
    expect(listed.Commands?.[0]).toMatchObject({ Status: 'Failed', StatusDetails: 'Incomplete', ErrorCount: 1 });
  });

  test('tag targets that match nothing: Success / NoInstancesInTag', async () => {
    h = await startHarness();
    const { ssm } = await h.assume();
    const cmd = await send(ssm, [], ['true'], { Targets: [{ Key: 'tag:Role', Values: ['nothing'] }] });
    expect(cmd).toMatchObject({ TargetCount: 0, Status: 'Success', StatusDetails: 'NoInstancesInTag' });
  });
});
