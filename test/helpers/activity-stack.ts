/**
 * The stack of the workflow tests that run steps for real: a Temporal dev server, devfleet (in
 * process), and a worker with mechanic's workflow code and its real activities, which send the
 * steps to devfleet through the AWS SDK and record into the caller's audit store.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection, type ClientOptions } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../../src/activities/index.ts';
import { createSsmClient, createStsClient } from '../../src/activities/aws.ts';
import type { FleetConfig } from '../../src/devfleet/index.ts';
import type { AuditStore } from '../../src/store/audit-log.ts';
import { WORKFLOWS_PATH } from '../../src/temporal/worker.ts';
import { REGION, ROOT, startHarness, type Harness } from '../integration/devfleet-helpers.ts';
import { quietTemporalLogs, startTestTemporal, type TestTemporal } from './temporal.ts';

export interface ActivityStack {
  readonly fleet: Harness;
  readonly temporal: TestTemporal;
  readonly connection: Connection;
  readonly client: Client;
  readonly taskQueue: string;
  /** Stops the worker, then Temporal and devfleet; the audit store stays the caller's. */
  close(): Promise<void>;
}

export async function startActivityStack(options: {
  /** The task queue's prefix. */
  readonly name: string;
  readonly fleet: FleetConfig;
  readonly audit: AuditStore;
  /** The worker's workflow code (default mechanic's own). */
  readonly workflowsPath?: string;
  readonly interceptors?: ClientOptions['interceptors'];
}): Promise<ActivityStack> {
  quietTemporalLogs();
  // What is started so far, stopped in reverse if a later part fails to start.
  const stops: (() => Promise<unknown>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop();
  };
  try {
    const fleet = await startHarness({ config: options.fleet });
    stops.push(() => fleet.close());
    const temporal = await startTestTemporal();
    stops.push(() => temporal.teardown());
    const connection = await Connection.connect({ address: temporal.address });
    stops.push(() => connection.close());
    const native = await NativeConnection.connect({ address: temporal.address });
    stops.push(() => native.close());
    const client = new Client({
      connection,
      namespace: temporal.namespace,
      ...(options.interceptors ? { interceptors: options.interceptors } : {}),
    });
    const taskQueue = `${options.name}-${randomUUID()}`;
    const aws = { region: REGION, endpoint: fleet.fleet.endpoint, baseCredentials: ROOT };
    const worker = await Worker.create({
      connection: native,
      namespace: temporal.namespace,
      taskQueue,
      workflowsPath: options.workflowsPath ?? WORKFLOWS_PATH,
      activities: createActivities({
        audit: options.audit,
        sts: createStsClient(aws),
        ssmFor: (c) => createSsmClient(aws, c),
        pollIntervalMs: { min: 100, max: 500 },
        deliveryTimeoutSeconds: 60,
      }),
    });
    const running = worker.run();
    stops.push(async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    });
    return { fleet, temporal, connection, client, taskQueue, close: stopAll };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
