/**
 * The compiled TUI's entry (cli/tui/bundle-cache.ts builds it): what `mechanic tui` does through
 * cli/main.ts, with the same one-sentence failures and exit codes.
 */
import { run } from '../commands/tui.ts';
import { reportFailure } from '../output.ts';

export async function main(argv: string[]): Promise<number> {
  try {
    return await run(argv);
  } catch (e) {
    return reportFailure(e, false);
  }
}
