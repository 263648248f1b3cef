import { loadConfig } from '../../src/config.ts';
import { neutralize } from '../../src/core/text.ts';
import { connectApi } from '../api.ts';
import { parse } from '../args.ts';
import { formatRunbooks } from '../format.ts';
import { out } from '../output.ts';

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(
    argv,
    { as: { type: 'string' }, json: { type: 'boolean' } },
    'mechanic runbooks [--as user] [--json]',
  );
  const api = await connectApi(loadConfig(), values.as);
  // `invalid` lists the runbook files the server refused at load, each with a sentence naming it.
  const { runbooks, invalid } = await api.call('listRunbooks');
  if (values.json) {
    out.json({ runbooks, invalid });
    return 0;
  }
  out.line(formatRunbooks(runbooks, invalid));
  // The server says which of them this caller may not launch, with the sentence a launch would get.
  const refused = runbooks.flatMap((r) =>
    r.launch && !r.launch.allowed ? [{ name: r.name, reason: r.launch.reason }] : [],
  );
  if (refused.length > 0) {
    out.line(
      `you may not launch ${refused.length === runbooks.length ? 'any of these' : `${refused.length} of these`}:`,
    );
    for (const r of refused) out.line(`⊘ ${neutralize(r.name)}  ${neutralize(r.reason)}`);
  }
  return 0;
}
