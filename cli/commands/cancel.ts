import { loadConfig } from '../../src/config.ts';
import { UserError } from '../../src/core/errors.ts';
import { connectApi } from '../api.ts';
import { parse } from '../args.ts';
import { out } from '../output.ts';

const USAGE = 'mechanic cancel <execution> --reason "why" [--as user] [--json]';

/** `mechanic cancel`: stops an execution waiting for approval, or cancels the step it is running. */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { reason: { type: 'string', short: 'r' }, as: { type: 'string' }, json: { type: 'boolean' } },
    USAGE,
  );
  const [id, ...extra] = positionals;
  if (!id || extra.length) throw new UserError('USAGE', `name exactly one execution; usage: ${USAGE}`);
  if (!values.reason) throw new UserError('USAGE', 'say why you cancel it: add --reason "why"');
  const api = await connectApi(loadConfig(), values.as);
  const { status } = await api.call('cancel', { params: { id }, body: { reason: values.reason } });
  if (values.json) out.json({ executionId: id, cancelRequestedWhile: status });
  else
    out.line(
      status === 'running'
        ? `cancelling ${id}: its running step's command is being cancelled; follow it with: mechanic status ${id} --wait`
        : `cancelled ${id} before it ran`,
    );
  return 0;
}
