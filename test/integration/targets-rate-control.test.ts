import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ListCommandsCommand, SendCommandCommand } from '@aws-sdk/client-ssm';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createActivities } from '../../src/activities/index.ts';
import { createSsmClient, createStsClient } from '../../src/activities/aws.ts';
import { createInventory } from '../../src/activities/inventory.ts';
import { roleAuthorizer } from '../../src/authz/authorizer.ts';
import { tokenAuthenticator, type User, type UsersFile } from '../../src/authz/users.ts';
import { pino } from 'pino';
import type { ExecutionInput, ExecutionView } from '../../src/core/execution.ts';
import { buildPlan } from '../../src/core/plan.ts';
import { parseRunbook } from '../../src/core/runbook.ts';
import { buildSessionPolicy } from '../../src/core/session-policy.ts';
import { DEMO_HOST_NAMES, DEMO_INSTANCE_IDS, DEMO_ROLE_ARN, readCommandLog } from '../../src/devfleet/index.ts';
import type { CommandLogEntry } from '../../src/devfleet/command-log.ts';
import { createApp } from '../../src/server/app.ts';
import { createAuditTail } from '../../src/server/audit-tail.ts';
import { createExecutionService } from '../../src/server/executions.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { loadRunbookRegistry } from '../../src/store/runbook-registry.ts';
import { WORKFLOWS_PATH } from '../../src/temporal/worker.ts';
import { runbookExecution, voteUpdate } from '../../workflows/runbook-execution.ts';
import { quietTemporalLogs, startTestTemporal, type TestTemporal } from '../helpers/temporal.ts';
import { REGION, ROOT, startHarness, type Harness } from './devfleet-helpers.ts';

/**
 * Issue 10's targets and rate control, all the way through on devfleet with the real AWS SDK:
 * names resolved from the `Name` tag (devfleet's host names differ from the tags), targets taken
 * from a parameter inside the runbook's bound, and maxConcurrency / maxErrors sent to SendCommand
 * and honoured by devfleet as SSM does, through the real workflow on a real Temporal dev server.
 */

const WEB1 = DEMO_INSTANCE_IDS['web-1'];
const WEB2 = DEMO_INSTANCE_IDS['web-2'];
const DB1 = DEMO_INSTANCE_IDS['db-1'];
const ALL = [WEB1, WEB2, DB1];

let fleet: Harness;
let home: string;
let audit: AuditStore;

beforeAll(async () => {
  fleet = await startHarness();
  home = await mkdtemp(path.join(tmpdir(), 'mechanic-targets-'));
  audit = await openAuditStore({ kind: 'sqlite', file: path.join(home, 'audit.db') });
});
afterAll(async () => {
  await audit?.close();
  await fleet?.close();
  if (home) await rm(home, { recursive: true, force: true });
});

const aws = () => ({ region: REGION, endpoint: fleet.fleet.endpoint, baseCredentials: ROOT });
const inventory = () => createInventory({ sts: createStsClient(aws()), ssmFor: (c) => createSsmClient(aws(), c) });

describe('names', () => {
  test('are the Name tag, never the host name', async () => {
    const inv = inventory();
    expect(await inv.instancesFor(DEMO_ROLE_ARN, { names: ['web-2'] })).toEqual([
      { id: WEB2, name: 'web-2', tags: {}, online: true },
    ]);
    // The host name of web-2 names nothing.
    expect(await inv.instancesFor(DEMO_ROLE_ARN, { names: [DEMO_HOST_NAMES['web-2']] })).toEqual([]);
    // Instances found by tag carry their Name tag too (what the plan shows and --target matches).
    const byTag = await inv.instancesFor(DEMO_ROLE_ARN, { tags: { Role: 'web' } });
    expect(byTag.map((i) => [i.id, i.name])).toEqual([
      [WEB1, 'web-1'],
      [WEB2, 'web-2'],
    ]);
  });
});

describe('a session policy bounded by Name tags', () => {
  test('lets devfleet send to an instance carrying one of the names, and to no other', async () => {
    // Forty instance ARNs pass the STS limit: the policy falls back to the runbook's Name tags.
    const many = Array.from({ length: 40 }, (_, i) => `i-${i.toString(16).padStart(17, '0')}`);
    const policy = buildSessionPolicy({
      region: REGION,
      accountId: '123456789012',
      instanceIds: many,
      scope: { names: ['web-1', 'web-2'] },
    });
    expect(policy).toContain('ssm:resourceTag/Name');
    const { ssm } = await fleet.assume({ Policy: policy });
    const send = (instanceId: string) =>
      ssm.send(
        new SendCommandCommand({
          DocumentName: 'AWS-RunShellScript',
          InstanceIds: [instanceId],
          Parameters: { commands: ['true'] },
        }),
      );
    await expect(send(WEB2)).resolves.toMatchObject({ Command: { InstanceIds: [WEB2] } });
    await expect(send(DB1)).rejects.toMatchObject({ name: 'AccessDeniedException' });
  });
});

describe('planning a launch', () => {
  const alice: User = { id: 'alice', displayName: 'Alice', roles: ['operator'] };
  const origin = { channel: 'api' } as const;
  let service: ReturnType<typeof createExecutionService>;
  let temporal: Client;

  const runbookFile = (name: string, targets: string, parameters = '') =>
    [
      `name: ${name}`,
      'version: 1',
      `description: Targets under test (${name}).`,
      `roleArn: ${DEMO_ROLE_ARN}`,
      ...(parameters ? ['parameters:', parameters] : []),
      'targets:',
      targets,
      'steps:',
      '  - name: hello',
      '    script: echo hello',
      '',
    ].join('\n');

  beforeAll(async () => {
    const dir = path.join(home, 'runbooks');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'by-name.yaml'), runbookFile('by-name', '  names: [db-1, web-1]'));
    await writeFile(path.join(dir, 'by-lost-name.yaml'), runbookFile('by-lost-name', '  names: [web-1, web-9]'));
    await writeFile(
      path.join(dir, 'pick-web.yaml'),
      runbookFile(
        'pick-web',
        '  fromParameter: hosts\n  within: { tags: { Role: web } }',
        '  hosts: { type: list, items: { type: string, pattern: "^[a-z0-9-]+$" }, maxItems: 3 }',
      ),
    );
    await writeFile(
      path.join(dir, 'pick-one.yaml'),
      runbookFile('pick-one', '  fromParameter: host\n  within: { names: [web-1, web-2] }', '  host: { type: string }'),
    );
    await writeFile(
      path.join(dir, 'pick-any.yaml'),
      runbookFile('pick-any', '  fromParameter: host', '  host: { type: string }'),
    );
    temporal = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }) });
    service = createExecutionService({
      client: temporal,
      taskQueue: 'unused',
      registry: await loadRunbookRegistry(dir),
      inventory: inventory(),
      audit,
      region: REGION,
      settings: { heartbeatTimeoutSeconds: 60 },
      authorizer: roleAuthorizer(),
    });
  });
  afterAll(async () => {
    await temporal?.connection.close();
  });

  const plan = (runbook: string, params: Record<string, unknown> = {}, targets?: string[]) =>
    service.plan(alice, { runbook, params, reason: 'targets test', ...(targets ? { targets } : {}) }, origin);
  const refusal = async (p: Promise<unknown>) => {
    const e = (await p.then(
      () => {
        throw new Error('expected a refusal');
      },
      (err: unknown) => err,
    )) as Error & { code?: string };
    return { code: e.code, message: e.message };
  };

  test('targets.names: the instances with those Name tags, in the plan with their names', async () => {
    const { plan: p } = await plan('by-name');
    expect(p.targets).toEqual([
      { instanceId: WEB1, name: 'web-1' },
      { instanceId: DB1, name: 'db-1' },
    ]);
    // The session policy names exactly those instances.
    expect(p.sessionPolicy).toContain(`instance/${WEB1}`);
    expect(p.sessionPolicy).toContain(`instance/${DB1}`);
    expect(p.sessionPolicy).not.toContain(`instance/${WEB2}`);
  });

  test('a name no instance carries is refused at plan time, naming it', async () => {
    expect(await refusal(plan('by-lost-name'))).toEqual({
      code: 'TARGETS_INVALID',
      message:
        'by-lost-name targets the instance named web-9, but no managed instance carries that Name tag; check the names',
    });
  });

  test('fromParameter: a list of Name tags or ids inside the bound', async () => {
    const { plan: p } = await plan('pick-web', { hosts: ['web-2', WEB1] });
    expect(p.targets).toEqual([
      { instanceId: WEB2, name: 'web-2' },
      { instanceId: WEB1, name: 'web-1' },
    ]);
    expect(p.params['hosts']).toEqual(['web-2', WEB1]);
    // --target narrows what the parameter named, never more.
    expect((await plan('pick-web', { hosts: ['web-1', 'web-2'] }, ['web-2'])).plan.targets).toEqual([
      { instanceId: WEB2, name: 'web-2' },
    ]);
  });

  test('fromParameter: an instance outside the bound is refused, whether named by Name tag or by id', async () => {
    const outside = `parameter "hosts" names db-1 (${DB1}), outside what pick-web may target (tags Role=web); name instances inside that bound`;
    expect(await refusal(plan('pick-web', { hosts: ['web-1', 'db-1'] }))).toEqual({
      code: 'TARGETS_INVALID',
      message: outside,
    });
    expect(await refusal(plan('pick-web', { hosts: [DB1] }))).toEqual({ code: 'TARGETS_INVALID', message: outside });
    // A host name is not a name: web-1's host name names nothing.
    expect(await refusal(plan('pick-one', { host: DEMO_HOST_NAMES['web-1'] }))).toEqual({
      code: 'TARGETS_INVALID',
      message: `parameter "host" names ${DEMO_HOST_NAMES['web-1']}, which is neither the id nor the Name tag of a managed instance; check the value`,
    });
  });

  test('fromParameter: a string parameter holds one id or Name tag; the parameter’s own rules come first', async () => {
    expect((await plan('pick-one', { host: WEB2 })).plan.targets).toEqual([{ instanceId: WEB2, name: 'web-2' }]);
    expect(await refusal(plan('pick-one', { host: 'db-1' }))).toMatchObject({
      code: 'TARGETS_INVALID',
      message: expect.stringContaining('outside what pick-one may target (names web-1, web-2)'),
    });
    // A value breaking the list's item pattern never reaches the inventory.
    expect(await refusal(plan('pick-web', { hosts: ['web 1'] }))).toMatchObject({ code: 'PARAMS_INVALID' });
    // Without a bound, any managed instance may be named: the reviewed runbook says so.
    expect((await plan('pick-any', { host: 'db-1' })).plan.targets).toEqual([{ instanceId: DB1, name: 'db-1' }]);
  });

  test('through the API, a launch naming an instance outside the bound is refused at planning: a 422 in one sentence, on the record', async () => {
    const users: UsersFile = {
      users: [{ id: 'alice', displayName: 'Alice', roles: ['operator'], token: 'tok-alice-targets-0123456789abcdef0' }],
    };
    const app = createApp({
      authenticator: tokenAuthenticator(users),
      authorizer: roleAuthorizer(),
      executions: service,
      registry: await loadRunbookRegistry(path.join(home, 'runbooks')),
      audit,
      tail: createAuditTail(audit, 50),
      log: pino({ level: 'silent' }),
    });
    const res = await app.request('/api/executions', {
      method: 'POST',
      headers: { authorization: `Bearer ${users.users[0]!.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ runbook: 'pick-web', params: { hosts: ['db-1'] }, reason: 'reach the database' }),
    });
    expect(res.status).toBe(422);
    const outside = `parameter "hosts" names db-1 (${DB1}), outside what pick-web may target (tags Role=web); name instances inside that bound`;
    expect(await res.json()).toEqual({ error: { code: 'TARGETS_INVALID', message: outside } });
    const refused = (await audit.list({ limit: 1000 })).filter((r) => r.type === 'request.refused');
    expect(refused.map((r) => [r.actor, r.data['code'], r.data['reason']])).toContainEqual([
      'alice',
      'TARGETS_INVALID',
      outside,
    ]);
  });
});

describe('rate control through the workflow', () => {
  let temporal: TestTemporal;
  let connection: Connection;
  let native: NativeConnection;
  let client: Client;

  beforeAll(async () => {
    temporal = await startTestTemporal();
    connection = await Connection.connect({ address: temporal.address });
    native = await NativeConnection.connect({ address: temporal.address });
    client = new Client({ connection, namespace: temporal.namespace });
  });
  afterAll(async () => {
    await native?.close();
    await connection?.close();
    await temporal?.teardown();
  });

  /** A one-step runbook on all three instances (web-1, web-2, db-1, in that order). */
  function input(step: Record<string, unknown>, runbookLevel: Record<string, unknown> = {}): ExecutionInput {
    const runbook = parseRunbook({
      name: 'rate-control',
      version: 1,
      description: 'rate control under test',
      roleArn: DEMO_ROLE_ARN,
      targets: { instanceIds: ALL },
      steps: [{ name: 'work', timeoutSeconds: 60, ...step }],
      ...runbookLevel,
    });
    return buildPlan({
      executionId: `mx-rate${randomUUID().slice(0, 8)}`,
      runbook,
      runbookDigest: 'f'.repeat(64),
      rawParams: {},
      targets: [
        { instanceId: WEB1, name: 'web-1' },
        { instanceId: WEB2, name: 'web-2' },
        { instanceId: DB1, name: 'db-1' },
      ],
      requester: 'alice',
      reason: 'rate control test',
      region: REGION,
      now: new Date(),
    });
  }

  async function runToEnd(given: ExecutionInput): Promise<ExecutionView> {
    quietTemporalLogs();
    const taskQueue = `rate-${randomUUID()}`;
    const worker = await Worker.create({
      connection: native,
      namespace: temporal.namespace,
      taskQueue,
      workflowsPath: WORKFLOWS_PATH,
      activities: createActivities({
        audit,
        sts: createStsClient(aws()),
        ssmFor: (c) => createSsmClient(aws(), c),
        pollIntervalMs: { min: 50, max: 200 },
        deliveryTimeoutSeconds: 60,
      }),
    });
    return worker.runUntil(async () => {
      const handle = await client.workflow.start(runbookExecution, {
        taskQueue,
        workflowId: given.plan.executionId,
        args: [given],
      });
      await handle.executeUpdate(voteUpdate, {
        args: [{ approver: 'bob', decision: 'approve', planDigest: given.planDigest }],
      });
      return handle.result();
    });
  }

  /** devfleet's record of what ran for a run: one entry per started invocation. */
  const ranFor = async (executionId: string): Promise<CommandLogEntry[]> =>
    (await readCommandLog(fleet.dataDir)).filter((e) => e.comment.startsWith(`mechanic ${executionId} `));

  /** Pairs of invocations whose run times overlap. */
  const overlaps = (log: readonly CommandLogEntry[]) => {
    const spans = log.map((e) => ({ id: e.instanceId, from: Date.parse(e.startedAt), to: Date.parse(e.finishedAt!) }));
    return spans.flatMap((a, i) =>
      spans.slice(i + 1).flatMap((b) => (a.from < b.to && b.from < a.to ? [`${a.id}+${b.id}`] : [])),
    );
  };

  /** The command SSM holds for a run's step, as ListCommands shows it. */
  const commandOf = async (commandId: string) => {
    const { ssm } = await fleet.assume();
    const out = await ssm.send(new ListCommandsCommand({ CommandId: commandId }));
    return out.Commands?.[0];
  };

  test('maxConcurrency 1 on three instances: one at a time, never overlapping, in target order', async () => {
    const given = input({ script: 'sleep 0.4\necho done' }, { maxConcurrency: 1 });
    expect(given.plan.steps[0]).toMatchObject({ maxConcurrency: '1' });
    const view = await runToEnd(given);
    expect(view.status).toBe('completed');

    const log = await ranFor(given.plan.executionId);
    expect(log.map((e) => [e.instanceId, e.status])).toEqual(ALL.map((id) => [id, 'Success']));
    expect(overlaps(log)).toEqual([]);
    expect(await commandOf(view.steps[0]!.commandId!)).toMatchObject({ MaxConcurrency: '1', MaxErrors: '0' });
  }, 120_000);

  test('without rate control the same step runs on the three at once (what the test above would see if it broke)', async () => {
    const given = input({ script: 'sleep 0.4\necho done' });
    expect(Object.keys(given.plan.steps[0]!)).not.toContain('maxConcurrency');
    const view = await runToEnd(given);
    expect(view.status).toBe('completed');
    expect(overlaps(await ranFor(given.plan.executionId))).toHaveLength(3);
    // SSM's defaults, stated: 50 at once, stop at the first error.
    expect(await commandOf(view.steps[0]!.commandId!)).toMatchObject({ MaxConcurrency: '50', MaxErrors: '0' });
  }, 120_000);

  test('maxErrors 0 with the first instance failing: the others never run, and the run says so', async () => {
    const given = input({
      script: 'if [ "$MECHANIC_INSTANCE_NAME" = web-1 ]; then echo broken on web-1 >&2; exit 4; fi\necho fine',
      maxConcurrency: 1,
      maxErrors: 0,
    });
    const view = await runToEnd(given);

    // devfleet ran it on web-1 only.
    expect((await ranFor(given.plan.executionId)).map((e) => [e.instanceId, e.status, e.responseCode])).toEqual([
      [WEB1, 'Failed', 4],
    ]);
    // The run tells the truth: failed at that step; web-1 failed with its exit code, the other two
    // were never started, as SSM reports them (Cancelled / Terminated, no exit code).
    expect(view.status).toBe('failed');
    expect(view.reason).toBe('step "work" failed');
    expect(view.steps[0]!.instances.map((i) => [i.instanceId, i.status, i.statusDetails, i.responseCode])).toEqual([
      [WEB1, 'Failed', 'Failed', 4],
      [WEB2, 'Cancelled', 'Terminated', -1],
      [DB1, 'Cancelled', 'Terminated', -1],
    ]);
    expect(view.steps[0]!.instances[0]!.stderr).toContain('broken on web-1');
    expect(await commandOf(view.steps[0]!.commandId!)).toMatchObject({
      MaxConcurrency: '1',
      MaxErrors: '0',
      Status: 'Failed',
      ErrorCount: 1,
    });
    // The audit log keeps each host's result, the two never run included.
    const results = (await audit.list({ executionId: given.plan.executionId })).filter(
      (r) => r.type === 'step.instance',
    );
    expect(results.map((r) => [r.data['instanceId'], r.data['statusDetails']]).sort()).toEqual(
      [
        [WEB1, 'Failed'],
        [WEB2, 'Terminated'],
        [DB1, 'Terminated'],
      ].sort(),
    );
  }, 120_000);
});
