import type { Config } from '../config.ts';
import { createLogger } from '../log.ts';
import { openAuditStore } from '../store/audit-log.ts';
import { startWorker } from './worker.ts';
import { exitIfStoppedWhileStarting } from '../embedded/part.ts';

/** The worker process (`mechanic worker`): runs workflows and activities until SIGINT/SIGTERM. */
export async function runWorker(config: Config): Promise<number> {
  const log = createLogger('worker', config.logLevel);
  const { stopped, started } = exitIfStoppedWhileStarting(config.supervised, () => log.info('stopped while starting'));
  const audit = await openAuditStore(config.store);
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
