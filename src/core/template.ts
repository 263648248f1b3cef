import { PLACEHOLDER_PATTERN } from './runbook.ts';
import { hasControlCharacters, type ParamValue } from './params.ts';
import { UserError } from './errors.ts';
import { placeholderUses } from './shell-context.ts';

/**
 * Quotes a value as exactly one shell word. Single quotes make bash take every character
 * literally (no `$`, backtick, glob or word splitting); an embedded single quote is closed,
 * escaped and reopened. Control characters are refused outright: a newline in a value would
 * be one word for bash but could still mislead a person reading the rendered script.
 */
export function shellQuote(value: ParamValue): string {
  const text = String(value);
  if (hasControlCharacters(text)) {
    throw new UserError('TEMPLATE_UNSAFE', 'a parameter value contains a control character, which is never allowed');
  }
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * Renders a step script: each `{{ name }}` becomes the shell-quoted value. Parameters are data,
 * never code, so there is no raw (unquoted) form.
 */
export function renderScript(script: string, values: Readonly<Record<string, ParamValue>>): string {
  // Runbooks are checked when parsed; this second check keeps a hand-built plan honest too.
  const unsafe = placeholderUses(script).find((u) => u.unsafe);
  if (unsafe)
    throw new UserError(
      'TEMPLATE_UNSAFE',
      `{{ ${unsafe.name} }} stands inside ${unsafe.unsafe}, where a value could be expanded or run`,
    );
  return script.replace(PLACEHOLDER_PATTERN, (_whole, name: string) => {
    const value = Object.hasOwn(values, name) ? values[name] : undefined;
    if (value === undefined) {
      throw new UserError('TEMPLATE_UNSAFE', `the script uses {{ ${name} }}, but no value was given for it`);
    }
    return shellQuote(value);
  });
}
