import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AssumeRoleCommand } from '@aws-sdk/client-sts';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createSsmClient, createStsClient } from '../../src/activities/aws.ts';
import { createInventory, type Inventory } from '../../src/activities/inventory.ts';
import { roleAuthorizer } from '../../src/authz/authorizer.ts';
import type { User } from '../../src/authz/users.ts';
import { UserError } from '../../src/core/errors.ts';
import { DEMO_INSTANCE_IDS, DEMO_ROLE_ARN } from '../../src/devfleet/index.ts';
import { createExecutionService } from '../../src/server/executions.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { loadRunbookRegistry } from '../../src/store/runbook-registry.ts';
import { REGION, ROOT, startHarness, type Harness } from './devfleet-helpers.ts';

/**
 * A launch whose targets come from a parameter looks up the ids, the names and the runbook's bound
 * at once (one round of SSM calls, not three in turn), on one planner session, and still reports
 * a failure as asking them in turn would.
 */

const WEB1 = DEMO_INSTANCE_IDS['web-1'];
const WEB2 = DEMO_INSTANCE_IDS['web-2'];
const alice: User = { id: 'alice', displayName: 'Alice', roles: ['operator'] };

let fleet: Harness;
let home: string;
let audit: AuditStore;
let temporal: Client;

beforeAll(async () => {
  fleet = await startHarness();
  home = await mkdtemp(path.join(tmpdir(), 'mechanic-plan-lookups-'));
  audit = await openAuditStore({ kind: 'sqlite', file: path.join(home, 'audit.db') });
  await mkdir(path.join(home, 'runbooks'));
  await writeFile(
    path.join(home, 'runbooks', 'pick-web.yaml'),
    [
      'name: pick-web',
      'version: 1',
      'description: Targets from a parameter inside a bound.',
      `roleArn: ${DEMO_ROLE_ARN}`,
      'parameters:',
      '  hosts: { type: list, items: { type: string, pattern: "^[a-z0-9-]+$" }, maxItems: 3 }',
      'targets:',
      '  fromParameter: hosts',
      '  within: { tags: { Role: web } }',
      'steps:',
      '  - name: hello',
      '    script: echo hello',
      '',
    ].join('\n'),
  );
  // Planning never starts a workflow: a client that reaches nothing.
  temporal = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }) });
});
afterAll(async () => {
  await temporal?.connection.close();
  await audit?.close();
  await fleet?.close();
  if (home) await rm(home, { recursive: true, force: true });
});

async function serviceWith(inventory: Inventory) {
  return createExecutionService({
    client: temporal,
    taskQueue: 'unused',
    registry: await loadRunbookRegistry(path.join(home, 'runbooks')),
    inventory,
    audit,
    region: REGION,
    settings: { heartbeatTimeoutSeconds: 60 },
    authorizer: roleAuthorizer(),
  });
}

const plan = (service: Awaited<ReturnType<typeof serviceWith>>, hosts: string[]) =>
  service.plan(alice, { runbook: 'pick-web', params: { hosts }, reason: 'lookups test' }, { channel: 'api' });

describe('planning a launch with targets from a parameter', () => {
  test('asks the ids, the names and the bound at once, on one planner session', async () => {
    const aws = { region: REGION, endpoint: fleet.fleet.endpoint, baseCredentials: ROOT };
    const sts = createStsClient(aws);
    let assumed = 0;
    const real = createInventory({
      sts: {
        send: ((command: unknown) => {
          if (command instanceof AssumeRoleCommand) assumed++;
          return sts.send(command as AssumeRoleCommand);
        }) as typeof sts.send,
      },
      ssmFor: (c) => createSsmClient(aws, c),
    });
    let inFlight = 0;
    let most = 0;
    const counting: Inventory = {
      async instancesFor(roleArn, selector) {
        most = Math.max(most, ++inFlight);
        try {
          return await real.instancesFor(roleArn, selector);
        } finally {
          inFlight--;
        }
      },
    };
    const { plan: p } = await plan(await serviceWith(counting), ['web-2', WEB1]);
    expect(p.targets).toEqual([
      { instanceId: WEB2, name: 'web-2' },
      { instanceId: WEB1, name: 'web-1' },
    ]);
    // By id, by Name tag, and the bound (Role=web): three lookups under way together.
    expect(most).toBe(3);
    // The three share the session the first one asked for.
    expect(assumed).toBe(1);
  });

  test('a failed lookup is reported as asking in turn would: the first one, even when a later one fails sooner', async () => {
    const failing: Inventory = {
      async instancesFor(_roleArn, selector) {
        if ('tags' in selector) throw new UserError('SSM_COMMAND_FAILED', 'the bound could not be listed');
        await new Promise((r) => setImmediate(r));
        throw new UserError('SSM_COMMAND_FAILED', 'the ids could not be listed');
      },
    };
    await expect(plan(await serviceWith(failing), [WEB1])).rejects.toThrow('the ids could not be listed');
  });
});
