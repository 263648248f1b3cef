import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ListCommandsCommand, SSMClient } from '@aws-sdk/client-ssm';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ExecutionView } from '../../src/core/execution.ts';
import { readCallLog } from '../../src/devfleet/call-log.ts';
import { readCommandLog } from '../../src/devfleet/command-log.ts';
import { DEMO_ROLE_ARN, defaultFleetConfig } from '../../src/devfleet/config.ts';
import { dataConverterFor, parseCodecKeys } from '../../src/temporal/codec.ts';
import { writeOwnerOnly } from '../helpers/claims.ts';
import { runCli, startDevStack, type DevStack } from '../helpers/cli.ts';

/** The pause between two looks at a running command, for the worker of the stack below (min = max). */
const POLL_MS = 400;
/** How long the paced step runs on its hosts: long enough for the default back-off to pass 3 s pauses. */
const PACED_STEP_SECONDS = 10;

const PACED_RUNBOOK = `name: paced-step
version: 1
description: One step that runs for a known time, to see how often the worker looks at it.
roleArn: ${DEMO_ROLE_ARN}
targets:
  tags: { Role: web }
steps:
  - name: wait
    timeoutSeconds: 120
    script: sleep ${PACED_STEP_SECONDS} && echo paced step done
`;

/**
 * The worker's timing settings reach the real run: `mechanic dev` started with a delivery timeout
 * and a heartbeat timeout that are not the defaults, a runbook run through the CLI, and then what
 * devfleet was asked (the SendCommand's TimeoutSeconds) and what the workflow scheduled (each
 * step activity's heartbeat timeout, in the run's Temporal history) are read back. The worker's
 * polling bounds (MECHANIC_POLL_MIN_MS = MECHANIC_POLL_MAX_MS = 400) are read back from devfleet's
 * call log: the pauses between its ListCommandInvocations answers for a step that runs 10 s; how
 * the step activity itself grows the pause is counted in workflow-polling.test.ts.
 */
describe('MECHANIC_DELIVERY_TIMEOUT_SECONDS, MECHANIC_HEARTBEAT_TIMEOUT_SECONDS and MECHANIC_POLL_* on the embedded stack', () => {
  let stack: DevStack;
  let scratch: string;
  const cli = (...args: string[]) => runCli(args, stack.env);
  let executionId = '';

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'mechanic-settings-'));
    const home = path.join(scratch, 'home');
    // devfleet as the stack would make it, and also logging every call it answers.
    const root = {
      accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
      secretAccessKey: randomBytes(30).toString('base64'),
    };
    await writeOwnerOnly(path.join(home, 'devfleet', 'root.json'), JSON.stringify(root));
    await writeOwnerOnly(
      path.join(home, 'devfleet', 'fleet.json'),
      JSON.stringify({ ...defaultFleetConfig(root), callLog: true }),
    );
    const runbooksDir = path.join(scratch, 'runbooks');
    await writeOwnerOnly(path.join(runbooksDir, 'paced-step.yaml'), PACED_RUNBOOK);
    await copyFile(path.resolve('runbooks/deploy-web.yaml'), path.join(runbooksDir, 'deploy-web.yaml'));
    stack = await startDevStack({
      MECHANIC_HOME: home,
      MECHANIC_RUNBOOKS_DIR: runbooksDir,
      MECHANIC_DELIVERY_TIMEOUT_SECONDS: '47',
      MECHANIC_HEARTBEAT_TIMEOUT_SECONDS: '13',
      MECHANIC_POLL_MIN_MS: String(POLL_MS),
      MECHANIC_POLL_MAX_MS: String(POLL_MS),
    });
    const launched = await cli(
      'launch',
      'deploy-web',
      '--param',
      'release=v2.0.2',
      '--reason',
      'settings test',
      '--as',
      'alice',
      '--json',
    );
    expect(launched.stderr).toBe('');
    executionId = (JSON.parse(launched.stdout) as { executionId: string }).executionId;
    const approved = await cli('approve', executionId, '--yes', '--as', 'bob');
    expect(approved.code).toBe(0);
    const status = await cli('status', executionId, '--wait', '--as', 'alice', '--json');
    expect((JSON.parse(status.stdout) as ExecutionView).status).toBe('completed');
  });
  afterAll(async () => {
    const code = await stack?.stop();
    if (scratch) await rm(scratch, { recursive: true, force: true });
    expect(code).toBe(0);
  });

  test('every SendCommand of the run asks devfleet for the configured delivery timeout', async () => {
    const root = JSON.parse(await readFile(path.join(stack.home, 'devfleet', 'root.json'), 'utf8')) as {
      accessKeyId: string;
      secretAccessKey: string;
    };
    // devfleet's root user may only assume roles; the runner role may list commands.
    const sts = new STSClient({ region: 'us-east-1', endpoint: stack.info.devfleetEndpoint, credentials: root });
    const assumed = await sts.send(new AssumeRoleCommand({ RoleArn: DEMO_ROLE_ARN, RoleSessionName: 'settings-test' }));
    sts.destroy();
    const credentials = {
      accessKeyId: assumed.Credentials!.AccessKeyId!,
      secretAccessKey: assumed.Credentials!.SecretAccessKey!,
      sessionToken: assumed.Credentials!.SessionToken!,
    };
    const ssm = new SSMClient({ region: 'us-east-1', endpoint: stack.info.devfleetEndpoint, credentials });
    try {
      const commands = (await ssm.send(new ListCommandsCommand({}))).Commands ?? [];
      const ours = commands.filter((c) => c.Comment?.includes(executionId));
      expect(ours.length).toBeGreaterThan(0);
      expect(ours.map((c) => c.TimeoutSeconds)).toEqual(ours.map(() => 47));
    } finally {
      ssm.destroy();
    }
  });

  test('every step activity that follows a command is scheduled with the configured heartbeat timeout', async () => {
    const codecKeys = (await readFile(path.join(stack.home, 'codec-keys'), 'utf8')).trim();
    const connection = await Connection.connect({ address: stack.info.temporalAddress });
    try {
      const client = new Client({ connection, dataConverter: dataConverterFor(parseCodecKeys(codecKeys)) });
      const history = await client.workflow.getHandle(executionId).fetchHistory();
      const heartbeats = (history.events ?? [])
        .map((e) => e.activityTaskScheduledEventAttributes)
        .filter((a) => a?.activityType?.name === 'awaitStep')
        .map((a) => Number(a!.heartbeatTimeout?.seconds ?? 0));
      expect(heartbeats.length).toBeGreaterThan(0);
      expect(heartbeats).toEqual(heartbeats.map(() => 13));
    } finally {
      await connection.close();
    }
  });
  test('the worker looks at a running command every MECHANIC_POLL_MIN_MS, never backing off past MECHANIC_POLL_MAX_MS', async () => {
    const since = Date.now();
    const launched = await cli('launch', 'paced-step', '--reason', 'poll pace', '--as', 'alice', '--json');
    expect(launched.stderr).toBe('');
    const id = (JSON.parse(launched.stdout) as { executionId: string }).executionId;
    expect((await cli('approve', id, '--yes', '--as', 'bob')).code).toBe(0);
    const status = await cli('status', id, '--wait', '--as', 'alice', '--json');
    expect((JSON.parse(status.stdout) as ExecutionView).status).toBe('completed');
    const ran = (await readCommandLog(path.join(stack.home, 'devfleet'))).filter((e) =>
      e.comment.startsWith(`mechanic ${id} `),
    );
    expect(ran.length).toBe(2);
    // The only run in flight: every ListCommandInvocations answered since its launch followed its step.
    const looks = (await readCallLog(path.join(stack.home, 'devfleet')))
      .filter((c) => c.operation === 'ListCommandInvocations' && c.outcome === 'ok' && Date.parse(c.at) >= since)
      .map((c) => Date.parse(c.at));
    const pauses = looks.slice(1).map((at, i) => at - looks[i]!);
    // A pause is the worker's sleep plus a round trip, so load only lengthens it: none is shorter
    // than the minimum (the default, 100 ms, would make the first ones a quarter of it).
    expect(pauses.length).toBeGreaterThanOrEqual(4);
    expect(Math.min(...pauses)).toBeGreaterThanOrEqual(POLL_MS - 5);
    // Without the maximum, the pause grows by half at each look (the default maximum is 15 s):
    // from the sixth on it would be over 3 s. Held at 400 ms, some are far shorter than that.
    expect(pauses.length).toBeGreaterThanOrEqual(7);
    expect(Math.min(...pauses.slice(5))).toBeLessThan(2_000);
  }, 120_000);
});
