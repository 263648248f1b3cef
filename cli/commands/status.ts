import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/config.ts';
import { TERMINAL_STATUSES, type ExecutionView } from '../../src/core/execution.ts';
import { UserError } from '../../src/core/errors.ts';
import { connectApi } from '../api.ts';
import { parse } from '../args.ts';
import { formatExecution } from '../format.ts';
import { out } from '../output.ts';

const USAGE = 'mechanic status <execution> [--wait] [--as user] [--json]';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { wait: { type: 'boolean', short: 'w' }, as: { type: 'string' }, json: { type: 'boolean' } },
    USAGE,
  );
  const [id, ...extra] = positionals;
  if (!id || extra.length) throw new UserError('USAGE', `name exactly one execution; usage: ${USAGE}`);
  const api = await connectApi(loadConfig(), values.as);
  let view: ExecutionView;
  for (;;) {
    ({ execution: view } = await api.request<{ execution: ExecutionView }>(
      'GET',
      `/api/executions/${encodeURIComponent(id)}`,
    ));
    if (!values.wait || TERMINAL_STATUSES.has(view.status)) break;
    await sleep(500);
  }
  if (values.json) out.json(view);
  else out.line(formatExecution(view));
  return 0;
}
