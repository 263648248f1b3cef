import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
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
    preloadModules: [...PRELOADED_MODULES],
    logger: quietLogger,
  });
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, code);
  // Workflow code is no secret and is meant to be shipped: readable by all, unlike mechanic's state (see bin/).
  await chmod(file, 0o644);
}

/**
 * Modules the worker evaluates once, when it loads the workflow code, instead of once for every run
 * it starts or replays. The audit vocabulary builds its zod schemas when it is evaluated, and it
 * brings zod itself: evaluated per run, that was 1.3 MB of heap for each run kept in the worker's
 * cache and about 40 ms of the workflow thread's time for each run started or replayed (measured on
 * this bundle; the rest of the workflow code costs about 50 KB and under a millisecond).
 *
 * What the SDK requires of a preloaded module (reusable V8 context): it is shared by every run, so it
 * must hold no per-run state (this one is pure), and its exports are deep-frozen when the worker
 * starts. A frozen zod schema cannot be used at all (zod installs its methods on first use), so
 * workflow code may take the vocabulary's functions and constants but never parse with its schemas;
 * test/integration/worker-memory-bundle.test.ts holds both rules.
 */
export const PRELOADED_MODULES: readonly string[] = [
  fileURLToPath(new URL('../core/audit-events.ts', import.meta.url)),
];

const ignore = (): void => {};
const quietLogger = { log: ignore, trace: ignore, debug: ignore, info: ignore, warn: ignore, error: ignore };
