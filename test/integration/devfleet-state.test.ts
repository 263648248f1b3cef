import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import {
  GetCommandInvocationCommand,
  ListCommandsCommand,
  type SendCommandCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { afterEach, describe, expect, test } from 'vitest';
import {
  DEMO_INSTANCE_IDS,
  DEMO_ROLE_ARN,
  defaultFleetConfig,
  readCommandLog,
  startDevfleet,
  type Devfleet,
} from '../../src/devfleet/index.ts';
import {
  REGION,
  ROOT,
  fileText,
  fleetWith,
  gone,
  isRunning,
  startHarness,
  until,
  waitInvocation,
  type Harness,
  sendCommand,
} from './devfleet-helpers.ts';

const WEB1 = DEMO_INSTANCE_IDS['web-1'];

let h: Harness | undefined;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  await h?.close();
  h = undefined;
  for (const c of cleanups.splice(0).reverse()) await c();
});

function send(
  ssm: SSMClient,
  commands: string[],
  ids: string[] = [WEB1],
  extra: Partial<ConstructorParameters<typeof SendCommandCommand>[0]> = {},
) {
  return sendCommand(ssm, ids, commands, extra);
}

describe('durable state', () => {
  test('commands, output and sessions survive close() and a new devfleet on the same folder', async () => {
    h = await startHarness();
    const { ssm, credentials } = await h.assume();
    const done = await send(ssm, ['echo persisted'], [WEB1], { Comment: 'wf:1:step:1' });
    await waitInvocation(ssm, done.CommandId!, WEB1);
    const running = await send(ssm, ['sleep 30']);
    await waitInvocation(ssm, running.CommandId!, WEB1, (s) => s === 'InProgress');

    await h.restart();
    const again = h.ssm(credentials); // the same session keys, verified by the new process
    const listed = await again.send(new ListCommandsCommand({}));
    expect(listed.Commands?.map((c) => [c.CommandId, c.Comment, c.Status])).toEqual([
      [running.CommandId, '', 'Failed'],
      [done.CommandId, 'wf:1:step:1', 'Success'],
    ]);
    const out = await again.send(new GetCommandInvocationCommand({ CommandId: done.CommandId, InstanceId: WEB1 }));
    expect(out.StandardOutputContent).toBe('persisted\n');
    const stopped = await again.send(
      new GetCommandInvocationCommand({ CommandId: running.CommandId, InstanceId: WEB1 }),
    );
    expect(stopped).toMatchObject({ Status: 'Failed', StatusDetails: 'Failed' });
    expect(stopped.StandardErrorContent).toContain('devfleet stopped while this command was running');
    const log = await readCommandLog(h.dataDir);
    expect(log.map((e) => [e.commandId, e.status])).toEqual([
      [done.CommandId, 'Success'],
      [running.CommandId, 'Failed'],
    ]);
  });

  test('a pending invocation on an unresponsive instance keeps its delivery deadline across a restart', async () => {
    const A = 'i-0bbbbbbbbbbbbbbb1';
    h = await startHarness({
      config: fleetWith([{ id: A, tags: {}, faults: { unresponsive: true } }]),
      timeScale: 0.01,
    });
    const { ssm, credentials } = await h.assume();
    const cmd = await send(ssm, ['true'], [A], { TimeoutSeconds: 60 }); // 600 ms
    await h.restart();
    const again = h.ssm(credentials);
    expect(
      (await again.send(new GetCommandInvocationCommand({ CommandId: cmd.CommandId, InstanceId: A }))).Status,
    ).toBe('Pending');
    const got = await waitInvocation(again, cmd.CommandId!, A);
    expect(got).toMatchObject({ Status: 'TimedOut', StatusDetails: 'DeliveryTimedOut' });
  });

  test('after a crash, the running invocation is Failed, its orphaned processes are stopped, and nothing runs twice', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'devfleet-crash-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const config = defaultFleetConfig(ROOT);

    // devfleet in its own process, so it can really die (SIGKILL: no close(), no cleanup).
    const child = await startChildDevfleet(dataDir, config);
    cleanups.push(() => {
      child.proc.kill('SIGKILL');
    });
    const sts = new STSClient({ region: REGION, endpoint: child.endpoint, credentials: ROOT });
    const assumed = await sts.send(new AssumeRoleCommand({ RoleArn: DEMO_ROLE_ARN, RoleSessionName: 'crash' }));
    sts.destroy();
    const credentials = {
      accessKeyId: assumed.Credentials!.AccessKeyId!,
      secretAccessKey: assumed.Credentials!.SecretAccessKey!,
      sessionToken: assumed.Credentials!.SessionToken!,
    };
    const ssm1 = new SSMClient({ region: REGION, endpoint: child.endpoint, credentials });
    const cmd = await send(ssm1, ['echo $$ > group.pid; sleep 60 & echo $! > sleeper.pid; wait']);
    await waitInvocation(ssm1, cmd.CommandId!, WEB1, (s) => s === 'InProgress');
    ssm1.destroy();
    const sleeperPid = Number(await fileText(join(dataDir, 'instances', WEB1, 'root', 'sleeper.pid')));
    const groupPid = Number(await fileText(join(dataDir, 'instances', WEB1, 'root', 'group.pid')));
    cleanups.push(() => {
      // Only if this test fails before devfleet stops the orphans itself.
      if (isRunning(sleeperPid)) process.kill(-groupPid, 'SIGKILL');
    });
    expect(isRunning(sleeperPid)).toBe(true);

    child.proc.kill('SIGKILL');
    await new Promise((r) => child.proc.once('exit', r));
    expect(isRunning(sleeperPid)).toBe(true); // the script's group outlived devfleet

    let fleet: Devfleet | undefined = await startDevfleet({ dataDir, config });
    cleanups.push(async () => {
      await fleet?.close();
      fleet = undefined;
    });
    const ssm2 = new SSMClient({ region: REGION, endpoint: fleet.endpoint, credentials });
    cleanups.push(() => ssm2.destroy());
    const got = await ssm2.send(new GetCommandInvocationCommand({ CommandId: cmd.CommandId, InstanceId: WEB1 }));
    expect(got).toMatchObject({ Status: 'Failed', StatusDetails: 'Failed', ResponseCode: -1 });
    expect(got.StandardErrorContent).toContain('devfleet restarted while this command was running');
    await gone(sleeperPid); // orphans that outlive the restart fail the test by its timeout

    // The log is written once the entry is final: wait for that state, then check nothing ran twice.
    const log = await until(async () => {
      const entries = await readCommandLog(dataDir);
      return entries.some((e) => e.finishedAt !== undefined) ? entries : undefined;
    });
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ commandId: cmd.CommandId, instanceId: WEB1, status: 'Failed', responseCode: -1 });
  });
});

describe('start-up', () => {
  test('bad options fail with CONFIG_INVALID, and a taken port is reported', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'devfleet-startup-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const config = defaultFleetConfig(ROOT);
    await expect(startDevfleet({ dataDir, config, timeScale: 0 })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await expect(startDevfleet({ dataDir, config: { ...config, region: 'mars' } })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('region'),
    });
    const first = await startDevfleet({ dataDir, config });
    cleanups.push(() => first.close());
    expect(first.endpoint).toBe(`http://127.0.0.1:${first.port}`);
    await expect(startDevfleet({ dataDir: join(dataDir, 'other'), config, port: first.port })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('in use'),
    });
  });
});

/** Starts devfleet in a child Node process (TypeScript through tsx) and waits for its endpoint. */
async function startChildDevfleet(dataDir: string, config: unknown): Promise<{ proc: ChildProcess; endpoint: string }> {
  const entry = new URL('../../src/devfleet/index.ts', import.meta.url).href;
  const code = [
    `const { startDevfleet } = await import(${JSON.stringify(entry)});`,
    `const fleet = await startDevfleet({ dataDir: process.env.DEVFLEET_DATA_DIR, config: JSON.parse(process.env.DEVFLEET_CONFIG) });`,
    `process.stdout.write(JSON.stringify({ endpoint: fleet.endpoint }) + '\\n');`,
  ].join('\n');
  const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    env: { ...process.env, DEVFLEET_DATA_DIR: dataDir, DEVFLEET_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const endpoint = await new Promise<string>((resolve, reject) => {
    let buf = '';
    proc.stdout?.on('data', (b: Buffer) => {
      buf += b.toString();
      const line = buf.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve((JSON.parse(line) as { endpoint: string }).endpoint);
    });
    // No deadline of its own: a child that never answers fails the test by its timeout.
    proc.once('exit', (code) => reject(new Error(`child devfleet exited (${code}): ${stderr}`)));
  });
  return { proc, endpoint };
}
