import { loadConfig } from '../../src/config.ts';
import type { ExecutionSummary } from '../../src/core/audit.ts';
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
  const q = new URLSearchParams({
    ...(values.status ? { status: values.status } : {}),
    ...(values.limit ? { limit: values.limit } : {}),
  });
  const api = await connectApi(loadConfig(), values.as);
  const { executions } = await api.request<{ executions: ExecutionSummary[] }>(
    'GET',
    `/api/executions?${q.toString()}`,
  );
  if (values.json) out.json(executions);
  else out.line(formatSummaries(executions));
  return 0;
}
