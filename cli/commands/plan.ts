import { loadConfig } from '../../src/config.ts';
import { UserError } from '../../src/core/errors.ts';
import { connectApi } from '../api.ts';
import { keyValues, parse } from '../args.ts';
import { formatPlanDetail } from '../format.ts';
import { out } from '../output.ts';

const USAGE =
  'mechanic plan <runbook> [--param name=value]… [--target id-or-name]… [--version n] [--reason "why"] [--as user] [--json]';

/** What a plan made only to be read says when no reason is given (the plan records one). */
const PREVIEW_REASON = 'preview with mechanic plan; nothing was started';

/**
 * `mechanic plan`: exactly what a launch would run — per step, per instance, as which role, under
 * which session policy, for how long — and its digest. It uses the API's dry-run route, which
 * plans with the server's own rules and inventory and starts nothing.
 */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      param: { type: 'string', multiple: true, short: 'p' },
      target: { type: 'string', multiple: true, short: 't' },
      reason: { type: 'string', short: 'r' },
      version: { type: 'string' },
      as: { type: 'string' },
      json: { type: 'boolean' },
    },
    USAGE,
  );
  const [runbook, ...extra] = positionals;
  if (!runbook || extra.length) throw new UserError('USAGE', `name exactly one runbook; usage: ${USAGE}`);
  const version = values.version === undefined ? undefined : Number(values.version);
  if (version !== undefined && !(Number.isInteger(version) && version > 0))
    throw new UserError('USAGE', '--version takes a whole number, e.g. --version 2');
  const api = await connectApi(loadConfig(), values.as);
  const planned = await api.call('plan', {
    body: {
      runbook,
      ...(version !== undefined ? { version } : {}),
      params: keyValues(values.param, '--param'),
      ...(values.target ? { targets: values.target } : {}),
      reason: values.reason ?? PREVIEW_REASON,
    },
  });
  if (values.json) {
    out.json(planned);
    return 0;
  }
  out.line(`plan only — nothing was started\n${formatPlanDetail(planned.plan, planned.planDigest)}`);
  return 0;
}
