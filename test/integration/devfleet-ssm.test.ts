import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CancelCommandCommand,
  GetCommandInvocationCommand,
  ListCommandInvocationsCommand,
  ListCommandsCommand,
  type SendCommandCommand,
  paginateListCommands,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { afterEach, describe, expect, test } from 'vitest';
import { DEMO_HOST_NAMES, DEMO_INSTANCE_IDS, readCommandLog } from '../../src/devfleet/index.ts';
import {
  fileText,
  gone,
  sendCommand,
  startHarness,
  waitCommand,
  waitInvocation,
  type Harness,
} from './devfleet-helpers.ts';

const WEB1 = DEMO_INSTANCE_IDS['web-1'];
const WEB2 = DEMO_INSTANCE_IDS['web-2'];
const DB1 = DEMO_INSTANCE_IDS['db-1'];

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function send(
  ssm: SSMClient,
  commands: string[],
  extra: Partial<ConstructorParameters<typeof SendCommandCommand>[0]> = {},
) {
  return sendCommand(ssm, [WEB1], commands, extra);
}

/** The least-privilege shape mechanic generates: SendCommand only on web instances, reads on *. */
const webOnlyPolicy = JSON.stringify({
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Action: 'ssm:SendCommand', Resource: 'arn:aws:ssm:us-east-1::document/AWS-RunShellScript' },
    {
      Effect: 'Allow',
      Action: 'ssm:SendCommand',
      Resource: 'arn:aws:ec2:us-east-1:123456789012:instance/*',
      Condition: { StringEquals: { 'ssm:resourceTag/Role': 'web' } },
    },
    { Effect: 'Allow', Action: ['ssm:List*', 'ssm:GetCommandInvocation', 'ssm:CancelCommand'], Resource: '*' },
  ],
});

describe('SendCommand and reading results', () => {
  test('runs the commands as one bash script in the instance sandbox and reports output and exit code', async () => {
    h = await startHarness();
    const { ssm } = await h.assume();
    const cmd = await send(
      ssm,
      ['x=41', 'echo "answer $((x + 1))"', 'echo to-stderr >&2', 'pwd', 'env | cut -d= -f1 | sort | tr "\\n" " "'],
      {
        Comment: 'wf:test:step:1',
      },
    );
    expect(cmd).toMatchObject({
      DocumentName: 'AWS-RunShellScript',
      Comment: 'wf:test:step:1',
      TargetCount: 1,
      InstanceIds: [WEB1],
    });
    expect(cmd.CommandId).toMatch(/^[0-9a-f-]{36}$/);
    expect(cmd.RequestedDateTime).toBeInstanceOf(Date);

    const [inv] = await waitCommand(ssm, cmd.CommandId!);
    // InstanceName is the host name, as in AWS; web-1 is the instance's Name tag.
    expect(inv).toMatchObject({
      InstanceId: WEB1,
      InstanceName: DEMO_HOST_NAMES['web-1'],
      Status: 'Success',
      StatusDetails: 'Success',
    });
    expect(inv!.CommandPlugins).toHaveLength(1);
    expect(inv!.CommandPlugins![0]).toMatchObject({ Name: 'aws:runShellScript', Status: 'Success', ResponseCode: 0 });
    expect(inv!.CommandPlugins![0]!.Output).toContain('answer 42\n');
    expect(inv!.CommandPlugins![0]!.Output).toContain('----------ERROR-------\nto-stderr');

    const got = await ssm.send(new GetCommandInvocationCommand({ CommandId: cmd.CommandId, InstanceId: WEB1 }));
    const lines = got.StandardOutputContent!.split('\n');
    expect(lines[0]).toBe('answer 42');
    expect(lines[1]).toBe(join(h.dataDir, 'instances', WEB1, 'root'));
    // Nothing of the devfleet process environment (AWS keys, tokens) reaches the script.
    expect(lines[2]!.trim().split(' ').sort()).toEqual(
      ['AWS_SSM_INSTANCE_ID', 'HOME', 'LANG', 'MECHANIC_INSTANCE_NAME', 'PATH', 'PWD', 'SHLVL', '_'].sort(),
    );
    expect(got).toMatchObject({
      Status: 'Success',
      ResponseCode: 0,
      StandardErrorContent: 'to-stderr\n',
      PluginName: 'aws:runShellScript',
    });
    expect(got.ExecutionElapsedTime).toMatch(/^PT\d+\.\d{3}S$/);

    const listed = await ssm.send(new ListCommandsCommand({ CommandId: cmd.CommandId }));
    expect(listed.Commands?.[0]).toMatchObject({
      Status: 'Success',
      StatusDetails: 'Success',
      CompletedCount: 1,
      ErrorCount: 0,
    });
  });

  test('a non-zero exit is Failed with the exit code and stderr', async () => {
    h = await startHarness();
    const { ssm } = await h.assume();
    const cmd = await send(ssm, ['echo partial', 'echo "disk full" >&2', 'exit 3', 'echo never']);
    const got = await waitInvocation(ssm, cmd.CommandId!, WEB1);
    expect(got).toMatchObject({
      Status: 'Failed',
      StatusDetails: 'Failed',
      ResponseCode: 3,
      StandardOutputContent: 'partial\n',
    });
    expect(got.StandardErrorContent).toBe('disk full\nfailed to run commands: exit status 3');
    const listed = await ssm.send(new ListCommandsCommand({ CommandId: cmd.CommandId }));
    expect(listed.Commands?.[0]).toMatchObject({ Status: 'Failed', StatusDetails: 'Failed', ErrorCount: 1 });
  });

  test('output is withheld until the invocation finishes, then truncated to SSM’s limits', async () => {
    h = await startHarness();
    const { ssm } = await h.assume();
    const cmd = await send(ssm, [
      'head -c 30000 /dev/zero | tr "\\0" a',
      'head -c 9000 /dev/zero | tr "\\0" b >&2',
      'sleep 0.3',
    ]);
    const running = await waitInvocation(ssm, cmd.CommandId!, WEB1, (s) => s === 'InProgress');
    expect(running.StandardOutputContent).toBe('');
    expect(running.ResponseCode).toBe(-1);
    const got = await waitInvocation(ssm, cmd.CommandId!, WEB1);
    expect(got.Status).toBe('Success');
    expect(got.StandardOutputContent).toBe('a'.repeat(24_000));
    expect(got.StandardErrorContent).toBe('b'.repeat(8_000));
    const list = await ssm.send(new ListCommandInvocationsCommand({ CommandId: cmd.CommandId, Details: true }));
    expect(list.CommandInvocations![0]!.CommandPlugins![0]!.Output).toBe('a'.repeat(2_500));
    const brief = await ssm.send(new ListCommandInvocationsCommand({ CommandId: cmd.CommandId }));
    expect(brief.CommandInvocations![0]!.CommandPlugins).toEqual([]);
  });

  test('executionTimeout kills the script: TimedOut / ExecutionTimedOut', async () => {
    h = await startHarness({ timeScale: 0.2 }); // executionTimeout 1 s → 200 ms
    const { ssm } = await h.assume();
    const cmd = await send(ssm, [], {
      Parameters: { commands: ['echo started', 'sleep 20', 'echo finished'], executionTimeout: ['1'] },
    });
    const got = await waitInvocation(ssm, cmd.CommandId!, WEB1);
    expect(got).toMatchObject({
      Status: 'TimedOut',
      StatusDetails: 'ExecutionTimedOut',
      StandardOutputContent: 'started\n',
    });
    const listed = await ssm.send(new ListCommandsCommand({ CommandId: cmd.CommandId }));
    expect(listed.Commands?.[0]).toMatchObject({ Status: 'TimedOut', StatusDetails: 'ExecutionTimedOut' });
  });

  test('CancelCommand stops a running sleep and its whole process group', async () => {
    h = await startHarness();
    const { ssm } = await h.assume();
    const cmd = await send(ssm, ['sleep 30 & echo $! > child.pid; wait', 'touch finished']);
    await waitInvocation(ssm, cmd.CommandId!, WEB1, (s) => s === 'InProgress');
    const root = join(h.dataDir, 'instances', WEB1, 'root');
    const childPid = await fileText(join(root, 'child.pid'));
    await ssm.send(new CancelCommandCommand({ CommandId: cmd.CommandId }));
    const mid = await ssm.send(new ListCommandsCommand({ CommandId: cmd.CommandId }));
    expect(['Cancelling', 'Cancelled']).toContain(mid.Commands?.[0]?.Status);
    const got = await waitInvocation(ssm, cmd.CommandId!, WEB1);
    expect(got).toMatchObject({ Status: 'Cancelled', StatusDetails: 'Cancelled' });
    await gone(Number(childPid)); // a child that outlives the cancel fails the test by its timeout
    await expect(readFile(join(root, 'finished'))).rejects.toMatchObject({ code: 'ENOENT' });
    const listed = await ssm.send(new ListCommandsCommand({ CommandId: cmd.CommandId }));
    expect(listed.Commands?.[0]).toMatchObject({ Status: 'Cancelled', StatusDetails: 'Cancelled' });
  });

  test('SSM’s validation errors', async () => {
    h = await startHarness();
    const { ssm } = await h.assume();
    await expect(send(ssm, ['true'], { DocumentName: 'AWS-RunPowerShellScript' })).rejects.toMatchObject({
      name: 'InvalidDocument',
    });
    await expect(send(ssm, ['true'], { InstanceIds: ['i-0123456789abcdef0'] })).rejects.toMatchObject({
      name: 'InvalidInstanceId',
    });
    await expect(send(ssm, ['true'], { Comment: 'x'.repeat(101) })).rejects.toMatchObject({
      name: 'ValidationException',
    });
    await expect(send(ssm, ['true'], { TimeoutSeconds: 29 })).rejects.toMatchObject({ name: 'ValidationException' });
    await expect(send(ssm, [], {})).rejects.toMatchObject({ name: 'InvalidParameters' });
    await expect(
      send(ssm, ['true'], { Parameters: { commands: ['true'], executionTimeout: ['172801'] } }),
    ).rejects.toMatchObject({
      name: 'InvalidParameters',
    });
    await expect(send(ssm, ['true'], { InstanceIds: [WEB1, WEB1] })).rejects.toMatchObject({
      name: 'DuplicateInstanceId',
    });
    await expect(
      ssm.send(
        new GetCommandInvocationCommand({ CommandId: '00000000-0000-0000-0000-000000000000', InstanceId: WEB1 }),
      ),
    ).rejects.toMatchObject({ name: 'InvocationDoesNotExist' });
    await expect(
      ssm.send(new CancelCommandCommand({ CommandId: '00000000-0000-0000-0000-000000000000' })),
    ).rejects.toMatchObject({
      name: 'InvalidCommandId',
    });
  });
});

describe('authorization', () => {
  test('a session policy for web instances cannot send to db-1; tag targets turn it into an AccessDenied invocation', async () => {
    h = await startHarness();
    const { ssm } = await h.assume({ Policy: webOnlyPolicy });
    await expect(send(ssm, ['true'], { InstanceIds: [WEB1, DB1] })).rejects.toMatchObject({
      name: 'AccessDeniedException',
      message: expect.stringContaining(`instance/${DB1}`),
    });
    expect(await readCommandLog(h.dataDir)).toEqual([]);

    const cmd = await send(ssm, ['echo hi from $MECHANIC_INSTANCE_NAME'], {
      InstanceIds: [],
      Targets: [{ Key: 'tag:Env', Values: ['staging'] }],
    });
    expect(cmd.TargetCount).toBe(3);
    const invs = await waitCommand(ssm, cmd.CommandId!);
    const by = Object.fromEntries(invs.map((i) => [i.InstanceId, i]));
    expect(by[WEB1]).toMatchObject({ Status: 'Success' });
    expect(by[WEB2]).toMatchObject({ Status: 'Success' });
    expect(by[DB1]).toMatchObject({ Status: 'Failed', StatusDetails: 'AccessDenied' });
    expect(by[DB1]!.CommandPlugins![0]).toMatchObject({ ResponseCode: -1, Output: '' });
    const log = await readCommandLog(h.dataDir);
    expect(log.map((e) => e.instanceId).sort()).toEqual([WEB1, WEB2].sort());
    const listed = await ssm.send(new ListCommandsCommand({ CommandId: cmd.CommandId }));
    // AccessDenied does not count toward MaxErrors, but with successes beside it the command is Incomplete.
    expect(listed.Commands?.[0]).toMatchObject({ Status: 'Failed', StatusDetails: 'Incomplete', ErrorCount: 0 });
  });

  test('a session policy without the read actions cannot poll; an explicit Deny wins over Allow', async () => {
    h = await startHarness();
    const sendOnly = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'ssm:SendCommand', Resource: '*' }],
    });
    const { ssm } = await h.assume({ Policy: sendOnly });
    const cmd = await send(ssm, ['true']);
    await expect(ssm.send(new ListCommandInvocationsCommand({ CommandId: cmd.CommandId }))).rejects.toMatchObject({
      name: 'AccessDeniedException',
      message: expect.stringContaining('because no session policy allows the ssm:ListCommandInvocations action'),
    });

    const denyDb = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: 'ssm:*', Resource: '*' },
        { Effect: 'Deny', Action: 'ssm:sendcommand', Resource: `arn:aws:ec2:*:*:instance/${DB1}` },
      ],
    });
    const denied = await h.assume({ Policy: denyDb, RoleSessionName: 'deny-db' });
    await expect(send(denied.ssm, ['true'], { InstanceIds: [DB1] })).rejects.toMatchObject({
      name: 'AccessDeniedException',
      message: expect.stringContaining('explicit deny'),
    });
    await expect(send(denied.ssm, ['true'], { InstanceIds: [WEB2] })).resolves.toMatchObject({ TargetCount: 1 });
  });
});

describe('listing', () => {
  test('ListCommands pages newest first, filters, and the SDK paginator sees every command once', async () => {
    h = await startHarness();
    const { ssm } = await h.assume();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await send(ssm, [`echo ${i}`], { Comment: `n${i}` })).CommandId!);
    const newestFirst = [...ids].reverse();

    const p1 = await ssm.send(new ListCommandsCommand({ MaxResults: 3 }));
    expect(p1.Commands!.map((c) => c.CommandId)).toEqual(newestFirst.slice(0, 3));
    expect(p1.NextToken).toBeTruthy();
    const p2 = await ssm.send(new ListCommandsCommand({ MaxResults: 3, NextToken: p1.NextToken }));
    expect(p2.Commands!.map((c) => c.CommandId)).toEqual(newestFirst.slice(3, 6));
    const p3 = await ssm.send(new ListCommandsCommand({ MaxResults: 3, NextToken: p2.NextToken }));
    expect(p3.Commands!.map((c) => c.CommandId)).toEqual(newestFirst.slice(6));
    expect(p3.NextToken).toBeUndefined();

    const seen: string[] = [];
    for await (const page of paginateListCommands({ client: ssm, pageSize: 2 }, {}))
      seen.push(...page.Commands!.map((c) => c.CommandId!));
    expect(seen).toEqual(newestFirst);

    await expect(ssm.send(new ListCommandsCommand({ MaxResults: 51 }))).rejects.toMatchObject({
      name: 'ValidationException',
    });
    await expect(ssm.send(new ListCommandsCommand({ NextToken: 'garbage' }))).rejects.toMatchObject({
      name: 'InvalidNextToken',
    });

    const future = new Date(Date.now() + 60_000).toISOString();
    const none = await ssm.send(new ListCommandsCommand({ Filters: [{ key: 'InvokedAfter', value: future }] }));
    expect(none.Commands).toEqual([]);
    const past = new Date(Date.now() - 60_000).toISOString();
    const all = await ssm.send(
      new ListCommandsCommand({
        Filters: [
          { key: 'InvokedAfter', value: past },
          { key: 'DocumentName', value: 'AWS-RunShellScript' },
        ],
      }),
    );
    expect(all.Commands).toHaveLength(7);
    const before = await ssm.send(new ListCommandsCommand({ Filters: [{ key: 'InvokedBefore', value: past }] }));
    expect(before.Commands).toEqual([]);

    for (const id of ids) await waitCommand(ssm, id);
    const failedOnes = await ssm.send(new ListCommandsCommand({ Filters: [{ key: 'Status', value: 'Failed' }] }));
    expect(failedOnes.Commands).toEqual([]);
    const done = await ssm.send(
      new ListCommandsCommand({
        Filters: [
          { key: 'Status', value: 'Success' },
          { key: 'ExecutionStage', value: 'Complete' },
        ],
      }),
    );
    expect(done.Commands).toHaveLength(7);
    await expect(
      ssm.send(new ListCommandsCommand({ Filters: [{ key: 'Colour' as 'Status', value: 'x' }] })),
    ).rejects.toMatchObject({ name: 'InvalidFilterKey' });
  });

  test('ListCommandInvocations pages across commands and instances', async () => {
    h = await startHarness();
    const { ssm } = await h.assume();
    const a = await send(ssm, ['true'], { InstanceIds: [WEB1, WEB2, DB1] });
    const b = await send(ssm, ['true'], { InstanceIds: [WEB1, WEB2] });
    const rows: string[] = [];
    let token: string | undefined;
    do {
      const page = await ssm.send(
        new ListCommandInvocationsCommand({ MaxResults: 2, ...(token ? { NextToken: token } : {}) }),
      );
      rows.push(...page.CommandInvocations!.map((i) => `${i.CommandId}/${i.InstanceId}`));
      token = page.NextToken;
    } while (token);
    expect(rows).toEqual([
      `${b.CommandId}/${WEB1}`,
      `${b.CommandId}/${WEB2}`,
      `${a.CommandId}/${WEB1}`,
      `${a.CommandId}/${WEB2}`,
      `${a.CommandId}/${DB1}`,
    ]);
    const one = await ssm.send(new ListCommandInvocationsCommand({ InstanceId: DB1 }));
    expect(one.CommandInvocations!.map((i) => i.CommandId)).toEqual([a.CommandId]);
  });
});

describe('command log', () => {
  test('has exactly one entry per started invocation, with its final status', async () => {
    h = await startHarness();
    const { ssm } = await h.assume();
    const a = await send(ssm, ['echo a'], {
      InstanceIds: [],
      Targets: [{ Key: 'tag:Role', Values: ['web', 'db'] }],
      Comment: 'token-a',
    });
    const b = await send(ssm, ['exit 2'], { InstanceIds: [DB1], Comment: 'token-b' });
    await waitCommand(ssm, a.CommandId!);
    await waitCommand(ssm, b.CommandId!);
    const log = await readCommandLog(h.dataDir);
    expect(log).toHaveLength(4);
    const keys = log.map((e) => `${e.commandId}/${e.instanceId}`);
    expect(new Set(keys).size).toBe(4);
    expect(log.filter((e) => e.comment === 'token-a').map((e) => e.status)).toEqual(['Success', 'Success', 'Success']);
    expect(log.find((e) => e.comment === 'token-b')).toMatchObject({
      instanceId: DB1,
      documentName: 'AWS-RunShellScript',
      commands: ['exit 2'],
      status: 'Failed',
      responseCode: 2,
      finishedAt: expect.any(String),
      startedAt: expect.any(String),
    });
  });
});
