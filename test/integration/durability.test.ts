import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, expect, inject, test } from 'vitest';
import { startDevServer, type DevServer } from '../../src/embedded/dev-server.ts';
import { getFreePort } from '../../src/embedded/ports.ts';
import { WORKFLOWS_PATH } from '../../src/temporal/worker.ts';
import { runbookExecution, statusQuery, voteUpdate } from '../../workflows/runbook-execution.ts';
import { fakeActivities } from '../helpers/fake-activities.ts';
import { testInput } from '../helpers/plans.ts';
import { quietTemporalLogs } from '../helpers/temporal.ts';

const cleanup: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn().catch(() => undefined);
});

/**
 * The embedded Temporal dev server keeps its state in SQLite: a run waiting for approval
 * survives the server being SIGKILLed and started again on the same file, and then runs.
 */
test('a run waiting for approval survives a SIGKILLed Temporal server', async () => {
  quietTemporalLogs();
  const dir = await mkdtemp(path.join(tmpdir(), 'mechanic-durable-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const dbFile = path.join(dir, 'temporal.db');
  const port = await getFreePort();
  const serve = async (): Promise<DevServer> => {
    const server = await startDevServer({ cliPath: inject('temporalCli'), dbFile, port });
    cleanup.push(() => server.stop());
    return server;
  };
  const fake = fakeActivities();
  const input = testInput();
  const taskQueue = 'durability';
  const withWorker = async <T>(address: string, fn: (client: Client) => Promise<T>): Promise<T> => {
    const native = await NativeConnection.connect({ address });
    const connection = await Connection.connect({ address });
    try {
      const worker = await Worker.create({
        connection: native,
        taskQueue,
        workflowsPath: WORKFLOWS_PATH,
        activities: fake.activities,
      });
      return await worker.runUntil(fn(new Client({ connection })));
    } finally {
      await connection.close();
      await native.close();
    }
  };

  const first = await serve();
  await withWorker(first.address, async (client) => {
    const handle = await client.workflow.start(runbookExecution, {
      taskQueue,
      workflowId: input.plan.executionId,
      args: [input],
    });
    expect((await handle.query(statusQuery)).status).toBe('awaiting_approval');
  });
  process.kill(first.pid, 'SIGKILL');
  await first.stop(); // resolves once the killed process is gone

  const second = await serve();
  const result = await withWorker(second.address, async (client) => {
    const handle = client.workflow.getHandle<typeof runbookExecution>(input.plan.executionId);
    expect((await handle.query(statusQuery)).status).toBe('awaiting_approval');
    await handle.executeUpdate(voteUpdate, {
      args: [{ approver: 'bob', decision: 'approve', planDigest: input.planDigest }],
    });
    return handle.result();
  });
  expect(result.status).toBe('completed');
  expect(fake.events.filter((e) => e.type === 'execution.requested')).toHaveLength(1);
  expect(fake.dispatched.map((d) => d.step.name)).toEqual(['first', 'second']);
});
