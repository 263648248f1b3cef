import { hasControlCharacters, ssmParameterNameProblem, type ParamValue, type ScalarValue } from './params.ts';
import { UserError } from './errors.ts';
import { analyzeScript, type PlaceholderUse } from './shell-placement.ts';

/**
 * Quotes a value as exactly one shell word. Single quotes make bash take every character
 * literally (no `$`, backtick, glob or word splitting); an embedded single quote is closed,
 * escaped and reopened. Control characters are refused outright: a newline in a value would
 * be one word for bash but could still mislead a person reading the rendered script.
 */
export function shellQuote(value: ScalarValue): string {
  const text = String(value);
  if (hasControlCharacters(text)) {
    throw new UserError('TEMPLATE_UNSAFE', 'a parameter value contains a control character, which is never allowed');
  }
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** An integer as bash arithmetic reads it: optional minus, decimal digits, nothing else. */
const INTEGER = /^-?\d{1,15}$/;

export interface RenderOptions {
  /**
   * Parameters whose value is the name of an SSM Parameter Store parameter (type: secret). Such a
   * placeholder becomes a shell variable that the script fills, on the instance and under the
   * instance's own role, before its first line runs; mechanic never sees the secret.
   */
  readonly secrets?: ReadonlySet<string>;
}

/** The shell variable a secret parameter's value is read into: a name no placeholder can produce. */
export const secretVariable = (param: string): string => `__mechanic_secret_${param}`;

/**
 * The line that reads one secret on the instance: the AWS CLI with the instance's own credentials
 * (its instance profile), the value decrypted there. If it cannot be read, the step stops before
 * any command runs, rather than running them with an empty value.
 */
export function secretFetchLine(param: string, parameterName: string, optionPosition = false): string {
  const problem = ssmParameterNameProblem(parameterName);
  if (problem !== undefined) {
    throw new UserError('TEMPLATE_UNSAFE', `the secret parameter "${param}" ${problem}`);
  }
  const name = shellQuote(parameterName);
  const variable = secretVariable(param);
  const read =
    `${variable}=$(aws ssm get-parameter --name ${name} --with-decryption --query Parameter.Value --output text) || ` +
    `{ echo ${shellQuote(`mechanic: cannot read the SSM parameter ${parameterName} with this instance's role; see the error above`)} >&2; exit 1; }`;
  if (!optionPosition) return read;
  // Where a command could take the value for an option (`--to-command=…`), a plain value starting
  // with "-" is refused when the plan is made; a secret is only known on the instance, so there.
  return (
    `${read}\n` +
    `case "\${${variable}}" in -*) echo ${shellQuote(`mechanic: the SSM parameter ${parameterName} starts with "-", where a command could read it as an option; put -- before it in the script`)} >&2; exit 1 ;; esac`
  );
}

/**
 * Renders a step script: each `{{ name }}` becomes its value, placed where the bash parser proved
 * it safe (shell-placement.ts). An argument becomes one single-quoted word; a list becomes one
 * single-quoted word per item, only where it stands alone as a command argument; an integer in
 * arithmetic becomes bare digits, which bash cannot read as anything but a number; a secret becomes
 * "${variable}", read at the top of the script. Parameters are data, never code, so there is no
 * raw form. Runbooks are checked when loaded; checking again here keeps a hand-built plan honest too.
 */
export function renderScript(
  script: string,
  values: Readonly<Record<string, ParamValue>>,
  options: RenderOptions = {},
): string {
  const analysis = analyzeScript(script);
  if (analysis.syntaxError) {
    const { line, column, reason } = analysis.syntaxError;
    throw new UserError(
      'TEMPLATE_UNSAFE',
      `the script cannot run as written: at line ${line}, column ${column}, ${reason}; fix it before it can run`,
    );
  }
  const secrets = options.secrets ?? new Set<string>();
  /** Each secret the script uses, and whether a use of it stands where it could be read as an option. */
  const fetched = new Map<string, { name: string; optionPosition: boolean }>();
  let out = '';
  let last = 0;
  for (const use of analysis.uses) {
    const secret = secrets.has(use.name);
    out += script.slice(last, use.offset) + (secret ? renderSecret(use, values) : renderValue(use, values));
    if (secret && use.placement.kind !== 'comment') {
      const optionPosition = use.placement.kind === 'argument' && use.placement.optionPosition;
      const seen = fetched.get(use.name)?.optionPosition ?? false;
      fetched.set(use.name, { name: String(values[use.name]), optionPosition: seen || optionPosition });
    }
    last = use.offset + use.length;
  }
  out += script.slice(last);
  if (fetched.size === 0) return out;
  // The reads go first (after a #! line, which must stay first), so that no command of the
  // script runs before every secret it uses was read.
  const prelude = [...fetched].map(([param, f]) => secretFetchLine(param, f.name, f.optionPosition)).join('\n') + '\n';
  if (out.startsWith('#!')) {
    const eol = out.indexOf('\n');
    return eol === -1 ? `${out}\n${prelude}` : out.slice(0, eol + 1) + prelude + out.slice(eol + 1);
  }
  return prelude + out;
}

function valueOf(use: PlaceholderUse, values: Readonly<Record<string, ParamValue>>): ParamValue {
  const value = Object.hasOwn(values, use.name) ? values[use.name] : undefined;
  if (value === undefined) {
    throw new UserError('TEMPLATE_UNSAFE', `the script uses {{ ${use.name} }}, but no value was given for it`);
  }
  return value;
}

function refusedPlacement(use: PlaceholderUse, rule: string, why: string): never {
  throw new UserError(
    'TEMPLATE_UNSAFE',
    `{{ ${use.name} }} at line ${use.line} stands ${why} (rule ${rule}); move it to a plain argument word`,
  );
}

function renderSecret(use: PlaceholderUse, values: Readonly<Record<string, ParamValue>>): string {
  const name = valueOf(use, values);
  if (typeof name !== 'string') {
    throw new UserError(
      'TEMPLATE_UNSAFE',
      `{{ ${use.name} }} is a secret reference, but its value is not a parameter name`,
    );
  }
  const { placement } = use;
  switch (placement.kind) {
    case 'refused':
      return refusedPlacement(use, placement.rule, placement.why);
    case 'arithmetic':
      return refusedPlacement(use, 'secret-placement', 'in arithmetic or an assignment, where a secret may not go');
    case 'comment':
      // Never run: the reference's name, as any value in a comment.
      return shellQuote(name);
    case 'argument':
      // In option position the read at the top refuses a value starting with "-" (secretFetchLine).
      return `"\${${secretVariable(use.name)}}"`;
  }
}

function renderValue(use: PlaceholderUse, values: Readonly<Record<string, ParamValue>>): string {
  const value = valueOf(use, values);
  const where = `{{ ${use.name} }} at line ${use.line}`;
  const { placement } = use;
  switch (placement.kind) {
    case 'refused':
      return refusedPlacement(use, placement.rule, placement.why);
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
    case 'argument': {
      if (Array.isArray(value) && !placement.wholeArgument) {
        return refusedPlacement(
          use,
          'list-placement',
          'glued to other text or inside [ … ], where a list, which becomes several words, would change what the command reads',
        );
      }
      const items = Array.isArray(value) ? value : [value];
      // A value the command could take for an option (`--to-command=…`, `-exec`) can run code too.
      items.forEach((item, i) => {
        if (placement.optionPosition && String(item).startsWith('-')) {
          throw new UserError(
            'TEMPLATE_UNSAFE',
            `${where} would ${Array.isArray(value) ? `have item ${i} start` : 'start'} with "-" where the command could read it as an option; ` +
              `pass a value that does not start with "-", or put -- before it in the script`,
          );
        }
      });
      return items.map(shellQuote).join(' ');
    }
    case 'comment':
      return Array.isArray(value) ? value.map(shellQuote).join(' ') : shellQuote(value);
  }
}
