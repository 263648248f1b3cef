/**
 * Step conditions: a step runs only when a test on one parameter holds. The test is data, not code
 * (one parameter, one operator, literal values), decided when the plan is made, so approvers see
 * exactly which steps will run and the plan digest covers the decision.
 *
 * Workflow-safe and pure: zod-free types and plain functions.
 */
import type { Parameter } from './runbook.ts';
import { checkParamValue, type ParamValue, type ParamValues } from './params.ts';

export type ConditionValue = string | number | boolean;

/** `{ param: mode, equals: full }`, `{ param: mode, in: [a, b] }`, `{ param: drain }` (a boolean is true). */
export interface StepCondition {
  readonly param: string;
  readonly equals?: ConditionValue | undefined;
  readonly notEquals?: ConditionValue | undefined;
  readonly in?: readonly ConditionValue[] | undefined;
  readonly notIn?: readonly ConditionValue[] | undefined;
}

export const CONDITION_OPERATORS = ['equals', 'notEquals', 'in', 'notIn'] as const;
type Operator = (typeof CONDITION_OPERATORS)[number];

/** The parameter types a condition may test: one value each, compared as written. */
const TESTABLE: ReadonlySet<string> = new Set(['string', 'integer', 'boolean', 'enum']);

/** A problem of one condition, at a field of the condition (`param`, `equals`, `in`…). */
export interface ConditionProblem {
  readonly field: 'param' | Operator;
  /** The item of an `in`/`notIn` list it is about. */
  readonly item?: number;
  readonly message: string;
}

const shown = (v: unknown) => JSON.stringify(v);

function operatorsOf(c: StepCondition): Operator[] {
  return CONDITION_OPERATORS.filter((op) => c[op] !== undefined);
}

/**
 * Checks a condition against the runbook's declared parameters: the parameter exists and holds
 * one value, there is exactly one operator (none only for a boolean), and every value is one the
 * parameter could take, so a condition can never be decided by a typo. `step` names the step.
 */
export function conditionProblems(
  step: string,
  c: StepCondition,
  parameters: Readonly<Record<string, Parameter>>,
): ConditionProblem[] {
  const of = `step "${step}"'s condition`;
  if (!Object.hasOwn(parameters, c.param)) {
    const known = Object.keys(parameters);
    return [
      {
        field: 'param',
        message: `${of} tests "${c.param}", which is not a declared parameter (${known.length ? `declared: ${known.join(', ')}` : 'this runbook declares none'}); fix the name or declare it (rule condition-parameter)`,
      },
    ];
  }
  const spec = parameters[c.param]!;
  if (!TESTABLE.has(spec.type)) {
    return [
      {
        field: 'param',
        message: `${of} tests "${c.param}", a ${spec.type} parameter; a condition may test only a string, integer, boolean or enum parameter (rule condition-parameter)`,
      },
    ];
  }
  const ops = operatorsOf(c);
  if (ops.length > 1) {
    return [
      {
        field: ops[1]!,
        message: `${of} uses both ${ops[0]} and ${ops[1]}; a condition takes one of equals, notEquals, in or notIn (rule condition-operator)`,
      },
    ];
  }
  const op = ops[0];
  if (op === undefined) {
    return spec.type === 'boolean'
      ? []
      : [
          {
            field: 'param',
            message: `${of} names the ${spec.type} parameter "${c.param}" without a test; add equals, notEquals, in or notIn (only a boolean parameter may stand alone) (rule condition-operator)`,
          },
        ];
  }
  const values = op === 'in' || op === 'notIn' ? (c[op] ?? []) : [c[op]!];
  const problems: ConditionProblem[] = [];
  const listed = op === 'in' || op === 'notIn';
  for (const [i, value] of values.entries()) {
    const problem = valueProblem(c.param, spec, value);
    if (problem !== undefined) {
      problems.push({ field: op, ...(listed ? { item: i } : {}), message: `${of}: ${problem} (rule condition-value)` });
    } else if (listed && values.indexOf(value) < i) {
      problems.push({
        field: op,
        item: i,
        message: `${of} lists ${shown(value)} twice under ${op}; remove the second one (rule condition-value)`,
      });
    }
  }
  return problems;
}

/** Why `value` can never be a value of the parameter, or undefined when it can. Types are compared strictly. */
function valueProblem(name: string, spec: Parameter, value: ConditionValue): string | undefined {
  const expected = spec.type === 'integer' ? 'number' : spec.type === 'boolean' ? 'boolean' : 'string';
  if (typeof value !== expected || (spec.type === 'integer' && !Number.isSafeInteger(value))) {
    const want = spec.type === 'integer' ? 'a whole number' : spec.type === 'boolean' ? 'true or false' : 'text';
    const a = spec.type === 'integer' || spec.type === 'enum' ? 'an' : 'a';
    return `${shown(value)} is not a value "${name}" can take (it is ${a} ${spec.type} parameter, so write ${want})`;
  }
  const problem = checkParamValue(name, spec, value);
  return problem === undefined ? undefined : `${shown(value)} is a value "${name}" can never take: ${problem}`;
}

/** The condition as a reader says it: `mode is "full"`, `drain is true`, `size is one of 1, 2`. */
export function describeCondition(c: StepCondition): string {
  const list = (vs: readonly ConditionValue[]) => vs.map(shown).join(', ');
  if (c.equals !== undefined) return `${c.param} is ${shown(c.equals)}`;
  if (c.notEquals !== undefined) return `${c.param} is not ${shown(c.notEquals)}`;
  if (c.in !== undefined) return `${c.param} is one of ${list(c.in)}`;
  if (c.notIn !== undefined) return `${c.param} is none of ${list(c.notIn)}`;
  return `${c.param} is true`;
}

/** Decides a condition on the run's parameter values (already checked and defaulted). */
export function conditionHolds(c: StepCondition, params: Readonly<ParamValues>): boolean {
  const value: ParamValue | undefined = params[c.param];
  if (c.equals !== undefined) return value === c.equals;
  if (c.notEquals !== undefined) return value !== c.notEquals;
  if (c.in !== undefined) return c.in.includes(value as ConditionValue);
  if (c.notIn !== undefined) return !c.notIn.includes(value as ConditionValue);
  return value === true;
}
