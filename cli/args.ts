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

/**
 * `--param k=v` pairs into an object; a value may itself contain "=". A name given more than once
 * collects its values in order, as the items of a list parameter (`--param hosts=a --param hosts=b`).
 * A value is never split (not at commas, not at spaces): one `--param` is one item.
 */
export function keyValues(pairs: readonly string[] | undefined, flag: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UserError('USAGE', `${flag} takes name=value; got "${pair}"`);
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    const before = Object.hasOwn(out, name) ? out[name] : undefined;
    out[name] = before === undefined ? value : [...(Array.isArray(before) ? before : [before]), value];
  }
  return out;
}
