import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CancelCommandCommand,
  GetCommandInvocationCommand,
  ListCommandsCommand,
  paginateDescribeInstanceInformation,
  paginateDescribeInstanceProperties,
  paginateListCommandInvocations,
  SendCommandCommand,
  type CommandInvocation,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { defaultFleetConfig, lightInstanceId, type FleetConfig } from '../../src/devfleet/config.ts';
import { COMMAND_LOG_FILE } from '../../src/devfleet/command-log.ts';
import { DEMO_INSTANCE_IDS, readCommandLog } from '../../src/devfleet/index.ts';
import { StateStore } from '../../src/devfleet/state.ts';
import { ROOT, startHarness, until, waitInvocation, type Harness } from './devfleet-helpers.ts';

/**
 * devfleet with 10,000 light instances (commands simulated in-process) behind the real SDK: the
 * API is the one ordinary instances have — paging, tags, tag targets, IAM, MaxConcurrency,
 * MaxErrors, the command log, cancel, a restart — and the fleet costs no folder and no process.
 */

const WEB = 2000;
const BATCH = 7985;
const FLAKY = 10;
const SLOW = 5;
const TOTAL = WEB + BATCH + FLAKY + SLOW;

const config: FleetConfig = {
  ...defaultFleetConfig(ROOT),
  lightInstances: [
    { count: WEB, namePrefix: 'web', tags: { Role: 'frontend', Env: 'load' }, commandMs: 5 },
    { count: BATCH, namePrefix: 'batch', tags: { Role: 'batch' }, commandMs: 5 },
    { count: FLAKY, namePrefix: 'flaky', tags: { Role: 'flaky' }, commandMs: 5, failEvery: 2 },
    { count: SLOW, namePrefix: 'slow', tags: { Role: 'slow' }, commandMs: 600_000 },
  ],
};
const web = (n: number) => lightInstanceId(0, n);
const batch = (n: number) => lightInstanceId(1, n);
const flaky = (n: number) => lightInstanceId(2, n);
const slow = (n: number) => lightInstanceId(3, n);

let h: Harness;
let ssm: SSMClient;
beforeAll(async () => {
  h = await startHarness({ config });
  ({ ssm } = await h.assume());
});
afterAll(async () => {
  await h?.close();
});

async function commandDone(commandId: string): Promise<string> {
  return until(async () => {
    const { Commands = [] } = await ssm.send(new ListCommandsCommand({ CommandId: commandId }));
    const status = Commands[0]?.Status;
    return status && !['Pending', 'InProgress', 'Cancelling'].includes(status) ? status : undefined;
  }, 50);
}

async function allInvocations(commandId: string): Promise<{ rows: CommandInvocation[]; pages: number }> {
  const rows: CommandInvocation[] = [];
  let pages = 0;
  for await (const page of paginateListCommandInvocations(
    { client: ssm, pageSize: 50 },
    { CommandId: commandId, Details: true },
  )) {
    pages++;
    expect(page.CommandInvocations?.length ?? 0).toBeLessThanOrEqual(50);
    rows.push(...(page.CommandInvocations ?? []));
  }
  return { rows, pages };
}

/** The most invocations of a command that were running at one moment, from devfleet's command log. */
function maxOverlap(entries: readonly { startedAt: string; finishedAt?: string | undefined }[]): number {
  const events = entries.flatMap((e) => [
    { at: Date.parse(e.startedAt), d: 1 },
    { at: Date.parse(e.finishedAt ?? ''), d: -1 },
  ]);
  // At the same millisecond a finish frees its slot before the next start takes it.
  events.sort((a, b) => a.at - b.at || a.d - b.d);
  let now = 0;
  let max = 0;
  for (const e of events) max = Math.max(max, (now += e.d));
  return max;
}

describe('10,000 light instances', () => {
  test('cost no folder and no process, and DescribeInstanceInformation pages through every one of them', async () => {
    // Only the three ordinary instances have a sandbox folder.
    expect((await readdir(join(h.dataDir, 'instances'))).sort()).toEqual(Object.values(DEMO_INSTANCE_IDS).sort());

    const ids: string[] = [];
    let pages = 0;
    for await (const page of paginateDescribeInstanceInformation({ client: ssm, pageSize: 50 }, {})) {
      pages++;
      expect(page.InstanceInformationList?.length ?? 0).toBeLessThanOrEqual(50);
      for (const i of page.InstanceInformationList ?? []) ids.push(i.InstanceId ?? '');
    }
    expect(ids.length).toBe(TOTAL + 3);
    expect(new Set(ids).size).toBe(TOTAL + 3);
    expect(pages).toBe(Math.ceil((TOTAL + 3) / 50));
    expect(ids).toContain(batch(BATCH));

    const webIds: string[] = [];
    for await (const page of paginateDescribeInstanceInformation(
      { client: ssm, pageSize: 50 },
      { Filters: [{ Key: 'tag:Role', Values: ['frontend'] }] },
    )) {
      for (const i of page.InstanceInformationList ?? []) {
        expect(i.PingStatus).toBe('Online');
        // The host name is EC2-like, not the Name tag.
        expect(i.ComputerName).toMatch(/^ip-10-100-\d+-\d+\.ec2\.internal$/);
        webIds.push(i.InstanceId ?? '');
      }
    }
    expect(webIds).toEqual(Array.from({ length: WEB }, (_, i) => web(i + 1)));

    // Their names are Name tags, as DescribeInstanceProperties reports them.
    const names = new Map<string, string>();
    for await (const page of paginateDescribeInstanceProperties({ client: ssm, pageSize: 1000 }, {})) {
      for (const p of page.InstanceProperties ?? []) names.set(p.InstanceId ?? '', p.Name ?? '');
    }
    expect(names.size).toBe(TOTAL + 3);
    expect(names.get(web(7))).toBe('web-7');
    expect(names.get(slow(5))).toBe('slow-5');
  });

  test('a tag target reaches 2,000 of them: each runs once, never more than MaxConcurrency at a time, and every page shows it', async () => {
    const { Command } = await ssm.send(
      new SendCommandCommand({
        DocumentName: 'AWS-RunShellScript',
        Targets: [{ Key: 'tag:Role', Values: ['frontend'] }],
        Parameters: { commands: ['systemctl restart nginx', 'echo done'] },
        MaxConcurrency: '200',
        Comment: 'light web 2000',
      }),
    );
    const commandId = Command?.CommandId ?? '';
    expect(Command?.TargetCount).toBe(WEB);
    expect(await commandDone(commandId)).toBe('Success');

    const { rows, pages } = await allInvocations(commandId);
    expect(pages).toBe(WEB / 50);
    expect(rows.map((r) => r.InstanceId)).toEqual(Array.from({ length: WEB }, (_, i) => web(i + 1)));
    for (const [i, r] of rows.entries()) {
      expect(r.Status).toBe('Success');
      expect(r.CommandPlugins?.[0]?.Output).toContain(`web-${i + 1} (${web(i + 1)}): ran 2 command lines`);
    }
    const one = await ssm.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: web(7) }));
    expect(one).toMatchObject({ Status: 'Success', ResponseCode: 0 });
    expect(one.StandardOutputContent).toContain('web-7');

    // The command log has each instance exactly once, and nothing was spawned for any of them.
    const log = (await readCommandLog(h.dataDir)).filter((e) => e.commandId === commandId);
    expect(log).toHaveLength(WEB);
    expect(new Set(log.map((e) => e.instanceId)).size).toBe(WEB);
    expect(log.every((e) => e.status === 'Success')).toBe(true);
    expect(maxOverlap(log)).toBeLessThanOrEqual(200);
    expect(await readFile(join(h.dataDir, COMMAND_LOG_FILE), 'utf8')).not.toContain('"spawn"');
  });

  test('the session policy decides per instance, as for ordinary instances', async () => {
    const { ssm: webOnly } = await h.assume({
      RoleSessionName: 'web-only',
      Policy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Action: 'ssm:SendCommand',
            Resource: 'arn:aws:ssm:us-east-1::document/AWS-RunShellScript',
          },
          {
            Effect: 'Allow',
            Action: 'ssm:SendCommand',
            Resource: 'arn:aws:ec2:us-east-1:123456789012:instance/*',
            Condition: { StringEquals: { 'ssm:resourceTag/Role': 'frontend' } },
          },
          { Effect: 'Allow', Action: ['ssm:List*', 'ssm:GetCommandInvocation'], Resource: '*' },
        ],
      }),
    });
    const send = (extra: Partial<ConstructorParameters<typeof SendCommandCommand>[0]>) =>
      webOnly.send(
        new SendCommandCommand({ DocumentName: 'AWS-RunShellScript', Parameters: { commands: ['true'] }, ...extra }),
      );
    await expect(send({ InstanceIds: [web(1), batch(1)] })).rejects.toMatchObject({
      name: 'AccessDeniedException',
      message: expect.stringContaining(`instance/${batch(1)}`) as unknown,
    });
    // Reached through a tag, an instance the session may not touch gets an AccessDenied invocation.
    const { Command } = await send({ Targets: [{ Key: 'tag:Role', Values: ['flaky'] }] });
    expect(await commandDone(Command?.CommandId ?? '')).toBe('Failed');
    const { rows } = await allInvocations(Command?.CommandId ?? '');
    expect(rows).toHaveLength(FLAKY);
    expect(rows.every((r) => r.Status === 'Failed' && r.StatusDetails === 'AccessDenied')).toBe(true);
    const named = await send({ InstanceIds: [web(1), web(2)] });
    expect(await commandDone(named.Command?.CommandId ?? '')).toBe('Success');
  });

  test('MaxErrors stops a command whose instances fail (failEvery), as SSM does', async () => {
    const { Command } = await ssm.send(
      new SendCommandCommand({
        DocumentName: 'AWS-RunShellScript',
        Targets: [{ Key: 'tag:Role', Values: ['flaky'] }],
        Parameters: { commands: ['deploy'] },
        MaxConcurrency: '1',
        MaxErrors: '1',
      }),
    );
    const commandId = Command?.CommandId ?? '';
    expect(await commandDone(commandId)).toBe('Failed');
    const { rows } = await allInvocations(commandId);
    // Every second flaky instance fails: 2 and 4 exceed MaxErrors 1, the six after are never started.
    expect(rows.map((r) => [r.InstanceId, r.Status, r.StatusDetails])).toEqual([
      [flaky(1), 'Success', 'Success'],
      [flaky(2), 'Failed', 'Failed'],
      [flaky(3), 'Success', 'Success'],
      [flaky(4), 'Failed', 'Failed'],
      ...[5, 6, 7, 8, 9, 10].map((n) => [flaky(n), 'Cancelled', 'Terminated']),
    ]);
    expect(rows[1]?.CommandPlugins?.[0]?.ResponseCode).toBe(1);
    const { Commands = [] } = await ssm.send(new ListCommandsCommand({ CommandId: commandId }));
    expect(Commands[0]).toMatchObject({ Status: 'Failed', StatusDetails: 'Failed', ErrorCount: 2, TargetCount: 10 });
    const log = (await readCommandLog(h.dataDir)).filter((e) => e.commandId === commandId);
    expect(log.map((e) => e.instanceId)).toEqual([flaky(1), flaky(2), flaky(3), flaky(4)]);
  });

  test('CancelCommand stops simulated runs, and a restart neither resumes nor repeats one', async () => {
    const { Command } = await ssm.send(
      new SendCommandCommand({
        DocumentName: 'AWS-RunShellScript',
        Targets: [{ Key: 'tag:Role', Values: ['slow'] }],
        Parameters: { commands: ['sleep 600'] },
        MaxConcurrency: '2',
      }),
    );
    const commandId = Command?.CommandId ?? '';
    await waitInvocation(ssm, commandId, slow(2), (s) => s === 'InProgress');
    await ssm.send(new CancelCommandCommand({ CommandId: commandId }));
    expect(await commandDone(commandId)).toBe('Cancelled');
    const { rows } = await allInvocations(commandId);
    expect(rows.map((r) => r.Status)).toEqual(Array(SLOW).fill('Cancelled'));
    expect((await readCommandLog(h.dataDir)).filter((e) => e.commandId === commandId)).toHaveLength(2);

    const running = await ssm.send(
      new SendCommandCommand({
        DocumentName: 'AWS-RunShellScript',
        InstanceIds: [slow(1)],
        Parameters: { commands: ['sleep 600'] },
      }),
    );
    const runningId = running.Command?.CommandId ?? '';
    await waitInvocation(ssm, runningId, slow(1), (s) => s === 'InProgress');
    await h.restart();
    ({ ssm } = await h.assume());
    const after = await waitInvocation(ssm, runningId, slow(1));
    expect(after.Status).toBe('Failed');
    expect(after.StandardErrorContent).toMatch(/devfleet (stopped|restarted) while this command was running/);
    const log = (await readCommandLog(h.dataDir)).filter((e) => e.commandId === runningId);
    expect(log).toHaveLength(1);
  });
});

describe('the state file of a busy fleet', () => {
  test('flush() resolves once its own changes are written, while the fleet keeps changing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'devfleet-churn-'));
    const store = await StateStore.open(dir);
    let churning = true;
    // Thousands of invocations finishing: a change on every turn of the event loop, never quiet.
    const churn = () => {
      store.nextSeq++;
      store.markDirty();
      if (churning) setImmediate(churn);
    };
    churn();
    try {
      const seq = store.nextSeq;
      await store.flush();
      const written = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as { nextSeq: number };
      expect(written.nextSeq).toBeGreaterThanOrEqual(seq);
      expect(churning).toBe(true);
    } finally {
      churning = false;
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
