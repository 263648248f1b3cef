/**
 * The compiled entry of `mechanic runbook lint` and `mechanic runbook schema` (cli/tui/bundle-cache.ts
 * builds it, bin/mechanic.js loads it): what cli/main.ts and cli/commands/runbook.ts do for these two
 * subcommands, with the same output, one-sentence failures and exit codes. `argv` starts after
 * `runbook`.
 */
import { run, schema } from './runbook-lint.ts';
import { reportFailure } from '../output.ts';

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    return sub === 'schema' ? await schema(rest) : await run(rest);
  } catch (e) {
    // cli/main.ts answers in JSON when the words after the command name include --json.
    return reportFailure(e, argv.includes('--json'));
  }
}
