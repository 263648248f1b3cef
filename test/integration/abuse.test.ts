/**
 * Abuse (issue 7, item 5), through the real app over real HTTP: the Cedar authorizer with the
 * shipped policies, a real SQLite audit store, the real runbook registry, launches that really
 * plan against devfleet and really start workflows on a Temporal dev server, and the real CLI.
 * Time passes on an injected clock, so nothing here depends on how fast the machine is.
 */
import { request as httpRequest } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { Client, Connection } from '@temporalio/client';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createApiClient } from '../../src/api/client.ts';
import { createInventory } from '../../src/activities/inventory.ts';
import { createStsClient, ssmClients } from '../../src/activities/aws.ts';
import { loadCedarAuthorizer } from '../../src/authz/cedar-authorizer.ts';
import { DEFAULT_RATE_LIMITS, type ApiRateLimits } from '../../src/authz/rate-limit.ts';
import { tokenAuthenticator, type Authenticator, type UsersFile } from '../../src/authz/users.ts';
import { refusalCount, refusalEvent } from '../../src/core/audit-events.ts';
import { defaultFleetConfig, startDevfleet, type Devfleet } from '../../src/devfleet/index.ts';
import { createApp } from '../../src/server/app.ts';
import { createAuditTail, type AuditTail } from '../../src/server/audit-tail.ts';
import { createDenialRecorder, type DenialRecorder } from '../../src/server/denials.ts';
import { createExecutionService, type ExecutionService } from '../../src/server/executions.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { loadRunbookRegistry } from '../../src/store/runbook-registry.ts';
import type { AuditRecord } from '../../src/core/audit.ts';
import { runCli } from '../helpers/cli.ts';
import { startTestTemporal, type TestTemporal } from '../helpers/temporal.ts';

const ROOT = { accessKeyId: 'AKIADEVFLEETABUSE001', secretAccessKey: 'devfleet-abuse-test-root-secret-01' };
const USERS: UsersFile = {
  users: [
    { id: 'alice', displayName: 'Alice', roles: ['operator'], token: 'tok-alice-abuse-0123456789abcdef0123' },
    { id: 'bob', displayName: 'Bob', roles: ['operator'], token: 'tok-bob-abuse-0123456789abcdef012345' },
    { id: 'dave', displayName: 'Dave', roles: ['auditor'], token: 'tok-dave-abuse-0123456789abcdef01234' },
  ],
};
const token = (id: string) => USERS.users.find((u) => u.id === id)!.token;
const LAUNCH = { runbook: 'deploy-web', params: { release: 'v1.0.0' }, reason: 'abuse test' };
const WINDOW_MS = 60_000;

const countOf = refusalCount;

interface Served {
  readonly url: string;
  readonly denials: DenialRecorder;
  /** Moves the app's clock (rate limits and refusal windows) forward. */
  advance(ms: number): void;
  /** Sends a request with a bearer token (or none) and resolves to its status, headers and JSON body. */
  send(
    method: 'GET' | 'POST',
    route: string,
    bearer?: string,
    body?: unknown,
  ): Promise<{ status: number; retryAfter: string | null; json: unknown }>;
  close(): Promise<void>;
}

describe('abuse: rate limits and folded refusals', () => {
  let home: string;
  let temporal: TestTemporal;
  let client: Client;
  let fleet: Devfleet;
  let audit: AuditStore;
  let tail: AuditTail;
  let executions: ExecutionService;
  let authenticator: Authenticator & { calls: number };
  let deps: Omit<Parameters<typeof createApp>[0], 'limits' | 'denials' | 'now'>;
  const served: Served[] = [];

  /** The app as main.ts builds it, on a free port, with its own clock, limits and refusal windows. */
  async function serveApp(limits: ApiRateLimits = DEFAULT_RATE_LIMITS): Promise<Served> {
    let t = 1_000_000;
    const now = () => t;
    const denials = createDenialRecorder({ audit, windowMs: WINDOW_MS, now });
    const app = createApp({ ...deps, limits, denials, now });
    const server: ServerType = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    let closed = false;
    const s: Served = {
      url,
      denials,
      advance: (ms) => void (t += ms),
      async send(method, route, bearer, body) {
        const res = await fetch(`${url}${route}`, {
          method,
          headers: {
            ...(bearer !== undefined ? { authorization: `Bearer ${bearer}` } : {}),
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
        return { status: res.status, retryAfter: res.headers.get('retry-after'), json: await res.json() };
      },
      async close() {
        if (closed) return;
        closed = true;
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await denials.close();
      },
    };
    served.push(s);
    return s;
  }

  const recordsAfter = async (seq: number): Promise<AuditRecord[]> => audit.list({ afterSeq: seq, limit: 10_000 });
  const head = async (): Promise<number> => (await audit.list({ limit: 10_000 })).at(-1)?.seq ?? 0;

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'mechanic-abuse-'));
    temporal = await startTestTemporal();
    client = new Client({
      connection: await Connection.connect({ address: temporal.address }),
      namespace: temporal.namespace,
    });
    fleet = await startDevfleet({ dataDir: path.join(home, 'fleet'), config: defaultFleetConfig(ROOT) });
    audit = await openAuditStore({ kind: 'sqlite', file: path.join(home, 'audit.db') });
    tail = createAuditTail(audit, 50);
    const aws = { region: 'us-east-1', endpoint: fleet.endpoint, baseCredentials: ROOT };
    const registry = await loadRunbookRegistry('runbooks');
    const authorizer = await loadCedarAuthorizer();
    // As main.ts wires it: the service asks the same authorizer again with what it knows of the run.
    executions = createExecutionService({
      client,
      taskQueue: `abuse-${process.pid}`,
      registry,
      inventory: createInventory({ sts: createStsClient(aws), ssmFor: ssmClients(aws) }),
      audit,
      region: 'us-east-1',
      settings: { heartbeatTimeoutSeconds: 60 },
      authorizer,
    });
    // The real authenticator, counting how often a token is looked at.
    const real = tokenAuthenticator(USERS);
    authenticator = {
      calls: 0,
      authenticate(t: string) {
        authenticator.calls++;
        return real.authenticate(t);
      },
    };
    deps = {
      authenticator,
      authorizer,
      executions,
      registry,
      audit,
      tail,
      log: pino({ level: 'silent' }),
    };
  }, 120_000);

  afterAll(async () => {
    for (const s of served) await s.close();
    tail?.stop();
    await audit?.close();
    await fleet?.close();
    await client?.connection.close();
    await temporal?.teardown();
    await rm(home, { recursive: true, force: true });
  });

  describe('500 launches in seven seconds from one user', () => {
    let app: Served;
    let before: number;
    const statuses: number[] = [];

    beforeAll(async () => {
      app = await serveApp(); // the shipped defaults, as loadConfig gives them
      before = await head();
      // Ten volleys of 50 concurrent launches, 0.7 s apart on the app's clock: all within seven seconds.
      for (let volley = 0; volley < 10; volley++) {
        if (volley > 0) app.advance(700);
        const answers = await Promise.all(
          Array.from({ length: 50 }, () => app.send('POST', '/api/executions', token('alice'), LAUNCH)),
        );
        for (const a of answers) {
          statuses.push(a.status);
          if (a.status === 429) {
            expect(a.retryAfter).toBe('1');
            expect(a.json).toEqual({
              error: { code: 'RATE_LIMITED', message: 'too many requests from alice; try again in 1 s' },
            });
          } else {
            expect(a.status, JSON.stringify(a.json)).toBe(201);
          }
        }
      }
    }, 300_000);

    test('are not all accepted: the burst of 100 and 20 a second pass, the rest get 429', async () => {
      const accepted = statuses.filter((s) => s === 201).length;
      // All of the first volley; the second: 50 left + 14 refilled; the third: 14 left + 14; then 14 a volley.
      expect(accepted).toBe(50 + 50 + 28 + 7 * 14);
      expect(statuses.filter((s) => s === 429)).toHaveLength(500 - accepted);
      // Each accepted launch is a run on the record; a refused one started nothing.
      const requested = (await recordsAfter(before)).filter((r) => r.type === 'execution.requested');
      expect(requested).toHaveLength(accepted);
      expect(new Set(requested.map((r) => r.actor))).toEqual(new Set(['alice']));
    });

    test('another user is not affected', async () => {
      const bob = await app.send('POST', '/api/executions', token('bob'), LAUNCH);
      expect(bob.status).toBe(201);
    });

    test('the CLI prints the one sentence and exits 1, the TUI’s client gets the code', async () => {
      const r = await runCli(['launch', 'deploy-web', '--param', 'release=v1.0.0', '--reason', 'once more'], {
        ...process.env,
        MECHANIC_HOME: home,
        MECHANIC_API_URL: app.url,
        MECHANIC_TOKEN: token('alice'),
      });
      expect(r.stderr).toBe('mechanic: too many requests from alice; try again in 1 s\n');
      expect(r.stdout).toBe('');
      expect(r.code).toBe(1);
      const err = await createApiClient({ url: app.url, token: token('alice'), channel: 'tui' })
        .call('listRunbooks')
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'RATE_LIMITED', message: 'too many requests from alice; try again in 1 s' });
    });

    test('the refused launches are on the record as one refusal and one count per window', async () => {
      const limited = () =>
        recordsAfter(before).then((rs) =>
          rs.filter((r) => r.type === 'request.refused' && r.data['code'] === 'RATE_LIMITED'),
        );
      const refusedSoFar = statuses.filter((s) => s === 429).length + 2; // + the CLI's and the client's
      expect(await limited()).toHaveLength(1);
      app.advance(WINDOW_MS);
      await app.denials.flush();
      const records = await limited();
      expect(records.map((r) => [r.actor, r.data['status'], countOf(r)])).toEqual([
        ['alice', 429, 1],
        ['alice', 429, refusedSoFar - 1],
      ]);
      expect(records[0]!.data).toMatchObject({
        method: 'POST',
        path: '/api/executions',
        reason: 'too many requests from alice; try again in 1 s',
        address: '127.0.0.1',
      });
    });
  });

  describe('a forbidden caller making 1,000 denied requests', () => {
    test('adds a handful of audit records whose counts sum to 1,000, written by the time the server stops', async () => {
      const app = await serveApp();
      const before = await head();
      const answers: number[] = [];
      // Twenty volleys of 50, a second apart: within one window, and within the address's budget.
      for (let volley = 0; volley < 20; volley++) {
        if (volley > 0) app.advance(1000);
        const a = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            // Different reasons, the same refusal: nothing a caller can vary in the request makes a new record.
            app.send('POST', '/api/executions', token('dave'), { ...LAUNCH, reason: `try ${volley}/${i}` }),
          ),
        );
        answers.push(...a.map((x) => x.status));
      }
      // dave may not launch (403) while his budget lasts, then waits (429): every one is a refusal.
      expect(answers.filter((s) => s === 403)).toHaveLength(100 + 19 * 20);
      expect(answers.filter((s) => s === 429)).toHaveLength(1000 - 480);
      // While the window is open, only the first of each kind is written…
      expect((await recordsAfter(before)).map((r) => [r.type, r.actor, countOf(r)])).toEqual([
        ['access.denied', 'dave', 1],
        ['request.refused', 'dave', 1],
      ]);
      // …and stopping the server (main.ts closes the recorder before the audit store) writes the counts.
      await app.close();
      const records = await recordsAfter(before);
      expect(records.length).toBeLessThanOrEqual(4);
      expect(records.every((r) => r.actor === 'dave')).toBe(true);
      expect(records.reduce((n, r) => n + countOf(r), 0)).toBe(1000);
      const summary = records.find((r) => r.type === 'access.denied' && countOf(r) > 1)!;
      expect(summary).toMatchObject({ executionId: null, data: { action: 'launch', count: 479 } });
    }, 120_000);
  });

  describe('per address, before authentication', () => {
    test('a flood of garbage tokens is refused without looking at them, and another address is unaffected', async () => {
      const app = await serveApp({ principal: DEFAULT_RATE_LIMITS.principal, address: { burst: 20, perSecond: 1 } });
      const before = await head();
      const calls = authenticator.calls;
      const answers = await Promise.all(
        Array.from({ length: 100 }, (_, i) => app.send('GET', '/api/executions', `garbage-${i}`)),
      );
      expect(answers.filter((a) => a.status === 401)).toHaveLength(20);
      const limited = answers.filter((a) => a.status === 429);
      expect(limited).toHaveLength(80);
      expect(limited[0]!.json).toEqual({
        error: { code: 'RATE_LIMITED', message: 'too many requests from the address 127.0.0.1; try again in 1 s' },
      });
      expect(authenticator.calls - calls).toBe(20);
      // A good token from the flooded address waits too, and so does the unauthenticated OpenAPI route.
      expect((await app.send('GET', '/api/me', token('bob'))).status).toBe(429);
      expect((await app.send('GET', '/api/openapi.json')).status).toBe(429);

      // Another address (127.0.0.2 is loopback too) has its own budget.
      const other = await new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          `${app.url}/api/me`,
          { localAddress: '127.0.0.2', headers: { authorization: `Bearer ${token('bob')}` } },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end();
      });
      expect(other).toBe(200);

      // Unauthenticated refusals are security refusals too: one record now, one count when the window ends.
      app.advance(WINDOW_MS);
      await app.denials.flush();
      const records = (await recordsAfter(before)).filter((r) => r.actor === 'anonymous');
      expect(records.map((r) => [r.type, r.data['code'], r.data['address'], countOf(r)])).toEqual([
        ['request.refused', 'RATE_LIMITED', '127.0.0.1', 1],
        ['request.refused', 'RATE_LIMITED', '127.0.0.1', 81],
      ]);
      // A 401 itself is not recorded (there is no one to record it for): only the limited requests are.
      expect(records.reduce((n, r) => n + countOf(r), 0)).toBe(82);
    });
  });

  describe('event streams', () => {
    test('a stream takes one request of the budget, however many events it carries', async () => {
      const app = await serveApp({ principal: { burst: 3, perSecond: 0.001 }, address: DEFAULT_RATE_LIMITS.address });
      const dave = createApiClient({ url: app.url, token: token('dave'), channel: 'tui' });
      const stop = new AbortController();
      const start = await head();
      const seen: number[] = [];
      const reading = (async () => {
        try {
          for await (const r of dave.events('all', { after: start, signal: stop.signal })) {
            seen.push(r.seq);
            if (seen.length === 50) stop.abort();
          }
        } catch (e) {
          if ((e as Error).name !== 'AbortError') throw e;
        }
      })();
      for (let i = 0; i < 50; i++) {
        await audit.append(
          refusalEvent('request.refused', {
            executionId: null,
            actor: 'someone',
            at: new Date().toISOString(),
            unique: `stream-${i}`,
            data: { code: 'USAGE', reason: 'filler for the stream' },
          }),
        );
      }
      await reading;
      expect(seen).toHaveLength(50);
      // The stream took one of dave's three: two requests more pass, the third is limited.
      expect((await app.send('GET', '/api/me', token('dave'))).status).toBe(200);
      expect((await app.send('GET', '/api/me', token('dave'))).status).toBe(200);
      const third = await app.send('GET', '/api/events', token('dave'));
      expect(third.status).toBe(429);
      expect(third.json).toMatchObject({ error: { code: 'RATE_LIMITED' } });
    });
  });
});
