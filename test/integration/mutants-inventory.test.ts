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
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createSsmClient, createStsClient, type SessionCredentials } from '../../src/activities/aws.ts';
import { createInventory } from '../../src/activities/inventory.ts';
import { DEMO_ROLE_ARN } from '../../src/devfleet/index.ts';
import { REGION, ROOT, startHarness, type Harness } from './devfleet-helpers.ts';

const WEB_1 = 'i-0d3f1ee7000000001';
const WEB_2 = 'i-0d3f1ee7000000002';

type Page = Record<string, unknown>;
interface Proxy {
  readonly endpoint: string;
  /** Rewrites the JSON answer of one operation before the client sees it. */
  rewrite: (operation: string, page: Page) => Page;
  close(): Promise<void>;
}

async function ssmProxy(target: string): Promise<Proxy> {
  const upstream = new URL(target);
  const proxy = { endpoint: '', rewrite: ((_op, page) => page) as Proxy['rewrite'] };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const operation = String(req.headers['x-amz-target'] ?? '').replace(/^AmazonSSM\./, '');
      const fwd = httpRequest(
        { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
        (up) => {
          const out: Buffer[] = [];
          up.on('data', (c: Buffer) => out.push(c));
          up.on('end', () => {
            let body = Buffer.concat(out);
            if (up.statusCode === 200)
              body = Buffer.from(JSON.stringify(proxy.rewrite(operation, JSON.parse(body.toString('utf8')) as Page)));
            const headers = { ...up.headers, 'content-length': String(body.length) };
            res.writeHead(up.statusCode ?? 502, headers);
            res.end(body);
          });
        },
      );
      fwd.on('error', () => res.socket?.destroy());
      fwd.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return Object.assign(proxy, {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

let fleet: Harness;
let proxy: Proxy;
const clients: SSMClient[] = [];

beforeAll(async () => {
  fleet = await startHarness();
  proxy = await ssmProxy(fleet.fleet.endpoint);
});
afterAll(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await proxy?.close();
  await fleet?.close();
});
afterEach(() => {
  proxy.rewrite = (_op, page) => page;
});

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
    proxy.rewrite = (op, page) => {
      if (op !== 'DescribeInstanceInformation') return page;
      const list = (page['InstanceInformationList'] ?? []) as Page[];
      expect(list.length).toBeGreaterThan(0);
      // SSM's own fields, as on a real entry, but no InstanceId.
      const nameless = { ...list[0], InstanceId: undefined, ComputerName: 'ghost', PingStatus: 'Online' };
      return { ...page, InstanceInformationList: [nameless, ...list, { ...list[0] }] };
    };
    const w = inventory();
    try {
      expect(await w.inv.instancesFor(DEMO_ROLE_ARN, { tags: { Role: 'web' } })).toStrictEqual(WEB);
    } finally {
      w.close();
    }
  });

  test('a page of nothing but an entry without an id: no instances, and no property look-up', async () => {
    const asked: string[] = [];
    proxy.rewrite = (op, page) => {
      asked.push(op);
      return op === 'DescribeInstanceInformation'
        ? { ...page, InstanceInformationList: [{ ComputerName: 'ghost', PingStatus: 'Online' }] }
        : page;
    };
    const w = inventory();
    try {
      expect(await w.inv.instancesFor(DEMO_ROLE_ARN, { tags: { Role: 'web' } })).toStrictEqual([]);
      expect(asked).toEqual(['DescribeInstanceInformation']);
    } finally {
      w.close();
    }
  });
});
