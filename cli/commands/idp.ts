import { loadConfig } from '../../src/config.ts';
import { UserError } from '../../src/core/errors.ts';
import { runDevIdpPart } from '../../src/embedded/idp.ts';

/** `mechanic idp`: the embedded stack's development OpenID provider (src/embedded/idp.ts); mechanic dev starts it. */
export async function run(argv: string[]): Promise<number> {
  if (argv.length) throw new UserError('USAGE', 'mechanic idp takes no arguments; settings come from the environment');
  return runDevIdpPart(loadConfig());
}
