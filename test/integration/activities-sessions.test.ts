import { DescribeInstanceInformationCommand, ListCommandsCommand, SendCommandCommand } from '@aws-sdk/client-ssm';
import type { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { afterEach, describe, expect, test } from 'vitest';
import { createSsmClient, createStsClient, type SessionCredentials } from '../../src/activities/aws.ts';
import { CredentialLeases } from '../../src/activities/credentials.ts';
import { createInventory } from '../../src/activities/inventory.ts';
import type { NewAuditEvent } from '../../src/core/audit.ts';
import type { CredentialRequest } from '../../src/core/execution.ts';
import { DEMO_INSTANCE_IDS, DEMO_ROLE_ARN } from '../../src/devfleet/index.ts';
import { REGION, ROOT, fleetWith, startHarness, type Harness } from './devfleet-helpers.ts';

/**
 * The STS sessions mechanic asks devfleet for, judged by devfleet's own IAM and expiry checks with
 * the real AWS SDK: planning looks through a describe-only session, and a run that outlasts an
 * STS session (an hour here) is always handed a live one. devfleet's clock and the worker's move
 * together by `offset`; the SDK clients are told the same offset, as they would learn it from a
 * skewed answer.
 */
const MINUTE = 60_000;

let h: Harness | undefined;
const clients: { destroy(): void }[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await h?.close();
  h = undefined;
});

function clock() {
  let offset = 0;
  return {
    now: () => new Date(Date.now() + offset),
    get offset() {
      return offset;
    },
    advance(ms: number) {
      offset += ms;
    },
  };
}

describe('planning', () => {
  test('resolves targets through a session that can describe instances and do nothing else', async () => {
    h = await startHarness();
    const aws = { region: REGION, endpoint: h.fleet.endpoint, baseCredentials: ROOT };
    const seen: SessionCredentials[] = [];
    const inventory = createInventory({
      sts: track(createStsClient(aws)),
      ssmFor: (credentials) => {
        seen.push(credentials);
        return track(createSsmClient(aws, credentials));
      },
    });

    const found = await inventory.instancesFor(DEMO_ROLE_ARN, { tags: { Role: 'web' } });
    expect(found.map((i) => i.id).sort()).toEqual([DEMO_INSTANCE_IDS['web-1'], DEMO_INSTANCE_IDS['web-2']].sort());

    // The planner's own session, as devfleet issued it: describing works, anything else is denied.
    expect(seen).toHaveLength(1);
    const planner = track(createSsmClient(aws, seen[0]!));
    await expect(planner.send(new DescribeInstanceInformationCommand({}))).resolves.toBeDefined();
    await expect(
      planner.send(
        new SendCommandCommand({
          DocumentName: 'AWS-RunShellScript',
          InstanceIds: [DEMO_INSTANCE_IDS['web-1']],
          Parameters: { commands: ['true'] },
        }),
      ),
    ).rejects.toMatchObject({ name: 'AccessDeniedException' });
    await expect(planner.send(new ListCommandsCommand({}))).rejects.toMatchObject({ name: 'AccessDeniedException' });
  });
});

describe('the planner', () => {
  const A = 'i-0bbbbbbbbbbbbbbb1';
  const B = 'i-0bbbbbbbbbbbbbbb2';

  test('finds the instances a scope names, with their Name tags and whether SSM sees them online', async () => {
    h = await startHarness({
      config: fleetWith([
        // Host names differ from the Name tags: a name is the tag, as in AWS.
        { id: A, name: 'ip-10-0-3-1.ec2.internal', tags: { Role: 'app', Name: 'app-1' } },
        { id: B, name: 'ip-10-0-3-2.ec2.internal', tags: { Role: 'app', Name: 'app-2' }, faults: { offline: true } },
      ]),
    });
    const aws = { region: REGION, endpoint: h.fleet.endpoint, baseCredentials: ROOT };
    const inventory = createInventory({
      sts: track(createStsClient(aws)),
      ssmFor: (credentials) => track(createSsmClient(aws, credentials)),
    });
    const byId = await inventory.instancesFor(DEMO_ROLE_ARN, { instanceIds: [B] });
    expect(byId).toEqual([{ id: B, name: 'app-2', tags: {}, online: false }]);
    const byTag = await inventory.instancesFor(DEMO_ROLE_ARN, { tags: { Role: 'app' } });
    expect(byTag.sort((x, y) => x.id.localeCompare(y.id))).toEqual([
      { id: A, name: 'app-1', tags: { Role: 'app' }, online: true },
      { id: B, name: 'app-2', tags: { Role: 'app' }, online: false },
    ]);
  });

  test('asks STS once per role for a named, fifteen-minute, describe-only session, and renews it a minute before it ends', async () => {
    const time = clock();
    h = await startHarness({ now: () => time.now().getTime() });
    const aws = { region: REGION, endpoint: h.fleet.endpoint, baseCredentials: ROOT };
    const sts = track(createStsClient(aws));
    const asked: AssumeRoleCommand['input'][] = [];
    const inventory = createInventory({
      sts: {
        send: ((command: AssumeRoleCommand) => {
          asked.push(command.input);
          return sts.send(command);
        }) as never,
      },
      ssmFor: (credentials) => {
        const ssm = track(createSsmClient(aws, credentials));
        ssm.config.systemClockOffset = time.offset;
        return ssm;
      },
      now: time.now,
    });
    const scope = { tags: { Role: 'web' } };
    await inventory.instancesFor(DEMO_ROLE_ARN, scope);
    await inventory.instancesFor(DEMO_ROLE_ARN, scope);
    expect(asked).toHaveLength(1);
    expect(asked[0]).toMatchObject({
      RoleArn: DEMO_ROLE_ARN,
      RoleSessionName: 'mechanic-planner',
      DurationSeconds: 900,
      SourceIdentity: 'mechanic-planner',
    });
    expect(JSON.parse(asked[0]!.Policy!)).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Action: ['ssm:DescribeInstanceInformation', 'ssm:DescribeInstanceProperties'],
          Resource: '*',
        },
      ],
    });

    // Thirteen minutes on, two are left: still reused.
    time.advance(13 * 60_000);
    sts.config.systemClockOffset = time.offset;
    await inventory.instancesFor(DEMO_ROLE_ARN, scope);
    expect(asked).toHaveLength(1);
    // Fourteen minutes on, one is left: renewed.
    time.advance(60_000);
    sts.config.systemClockOffset = time.offset;
    await inventory.instancesFor(DEMO_ROLE_ARN, scope);
    expect(asked).toHaveLength(2);
  });

  test('an AssumeRole answer without credentials is one sentence to try again', async () => {
    const inventory = createInventory({
      sts: { send: (async () => ({})) as never },
      ssmFor: () => {
        throw new Error('no session, so no SSM call');
      },
    });
    await expect(inventory.instancesFor(DEMO_ROLE_ARN, { tags: { Role: 'web' } })).rejects.toMatchObject({
      code: 'STS_FAILED',
      message: 'STS answered AssumeRole without credentials; try again',
    });
  });
});

describe('credential leases', () => {
  const request: CredentialRequest = {
    executionId: 'mx-longrun0001',
    roleArn: DEMO_ROLE_ARN,
    region: REGION,
    sessionPolicy: JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'ssm:ListCommands', Resource: '*' }],
    }),
    durationSeconds: 3600,
    sourceIdentity: 'alice',
    runbook: 'long-run@1',
    approvers: ['bob'],
  };

  test('a run longer than an hour is always handed a live session, never one STS session for the whole run', async () => {
    const time = clock();
    h = await startHarness({ now: () => time.now().getTime() });
    const aws = { region: REGION, endpoint: h.fleet.endpoint, baseCredentials: ROOT };
    const sts = track(createStsClient(aws));
    const events: NewAuditEvent[] = [];
    const leases = new CredentialLeases({ sts, record: async (e) => events.push(e), now: time.now });
    const move = (ms: number) => {
      time.advance(ms);
      sts.config.systemClockOffset = time.offset;
    };
    // What a step does with its session: one SSM call devfleet judges, on a client as skewed as the worker.
    const works = async (credentials: SessionCredentials) => {
      const ssm = track(createSsmClient(aws, credentials));
      ssm.config.systemClockOffset = time.offset;
      return ssm.send(new ListCommandsCommand({}));
    };

    const first = await leases.issue(request, 'approved');
    const s1 = await leases.credentialsFor(request);
    expect(s1.accessKeyId).toBe(first.accessKeyId);
    await expect(works(s1)).resolves.toBeDefined();

    // 57 minutes on, three are left: the lease is still good and is reused.
    move(57 * MINUTE);
    expect((await leases.credentialsFor(request)).accessKeyId).toBe(s1.accessKeyId);
    await expect(works(s1)).resolves.toBeDefined();

    // 59 minutes on, one is left: too close to expiry for a step, so the lease is refreshed and audited.
    move(2 * MINUTE);
    const s2 = await leases.credentialsFor(request);
    expect(s2.accessKeyId).not.toBe(s1.accessKeyId);
    expect(events.map((e) => [e.type, e.data['reason'], e.data['accessKeyId']])).toEqual([
      ['credentials.issued', 'refreshed', s2.accessKeyId],
    ]);

    // Past the first session's hour: devfleet refuses it, and the run's lease is the second one, which works.
    move(2 * MINUTE);
    await expect(works(s1)).rejects.toMatchObject({ name: 'ExpiredTokenException' });
    const held = await leases.credentialsFor(request);
    expect(held.accessKeyId).toBe(s2.accessKeyId);
    await expect(works(held)).resolves.toBeDefined();

    // Three hours into the run, it still gets a live session.
    move(2 * 60 * MINUTE);
    const later = await leases.credentialsFor(request);
    expect([s1.accessKeyId, s2.accessKeyId]).not.toContain(later.accessKeyId);
    await expect(works(later)).resolves.toBeDefined();
    expect(events).toHaveLength(2);
  });
});

function track<T extends STSClient | { destroy(): void }>(client: T): T {
  clients.push(client);
  return client;
}
