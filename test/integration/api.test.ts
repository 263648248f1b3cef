/**
 * The HTTP API as its contract says: real HTTP (the app served on a free port), a real SQLite
 * audit store, the real runbook registry, the typed client. Temporal is never reached by these
 * requests (its client connects lazily), so what is proven here is the edge: authentication,
 * the Authorizer, input limits, refusals on the record, error codes, OpenAPI and event streams.
 */
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { Client, Connection } from '@temporalio/client';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createApiClient, type ApiClient } from '../../src/api/client.ts';
import { routes } from '../../src/api/contract.ts';
import { roleAuthorizer } from '../../src/authz/authorizer.ts';
import { tokenAuthenticator, type UsersFile } from '../../src/authz/users.ts';
import { createInventory } from '../../src/activities/inventory.ts';
import { createStsClient, ssmClients } from '../../src/activities/aws.ts';
import { createApp } from '../../src/server/app.ts';
import { createAuditTail, type AuditTail } from '../../src/server/audit-tail.ts';
import { createExecutionService } from '../../src/server/executions.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { loadRunbookRegistry } from '../../src/store/runbook-registry.ts';
import { UserError } from '../../src/core/errors.ts';

const USERS: UsersFile = {
  users: [
    {
      id: 'alice',
      displayName: 'Alice',
      roles: ['operator', 'approver'],
      token: 'tok-alice-0123456789abcdef0123456789',
    },
    { id: 'dave', displayName: 'Dave', roles: ['auditor'], token: 'tok-dave-0123456789abcdef01234567890' },
    { id: 'bob', displayName: 'Bob', roles: ['approver'], token: 'tok-bob-0123456789abcdef012345678901' },
    // One auditor per channel claim below, so no refusal folds into another's count.
    ...['web', 'slack', 'tui', 'nonsense'].map((claim) => ({
      id: `auditor-${claim}`,
      displayName: `Auditor ${claim}`,
      roles: ['auditor' as const],
      token: `tok-auditor-${claim}-0123456789abcdef0123456789`,
    })),
  ],
};
const token = (id: string) => USERS.users.find((u) => u.id === id)!.token;

describe('the HTTP API', () => {
  let home: string;
  let audit: AuditStore;
  let tail: AuditTail;
  let server: ServerType;
  let url: string;
  let temporal: Client;
  const as = (id: string): ApiClient => createApiClient({ url, token: token(id) });

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'mechanic-api-'));
    audit = await openAuditStore({ kind: 'sqlite', file: path.join(home, 'audit.db') });
    tail = createAuditTail(audit, 50);
    temporal = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }) });
    const aws = { region: 'us-east-1', endpoint: 'http://127.0.0.1:1' };
    const registry = await loadRunbookRegistry('runbooks');
    const executions = createExecutionService({
      client: temporal,
      taskQueue: 'unused',
      registry,
      inventory: createInventory({ sts: createStsClient(aws), ssmFor: ssmClients(aws) }),
      audit,
      region: 'us-east-1',
      settings: { heartbeatTimeoutSeconds: 60 },
      authorizer: roleAuthorizer(),
    });
    const app = createApp({
      authenticator: tokenAuthenticator(USERS),
      authorizer: roleAuthorizer(),
      executions,
      registry,
      audit,
      tail,
      log: pino({ level: 'silent' }),
    });
    server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    tail?.stop();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await temporal?.connection.close();
    await audit?.close();
    await rm(home, { recursive: true, force: true });
  });

  test('the OpenAPI document is generated from the contract and names every route', async () => {
    const res = await fetch(`${url}/api/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<string, Record<string, { operationId: string }>>;
    };
    expect(doc.openapi).toBe('3.1.0');
    const operations = Object.values(doc.paths).flatMap((p) => Object.values(p).map((o) => o.operationId));
    for (const name of Object.keys(routes)) expect(operations).toContain(name);
    expect(doc.paths['/api/executions/{id}/votes']?.['post']).toMatchObject({ operationId: 'vote' });
    // Every operation says it can be rate limited, and how long to wait.
    for (const op of Object.values(doc.paths).flatMap((p) => Object.values(p)))
      expect(op).toMatchObject({ responses: { '429': { headers: { 'Retry-After': { required: true } } } } });
  });

  test.each([
    ['no token', undefined],
    ['a wrong token', 'Bearer tok-nobody-0123456789abcdef0123456'],
    ['a malformed header', 'Basic YWxpY2U6c2VjcmV0'],
  ])('%s gets 401 with one sentence', async (_label, header) => {
    const res = await fetch(`${url}/api/executions`, header ? { headers: { authorization: header } } : {});
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({
      error: {
        code: 'UNAUTHENTICATED',
        message: 'a valid bearer token is required; pass --as <user> or set MECHANIC_TOKEN',
      },
    });
  });

  test('an oversized execution id is a 400, and the refusal is recorded', async () => {
    const id = `mx-${'a'.repeat(300)}`;
    const before = await audit.list({ limit: 10_000 });
    const res = await fetch(`${url}/api/executions/${id}/votes`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token('dave')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ decision: 'approve', planDigest: 'a'.repeat(64) }),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('USAGE');
    expect(body.error.message).toContain('must be an execution id');
    const added = (await audit.list({ limit: 10_000 })).slice(before.length);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({ type: 'request.refused', actor: 'dave', executionId: null });
    expect(added[0]!.data).toMatchObject({ status: 400, code: 'USAGE' });
  });

  test('a forbidden action is a 403 naming the rule, recorded once as access.denied', async () => {
    const before = await audit.list({ limit: 10_000 });
    const err = await as('dave')
      .call('vote', { params: { id: 'mx-abcdefghij' }, body: { decision: 'approve', planDigest: 'a'.repeat(64) } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err).toMatchObject({
      code: 'FORBIDDEN',
      message: 'dave (auditor) may not approve or reject executions; that needs the approver role',
    });
    const added = (await audit.list({ limit: 10_000 })).slice(before.length);
    expect(added.map((r) => [r.type, r.actor, r.executionId])).toEqual([['access.denied', 'dave', 'mx-abcdefghij']]);
  });

  test.each([
    ['web', 'api'],
    ['slack', 'api'],
    ['tui', 'tui'],
    ['nonsense', 'api'],
  ])(
    'a bearer-token caller claiming channel %s is decided and recorded as %s: web and slack are the server’s own',
    async (claimed, seen) => {
      const before = await audit.list({ limit: 10_000 });
      const res = await fetch(`${url}/api/executions/mx-abcdefghij/votes`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token(`auditor-${claimed}`)}`,
          'content-type': 'application/json',
          'x-mechanic-channel': claimed,
        },
        body: JSON.stringify({ decision: 'approve', planDigest: 'a'.repeat(64) }),
      });
      expect(res.status).toBe(403);
      const added = (await audit.list({ limit: 10_000 })).slice(before.length);
      expect(added.map((r) => [r.type, (r.data as { channel?: string }).channel])).toEqual([['access.denied', seen]]);
    },
  );

  test('authorization comes before the body: a forbidden caller with a bad body is still refused as forbidden', async () => {
    const res = await fetch(`${url}/api/executions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token('dave')}`, 'content-type': 'application/json' },
      body: '{not json',
    });
    expect(res.status).toBe(403);
  });

  test('an unknown execution is a 404 with its code, and the client raises it as that code', async () => {
    const err = await as('alice')
      .call('cancel', { params: { id: 'mx-nosuchrun0' }, body: { reason: 'not needed' } })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'EXECUTION_NOT_FOUND' });
  });

  test.each([
    [
      'a launch reason',
      '/api/executions',
      { runbook: 'deploy-web', params: { release: 'v1.0.0' }, reason: 'ship \u202Eit' },
      'the reason contains',
    ],
    [
      'a vote comment',
      '/api/executions/mx-abcdefghij/votes',
      { decision: 'reject', planDigest: 'a'.repeat(64), comment: 'no\u202E\nway' },
      'the comment contains',
    ],
  ])(
    '%s with a direction override is refused before anything acts on it, and recorded',
    async (_l, route, body, said) => {
      const before = await audit.list({ limit: 10_000 });
      const res = await fetch(`${url}${route}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token('alice')}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toContain(said);
      const added = (await audit.list({ limit: 10_000 })).slice(before.length);
      expect(added.map((r) => [r.type, r.actor])).toEqual([['request.refused', 'alice']]);
    },
  );

  test('the catalog lists the valid runbooks through the typed client', async () => {
    const { runbooks } = await as('dave').call('listRunbooks');
    expect(runbooks.map((r) => r.name)).toContain('deploy-web');
  });

  test('an event stream sends the records of one execution, live, and resumes after Last-Event-ID', async () => {
    const event = (n: number, executionId: string) => ({
      eventId: `${executionId}:test:${n}`,
      executionId,
      type: 'access.denied' as const,
      actor: 'tester',
      at: new Date().toISOString(),
      data: { action: 'readRun', reason: 'stream test', n },
    });
    await audit.append(event(1, 'mx-stream0001'));
    await audit.append(event(1, 'mx-otherrun01'));
    const seen: number[] = [];
    const abort = new AbortController();
    const reading = (async () => {
      for await (const r of as('alice').events({ executionId: 'mx-stream0001' }, { signal: abort.signal })) {
        seen.push(r.data['n'] as number);
        expect(r.executionId).toBe('mx-stream0001');
        if (seen.length === 3) break;
      }
    })();
    // Appended while the stream is open: it must arrive without the client asking again.
    await audit.append(event(2, 'mx-stream0001'));
    await audit.append(event(2, 'mx-otherrun01'));
    await audit.append(event(3, 'mx-stream0001'));
    await reading;
    abort.abort();
    expect(seen).toEqual([1, 2, 3]);

    const records = await audit.list({ executionId: 'mx-stream0001' });
    const resumed: number[] = [];
    for await (const r of as('alice').events({ executionId: 'mx-stream0001' }, { after: records[0]!.seq })) {
      resumed.push(r.data['n'] as number);
      if (resumed.length === 2) break;
    }
    expect(resumed).toEqual([2, 3]);
  });

  test('the all-events stream hides refusals of other callers from a non-auditor', async () => {
    const seen: string[] = [];
    const mark = `mx-marker${Date.now() % 1000}`.slice(0, 13);
    await audit.append({
      eventId: `${mark}:last`,
      executionId: mark,
      type: 'access.denied',
      actor: 'tester',
      at: new Date().toISOString(),
      data: { action: 'readRun', reason: 'marker' },
    });
    for await (const r of as('alice').events('all')) {
      seen.push(`${r.type}:${r.executionId ?? '-'}`);
      if (r.executionId === mark) break;
    }
    expect(seen.some((s) => s.endsWith(':-'))).toBe(false);
  });

  describe('a server outside the contract is a clear error, never a silent success', () => {
    let rogue: Server;
    let rogueUrl: string;
    beforeAll(async () => {
      rogue = createServer((req, res) => {
        res.writeHead(req.url === '/api/runbooks' ? 500 : 200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify(req.url === '/api/runbooks' ? { error: { code: 'NO_SUCH_CODE', message: 'x' } } : { foo: 1 }),
        );
      });
      await new Promise<void>((resolve) => rogue.listen(0, '127.0.0.1', resolve));
      rogueUrl = `http://127.0.0.1:${(rogue.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise<void>((resolve) => rogue.close(() => resolve())));

    test('an unknown error code is a bug (INTERNAL)', async () => {
      const err = await createApiClient({ url: rogueUrl, token: 't' })
        .call('listRunbooks')
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'INTERNAL' });
    });

    test('a 200 whose body breaks the contract is a bug (INTERNAL)', async () => {
      const err = await createApiClient({ url: rogueUrl, token: 't' })
        .call('listExecutions')
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'INTERNAL' });
    });
  });
});
