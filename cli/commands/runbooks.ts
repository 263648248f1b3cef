import { loadConfig } from '../../src/config.ts';
import { connectApi } from '../api.ts';
import { parse } from '../args.ts';
import { out } from '../output.ts';

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(
    argv,
    { as: { type: 'string' }, json: { type: 'boolean' } },
    'mechanic runbooks [--as user] [--json]',
  );
  const api = await connectApi(loadConfig(), values.as);
  const { runbooks } = await api.call('listRunbooks');
  if (values.json) {
    out.json(runbooks);
    return 0;
  }
  for (const r of runbooks) {
    const params = Object.entries(r.parameters)
      .map(([k, p]) => `${k}${p.default === undefined ? '' : `=${JSON.stringify(p.default)}`}`)
      .join(' ');
    out.line(
      `${r.name} v${r.version}  ${r.description}\n    params: ${params || '(none)'}; steps: ${r.steps.map((s) => s.name).join(', ')}`,
    );
  }
  return 0;
}
