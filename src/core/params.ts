import type { Parameter, Runbook } from './runbook.ts';
import { UserError } from './errors.ts';
import { matchesPattern } from './pattern.ts';
import { hasRefusedCharacters, humanTextProblem, quoteForMessage } from './text.ts';

export type ParamValue = string | number | boolean;
export type ParamValues = Record<string, ParamValue>;

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
      else out[name] = spec.default;
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
    case 'integer':
      return toInteger(given);
    case 'boolean':
      return given === true || given === 'true';
    case 'string':
    case 'enum':
      return given as string;
  }
}

function describe(spec: Parameter): string {
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
  }
}

/**
 * True when a value holds a control, separator, direction-changing or invisible format character
 * (see core/text.ts): such a value could make a rendered script or a plan read differently to a
 * reviewer than it runs. Kept for the template's last-line check; new code uses humanTextProblem.
 */
export function hasControlCharacters(value: string): boolean {
  return hasRefusedCharacters(value);
}
