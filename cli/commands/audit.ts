import { loadConfig } from '../../src/config.ts';
import { UserError } from '../../src/core/errors.ts';
import { connectApi } from '../api.ts';
import { parse } from '../args.ts';
import { formatAudit } from '../format.ts';
import { out } from '../output.ts';

const USAGE =
  'mechanic audit list [--execution id] [--limit n] [--as user] [--json] | mechanic audit verify [--as user] [--json]';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      execution: { type: 'string', short: 'e' },
      limit: { type: 'string' },
      as: { type: 'string' },
      json: { type: 'boolean' },
    },
    USAGE,
  );
  const [sub, ...extra] = positionals;
  if (extra.length || (sub !== 'list' && sub !== 'verify')) throw new UserError('USAGE', `usage: ${USAGE}`);
  const api = await connectApi(loadConfig(), values.as);
  if (sub === 'verify') {
    const { verdict } = await api.call('verifyAudit');
    if (values.json) out.json(verdict);
    else
      out.line(
        verdict.ok
          ? `audit chain intact: ${verdict.count} records`
          : `audit chain BROKEN at record #${verdict.seq}: ${verdict.reason}`,
      );
    return verdict.ok ? 0 : 1;
  }
  const { records } = await api.call('listAudit', {
    query: {
      ...(values.execution ? { executionId: values.execution } : {}),
      ...(values.limit ? { limit: values.limit } : {}),
    },
  });
  if (values.json) out.json(records);
  else out.line(formatAudit(records));
  return 0;
}
