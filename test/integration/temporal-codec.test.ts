import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import proto from '@temporalio/proto';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ENCODING_ENCRYPTED, dataConverterFor } from '../../src/temporal/codec.ts';
import type { CodecKeys } from '../../src/temporal/codec.ts';
import { quietTemporalLogs, startTestTemporal } from '../helpers/temporal.ts';
import type { TestTemporal } from '../helpers/temporal.ts';
import type { echo, failWith } from '../fixtures/workflows/temporal-plumbing.ts';

const workflowsPath = fileURLToPath(new URL('../fixtures/workflows/temporal-plumbing.ts', import.meta.url));
const keys: CodecKeys = { activeKeyId: 'test-1', keys: { 'test-1': new Uint8Array(randomBytes(32)) } };
const SECRET = 'plan-detail-that-must-stay-encrypted';

let temporal: TestTemporal;
let connection: Connection;
let nativeConnection: NativeConnection;
let client: Client;
let plainClient: Client;
let worker: Worker;
let workerRun: Promise<void>;

beforeAll(async () => {
  quietTemporalLogs();
  temporal = await startTestTemporal();
  connection = await Connection.connect({ address: temporal.address });
  client = new Client({ connection, namespace: temporal.namespace, dataConverter: dataConverterFor(keys) });
  // Sees what the server stores: no codec, so payloads come back exactly as persisted.
  plainClient = new Client({ connection, namespace: temporal.namespace });
  nativeConnection = await NativeConnection.connect({ address: temporal.address });
  worker = await Worker.create({
    connection: nativeConnection,
    namespace: temporal.namespace,
    taskQueue: 'codec-test',
    workflowsPath,
    dataConverter: dataConverterFor(keys),
  });
  workerRun = worker.run();
});

afterAll(async () => {
  if (worker !== undefined) {
    worker.shutdown();
    await workerRun;
  }
  await nativeConnection?.close();
  await connection?.close();
  await temporal?.teardown();
});

type RawPayload = proto.temporal.api.common.v1.IPayload;

/** Every Payload in a history, found by walking the decoded proto objects (a Payload is metadata + data bytes). */
function collectPayloads(value: unknown, out: RawPayload[] = []): RawPayload[] {
  if (value instanceof Uint8Array || value === null || typeof value !== 'object') return out;
  const candidate = value as RawPayload;
  if (candidate.data instanceof Uint8Array && typeof candidate.metadata === 'object' && candidate.metadata !== null) {
    out.push(candidate);
    return out;
  }
  for (const child of Object.values(value)) collectPayloads(child, out);
  return out;
}

function rawHistoryBytes(history: proto.temporal.api.history.v1.IHistory): Buffer {
  return Buffer.from(proto.temporal.api.history.v1.History.encode(history).finish());
}

test('workflow input and result reach the server only encrypted', async () => {
  const workflowId = `codec-${randomUUID()}`;
  const result = await client.workflow.execute<typeof echo>('echo', {
    taskQueue: 'codec-test',
    workflowId,
    args: [{ secret: SECRET }],
  });
  expect(result).toEqual({ echoed: SECRET });

  const history = await plainClient.workflow.getHandle(workflowId).fetchHistory();
  const payloads = collectPayloads(history);
  // Input (started event) and result (completed event) at least.
  expect(payloads.length).toBeGreaterThanOrEqual(2);
  for (const payload of payloads) {
    expect(Buffer.from(payload.metadata?.['encoding'] ?? []).toString()).toBe(ENCODING_ENCRYPTED);
    expect(Buffer.from(payload.metadata?.['encryption-key-id'] ?? []).toString()).toBe('test-1');
  }
  expect(rawHistoryBytes(history).includes(SECRET)).toBe(false);
});

test('failure messages are encrypted too, and decode for a client with the key', async () => {
  const workflowId = `codec-fail-${randomUUID()}`;
  const error = await client.workflow
    .execute<typeof failWith>('failWith', { taskQueue: 'codec-test', workflowId, args: [`boom: ${SECRET}`] })
    .catch((e: unknown) => e);
  expect(error).toBeInstanceOf(WorkflowFailedError);
  expect((error as WorkflowFailedError).cause?.message).toBe(`boom: ${SECRET}`);

  const history = await plainClient.workflow.getHandle(workflowId).fetchHistory();
  expect(rawHistoryBytes(history).includes(SECRET)).toBe(false);
  const failed = history.events?.find((e) => e.workflowExecutionFailedEventAttributes != null);
  const failure = failed?.workflowExecutionFailedEventAttributes?.failure;
  // encodeCommonAttributes replaces the message with a placeholder and moves it into an encrypted payload.
  expect(failure?.message).toBe('Encoded failure');
  expect(Buffer.from(failure?.encodedAttributes?.metadata?.['encoding'] ?? []).toString()).toBe(ENCODING_ENCRYPTED);
});
