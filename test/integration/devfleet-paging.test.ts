import {
  DescribeInstanceInformationCommand,
  DescribeInstancePropertiesCommand,
  ListCommandInvocationsCommand,
  ListCommandsCommand,
  SendCommandCommand,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createSsmClient, createStsClient } from '../../src/activities/aws.ts';
import { createInventory } from '../../src/activities/inventory.ts';
import { defaultFleetConfig, lightInstanceId, type FleetConfig } from '../../src/devfleet/config.ts';
import { DEMO_ROLE_ARN } from '../../src/devfleet/index.ts';
import { REGION, ROOT, startHarness, type Harness } from './devfleet-helpers.ts';

/**
 * Paging as AWS pages: the bounds of MaxResults and what an out-of-range one is told (SSM's
 * ValidationException wording), NextToken cursors that neither repeat nor skip while the fleet
 * changes between pages, and mechanic's inventory following every page and every filter chunk
 * to the end, against devfleet through the real SDK.
 */

const WEB = 130;
const BATCH = 450;
const config: FleetConfig = {
  ...defaultFleetConfig(ROOT),
  lightInstances: [
    { count: WEB, namePrefix: 'web-light', tags: { Role: 'frontend' }, commandMs: 1 },
    { count: BATCH, namePrefix: 'batch', tags: { Role: 'batch' }, commandMs: 1 },
  ],
};
const web = (n: number) => lightInstanceId(0, n);
const batch = (n: number) => lightInstanceId(1, n);
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

let h: Harness;
let ssm: SSMClient;
beforeAll(async () => {
  h = await startHarness({ config });
  ({ ssm } = await h.assume());
});
afterAll(async () => {
  await h?.close();
});

const outOfRange = (value: number | string, member: string, bound: string) =>
  `1 validation error detected: Value '${value}' at '${member}' failed to satisfy constraint: Member must have ${bound}`;

describe('MaxResults bounds, in AWS’s words', () => {
  test.each([
    [
      'DescribeInstanceInformation',
      5,
      50,
      (n: number) => ssm.send(new DescribeInstanceInformationCommand({ MaxResults: n })),
    ],
    [
      'DescribeInstanceProperties',
      5,
      1000,
      (n: number) => ssm.send(new DescribeInstancePropertiesCommand({ MaxResults: n })),
    ],
    ['ListCommands', 1, 50, (n: number) => ssm.send(new ListCommandsCommand({ MaxResults: n }))],
    ['ListCommandInvocations', 1, 50, (n: number) => ssm.send(new ListCommandInvocationsCommand({ MaxResults: n }))],
  ] as const)('%s takes %i to %i', async (_op, min, max, call: (n: number) => Promise<unknown>) => {
    await call(min);
    await call(max);
    await expect(call(min - 1)).rejects.toMatchObject({
      name: 'ValidationException',
      message: outOfRange(min - 1, 'maxResults', `value greater than or equal to ${min}`),
    });
    await expect(call(max + 1)).rejects.toMatchObject({
      name: 'ValidationException',
      message: outOfRange(max + 1, 'maxResults', `value less than or equal to ${max}`),
    });
  });

  test('SendCommand names at most 50 instances; a tag target reaches any number', async () => {
    const ids = range(51).map(web);
    await expect(
      ssm.send(
        new SendCommandCommand({
          DocumentName: 'AWS-RunShellScript',
          InstanceIds: ids,
          Parameters: { commands: ['true'] },
        }),
      ),
    ).rejects.toMatchObject({
      name: 'ValidationException',
      message: outOfRange(`[${ids.join(', ')}]`, 'instanceIds', 'length less than or equal to 50'),
    });
    const { Command } = await ssm.send(
      new SendCommandCommand({
        DocumentName: 'AWS-RunShellScript',
        Targets: [{ Key: 'tag:Role', Values: ['batch'] }],
        Parameters: { commands: ['true'] },
        MaxConcurrency: '100%',
      }),
    );
    expect(Command?.TargetCount).toBe(BATCH);
  });

  test('a filter takes at most 100 values, and a token only for the call that gave it', async () => {
    const values = range(101).map(web);
    await expect(
      ssm.send(new DescribeInstanceInformationCommand({ Filters: [{ Key: 'InstanceIds', Values: values }] })),
    ).rejects.toMatchObject({ name: 'ValidationException' });
    const { NextToken } = await ssm.send(new DescribeInstanceInformationCommand({ MaxResults: 5 }));
    expect(NextToken).toBeTruthy();
    await expect(ssm.send(new ListCommandsCommand({ NextToken }))).rejects.toMatchObject({ name: 'InvalidNextToken' });
    await expect(ssm.send(new DescribeInstanceInformationCommand({ NextToken: 'not-a-token' }))).rejects.toMatchObject({
      name: 'InvalidNextToken',
    });
  });
});

describe('cursors', () => {
  test('ListCommands pages neither repeat nor skip a command while new ones arrive between pages', async () => {
    const send = async () =>
      (
        await ssm.send(
          new SendCommandCommand({
            DocumentName: 'AWS-RunShellScript',
            InstanceIds: [web(1)],
            Parameters: { commands: ['true'] },
          }),
        )
      ).Command?.CommandId ?? '';
    const before: string[] = [];
    for (let i = 0; i < 7; i++) before.push(await send());
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = await ssm.send(new ListCommandsCommand({ MaxResults: 3, ...(token ? { NextToken: token } : {}) }));
      seen.push(...(page.Commands ?? []).map((c) => c.CommandId ?? ''));
      token = page.NextToken;
      // A command sent mid-listing is newer than the cursor: it is not on a later page.
      await send();
    } while (token);
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of before) expect(seen).toContain(id);
  });

  test('ListCommandInvocations of one command on 450 instances: 9 full pages, each instance once, in target order', async () => {
    const { Command } = await ssm.send(
      new SendCommandCommand({
        DocumentName: 'AWS-RunShellScript',
        Targets: [{ Key: 'tag:Role', Values: ['batch'] }],
        Parameters: { commands: ['true'] },
        MaxConcurrency: '100%',
      }),
    );
    const ids: string[] = [];
    let pages = 0;
    let token: string | undefined;
    do {
      const page = await ssm.send(
        new ListCommandInvocationsCommand({ CommandId: Command?.CommandId, ...(token ? { NextToken: token } : {}) }),
      );
      pages++;
      ids.push(...(page.CommandInvocations ?? []).map((i) => i.InstanceId ?? ''));
      token = page.NextToken;
    } while (token);
    expect(pages).toBe(BATCH / 50);
    expect(ids).toEqual(range(BATCH).map(batch));
  });
});

describe('mechanic’s inventory follows every page', () => {
  const aws = () => ({ region: REGION, endpoint: h.fleet.endpoint, baseCredentials: ROOT });
  const inventory = () => createInventory({ sts: createStsClient(aws()), ssmFor: (c) => createSsmClient(aws(), c) });

  test('by tag: 130 instances (three pages) and 450 (nine), each with its Name tag', async () => {
    const inv = inventory();
    const webs = await inv.instancesFor(DEMO_ROLE_ARN, { tags: { Role: 'frontend' } });
    expect(webs.map((i) => [i.id, i.name, i.online])).toEqual(range(WEB).map((n) => [web(n), `web-light-${n}`, true]));
    const batches = await inv.instancesFor(DEMO_ROLE_ARN, { tags: { Role: 'batch' } });
    expect(batches.map((i) => [i.id, i.name])).toEqual(range(BATCH).map((n) => [batch(n), `batch-${n}`]));
    expect(batches.every((i) => i.tags['Role'] === 'batch')).toBe(true);
  });

  test('by id and by name: more than one filter holds (100 values) is asked in parts, none left out', async () => {
    const inv = inventory();
    const ids = range(250).map(batch);
    expect((await inv.instancesFor(DEMO_ROLE_ARN, { instanceIds: ids })).map((i) => i.id)).toEqual(ids);
    const names = range(120).map((n) => `web-light-${n}`);
    const byName = await inv.instancesFor(DEMO_ROLE_ARN, { names });
    expect(byName.map((i) => i.name)).toEqual(names);
    // Named twice, found once.
    expect(await inv.instancesFor(DEMO_ROLE_ARN, { names: ['web-light-1', 'web-light-1'] })).toHaveLength(1);
  });

  test('every instance of a big selection, after the fleet has run commands on it', async () => {
    // The fleet is busy (a command on every batch instance) while the inventory pages.
    await ssm.send(
      new SendCommandCommand({
        DocumentName: 'AWS-RunShellScript',
        Targets: [{ Key: 'tag:Role', Values: ['batch'] }],
        Parameters: { commands: ['true'] },
      }),
    );
    const found = await inventory().instancesFor(DEMO_ROLE_ARN, { tags: { Role: 'batch' } });
    expect(found).toHaveLength(BATCH);
    expect(new Set(found.map((i) => i.id)).size).toBe(BATCH);
  });
});
