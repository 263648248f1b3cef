import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { readCommandLog } from '../../src/devfleet/command-log.ts';
import {
  DEMO_INSTANCE_IDS,
  DEMO_ROLE_ARN,
  DEMO_WORKER_ROLE_ARN,
  containerTokenFor,
  defaultFleetConfig,
  parseFleetConfig,
} from '../../src/devfleet/config.ts';

const root = { accessKeyId: 'AKIAEXAMPLEROOT00001', secretAccessKey: 'example-secret-0001' };

describe('fleet config', () => {
  test('the demo fleet', () => {
    const c = defaultFleetConfig(root);
    expect(c.accountId).toBe('123456789012');
    expect(c.region).toBe('us-east-1');
    expect(c.roles).toEqual([
      { arn: DEMO_ROLE_ARN, maxSessionDurationSeconds: 43200 },
      // The worker's own role (a task role): it may assume the account's roles and do nothing else.
      {
        arn: DEMO_WORKER_ROLE_ARN,
        maxSessionDurationSeconds: 3600,
        policy: {
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: 'arn:aws:iam::123456789012:role/*' }],
        },
      },
    ]);
    expect(c.containerCredentials).toEqual({
      roleArn: DEMO_WORKER_ROLE_ARN,
      authorizationToken: containerTokenFor(root),
    });
    // The token follows from the root secret, and only from it.
    expect(containerTokenFor(root)).not.toBe(containerTokenFor({ secretAccessKey: `${root.secretAccessKey}x` }));
    expect(containerTokenFor(root)).not.toContain(root.secretAccessKey);
    expect(c.instances.map((i) => [i.name, i.id, i.tags])).toEqual([
      // Host names as EC2 gives them; what people call an instance is its Name tag, as in AWS.
      ['ip-10-0-1-11.ec2.internal', DEMO_INSTANCE_IDS['web-1'], { Name: 'web-1', Role: 'web', Env: 'staging' }],
      ['ip-10-0-1-12.ec2.internal', DEMO_INSTANCE_IDS['web-2'], { Name: 'web-2', Role: 'web', Env: 'staging' }],
      ['ip-10-0-2-21.ec2.internal', DEMO_INSTANCE_IDS['db-1'], { Name: 'db-1', Role: 'db', Env: 'staging' }],
    ]);
  });

  test('defaults fill in', () => {
    const c = parseFleetConfig({
      credentials: [],
      roles: [{ arn: 'arn:aws:iam::123456789012:role/r' }],
      instances: [{ id: 'i-0123456789abcdef0' }],
    });
    expect(c.roles[0]!.maxSessionDurationSeconds).toBe(3600);
    expect(c.instances[0]!.tags).toEqual({});
  });

  test.each([
    [
      {
        credentials: [{ accessKeyId: 'ASIAXXXXXXXXXXXXXXXX', secretAccessKey: 'x'.repeat(20), name: 'u' }],
        roles: [],
        instances: [],
      },
      'AKIA',
    ],
    [{ credentials: [], roles: [{ arn: 'arn:aws:iam::999999999999:role/r' }], instances: [] }, 'not in account'],
    [
      {
        credentials: [],
        roles: [{ arn: 'arn:aws:iam::123456789012:role/r', maxSessionDurationSeconds: 50000 }],
        instances: [],
      },
      'maxSessionDurationSeconds',
    ],
    [{ credentials: [], roles: [], instances: [{ id: 'i-123' }] }, '17 lowercase hex'],
    [
      { credentials: [], roles: [], instances: [{ id: 'i-0123456789abcdef0' }, { id: 'i-0123456789abcdef0' }] },
      'duplicate instance id',
    ],
    [
      { credentials: [], roles: [], instances: [{ id: 'i-0123456789abcdef0', faults: { offline: true, flaky: 1 } }] },
      'flaky',
    ],
    [{ credentials: [], roles: [], instances: [], extra: 1 }, 'extra'],
    [
      {
        credentials: [],
        roles: [],
        instances: [],
        containerCredentials: { roleArn: 'arn:aws:iam::123456789012:role/w', authorizationToken: 't'.repeat(40) },
      },
      "the container credentials' role arn:aws:iam::123456789012:role/w is not one of the fleet's roles",
    ],
    [
      {
        credentials: [],
        roles: [{ arn: 'arn:aws:iam::123456789012:role/w' }],
        instances: [],
        containerCredentials: { roleArn: 'arn:aws:iam::123456789012:role/w', authorizationToken: 'short' },
      },
      '32 to 512 printable characters',
    ],
    [{ credentials: [], roles: [], instances: [], stsTimeScale: 0 }, 'stsTimeScale'],
    [{ credentials: [], roles: [], instances: [], stsTimeScale: 2 }, 'stsTimeScale'],
  ])('rejects %j mentioning %s', (input, words) => {
    expect(() => parseFleetConfig(input)).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(words) }),
    );
  });

  test('a role policy must be a valid identity policy', () => {
    expect(() =>
      parseFleetConfig({
        credentials: [],
        roles: [{ arn: 'arn:aws:iam::123456789012:role/r', policy: { Statement: [{ Effect: 'Allow', Action: '*' }] } }],
        instances: [],
      }),
    ).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});

describe('readCommandLog', () => {
  test('folds start and finish lines, tolerates a torn last line, and is empty when absent', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'devfleet-log-'));
    try {
      expect(await readCommandLog(dir)).toEqual([]);
      const start = (id: string) => ({
        type: 'start',
        commandId: 'c1',
        instanceId: id,
        comment: 't',
        documentName: 'AWS-RunShellScript',
        commands: ['true'],
        startedAt: '2030-01-01T00:00:00.000Z',
      });
      const lines = [
        start('i-1'),
        { type: 'spawn', commandId: 'c1', instanceId: 'i-1', pid: 4242 },
        start('i-2'),
        {
          type: 'finish',
          commandId: 'c1',
          instanceId: 'i-1',
          finishedAt: '2030-01-01T00:00:01.000Z',
          responseCode: 0,
          status: 'Success',
        },
      ].map((l) => JSON.stringify(l));
      await writeFile(join(dir, 'command-log.jsonl'), lines.join('\n') + '\n{"type":"fin');
      expect(await readCommandLog(dir)).toEqual([
        {
          commandId: 'c1',
          instanceId: 'i-1',
          comment: 't',
          documentName: 'AWS-RunShellScript',
          commands: ['true'],
          startedAt: '2030-01-01T00:00:00.000Z',
          finishedAt: '2030-01-01T00:00:01.000Z',
          responseCode: 0,
          status: 'Success',
        },
        {
          commandId: 'c1',
          instanceId: 'i-2',
          comment: 't',
          documentName: 'AWS-RunShellScript',
          commands: ['true'],
          startedAt: '2030-01-01T00:00:00.000Z',
          status: 'InProgress',
        },
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
