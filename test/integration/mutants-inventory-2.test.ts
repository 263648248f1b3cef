/**
 * The planner's inventory (src/activities/inventory.ts) for the survivors of the whole mutation run
 * (docs/mutation-survivors.md): the listing of every instance's properties past 400 instances
 * (lines 112–115) and the 40-id chunks up to 400 (119–121), 100-value filter sets (133–134), an
 * instance without a `Name` tag (110), look-ups asked at once sharing one AssumeRole (74), and
 * what the planner is told when STS or SSM refuses (93–98, 147–148, awsRefusal 190–198).
 *
 * Left alive, as equivalent:
 * - 109:102 and 160:62 `[]` → `["Stryker was here"]`: a string has no InstanceId, so it is skipped
 *   like an empty list.
 * - 115:14 filter dropped; 115:53 the filter's test → `true`, its `&&` → `||`, and
 *   `p.InstanceId !== undefined` → `true`:
 *   they only let names of instances outside the selection into the map, which is read for the
 *   ids found and nothing else.
 * - 168:9 `found.length > 0` → `true` / `>= 0`: nameTags of no ids makes no call and returns an
 *   empty map.
 * - 192:31 `'Error'` → `""`: every error reaching awsRefusal has a name (the SDK's retry
 *   middleware turns anything thrown into an Error, asSdkError; the rest are TypeErrors).
 * - 193:85 `''` → `"Stryker was here!"`: that string does not look like throttling either.
 *
 * Everything runs against an in-process devfleet (the three demo instances, a fourth without a
 * `Name` tag, 401 light instances) with the real SDK clients; SSM through the proxy of test/helpers, which
 * records every call and answers a test's errors itself.
 */
import { SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createSsmClient, createStsClient, type SessionCredentials } from '../../src/activities/aws.ts';
import { createInventory } from '../../src/activities/inventory.ts';
import { UserError } from '../../src/core/errors.ts';
import { defaultFleetConfig, lightInstanceId, type FleetConfig } from '../../src/devfleet/config.ts';
import { DEMO_ROLE_ARN } from '../../src/devfleet/index.ts';
import { startSsmProxy, type SsmProxy } from '../helpers/ssm-proxy.ts';
import { REGION, ROOT, startHarness, type Harness } from './devfleet-helpers.ts';
import { rejectionOf } from '../helpers/core-samples.ts';

const UNNAMED = 'i-0d3f1ee7000000009';
const BIG = 400;
const base = defaultFleetConfig(ROOT);
const config: FleetConfig = {
  ...base,
  instances: [...base.instances, { id: UNNAMED, name: 'ip-10-0-0-9.ec2.internal', tags: { Role: 'unnamed' } }],
  lightInstances: [
    { count: BIG, namePrefix: 'big', tags: { Fleet: 'big', Part: 'a' }, commandMs: 1 },
    { count: 1, namePrefix: 'extra', tags: { Fleet: 'big', Part: 'b' }, commandMs: 1 },
  ],
};
const big = (n: number) => lightInstanceId(0, n);
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

let fleet: Harness;
let proxy: SsmProxy;
const clients: { destroy(): void }[] = [];

beforeAll(async () => {
  fleet = await startHarness({ config });
  proxy = await startSsmProxy(fleet.fleet.endpoint);
});
afterAll(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await proxy?.close();
  await fleet?.close();
});
afterEach(() => proxy.reset());

/**
 * An inventory as the server builds it, on devfleet's STS and (through the proxy) SSM; `assumed`
 * counts AssumeRole calls. `once`: an SSM client that does not retry, so an error the proxy
 * answers is the one the inventory gets, without the SDK's back-off in between.
 */
function inventory(opts: { once?: boolean } = {}) {
  const sts = createStsClient({ region: REGION, endpoint: fleet.fleet.endpoint, baseCredentials: ROOT });
  clients.push(sts);
  const counted = { assumed: 0 };
  const ssmFor = (credentials: SessionCredentials): SSMClient => {
    const c = opts.once
      ? new SSMClient({ region: REGION, endpoint: proxy.endpoint, credentials, maxAttempts: 1 })
      : createSsmClient({ region: REGION, endpoint: proxy.endpoint }, credentials);
    clients.push(c);
    return c;
  };
  const inv = createInventory({
    sts: {
      send: ((command: Parameters<typeof sts.send>[0]) => {
        counted.assumed++;
        return sts.send(command);
      }) as typeof sts.send,
    },
    ssmFor,
  });
  return Object.assign(counted, { inv });
}

const inputsOf = (operation: string) => proxy.calls.filter((c) => c.operation === operation).map((c) => c.input);

/** Ids in chunks of `n`, as the inventory asks for them. */
const chunks = (ids: readonly string[], n: number) =>
  range(Math.ceil(ids.length / n)).map((k) => ids.slice((k - 1) * n, k * n));

describe('Name tags: one listing of every instance past 400, 40 ids at a time up to 400', () => {
  test('401 instances: one DescribeInstanceProperties without a filter, each found instance with its Name', async () => {
    const found = await inventory().inv.instancesFor(DEMO_ROLE_ARN, { tags: { Fleet: 'big' } });
    expect(found).toHaveLength(BIG + 1);
    expect(found.map((i) => [i.id, i.name])).toEqual([
      ...range(BIG).map((n) => [big(n), `big-${n}`]),
      [lightInstanceId(1, 1), 'extra-1'],
    ]);
    expect(found.every((i) => i.online)).toBe(true);
    expect(inputsOf('DescribeInstanceProperties')).toEqual([{ MaxResults: 1000 }]);
  });

  test('exactly 400 instances: ten calls of 40 ids each, every Name found', async () => {
    const found = await inventory().inv.instancesFor(DEMO_ROLE_ARN, { tags: { Part: 'a' } });
    const ids = range(BIG).map(big);
    expect(found.map((i) => [i.id, i.name])).toEqual(range(BIG).map((n) => [big(n), `big-${n}`]));
    expect(inputsOf('DescribeInstanceProperties')).toEqual(
      chunks(ids, 40).map((valueSet) => ({
        InstancePropertyFilterList: [{ key: 'InstanceIds', valueSet }],
        MaxResults: 1000,
      })),
    );
  });

  test('a listing page without its InstanceProperties (SSM leaves empty lists out): no names, no failure', async () => {
    proxy.answer = (op) =>
      op === 'DescribeInstanceProperties' ? { rewrite: ({ InstanceProperties: _, ...page }) => page } : undefined;
    const found = await inventory().inv.instancesFor(DEMO_ROLE_ARN, { tags: { Fleet: 'big' } });
    expect(found).toHaveLength(BIG + 1);
    expect(found.filter((i) => i.name !== undefined)).toEqual([]);
    expect(inputsOf('DescribeInstanceProperties')).toEqual([{ MaxResults: 1000 }]);
  });

  test('an instance without a Name tag has no name (SSM answers a blank Name for it)', async () => {
    const found = await inventory().inv.instancesFor(DEMO_ROLE_ARN, { tags: { Role: 'unnamed' } });
    expect(found).toStrictEqual([{ id: UNNAMED, name: undefined, tags: { Role: 'unnamed' }, online: true }]);
  });
});

describe('a selector with more values than one filter takes', () => {
  test('200 names: two filters of 100 (two pages each), none left out, no empty filter', async () => {
    const names = range(200).map((n) => `big-${n}`);
    const found = await inventory().inv.instancesFor(DEMO_ROLE_ARN, { names });
    expect(found.map((i) => [i.id, i.name])).toEqual(range(200).map((n) => [big(n), `big-${n}`]));
    const filters = inputsOf('DescribeInstanceInformation').map((i) => i['Filters']);
    const [first, second] = chunks(names, 100).map((Values) => [{ Key: 'tag:Name', Values }]);
    expect(filters).toEqual([first, first, second, second]);
  });
});

describe('look-ups asked at once', () => {
  test('share one AssumeRole', async () => {
    const w = inventory();
    const [web, db] = await Promise.all([
      w.inv.instancesFor(DEMO_ROLE_ARN, { tags: { Role: 'web' } }),
      w.inv.instancesFor(DEMO_ROLE_ARN, { names: ['db-1'] }),
    ]);
    expect(web.map((i) => i.name)).toEqual(['web-1', 'web-2']);
    expect(db.map((i) => i.name)).toEqual(['db-1']);
    expect(w.assumed).toBe(1);
  });
});

describe('what the planner is told when AWS refuses', () => {
  const ADVICE_FIX = "check the role's trust policy and permissions for the server's credentials";
  const ADVICE_RETRY = 'try again in a moment';

  test('STS refusing the role: STS_FAILED, the role, AWS’s own name and words, what to check, the cause', async () => {
    const role = 'arn:aws:iam::123456789012:role/no-such-role';
    const e = await rejectionOf(inventory().inv.instancesFor(role, { tags: { Role: 'web' } }), UserError);
    expect(e.code).toBe('STS_FAILED');
    const cause = e.cause as { name: string; message: string; $fault: string };
    expect(cause).toBeInstanceOf(Error);
    expect(cause.$fault).toBe('client');
    expect(cause.name).toMatch(/^\w+$/);
    expect(cause.message).not.toBe('');
    expect(e.message).toBe(
      `the server could not assume the runbook's role ${role} to look up its instances (${cause.name}: ${cause.message}); ${ADVICE_FIX}`,
    );
  });

  test('SSM refusing (a client fault): its words on one line, cut at 300 characters, and what to check', async () => {
    const words = `User: arn:aws:sts::123456789012:assumed-role/mechanic-runner/mechanic-planner  is not\n\tauthorized to perform:   ssm:DescribeInstanceInformation ${'because no identity-based policy allows it '.repeat(10)}`;
    proxy.answer = () => ({ status: 400, json: { __type: 'AccessDeniedException', message: words } });
    const e = await rejectionOf(
      inventory({ once: true }).inv.instancesFor(DEMO_ROLE_ARN, { tags: { Role: 'web' } }),
      UserError,
    );
    expect(e.code).toBe('SSM_COMMAND_FAILED');
    const said = words.replace(/\s+/g, ' ');
    expect(said.length).toBeGreaterThan(300);
    expect(e.message).toBe(
      `SSM did not list the instances of role ${DEMO_ROLE_ARN} (AccessDeniedException: ${said.slice(0, 300)}); ${ADVICE_FIX}`,
    );
    expect(e.message).toContain('mechanic-planner is not authorized to perform: ssm:');
    expect((e.cause as Error).message).toBe(words);
  });

  test('SSM failing (a server fault): try again', async () => {
    proxy.answer = () => ({
      status: 500,
      json: { __type: 'InternalServerError', message: 'An internal error occurred.' },
    });
    const e = await rejectionOf(
      inventory({ once: true }).inv.instancesFor(DEMO_ROLE_ARN, { names: ['web-1'] }),
      UserError,
    );
    expect(e.code).toBe('SSM_COMMAND_FAILED');
    expect(e.message).toBe(
      `SSM did not list the instances of role ${DEMO_ROLE_ARN} (InternalServerError: An internal error occurred.); ${ADVICE_RETRY}`,
    );
  });

  test('SSM throttling (a client fault, but not a mistake): try again', async () => {
    proxy.answer = () => ({ status: 400, json: { __type: 'ThrottlingException', message: 'Rate exceeded' } });
    const e = await rejectionOf(
      inventory({ once: true }).inv.instancesFor(DEMO_ROLE_ARN, { names: ['web-1'] }),
      UserError,
    );
    expect((e.cause as { $fault?: string }).$fault).toBe('client');
    expect(e.message).toBe(
      `SSM did not list the instances of role ${DEMO_ROLE_ARN} (ThrottlingException: Rate exceeded); ${ADVICE_RETRY}`,
    );
  });
});
