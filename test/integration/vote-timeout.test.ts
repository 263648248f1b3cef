/**
 * A vote or cancel the run does not take in time (its worker busy or down) is answered with one
 * sentence saying it may or may not have been taken and how to look, never "the server failed to
 * handle this request", and never a request held forever. A real Temporal dev server with a run
 * whose task queue no worker polls; the run's records in a real SQLite audit log.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { roleAuthorizer } from '../../src/authz/authorizer.ts';
import { DEMO_USERS } from '../../src/authz/users.ts';
import { UserError } from '../../src/core/errors.ts';
import type { ExecutionService } from '../../src/server/executions.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { startTestTemporal, type TestTemporal } from '../helpers/temporal.ts';
import { PLAN_DIGEST, storeRun } from '../helpers/web-ui.ts';
import { rejectionOf } from '../helpers/core-samples.ts';
import { serviceWithoutAws } from '../helpers/service.ts';

describe('a vote or cancel the run does not answer', () => {
  let home: string;
  let temporal: TestTemporal;
  let connection: Connection;
  let audit: AuditStore;
  let service: ExecutionService;
  const ID = 'mx-noworker1';
  const user = (id: string) => DEMO_USERS.find((u) => u.id === id)!;

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'mechanic-vote-timeout-'));
    temporal = await startTestTemporal();
    connection = await Connection.connect({ address: temporal.address });
    const client = new Client({ connection, namespace: temporal.namespace });
    audit = await openAuditStore({ kind: 'sqlite', file: path.join(home, 'audit.db') });
    await storeRun(audit, {
      id: ID,
      runbook: 'deploy-web',
      operator: 'alice',
      at: '2026-11-30T10:00:00.000Z',
      targets: ['i-0abc'],
      end: 'pending',
    });
    // The run exists in Temporal, on a task queue no worker polls: nothing will ever take an update.
    await client.workflow.start('runbookExecution', { taskQueue: 'nobody-polls', workflowId: ID, args: [] });
    service = await serviceWithoutAws({
      client,
      taskQueue: 'nobody-polls',
      audit,
      authorizer: roleAuthorizer(),
      updateDeadlineMs: 1_500,
    });
  }, 120_000);
  afterAll(async () => {
    await connection?.close();
    await audit?.close();
    await temporal?.teardown();
    await rm(home, { recursive: true, force: true });
  });

  const refusal = (p: Promise<unknown>) => rejectionOf(p, UserError);

  test('a vote: TEMPORAL_UNAVAILABLE, "may or may not have been taken", how to look; the refusal is on the record', async () => {
    const e = await refusal(service.vote(user('bob'), ID, { decision: 'approve', planDigest: PLAN_DIGEST(ID) }));
    expect(e.code).toBe('TEMPORAL_UNAVAILABLE');
    expect(e.message).toBe(
      `execution ${ID} did not answer in time (Temporal or its worker is busy or down), so your request may or may not have been taken; check mechanic status ${ID} before trying again`,
    );
    const refused = (await audit.list({ executionId: ID })).filter((r) => r.type === 'approval.refused');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ actor: 'bob', data: { code: 'TEMPORAL_UNAVAILABLE' } });
  }, 60_000);

  test('a cancel: the same sentence', async () => {
    const e = await refusal(service.cancel(user('alice'), ID, 'wrong window'));
    expect(e.code).toBe('TEMPORAL_UNAVAILABLE');
    expect(e.message).toContain('may or may not have been taken; check mechanic status');
  }, 60_000);
});
