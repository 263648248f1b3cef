import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { Worker as Thread } from 'node:worker_threads';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { createActivities } from '../activities/index.ts';
import { baseIsRoleSession, createStsClient, ssmClients } from '../activities/aws.ts';
import type { AuditStore } from '../store/audit-log.ts';
import { UserError } from '../core/errors.ts';
import { connectionOptions, dataConverterFrom } from './connect.ts';
import { workerHeapFlags } from './worker-heap.ts';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../../workflows/index.ts', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/mechanic.js', import.meta.url));

/**
 * The workflow code bundled from the sources by `mechanic bundle` in a child process. Bundling
 * takes webpack, and a process that has run webpack keeps about 150 MB more resident for the rest
 * of its life (measured: 172 → 317 MB after a full GC); the worker runs for days, the child for
 * seconds. The code is the same the SDK would bundle itself (same sources, same failure converter).
 */
async function bundleInChild(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mechanic-bundle-'));
  try {
    const file = path.join(dir, 'workflow-bundle.js');
    // A worker stopped while it starts takes the bundler with it.
    let stop = (): void => {};
    try {
      await new Promise<void>((resolve, reject) => {
        const child = execFile(
          process.execPath,
          [BIN, 'bundle', '--out', file],
          { maxBuffer: 16 * 1024 * 1024 },
          (error, _out, stderr) => {
            if (!error) return resolve();
            const why = stderr.trim().split('\n').at(-1) ?? error.message;
            reject(new UserError('CONFIG_INVALID', `the workflow code could not be bundled: ${why}`, { cause: error }));
          },
        );
        stop = () => child.kill();
        process.once('exit', stop);
      });
    } finally {
      process.off('exit', stop);
    }
    return await readFile(file, 'utf8');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const MiB = 1024 * 1024;

/**
 * Bounds the heap of the threads this process starts from now on, which is how the SDK's workflow
 * thread gets a limit: the SDK starts it without resource limits, and V8 reads its heap flags when a
 * thread's heap is made. Every run the worker keeps lives in that heap. At V8's default limit (a
 * quarter of the machine's memory, up to 4 GB) V8 lets a heap grow to up to four times its live data
 * before collecting it; under 2 GB, to 1.3–2 times, scaled with the limit.
 */
function boundThreadHeaps(heapMb: number): void {
  for (const flag of workerHeapFlags(heapMb)) v8.setFlagsFromString(flag);
}

/** The heap limit (MiB) a thread started now gets: measured, not assumed, for the worker's start line. */
async function newThreadHeapLimitMiB(): Promise<number> {
  const thread = new Thread(
    "require('node:worker_threads').parentPort.postMessage(require('node:v8').getHeapStatistics().heap_size_limit)",
    { eval: true },
  );
  try {
    const [limit] = (await once(thread, 'message')) as [number];
    return Math.round(limit / MiB);
  } finally {
    await thread.terminate();
  }
}

export interface WorkerHandle {
  /** Resolves when the worker has stopped (after shutdown() or a fatal error). */
  readonly done: Promise<void>;
  shutdown(): Promise<void>;
}

/**
 * Builds the worker: activities from their real adapters (STS, SSM, the audit store), the
 * workflows from source, the encrypting data converter. The worker holds the only copy of each
 * run's STS secret (see CredentialLeases).
 */
export async function startWorker(config: Config, audit: AuditStore, log: Logger): Promise<WorkerHandle> {
  const aws = { region: config.aws.region, endpoint: config.aws.endpoint, baseCredentials: config.aws.baseCredentials };
  const sts = createStsClient(aws);
  const activities = createActivities({
    audit,
    sts,
    credentialLimits: { baseIsRoleSession: baseIsRoleSession(sts), maxSeconds: config.aws.credentialMaxSeconds },
    ssmFor: ssmClients(aws),
    pollIntervalMs: { min: config.ssm.pollMinMs, max: config.ssm.pollMaxMs },
    deliveryTimeoutSeconds: config.ssm.deliveryTimeoutSeconds,
  });
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect(connectionOptions(config.temporal));
  } catch (e) {
    throw new UserError(
      'TEMPORAL_UNAVAILABLE',
      `the Temporal server at ${config.temporal.address} is not answering; start it (mechanic dev) or set TEMPORAL_ADDRESS`,
      { cause: e },
    );
  }
  let worker: Worker;
  let heapLimitMiB: { main: number; workflows: number };
  try {
    boundThreadHeaps(config.worker.heapMb);
    // Each limit includes the young generation (three semi-spaces on top of the setting).
    heapLimitMiB = {
      main: Math.round(v8.getHeapStatistics().heap_size_limit / MiB),
      workflows: await newThreadHeapLimitMiB(),
    };
    worker = await Worker.create({
      connection,
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      // A pre-built bundle only when asked for: a stale one picked up by default would run old code.
      workflowBundle: config.temporal.workflowBundle
        ? { codePath: config.temporal.workflowBundle }
        : { code: await bundleInChild() },
      activities,
      dataConverter: dataConverterFrom(config.temporal),
      // What this process takes on at once; the rest waits in the task queue, where this worker or
      // another one on the same queue picks it up when it has room (a run queues, it does not fail).
      maxConcurrentActivityTaskExecutions: config.worker.maxActivities,
      maxConcurrentWorkflowTaskExecutions: config.worker.maxWorkflowTasks,
      maxConcurrentLocalActivityExecutions: config.worker.maxLocalActivities,
      maxCachedWorkflows: config.worker.maxCachedRuns,
    });
  } catch (e) {
    await connection.close();
    throw e;
  }
  log.info(
    {
      taskQueue: config.temporal.taskQueue,
      address: config.temporal.address,
      // The name each task this worker runs carries in the run's history.
      identity: worker.options.identity,
      // The main thread's limit comes from how the process was started (the embedded stack passes the
      // flags; elsewhere, NODE_OPTIONS); the workflow thread's from MECHANIC_WORKER_HEAP_MB.
      heapLimitMiB,
      maxCachedRuns: config.worker.maxCachedRuns,
    },
    'worker started',
  );
  const done = worker.run().finally(() => connection.close());
  return {
    done,
    async shutdown() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done;
    },
  };
}
