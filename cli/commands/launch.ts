import { loadConfig } from '../../src/config.ts';
import { connectApi } from '../api.ts';
import { keyValues, parse } from '../args.ts';
import { formatPlan } from '../format.ts';
import { out } from '../output.ts';
import { UserError } from '../../src/core/errors.ts';

const USAGE =
  'mechanic launch <runbook> [--param name=value]… --reason "why" [--target id-or-name]… [--version n] [--dry-run] [--as user] [--json]';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      param: { type: 'string', multiple: true, short: 'p' },
      target: { type: 'string', multiple: true, short: 't' },
      reason: { type: 'string', short: 'r' },
      version: { type: 'string' },
      'dry-run': { type: 'boolean' },
      as: { type: 'string' },
      json: { type: 'boolean' },
    },
    USAGE,
  );
  const [runbook, ...extra] = positionals;
  if (!runbook || extra.length) throw new UserError('USAGE', `name exactly one runbook; usage: ${USAGE}`);
  if (values.reason === undefined)
    throw new UserError('USAGE', 'a reason is required: add --reason "why this run is needed"');
  const version = values.version === undefined ? undefined : Number(values.version);
  if (version !== undefined && !Number.isInteger(version))
    throw new UserError('USAGE', '--version takes a whole number');
  const api = await connectApi(loadConfig(), values.as);
  const body = {
    runbook,
    ...(version !== undefined ? { version } : {}),
    params: keyValues(values.param, '--param'),
    ...(values.target ? { targets: values.target } : {}),
    reason: values.reason,
  };
  if (values['dry-run']) {
    const planned = await api.call('plan', { body });
    if (values.json) out.json(planned);
    else out.line(`plan only — nothing was started:\n${formatPlan(planned.plan, planned.planDigest)}`);
    return 0;
  }
  const result = await api.call('launch', { body });
  if (values.json) {
    out.json(result);
    return 0;
  }
  const { executionId } = result;
  out.line(executionId);
  out.info(
    `${formatPlan(result.plan, result.planDigest)}\n\nwaiting for approval: mechanic approve ${executionId} --as <approver>`,
  );
  return 0;
}
