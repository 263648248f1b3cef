/**
 * The planner's inventory (src/activities/inventory.ts) for what mutation round six left alive
 * (issue 12): when its cached read-only session is renewed (a frozen clock puts the check exactly
 * on the 60-second margin), and an SSM answer listing an instance without an id (or one instance
 * twice), which devfleet never gives.
 *
 * Everything runs against an in-process devfleet with the real SDK clients. The SSM client talks
 * to devfleet through a small proxy speaking SSM's JSON protocol, which passes every answer on
 * unless a test rewrites DescribeInstanceInformation's page.
 */
import type { SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createSsmClient, createStsClient, type SessionCredentials } from '../../src/activities/aws.ts';
import { createInventory } from '../../src/activities/inventory.ts';
import { DEMO_ROLE_ARN } from '../../src/devfleet/index.ts';
import { startSsmProxy, type SsmProxy } from '../helpers/ssm-proxy.ts';
import { REGION, ROOT, startHarness, type Harness } from './devfleet-helpers.ts';

const WEB_1 = 'i-0d3f1ee7000000001';
const WEB_2 = 'i-0d3f1ee7000000002';

type Page = Record<string, unknown>;
let fleet: Harness;
let proxy: SsmProxy;
const clients: SSMClient[] = [];

beforeAll(async () => {
  fleet = await startHarness();
  proxy = await startSsmProxy(fleet.fleet.endpoint);
});
afterAll(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await proxy?.close();
  await fleet?.close();
});
afterEach(() => proxy.reset());

/**
 * An inventory as the server builds it, on devfleet's STS and (through the proxy) SSM, its clock
 * `clock.at` when set. `assumed` counts AssumeRole calls; `sessions` lists the credentials each
 * look-up was given.
 */
function inventory() {
  const sts = createStsClient({ region: REGION, endpoint: fleet.fleet.endpoint, baseCredentials: ROOT });
  const counted = { assumed: 0, sessions: [] as SessionCredentials[], clock: { at: undefined as Date | undefined } };
  const inv = createInventory({
    sts: {
      send: ((command: Parameters<typeof sts.send>[0]) => {
        counted.assumed++;
        return sts.send(command);
      }) as typeof sts.send,
    },
    ssmFor: (credentials) => {
      counted.sessions.push(credentials);
      const c = createSsmClient({ region: REGION, endpoint: proxy.endpoint }, credentials);
      clients.push(c);
      return c;
    },
    now: () => counted.clock.at ?? new Date(),
  });
  return Object.assign(counted, { inv, close: () => sts.destroy() });
}

const WEB = [
  { id: WEB_1, name: 'web-1', tags: { Role: 'web' }, online: true },
  { id: WEB_2, name: 'web-2', tags: { Role: 'web' }, online: true },
];

describe('the planner’s session is reused while more than 60 s of it are left', () => {
  test('60.001 s left: reused, no AssumeRole; exactly 60 s left: renewed', async () => {
    const w = inventory();
    try {
      expect(await w.inv.instancesFor(DEMO_ROLE_ARN, { tags: { Role: 'web' } })).toEqual(WEB);
      expect(w.assumed).toBe(1);
      const first = w.sessions[0]!;
      const expires = first.expiration.getTime();

      w.clock.at = new Date(expires - 60_001);
      expect(await w.inv.instancesFor(DEMO_ROLE_ARN, { tags: { Role: 'web' } })).toEqual(WEB);
      expect(w.assumed).toBe(1);
      expect(w.sessions[1]).toBe(first);

      w.clock.at = new Date(expires - 60_000);
      expect(await w.inv.instancesFor(DEMO_ROLE_ARN, { tags: { Role: 'web' } })).toEqual(WEB);
      expect(w.assumed).toBe(2);
      expect(w.sessions[2]).not.toBe(first);
      expect(w.sessions[2]!.accessKeyId).not.toBe(first.accessKeyId);

      // The renewed session is the one held now (the clock back to real time: it has its 15 minutes).
      w.clock.at = undefined;
      expect(await w.inv.instancesFor(DEMO_ROLE_ARN, { tags: { Role: 'web' } })).toEqual(WEB);
      expect(w.assumed).toBe(2);
      expect(w.sessions[3]).toBe(w.sessions[2]);
    } finally {
      w.close();
    }
  });

  test('an expired session is renewed', async () => {
    const w = inventory();
    try {
      await w.inv.instancesFor(DEMO_ROLE_ARN, { names: ['web-1'] });
      w.clock.at = new Date(w.sessions[0]!.expiration.getTime() + 1_000);
      expect(await w.inv.instancesFor(DEMO_ROLE_ARN, { names: ['web-1'] })).toEqual([
        { id: WEB_1, name: 'web-1', tags: {}, online: true },
      ]);
      expect(w.assumed).toBe(2);
    } finally {
      w.close();
    }
  });
});

describe('an SSM page listing an instance without an id, or one instance twice', () => {
  test('the entry without an id is left out and the repeated instance is listed once', async () => {
    proxy.answer = (op) =>
      op !== 'DescribeInstanceInformation'
        ? undefined
        : {
            rewrite: (page) => {
              const list = (page['InstanceInformationList'] ?? []) as Page[];
              expect(list.length).toBeGreaterThan(0);
              // SSM's own fields, as on a real entry, but no InstanceId.
              const nameless = { ...list[0], InstanceId: undefined, ComputerName: 'ghost', PingStatus: 'Online' };
              return { ...page, InstanceInformationList: [nameless, ...list, { ...list[0] }] };
            },
          };
    const w = inventory();
    try {
      expect(await w.inv.instancesFor(DEMO_ROLE_ARN, { tags: { Role: 'web' } })).toStrictEqual(WEB);
    } finally {
      w.close();
    }
  });

  test('a page of nothing but an entry without an id: no instances, and no property look-up', async () => {
    proxy.answer = (op) =>
      op === 'DescribeInstanceInformation'
        ? {
            rewrite: (page) => ({
              ...page,
              InstanceInformationList: [{ ComputerName: 'ghost', PingStatus: 'Online' }],
            }),
          }
        : undefined;
    const w = inventory();
    try {
      expect(await w.inv.instancesFor(DEMO_ROLE_ARN, { tags: { Role: 'web' } })).toStrictEqual([]);
      expect(proxy.calls.map((c) => c.operation)).toEqual(['DescribeInstanceInformation']);
    } finally {
      w.close();
    }
  });
});
