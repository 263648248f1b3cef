/**
 * Issue 11, part 1: a status read does not carry the plan. The API's view of a run is the full view
 * (plan included, field for field what the `status` query answers), but the server asks the run only
 * for its summary (`statusSummary`, no plan, so no target list) and fills the plan in from the run's
 * request record, read once. A run on code from before the summary query, and a run whose request is
 * not on the record yet, are answered with the full query; a request record that does not hold the
 * run's plan is one sentence naming the broken log, never a crash.
 *
 * Real parts: a Temporal dev server, the real workflow code on a real worker whose real activities
 * run a step on devfleet's light instances and write a real SQLite audit log, the real execution
 * service and app over real HTTP, the typed API client. The server's Temporal client counts the
 * queries it sends, by name (an interceptor that only counts).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, type ServerType } from '@hono/node-server';
import type { Client, WorkflowClientInterceptor, WorkflowHandle } from '@temporalio/client';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createApiClient, type ApiClient } from '../../src/api/client.ts';
import { createSsmClient, createStsClient } from '../../src/activities/aws.ts';
import { createInventory } from '../../src/activities/inventory.ts';
import { roleAuthorizer } from '../../src/authz/authorizer.ts';
import { tokenAuthenticator, type UsersFile } from '../../src/authz/users.ts';
import { requestedEvent } from '../../src/core/audit-events.ts';
import type { ExecutionInput, ExecutionView } from '../../src/core/execution.ts';
import { buildPlan } from '../../src/core/plan.ts';
import { parseRunbook } from '../../src/core/runbook.ts';
import { DEMO_ROLE_ARN, defaultFleetConfig, parseFleetConfig } from '../../src/devfleet/index.ts';
import { lightInstanceId } from '../../src/devfleet/config.ts';
import { createApp } from '../../src/server/app.ts';
import { createAuditTail, type AuditTail } from '../../src/server/audit-tail.ts';
import { createExecutionService, type ExecutionService } from '../../src/server/executions.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { loadRunbookRegistry, type RunbookRegistry } from '../../src/store/runbook-registry.ts';
import { statusQuery, statusSummaryQuery, voteUpdate } from '../../workflows/messages.ts';
import { startActivityStack, type ActivityStack } from '../helpers/activity-stack.ts';
import { waitFor } from '../helpers/parts.ts';
import { testInput } from '../helpers/plans.ts';
import { raw, unguard } from '../helpers/raw-sqlite.ts';
import { REGION, ROOT } from './devfleet-helpers.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/workflows/status-summary.ts', import.meta.url));
const N = 60;
const IDS = Array.from({ length: N }, (_, k) => lightInstanceId(0, k + 1));
/** Every 30th light instance fails its command: the view lists those two. */
const FAILING = [30, 60].map((n) => lightInstanceId(0, n));
const USERS: UsersFile = {
  users: [{ id: 'dave', displayName: 'Dave', roles: ['auditor'], token: 'tok-dave-0123456789abcdef01234567890' }],
};

let home: string;
let auditFile: string;
let stack: ActivityStack;
let audit: AuditStore;
let tail: AuditTail;
let registry: RunbookRegistry;
let client: Client;
let taskQueue: string;
/** The names of the queries the server's Temporal client sent, in order. */
const sent: string[] = [];
const servers: ServerType[] = [];

/** The real execution service (a new one has an empty plan cache), its client counting queries. */
function newService(): ExecutionService {
  const aws = { region: REGION, endpoint: 'http://127.0.0.1:1' };
  return createExecutionService({
    client,
    taskQueue,
    registry,
    inventory: createInventory({ sts: createStsClient(aws), ssmFor: (c) => createSsmClient(aws, c) }),
    audit,
    region: REGION,
    settings: { heartbeatTimeoutSeconds: 60 },
    authorizer: roleAuthorizer(),
    // A busy machine may take seconds to answer: these reads are about what is asked, not about
    // the log the server reads when the worker does not answer.
    queryDeadlineMs: 60_000,
  });
}

/** The real app over real HTTP on a free port, for `executions`; an API client signed in as an auditor. */
async function serveApi(executions: ExecutionService): Promise<ApiClient> {
  const app = createApp({
    authenticator: tokenAuthenticator(USERS),
    authorizer: roleAuthorizer(),
    executions,
    registry,
    audit,
    tail,
    log: pino({ level: 'silent' }),
  });
  const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
  servers.push(server);
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return createApiClient({ url, token: USERS.users[0]!.token });
}

/** What the API answers for a run, and the queries the server sent for it. */
async function readThroughApi(api: ApiClient, id: string): Promise<{ view: ExecutionView; queries: string[] }> {
  sent.length = 0;
  const { execution } = await api.call('getExecution', { params: { id } });
  return { view: execution, queries: [...sent] };
}

let api: ApiClient;
let input: ExecutionInput;
let handle: WorkflowHandle;

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'mechanic-status-summary-'));
  auditFile = path.join(home, 'audit.db');
  audit = await openAuditStore({ kind: 'sqlite', file: auditFile });
  tail = createAuditTail(audit, 50);
  registry = await loadRunbookRegistry('runbooks');
  const counting: WorkflowClientInterceptor = {
    query: (q, next) => {
      sent.push(q.queryType);
      return next(q);
    },
  };
  stack = await startActivityStack({
    name: 'status-summary',
    audit,
    fleet: parseFleetConfig({
      ...defaultFleetConfig(ROOT),
      lightInstances: [{ count: N, namePrefix: 'node', tags: { Fleet: 'light' }, commandMs: 20, failEvery: 30 }],
    }),
    // mechanic's workflows and the two fallback fixtures, in one bundle.
    workflowsPath: FIXTURE,
    interceptors: { workflow: [counting] },
  });
  ({ client, taskQueue } = stack);
  api = await serveApi(newService());

  // One step on the 60 instances (sent as batches), allowed to fail anywhere; started as launch
  // starts it: the workflow, then the request on the record.
  const { plan, planDigest } = buildPlan({
    executionId: `mx-ss${randomUUID().slice(0, 8)}`,
    runbook: parseRunbook({
      name: 'fleet-wide',
      version: 1,
      description: 'a step on 60 light instances',
      roleArn: DEMO_ROLE_ARN,
      targets: { tags: { Fleet: 'light' } },
      steps: [{ name: 'work', script: 'echo hi', timeoutSeconds: 60, maxErrors: '100%' }],
    }),
    runbookDigest: 'f'.repeat(64),
    rawParams: {},
    targets: IDS.map((instanceId, k) => ({ instanceId, name: `node-${k + 1}` })),
    requester: 'alice',
    reason: 'status summary',
    region: REGION,
    now: new Date(),
  });
  input = { plan, planDigest };
  handle = await client.workflow.start('runbookExecution', { taskQueue, workflowId: plan.executionId, args: [input] });
  await audit.append(requestedEvent(input));
  await waitFor('the run to wait for approval', async () =>
    (await handle.query(statusQuery)).status === 'awaiting_approval' ? true : undefined,
  );
}, 240_000);

afterAll(async () => {
  for (const s of servers) await new Promise<void>((resolve) => s.close(() => resolve()));
  tail?.stop();
  await stack?.close();
  await audit?.close();
  if (home) await rm(home, { recursive: true, force: true });
}, 60_000);

describe('a status read through the API', () => {
  test('is the full view, plan included, while the run asks for approval; the run is asked only for its summary', async () => {
    const { view, queries } = await readThroughApi(api, input.plan.executionId);
    const full = await handle.query(statusQuery);
    expect(view).toEqual(full);
    expect(view.plan).toEqual(input.plan);
    expect(queries).toEqual(['statusSummary']);
    // The same fields in the same order (the plan as the log keeps it: its keys sorted, as canonical JSON).
    expect(Object.keys(await newService().get(input.plan.executionId))).toEqual(Object.keys(full));
  });

  test('the summary is the view without the plan: no target list', async () => {
    const summary = await handle.query(statusSummaryQuery);
    const { plan: _plan, ...rest } = await handle.query(statusQuery);
    expect(summary).toEqual(rest);
    expect(summary).not.toHaveProperty('plan');
    const text = JSON.stringify(summary);
    expect(IDS.filter((id) => text.includes(id))).toEqual([]);
  });

  test('is the full view after the run, with the step’s counts and failures; the plan is read once and kept', async () => {
    const { planDigest } = input;
    await handle.executeUpdate(voteUpdate, { args: [{ approver: 'bob', decision: 'approve', planDigest }] });
    const ended = (await handle.result()) as ExecutionView;
    expect(ended.status).toBe('failed');
    const { view, queries } = await readThroughApi(api, input.plan.executionId);
    expect(view).toEqual(await handle.query(statusQuery));
    expect(view.steps[0]!.summary).toEqual({ total: N, byStatus: { Success: N - 2, Failed: 2 } });
    expect(view.steps[0]!.instances.map((i) => i.instanceId)).toEqual(FAILING);
    expect(queries).toEqual(['statusSummary']);

    // The request record changed behind the log's back: this server kept the plan it read.
    raw(auditFile, (db) => {
      unguard(db);
      db.prepare(`update audit_events set data = json_set(data, '$.plan.reason', 'changed') where event_id = ?`).run(
        requestedEvent(input).eventId,
      );
    });
    expect((await readThroughApi(api, input.plan.executionId)).view.plan).toEqual(input.plan);
  });

  test('a request record that does not hold the run’s plan is one sentence naming the broken log', async () => {
    // A server that has not read the plan yet reads the changed record (the test above changed it).
    const fresh = await serveApi(newService());
    const e = await fresh.call('getExecution', { params: { id: input.plan.executionId } }).catch((err: unknown) => err);
    const seq = (await audit.list({ executionId: input.plan.executionId, limit: 1 }))[0]!.seq;
    expect(e).toMatchObject({
      code: 'AUDIT_CHAIN_BROKEN',
      message: `the request record of ${input.plan.executionId} in the audit log (#${seq}) does not hold the plan the run was started with (digest ${input.planDigest.slice(0, 12)}); run "mechanic audit verify" to find what changed`,
    });

    // A record whose data is not JSON at all.
    raw(auditFile, (db) => {
      db.prepare(`update audit_events set data = '{not json' where event_id = ?`).run(requestedEvent(input).eventId);
    });
    const again = await serveApi(newService());
    const e2 = await again
      .call('getExecution', { params: { id: input.plan.executionId } })
      .catch((err: unknown) => err);
    expect(e2).toMatchObject({
      code: 'AUDIT_CHAIN_BROKEN',
      message: expect.stringMatching(/^the request record of mx-\S+ in the audit log \(unreadable\) does not hold/),
    });
  });
});

describe('runs the summary cannot answer are asked the full view', () => {
  test('a run on code from before the summary query', async () => {
    const old = testInput();
    const run = await client.workflow.start('statusOnlyRun', {
      taskQueue,
      workflowId: old.plan.executionId,
      args: [old],
    });
    await audit.append(requestedEvent(old));
    const { view, queries } = await readThroughApi(api, old.plan.executionId);
    expect(view).toEqual(await run.query(statusQuery));
    expect(view).toMatchObject({ status: 'awaiting_approval', plan: old.plan });
    expect(queries).toEqual(['statusSummary', 'status']);
    await run.terminate('test over');
  });

  test('a run whose request is not on the record yet; once it is, the summary is enough', async () => {
    const unrecorded = testInput();
    const id = unrecorded.plan.executionId;
    const run = await client.workflow.start('unrecordedRun', { taskQueue, workflowId: id, args: [unrecorded] });
    const first = await readThroughApi(api, id);
    expect(first.view).toEqual(await run.query(statusQuery));
    expect(first.view.plan).toEqual(unrecorded.plan);
    expect(first.queries).toEqual(['statusSummary', 'status']);

    await audit.append(requestedEvent(unrecorded));
    const second = await readThroughApi(api, id);
    expect(second.view).toEqual(first.view);
    expect(second.queries).toEqual(['statusSummary']);
    await run.terminate('test over');
  });
});
