import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { WORKFLOWS_PATH } from '../../src/temporal/worker.ts';
import { UserError } from '../../src/core/errors.ts';
import { parse } from '../args.ts';
import { out } from '../output.ts';

const USAGE = 'mechanic bundle [--out file]';

/**
 * `mechanic bundle`: the workflow code as one pre-built bundle, for production workers
 * (MECHANIC_WORKFLOW_BUNDLE), so they start fast and every worker runs byte-identical code.
 */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { out: { type: 'string', short: 'o' } }, USAGE);
  if (positionals.length) throw new UserError('USAGE', `bundle takes no arguments; usage: ${USAGE}`);
  const file = path.resolve(values.out ?? 'dist/workflow-bundle.js');
  const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger });
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, code);
  out.line(file);
  return 0;
}

const ignore = (): void => {};
const quietLogger = { log: ignore, trace: ignore, debug: ignore, info: ignore, warn: ignore, error: ignore };
