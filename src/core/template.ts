import { hasControlCharacters, type ParamValue } from './params.ts';
import { UserError } from './errors.ts';
import { analyzeScript, type PlaceholderUse } from './shell-placement.ts';

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

/** An integer as bash arithmetic reads it: optional minus, decimal digits, nothing else. */
const INTEGER = /^-?\d{1,15}$/;

/**
 * Renders a step script: each `{{ name }}` becomes its value, placed where the bash parser proved
 * it safe (shell-placement.ts). An argument becomes one single-quoted word; an integer in
 * arithmetic becomes bare digits, which bash cannot read as anything but a number. Parameters are
 * data, never code, so there is no raw form. Runbooks are checked when loaded; checking again here
 * keeps a hand-built plan honest too.
 */
export function renderScript(script: string, values: Readonly<Record<string, ParamValue>>): string {
  const analysis = analyzeScript(script);
  if (analysis.syntaxError) {
    const { line, column, reason } = analysis.syntaxError;
    throw new UserError(
      'TEMPLATE_UNSAFE',
      `the script cannot run as written: at line ${line}, column ${column}, ${reason}; fix it before it can run`,
    );
  }
  let out = '';
  let last = 0;
  for (const use of analysis.uses) {
    out += script.slice(last, use.offset) + renderValue(use, values);
    last = use.offset + use.length;
  }
  return out + script.slice(last);
}

function renderValue(use: PlaceholderUse, values: Readonly<Record<string, ParamValue>>): string {
  const value = Object.hasOwn(values, use.name) ? values[use.name] : undefined;
  if (value === undefined) {
    throw new UserError('TEMPLATE_UNSAFE', `the script uses {{ ${use.name} }}, but no value was given for it`);
  }
  const where = `{{ ${use.name} }} at line ${use.line}`;
  const { placement } = use;
  switch (placement.kind) {
    case 'refused':
      throw new UserError(
        'TEMPLATE_UNSAFE',
        `${where} stands ${placement.why} (rule ${placement.rule}); move it to a plain argument word`,
      );
    case 'arithmetic': {
      const text = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
      if (typeof text !== 'string' || !INTEGER.test(text)) {
        throw new UserError(
          'TEMPLATE_UNSAFE',
          `${where} stands in arithmetic or an assignment, where only an integer may go, but got ${JSON.stringify(value)}; pass a whole number`,
        );
      }
      return text;
    }
    case 'argument':
      // A value the command could take for an option (`--to-command=…`, `-exec`) can run code too.
      if (placement.optionPosition && String(value).startsWith('-')) {
        throw new UserError(
          'TEMPLATE_UNSAFE',
          `${where} would start with "-" where the command could read it as an option; ` +
            `pass a value that does not start with "-", or put -- before it in the script`,
        );
      }
      return shellQuote(value);
    case 'comment':
      return shellQuote(value);
  }
}
