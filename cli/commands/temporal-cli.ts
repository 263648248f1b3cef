import { findTemporalCli } from '../../src/embedded/provision.ts';
import { out } from '../output.ts';

/** `mechanic temporal-cli`: finds (or builds, the first time) the Temporal CLI and prints its path. */
export async function run(): Promise<number> {
  out.line(await findTemporalCli({ onProgress: (line) => out.info(`· ${line}`) }));
  return 0;
}
