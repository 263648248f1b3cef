/**
 * Step conditions and how step controls read (issue 12, mutation round four): the refusals of a
 * condition on a parameter it cannot test, each refusal's wording (article, type and what to
 * write), and the notes of a skipped, retried or failed-but-continued step.
 */
import { describe, expect, test } from 'vitest';
import type { StepView } from '../../src/core/execution.ts';
import type { PlannedStep } from '../../src/core/plan.ts';
import { ParameterSchema, type Parameter } from '../../src/core/runbook.ts';
import { conditionProblems, type StepCondition } from '../../src/core/step-condition.ts';
import { plannedStepAt, plannedStepNotes, stepRunNotes } from '../../src/core/step-controls-text.ts';

function params(raw: Record<string, unknown>): Record<string, Parameter> {
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, ParameterSchema.parse(v)]));
}

const OF = `step "work"'s condition`;

describe('conditionProblems', () => {
  test('a condition in a runbook without parameters says the runbook declares none', () => {
    expect(conditionProblems('work', { param: 'mode', equals: 'full' }, {})).toEqual([
      {
        field: 'param',
        message: `${OF} tests "mode", which is not a declared parameter (this runbook declares none); fix the name or declare it (rule condition-parameter)`,
      },
    ]);
  });

  test('a list or secret parameter cannot be tested, whatever the operator', () => {
    const p = params({
      hosts: { type: 'list', items: { type: 'string' } },
      token: { type: 'secret' },
    });
    expect(conditionProblems('work', { param: 'hosts', in: ['a'] }, p)).toEqual([
      {
        field: 'param',
        message: `${OF} tests "hosts", a list parameter; a condition may test only a string, integer, boolean or enum parameter (rule condition-parameter)`,
      },
    ]);
    expect(conditionProblems('work', { param: 'token', equals: '/a/b' }, p)).toEqual([
      expect.objectContaining({ field: 'param', message: expect.stringContaining('a secret parameter;') }),
    ]);
  });

  test('a valid value of each testable type is no problem', () => {
    const p = params({
      host: { type: 'string' },
      count: { type: 'integer' },
      drain: { type: 'boolean' },
      mode: { type: 'enum', values: ['quick', 'full'] },
    });
    expect(conditionProblems('work', { param: 'host', equals: 'web-1' }, p)).toEqual([]);
    expect(conditionProblems('work', { param: 'count', notEquals: 3 }, p)).toEqual([]);
    expect(conditionProblems('work', { param: 'drain', equals: false }, p)).toEqual([]);
    expect(conditionProblems('work', { param: 'mode', in: ['quick', 'full'] }, p)).toEqual([]);
  });

  test('a value of the wrong type names the type with its article and says what to write', () => {
    const p = params({
      host: { type: 'string' },
      count: { type: 'integer' },
      drain: { type: 'boolean' },
      mode: { type: 'enum', values: ['quick', 'full'] },
    });
    const message = (c: StepCondition) => conditionProblems('work', c, p).map((x) => x.message);
    expect(message({ param: 'host', equals: 5 })).toEqual([
      `${OF}: 5 is not a value "host" can take (it is a string parameter, so write text) (rule condition-value)`,
    ]);
    expect(message({ param: 'count', equals: 'two' })).toEqual([
      `${OF}: "two" is not a value "count" can take (it is an integer parameter, so write a whole number) (rule condition-value)`,
    ]);
    expect(message({ param: 'count', equals: 1.5 })).toEqual([
      `${OF}: 1.5 is not a value "count" can take (it is an integer parameter, so write a whole number) (rule condition-value)`,
    ]);
    expect(message({ param: 'drain', equals: 'yes' })).toEqual([
      `${OF}: "yes" is not a value "drain" can take (it is a boolean parameter, so write true or false) (rule condition-value)`,
    ]);
    expect(message({ param: 'mode', equals: 1 })).toEqual([
      `${OF}: 1 is not a value "mode" can take (it is an enum parameter, so write text) (rule condition-value)`,
    ]);
  });

  test('a problem of equals or notEquals names no list item; one of in or notIn names its item', () => {
    const p = params({ count: { type: 'integer' } });
    const [single] = conditionProblems('work', { param: 'count', equals: 'x' }, p);
    expect(single).toEqual({ field: 'equals', message: expect.any(String) });
    expect(Object.hasOwn(single!, 'item')).toBe(false);
    const [listed] = conditionProblems('work', { param: 'count', notIn: [1, 'x'] }, p);
    expect(listed).toEqual({ field: 'notIn', item: 1, message: expect.any(String) });
  });
});

const step = (over: Partial<PlannedStep>): PlannedStep => ({
  name: 'work',
  script: 'true',
  timeoutSeconds: 60,
  ...over,
});

describe('plannedStepNotes', () => {
  test('a skipped step says only that it is never sent, and why', () => {
    expect(plannedStepNotes(step({ skipped: 'mode is not "full"', condition: 'mode is "full"', retries: 2 }))).toEqual([
      'skipped, never sent: mode is not "full"',
    ]);
  });

  test('a step with a condition says why it runs; continueOnError says a failure does not stop the run', () => {
    expect(plannedStepNotes(step({ condition: 'mode is "full"' }))).toEqual(['runs because mode is "full"']);
    expect(plannedStepNotes(step({ continueOnError: true }))).toEqual([
      'a failure does not stop the run (continueOnError)',
    ]);
    expect(plannedStepNotes(step({}))).toEqual([]);
  });

  test('one retry reads "1 time", more read "times"; the delay defaults to 0 s', () => {
    expect(plannedStepNotes(step({ retries: 1 }))).toEqual([
      'if it fails, sent again up to 1 time, 0 s apart, to the instances it failed on',
    ]);
    expect(plannedStepNotes(step({ retries: 2, retryDelaySeconds: 30 }))).toEqual([
      'if it fails, sent again up to 2 times, 30 s apart, to the instances it failed on',
    ]);
  });
});

const view = (over: Partial<StepView>): StepView => ({
  name: 'work',
  phase: 'main',
  status: 'running',
  instances: [],
  ...over,
});

describe('stepRunNotes', () => {
  test('an attempt is counted out of the planned sends when the plan retries the step', () => {
    expect(stepRunNotes(view({ attempt: 2 }), step({ retries: 2 }))).toEqual(['attempt 2 of 3']);
    expect(stepRunNotes(view({ attempt: 1 }), step({}))).toEqual(['attempt 1']);
    expect(stepRunNotes(view({ attempt: 1 }), undefined)).toEqual(['attempt 1']);
  });

  test('the reason shows for a skipped or failed step that has one, and for no other', () => {
    expect(stepRunNotes(view({ status: 'skipped', reason: 'mode is not "full"' }), undefined)).toEqual([
      'mode is not "full"',
    ]);
    expect(stepRunNotes(view({ status: 'failed', reason: 'SSM refused instance i-1' }), undefined)).toEqual([
      'SSM refused instance i-1',
    ]);
    expect(stepRunNotes(view({ status: 'succeeded', reason: 'not shown' }), undefined)).toEqual([]);
    expect(stepRunNotes(view({ status: 'running', reason: 'not shown' }), undefined)).toEqual([]);
    expect(stepRunNotes(view({ status: 'skipped' }), undefined)).toEqual([]);
  });
});

describe('plannedStepAt', () => {
  test('indexes the main steps first, then onFailure', () => {
    const plan = { steps: [step({ name: 'a' }), step({ name: 'b' })], onFailure: [step({ name: 'undo' })] };
    expect(plannedStepAt(plan, 1)?.name).toBe('b');
    expect(plannedStepAt(plan, 2)?.name).toBe('undo');
    expect(plannedStepAt(plan, 3)).toBeUndefined();
  });
});
