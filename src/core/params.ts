import type { ListItem, Parameter, Runbook } from './runbook.ts';
import { UserError } from './errors.ts';
import { matchesPattern } from './pattern.ts';
import { hasRefusedCharacters, humanTextProblem, quoteForMessage } from './text.ts';

/** One value of a string, integer, boolean, enum or secret parameter (a secret's value is its name). */
export type ScalarValue = string | number | boolean;
/** A list parameter's value is an array of its items. */
export type ParamValue = ScalarValue | ScalarValue[];
export type ParamValues = Record<string, ParamValue>;

/**
 * An SSM Parameter Store name as AWS accepts it: letters, digits and `_.-/`, at most 2048
 * characters. A name in a hierarchy starts with "/", has no empty level and at most 15 levels;
 * ".." is refused so a name can never read like a path that climbs out of its folder.
 */
const SSM_PARAMETER_NAME = /^\/?[a-zA-Z0-9_.\-/]{1,2048}$/;
const SSM_MAX_LEVELS = 15;

/** Why a text is not an SSM Parameter Store name, as the end of a sentence; undefined when it is one. */
export function ssmParameterNameProblem(name: string): string | undefined {
  if (!SSM_PARAMETER_NAME.test(name)) {
    return 'must be an SSM Parameter Store name (letters, digits and _.-/, at most 2048 characters) like /prod/db/password';
  }
  if (name.includes('..')) return 'must not contain ".." (an SSM Parameter Store name is not a file path)';
  if (name.includes('/')) {
    if (!name.startsWith('/'))
      return 'must start with "/" when it names a level of a hierarchy, like /prod/db/password';
    if (name.endsWith('/') || name.includes('//')) return 'must not have an empty level (a "/" at the end or "//")';
    if (name.split('/').length - 1 > SSM_MAX_LEVELS) return `must not have more than ${SSM_MAX_LEVELS} levels`;
  }
  return undefined;
}

/**
 * Checks raw parameter input (strings from the CLI, or JSON values from the API) against the
 * runbook's declared parameters and returns typed values with defaults filled in. Every problem is
 * reported at once, one sentence each, so the operator fixes them in one go.
 */
export function parseParams(runbook: Runbook, raw: Readonly<Record<string, unknown>>): ParamValues {
  const problems: string[] = [];
  const out: ParamValues = {};
  for (const name of Object.keys(raw)) {
    if (!Object.hasOwn(runbook.parameters, name)) {
      const known = Object.keys(runbook.parameters);
      problems.push(
        `"${name}" is not a parameter of ${runbook.name}` +
          (known.length ? ` (its parameters are: ${known.join(', ')})` : ' (it takes none)'),
      );
    }
  }
  for (const [name, spec] of Object.entries(runbook.parameters)) {
    const given = raw[name];
    if (given === undefined) {
      if (spec.default === undefined) problems.push(`parameter "${name}" is required: ${describe(spec)}`);
      else out[name] = Array.isArray(spec.default) ? [...spec.default] : spec.default;
      continue;
    }
    const problem = checkParamValue(name, spec, given);
    if (problem !== undefined) problems.push(problem);
    else out[name] = coerce(spec, given);
  }
  if (problems.length) {
    throw new UserError(
      'PARAMS_INVALID',
      problems.length === 1 ? problems[0]! : problems.map((p) => `- ${p}`).join('\n'),
    );
  }
  return out;
}

/**
 * Checks one value against its parameter's rules: the problem as one sentence, or undefined when
 * the value is acceptable. Used for operator input and for the runbook's own defaults alike.
 */
export function checkParamValue(name: string, spec: Parameter, given: unknown): string | undefined {
  switch (spec.type) {
    case 'list': {
      const problems = listProblems(name, spec, given);
      return problems.length ? problems.join('; ') : undefined;
    }
    case 'secret': {
      if (typeof given !== 'string') {
        return `parameter "${name}" must be the name of an SSM Parameter Store parameter; got ${quoteForMessage(given)}`;
      }
      const refused = humanTextProblem(`parameter "${name}"`, given);
      if (refused !== undefined) return refused;
      const problem = ssmParameterNameProblem(given);
      // The name is shown (it is not the secret); a wrong name is the usual mistake to fix.
      if (problem !== undefined) return `parameter "${name}" ${problem}; got ${quoteForMessage(given)}`;
      // The author's bound: the instance role decides what can be read, this decides what may be
      // asked for. A valid name has no "..", "//" or trailing "/", so a plain prefix test is exact.
      if (spec.prefix !== undefined && !given.startsWith(spec.prefix)) {
        return `parameter "${name}" must name an SSM parameter under ${spec.prefix}, the only path this runbook lets it read; got ${quoteForMessage(given)}`;
      }
      return undefined;
    }
    default:
      return checkScalar(name, spec, given);
  }
}

/**
 * Every problem of a list value: its length against minItems/maxItems, then each item against the
 * item rules, named with its index (`hosts[2]`) so the operator knows which one to fix. A single
 * string stands for a list of that one item (what `--param hosts=a` sends); it is never split.
 */
export function listProblems(name: string, spec: Extract<Parameter, { type: 'list' }>, given: unknown): string[] {
  const items = typeof given === 'string' ? [given] : given;
  if (!Array.isArray(items)) {
    return [`parameter "${name}" must be a list of ${describeItem(spec.items)} values; got ${quoteForMessage(given)}`];
  }
  if (items.length < spec.minItems) {
    return [
      `parameter "${name}" must list at least ${spec.minItems} item${spec.minItems === 1 ? '' : 's'}; got ${items.length}`,
    ];
  }
  if (items.length > spec.maxItems) {
    return [
      `parameter "${name}" must list at most ${spec.maxItems} item${spec.maxItems === 1 ? '' : 's'}; got ${items.length}`,
    ];
  }
  const problems: string[] = [];
  items.forEach((item: unknown, i) => {
    const problem = checkScalar(`${name}[${i}]`, spec.items, item);
    if (problem !== undefined) problems.push(problem);
  });
  return problems;
}

/** The rules of a string, integer, boolean or enum value: of a parameter, or of one list item. */
function checkScalar(name: string, spec: ListItem, given: unknown): string | undefined {
  const shown = quoteForMessage(given);
  switch (spec.type) {
    case 'string': {
      if (typeof given !== 'string') return `parameter "${name}" must be a string; got ${shown}`;
      const refused = humanTextProblem(`parameter "${name}"`, given);
      if (refused !== undefined) return refused;
      // Length first: the pattern then never runs on more than maxLength characters.
      if (given.length > spec.maxLength) return `parameter "${name}" is longer than ${spec.maxLength} characters`;
      if (spec.pattern !== undefined && !matchesPattern(spec.pattern, given)) {
        return `parameter "${name}" must match ${spec.pattern}; got ${shown}`;
      }
      return undefined;
    }
    case 'integer': {
      const n = toInteger(given);
      if (
        !Number.isSafeInteger(n) ||
        (spec.min !== undefined && n < spec.min) ||
        (spec.max !== undefined && n > spec.max)
      ) {
        return `parameter "${name}" must be ${describe(spec)}; got ${shown}`;
      }
      return undefined;
    }
    case 'boolean':
      return typeof given === 'boolean' || given === 'true' || given === 'false'
        ? undefined
        : `parameter "${name}" must be true or false; got ${shown}`;
    case 'enum':
      return typeof given === 'string' && spec.values.includes(given)
        ? undefined
        : `parameter "${name}" must be one of ${spec.values.join(', ')}; got ${shown}`;
  }
}

function toInteger(given: unknown): number {
  if (typeof given === 'number') return given;
  return typeof given === 'string' && /^-?\d{1,15}$/.test(given) ? Number(given) : NaN;
}

/** The typed form of a value that passed checkParamValue (CLI input arrives as strings). */
function coerce(spec: Parameter, given: unknown): ParamValue {
  switch (spec.type) {
    case 'list': {
      const items = (typeof given === 'string' ? [given] : given) as unknown[];
      return items.map((item) => coerceScalar(spec.items, item));
    }
    case 'secret':
      return given as string;
    default:
      return coerceScalar(spec, given);
  }
}

function coerceScalar(spec: ListItem, given: unknown): ScalarValue {
  switch (spec.type) {
    case 'integer':
      return toInteger(given);
    case 'boolean':
      return given === true || given === 'true';
    case 'string':
    case 'enum':
      return given as string;
  }
}

function describeItem(spec: ListItem): string {
  return spec.type === 'enum' ? 'enum' : spec.type;
}

function describe(spec: Parameter | ListItem): string {
  switch (spec.type) {
    case 'string':
      return spec.pattern ? `a string matching ${spec.pattern}` : 'a string';
    case 'integer':
      if (spec.min !== undefined && spec.max !== undefined) return `an integer from ${spec.min} to ${spec.max}`;
      if (spec.min !== undefined) return `an integer of at least ${spec.min}`;
      if (spec.max !== undefined) return `an integer of at most ${spec.max}`;
      return 'an integer';
    case 'boolean':
      return 'true or false';
    case 'enum':
      return `one of ${spec.values.join(', ')}`;
    case 'list':
      return `a list of ${spec.minItems} to ${spec.maxItems} items, each ${describe(spec.items)}`;
    case 'secret':
      return 'the name of an SSM Parameter Store parameter, like /prod/db/password';
  }
}

/**
 * A plan's parameter as a person reads it (before neutralising): a secret reference says it is
 * one, since its value is only the name of the secret, read on the instance.
 */
export function planParamText(name: string, value: ParamValue, secretParams: readonly string[] = []): string {
  return secretParams.includes(name)
    ? `${name}=secret ${String(value)} (SSM Parameter Store, read on the instance)`
    : `${name}=${JSON.stringify(value)}`;
}

/**
 * True when a value holds a control, separator, direction-changing or invisible format character
 * (see core/text.ts): such a value could make a rendered script or a plan read differently to a
 * reviewer than it runs. Kept for the template's last-line check; new code uses humanTextProblem.
 */
export function hasControlCharacters(value: string): boolean {
  return hasRefusedCharacters(value);
}
