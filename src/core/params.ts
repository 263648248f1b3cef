import type { Parameter, Runbook } from './runbook.ts';
import { UserError } from './errors.ts';

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
    if (!(name in runbook.parameters)) {
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
    const checked = checkValue(name, spec, given);
    if (typeof checked === 'string' && checked.startsWith('\u0000')) problems.push(checked.slice(1));
    else out[name] = checked;
  }
  if (problems.length) {
    throw new UserError('PARAMS_INVALID', problems.length === 1 ? problems[0]! : problems.map((p) => `- ${p}`).join('\n'));
  }
  return out;
}

// A problem is returned as a string prefixed with NUL, which no valid value can start with
// (control characters are refused in values).
function problem(text: string): string {
  return `\u0000${text}`;
}

function checkValue(name: string, spec: Parameter, given: unknown): ParamValue {
  const shown = typeof given === 'string' ? JSON.stringify(given) : String(given);
  switch (spec.type) {
    case 'string': {
      if (typeof given !== 'string') return problem(`parameter "${name}" must be a string; got ${shown}`);
      if (hasControlCharacters(given)) {
        return problem(`parameter "${name}" contains a control character (such as a newline), which is never allowed`);
      }
      if (given.length > spec.maxLength) return problem(`parameter "${name}" is longer than ${spec.maxLength} characters`);
      if (spec.pattern !== undefined && !new RegExp(spec.pattern, 'u').test(given)) {
        return problem(`parameter "${name}" must match ${spec.pattern}; got ${shown}`);
      }
      return given;
    }
    case 'integer': {
      const n = typeof given === 'number' ? given : typeof given === 'string' && /^-?\d{1,15}$/.test(given) ? Number(given) : NaN;
      if (!Number.isSafeInteger(n)) return problem(`parameter "${name}" must be ${describe(spec)}; got ${shown}`);
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        return problem(`parameter "${name}" must be ${describe(spec)}; got ${shown}`);
      }
      return n;
    }
    case 'boolean': {
      if (typeof given === 'boolean') return given;
      if (given === 'true' || given === 'false') return given === 'true';
      return problem(`parameter "${name}" must be true or false; got ${shown}`);
    }
    case 'enum': {
      if (typeof given !== 'string' || !spec.values.includes(given)) {
        return problem(`parameter "${name}" must be one of ${spec.values.join(', ')}; got ${shown}`);
      }
      return given;
    }
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

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/u;

export function hasControlCharacters(value: string): boolean {
  return CONTROL.test(value);
}
