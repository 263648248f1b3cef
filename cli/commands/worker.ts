import { loadConfig } from '../../src/config.ts';
import { createLogger, untilSignal } from '../../src/log.ts';
import { openAuditStore } from '../../src/store/audit-log.ts';
import { startWorker } from '../../src/temporal/worker.ts';

/** `mechanic worker`: runs workflows and activities until SIGINT/SIGTERM. */
export async function run(): Promise<number> {
  const config = loadConfig();
  const log = createLogger('worker', config.logLevel);
  const audit = await openAuditStore(config.store);
  const worker = await startWorker(config, audit, log);
  log.info({ taskQueue: config.temporal.taskQueue }, 'ready');
  const stopped = await Promise.race([
    untilSignal(config.supervised).then(() => 'signal' as const),
    worker.done.then(() => 'worker' as const),
  ]);
  if (stopped === 'signal') {
    log.info('shutting down: finishing in-flight activity calls');
    await worker.shutdown();
  }
  await audit.close();
  log.info('stopped');
  return 0;
}
