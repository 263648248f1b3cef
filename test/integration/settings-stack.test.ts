import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ListCommandsCommand, SSMClient } from '@aws-sdk/client-ssm';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ExecutionView } from '../../src/core/execution.ts';
import { DEMO_ROLE_ARN } from '../../src/devfleet/config.ts';
import { dataConverterFor, parseCodecKeys } from '../../src/temporal/codec.ts';
import { runCli, startDevStack, type DevStack } from '../helpers/cli.ts';

/**
 * The worker's timing settings reach the real run: `mechanic dev` started with a delivery timeout
 * and a heartbeat timeout that are not the defaults, a runbook run through the CLI, and then what
 * devfleet was asked (the SendCommand's TimeoutSeconds) and what the workflow scheduled (each
 * step activity's heartbeat timeout, in the run's Temporal history) are read back. The polling
 * interval bounds are the stack helper's own (100 ms to 500 ms); how the step activity honours
 * them is counted in workflow-polling.test.ts.
 */
describe('MECHANIC_DELIVERY_TIMEOUT_SECONDS and MECHANIC_HEARTBEAT_TIMEOUT_SECONDS on the embedded stack', () => {
  let stack: DevStack;
  const cli = (...args: string[]) => runCli(args, stack.env);
  let executionId = '';

  beforeAll(async () => {
    stack = await startDevStack({
      MECHANIC_DELIVERY_TIMEOUT_SECONDS: '47',
      MECHANIC_HEARTBEAT_TIMEOUT_SECONDS: '13',
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
});
