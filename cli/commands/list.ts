import { loadConfig } from '../../src/config.ts';
import type { ExecutionStatus } from '../../src/core/execution.ts';
import { UserError } from '../../src/core/errors.ts';
import { connectApi } from '../api.ts';
import { parse } from '../args.ts';
import { formatSummaries } from '../format.ts';
import { out } from '../output.ts';

const USAGE = 'mechanic list [--status s] [--limit n] [--as user] [--json]';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { status: { type: 'string' }, limit: { type: 'string' }, as: { type: 'string' }, json: { type: 'boolean' } },
    USAGE,
  );
  if (positionals.length) throw new UserError('USAGE', `list takes no arguments; usage: ${USAGE}`);
  const api = await connectApi(loadConfig(), values.as);
  const { executions } = await api.call('listExecutions', {
    query: {
      ...(values.status ? { status: values.status as ExecutionStatus } : {}),
      ...(values.limit ? { limit: values.limit } : {}),
    },
  });
  if (values.json) out.json(executions);
  else out.line(formatSummaries(executions));
  return 0;
}
