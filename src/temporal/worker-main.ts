import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { failureConverterPath } from './codec.ts';
import { dataConverterFrom } from './connect.ts';
import type { Config } from '../config.ts';
import { createLogger } from '../log.ts';
import { openSigningAuditStore } from '../store/audit-log.ts';
import { startWorker, WORKFLOWS_PATH } from './worker.ts';
import { exitIfStoppedWhileStarting } from '../embedded/part.ts';

/** The worker process (`mechanic worker`): runs workflows and activities until SIGINT/SIGTERM. */
export async function runWorker(config: Config): Promise<number> {
  const log = createLogger('worker', config.logLevel);
  const { stopped, started } = exitIfStoppedWhileStarting(config.supervised, () => log.info('stopped while starting'));
  // Settings first: a worker refused for its codec keys must not leave an audit store behind.
  dataConverterFrom(config.temporal);
  const audit = await openSigningAuditStore(config, {
    onCheckpointError: (err) => log.error({ err }, 'could not sign a checkpoint of the audit log'),
  });
  const worker = await startWorker(config, audit, log);
  started();
  log.info({ taskQueue: config.temporal.taskQueue }, 'ready');
  const why = await Promise.race([stopped.then(() => 'signal' as const), worker.done.then(() => 'worker' as const)]);
  if (why === 'signal') {
    log.info('shutting down: finishing in-flight activity calls');
    await worker.shutdown();
  }
  await audit.close();
  log.info('stopped');
  return 0;
}

/**
 * `mechanic bundle`: writes the workflow code as one pre-built bundle, for production workers
 * (MECHANIC_WORKFLOW_BUNDLE), so they start fast and every worker runs byte-identical code.
 */
export async function writeWorkflowBundle(file: string): Promise<void> {
  // The encrypting failure converter is bundled too: without it, a failure raised in workflow code
  // would reach Temporal's history in clear on every worker that loads this bundle.
  const { code } = await bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    failureConverterPath: failureConverterPath(),
    logger: quietLogger,
  });
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, code);
  // Workflow code is no secret and is meant to be shipped: readable by all, unlike mechanic's state (see bin/).
  await chmod(file, 0o644);
}

const ignore = (): void => {};
const quietLogger = { log: ignore, trace: ignore, debug: ignore, info: ignore, warn: ignore, error: ignore };
