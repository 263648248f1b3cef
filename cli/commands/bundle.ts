import path from 'node:path';
import { writeWorkflowBundle } from '../../src/temporal/worker-main.ts';
import { UserError } from '../../src/core/errors.ts';
import { parse } from '../args.ts';
import { out } from '../output.ts';

const USAGE = 'mechanic bundle [--out file]';

/** `mechanic bundle`: the workflow code as one pre-built bundle for production workers (src/temporal/worker-main.ts). */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { out: { type: 'string', short: 'o' } }, USAGE);
  if (positionals.length) throw new UserError('USAGE', `bundle takes no arguments; usage: ${USAGE}`);
  const file = path.resolve(values.out ?? 'dist/workflow-bundle.js');
  await writeWorkflowBundle(file);
  out.line(file);
  return 0;
}
