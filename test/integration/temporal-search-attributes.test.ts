import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ensureSearchAttributes } from '../../src/embedded/dev-server.ts';
import { allSearchAttributes, searchAttributes } from '../../src/temporal/search-attributes.ts';
import { startTestTemporal } from '../helpers/temporal.ts';
import type { TestTemporal } from '../helpers/temporal.ts';
import type { waitForFinish } from '../fixtures/workflows/temporal-plumbing.ts';

let temporal: TestTemporal;
let connection: Connection;
let client: Client;

beforeAll(async () => {
  temporal = await startTestTemporal();
  connection = await Connection.connect({ address: temporal.address });
  client = new Client({ connection, namespace: temporal.namespace });
});

afterAll(async () => {
  await connection?.close();
  await temporal?.teardown();
});

async function customAttributes(): Promise<Record<string, unknown>> {
  const response = await connection.operatorService.listSearchAttributes({ namespace: temporal.namespace });
  return response.customAttributes ?? {};
}

/**
 * Visibility is eventually consistent: poll the query until it finds something. No deadline of
 * its own (a slow machine just waits longer); the test's timeout bounds the wait.
 */
async function listIds(query: string): Promise<string[]> {
  for (;;) {
    const ids: string[] = [];
    for await (const execution of client.workflow.list({ query })) ids.push(execution.workflowId);
    if (ids.length > 0) return ids;
    await sleep(200);
  }
}

test('mechanic search attributes are registered when the server starts', async () => {
  const attributes = await customAttributes();
  for (const key of allSearchAttributes) expect(attributes[key.name]).toBeDefined();
});

test('a workflow started with typed search attributes is found by a query on them', async () => {
  const runbook = `restart-nginx-${randomUUID().slice(0, 8)}`;
  const workflowId = `sa-${randomUUID()}`;
  // No worker: visibility records the start with its search attributes.
  const handle = await client.workflow.start<typeof waitForFinish>('waitForFinish', {
    taskQueue: 'nobody-polls',
    workflowId,
    typedSearchAttributes: [
      { key: searchAttributes.runbook, value: runbook },
      { key: searchAttributes.operator, value: 'alice@example.com' },
      { key: searchAttributes.status, value: 'awaiting_approval' },
    ],
  });
  try {
    expect(await listIds(`MechanicRunbook = '${runbook}'`)).toEqual([workflowId]);
    expect(
      await listIds(
        `MechanicRunbook = '${runbook}' AND MechanicOperator = 'alice@example.com' AND MechanicStatus = 'awaiting_approval'`,
      ),
    ).toEqual([workflowId]);
    const description = await handle.describe();
    expect(description.typedSearchAttributes.get(searchAttributes.runbook)).toBe(runbook);
  } finally {
    await handle.terminate('test done');
  }
});

test('ensureSearchAttributes adds attributes a namespace lacks, and is idempotent', async () => {
  // Simulates a database file from before an attribute existed.
  await connection.operatorService.removeSearchAttributes({
    namespace: temporal.namespace,
    searchAttributes: [searchAttributes.status.name],
  });
  expect((await customAttributes())[searchAttributes.status.name]).toBeUndefined();

  await ensureSearchAttributes(connection, temporal.namespace);
  await ensureSearchAttributes(connection, temporal.namespace);

  const attributes = await customAttributes();
  for (const key of allSearchAttributes) expect(attributes[key.name]).toBeDefined();
});
