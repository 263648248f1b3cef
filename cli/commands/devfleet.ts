import { loadConfig } from '../../src/config.ts';
import { UserError } from '../../src/core/errors.ts';
import { runDevfleet } from '../../src/devfleet/main.ts';

/** `mechanic devfleet`: starts the devfleet process (src/devfleet/main.ts). */
export async function run(argv: string[]): Promise<number> {
  if (argv.length)
    throw new UserError('USAGE', 'mechanic devfleet takes no arguments; settings come from the environment');
  return runDevfleet(loadConfig());
}
