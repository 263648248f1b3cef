import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UserError } from '../src/core/errors.ts';

/** parseArgs with strict checking, turning its errors into one usage sentence. */
export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, usage: string) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    const message = e instanceof Error ? e.message.replace(/\. To specify a positional argument.*$/s, '') : String(e);
    throw new UserError('USAGE', `${message.replace(/\.$/, '')}; usage: ${usage}`);
  }
}

/** `--param k=v` pairs into an object; a value may itself contain "=". */
export function keyValues(pairs: readonly string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UserError('USAGE', `${flag} takes name=value; got "${pair}"`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}
