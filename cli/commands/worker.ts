import { loadConfig } from '../../src/config.ts';
import { UserError } from '../../src/core/errors.ts';
import { runWorker } from '../../src/temporal/worker-main.ts';

/** `mechanic worker`: starts the worker process (src/temporal/worker-main.ts). */
export async function run(argv: string[]): Promise<number> {
  if (argv.length)
    throw new UserError('USAGE', 'mechanic worker takes no arguments; settings come from the environment');
  return runWorker(loadConfig());
}
