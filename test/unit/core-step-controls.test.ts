import { describe, expect, test } from 'vitest';
import { dispatchToken } from '../../src/activities/ssm.ts';
import { auditEvent, instanceEventId, requestedEvent, type NewAuditEvent } from '../../src/core/audit-events.ts';
import { digestOf } from '../../src/core/canonical.ts';
import { viewFromAudit } from '../../src/core/execution-view.ts';
import { lintRunbookText } from '../../src/core/lint.ts';
import { usesStepControls } from '../../src/core/execution.ts';
import { buildPlan, type Plan } from '../../src/core/plan.ts';
import { parseRunbook, type Runbook } from '../../src/core/runbook.ts';
import { conditionHolds, describeCondition } from '../../src/core/step-condition.ts';
import { completedWithFailures } from '../../workflows/runbook-execution.ts';

/**
 * Step controls (issue 10): a condition on parameters decided at plan time, retries as new
 * commands, continueOnError. The workflow and devfleet runs are in test/integration/step-controls*.
 */

const HEAD = `name: controls
version: 1
description: Step controls.
roleArn: arn:aws:iam::123456789012:role/mechanic-runner
parameters:
  mode: { type: enum, values: [quick, full], default: quick }
  drain: { type: boolean, default: false }
  count: { type: integer, min: 1, max: 5, default: 2 }
  host: { type: string, pattern: "^web-[0-9]+$", default: web-1 }
targets:
  tags: { Role: web }
`;

function runbook(steps: unknown[], onFailure: unknown[] = []): Runbook {
  return parseRunbook({
    name: 'controls',
    version: 1,
    description: 'Step controls.',
    roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
    parameters: {
      mode: { type: 'enum', values: ['quick', 'full'], default: 'quick' },
      drain: { type: 'boolean', default: false },
      count: { type: 'integer', min: 1, max: 5, default: 2 },
    },
    targets: { tags: { Role: 'web' } },
    steps,
    onFailure,
  });
}

function plan(rb: Runbook, rawParams: Record<string, unknown> = {}): { plan: Plan; planDigest: string } {
  return buildPlan({
    executionId: 'mx-controls01',
    runbook: rb,
    runbookDigest: 'f'.repeat(64),
    rawParams,
    targets: [{ instanceId: 'i-0d3f1ee7000000001', name: 'web-1' }],
    requester: 'alice',
    reason: 'step controls test',
    region: 'us-east-1',
    now: new Date('2026-11-01T00:00:00Z'),
  });
}

const lint = (steps: string) =>
  lintRunbookText('controls.yaml', HEAD + steps).problems.map((p) => `${p.line}:${p.column} [${p.rule}] ${p.message}`);

describe('conditions are checked against the declared parameters, each problem located', () => {
  test('an undeclared parameter, at its name', () => {
    expect(lint('steps:\n  - name: a\n    script: echo a\n    condition: { param: mod, equals: full }\n')).toEqual([
      '15:25 [condition-parameter] step "a"\'s condition tests "mod", which is not a declared parameter (declared: mode, drain, count, host); fix the name or declare it',
    ]);
  });

  test('a value the parameter can never take: not an enum value, out of range, not matching its pattern', () => {
    expect(
      lint(
        [
          'steps:',
          '  - name: a',
          '    script: echo a',
          '    condition: { param: mode, equals: slow }',
          '  - name: b',
          '    script: echo b',
          '    condition: { param: count, in: [1, 9] }',
          '  - name: c',
          '    script: echo c',
          '    condition: { param: host, notEquals: db-1 }',
          '',
        ].join('\n'),
      ),
    ).toEqual([
      '15:39 [condition-value] step "a"\'s condition: "slow" is a value "mode" can never take: parameter "mode" must be one of quick, full; got "slow"',
      '18:40 [condition-value] step "b"\'s condition: 9 is a value "count" can never take: parameter "count" must be an integer from 1 to 5; got 9',
      '21:42 [condition-value] step "c"\'s condition: "db-1" is a value "host" can never take: parameter "host" must match ^web-[0-9]+$; got "db-1"',
    ]);
  });

  test('a value of the wrong type is refused even where a typed-in value would be coerced', () => {
    expect(lint('steps:\n  - name: a\n    script: echo a\n    condition: { param: count, equals: "2" }\n')).toEqual([
      '15:40 [condition-value] step "a"\'s condition: "2" is not a value "count" can take (it is an integer parameter, so write a whole number)',
    ]);
    expect(lint('steps:\n  - name: a\n    script: echo a\n    condition: { param: drain, equals: "true" }\n')).toEqual([
      '15:40 [condition-value] step "a"\'s condition: "true" is not a value "drain" can take (it is a boolean parameter, so write true or false)',
    ]);
  });

  test('one operator: none only for a boolean, never two; a value listed twice', () => {
    expect(
      lint(
        [
          'steps:',
          '  - name: a',
          '    script: echo a',
          '    condition: { param: mode }',
          '  - name: b',
          '    script: echo b',
          '    condition: { param: mode, equals: full, notIn: [quick] }',
          '  - name: c',
          '    script: echo c',
          '    condition: { param: mode, notIn: [full, full] }',
          '  - name: d',
          '    script: echo d',
          '    condition: { param: drain }',
          '',
        ].join('\n'),
      ),
    ).toEqual([
      '15:25 [condition-operator] step "a"\'s condition names the enum parameter "mode" without a test; add equals, notEquals, in or notIn (only a boolean parameter may stand alone)',
      '18:52 [condition-operator] step "b"\'s condition uses both equals and notIn; a condition takes one of equals, notEquals, in or notIn',
      '21:45 [condition-value] step "c"\'s condition lists "full" twice under notIn; remove the second one',
    ]);
  });

  test('an unknown operator is an unknown field, with the likely one suggested', () => {
    expect(lint('steps:\n  - name: a\n    script: echo a\n    condition: { param: mode, equal: full }\n')).toEqual([
      '15:25 [condition-operator] step "a"\'s condition names the enum parameter "mode" without a test; add equals, notEquals, in or notIn (only a boolean parameter may stand alone)',
      '15:31 [unknown-field] "equal" is not a field of steps[0].condition; did you mean "equals"?',
    ]);
  });

  test('retries 0 to 5, a delay only with retries, continueOnError not on an onFailure step', () => {
    expect(
      lint(
        [
          'steps:',
          '  - name: a',
          '    script: echo a',
          '    retries: 6',
          '  - name: b',
          '    script: echo b',
          '    retryDelaySeconds: 5',
          'onFailure:',
          '  - name: c',
          '    script: echo c',
          '    continueOnError: true',
          '',
        ].join('\n'),
      ),
    ).toEqual([
      '15:14 [out-of-range] steps[0].retries must be at most 5',
      '18:24 [retry-delay-without-retries] step "b" sets retryDelaySeconds but is never retried; add retries (1 to 5) or remove it',
      '22:22 [continue-on-error-in-on-failure] step "c" is an onFailure step, and every onFailure step runs whatever the others do, so continueOnError means nothing here; remove it',
    ]);
  });

  test('a runbook using every control is lint-clean', () => {
    expect(
      lint(
        [
          'steps:',
          '  - name: a',
          '    script: echo a',
          '    condition: { param: mode, in: [full] }',
          '    retries: 2',
          '    retryDelaySeconds: 1',
          '    continueOnError: true',
          '  - name: b',
          '    script: echo b',
          '    condition: { param: drain }',
          '',
        ].join('\n'),
      ),
    ).toEqual([]);
  });
});

describe('conditions decide', () => {
  const cases: [Parameters<typeof conditionHolds>[0], Record<string, string | number | boolean>, boolean, string][] = [
    [{ param: 'mode', equals: 'full' }, { mode: 'full' }, true, 'mode is "full"'],
    [{ param: 'mode', equals: 'full' }, { mode: 'quick' }, false, 'mode is "full"'],
    [{ param: 'mode', notEquals: 'full' }, { mode: 'quick' }, true, 'mode is not "full"'],
    [{ param: 'mode', notEquals: 'full' }, { mode: 'full' }, false, 'mode is not "full"'],
    [{ param: 'count', in: [1, 2] }, { count: 2 }, true, 'count is one of 1, 2'],
    [{ param: 'count', in: [1, 2] }, { count: 3 }, false, 'count is one of 1, 2'],
    [{ param: 'count', notIn: [1, 2] }, { count: 3 }, true, 'count is none of 1, 2'],
    [{ param: 'count', notIn: [1, 2] }, { count: 1 }, false, 'count is none of 1, 2'],
    [{ param: 'drain' }, { drain: true }, true, 'drain is true'],
    [{ param: 'drain' }, { drain: false }, false, 'drain is true'],
    [{ param: 'drain', equals: false }, { drain: false }, true, 'drain is false'],
  ];
  test.each(cases)('%j on %j holds: %s', (condition, params, holds, text) => {
    expect(conditionHolds(condition, params)).toBe(holds);
    expect(describeCondition(condition)).toBe(text);
  });
});

describe('the plan says which steps run, and its digest covers it', () => {
  const rb = runbook([
    { name: 'always', script: 'echo always' },
    { name: 'full-only', script: 'echo full', condition: { param: 'mode', equals: 'full' }, timeoutSeconds: 600 },
    { name: 'flaky', script: 'echo flaky', retries: 2, timeoutSeconds: 100 },
    { name: 'optional', script: 'echo optional', continueOnError: true, retries: 1, retryDelaySeconds: 30 },
  ]);

  test('a condition that does not hold: the step is in the plan, skipped, with why', () => {
    const { plan: p } = plan(rb);
    expect(p.steps[1]).toEqual({
      name: 'full-only',
      script: 'echo full',
      timeoutSeconds: 600,
      condition: 'mode is "full"',
      skipped: 'its condition (mode is "full") does not hold: mode is "quick"',
    });
    const { plan: full } = plan(rb, { mode: 'full' });
    expect(full.steps[1]).toEqual({
      name: 'full-only',
      script: 'echo full',
      timeoutSeconds: 600,
      condition: 'mode is "full"',
    });
  });

  test('retries with their delay (10 s unless set) and continueOnError are in the plan', () => {
    const { plan: p } = plan(rb);
    expect(p.steps[2]).toEqual({
      name: 'flaky',
      script: 'echo flaky',
      timeoutSeconds: 100,
      retries: 2,
      retryDelaySeconds: 10,
    });
    expect(p.steps[3]).toMatchObject({ retries: 1, retryDelaySeconds: 30, continueOnError: true });
  });

  test('the same runbook with other values that change what runs has another digest', () => {
    expect(plan(rb).planDigest).not.toBe(plan(rb, { mode: 'full' }).planDigest);
  });

  test('the credential lifetime counts every attempt and pause, and no skipped step', () => {
    const over = 60; // per-attempt delivery overhead
    // always 300+60, full-only skipped, flaky 3×(100+60)+2×10, optional 2×(300+60)+30, plus 300 for the run.
    const expected = 300 + over + 3 * (100 + over) + 2 * 10 + 2 * (300 + over) + 30 + 300;
    expect(plan(rb).plan.budgetSeconds).toBe(expected);
    expect(plan(rb, { mode: 'full' }).plan.budgetSeconds).toBe(expected + 600 + over);
  });

  test('a runbook without controls plans steps with exactly the fields older plans had', () => {
    const old = runbook([{ name: 'a', script: 'echo a', retries: 0 }], [{ name: 'b', script: 'echo b' }]);
    const { plan: p, planDigest } = plan(old);
    for (const s of [...p.steps, ...p.onFailure]) expect(Object.keys(s)).toEqual(['name', 'script', 'timeoutSeconds']);
    expect(usesStepControls(p)).toBe(false);
    expect(planDigest).toBe(digestOf(p));
    expect(usesStepControls(plan(rb).plan)).toBe(true);
    expect(usesStepControls(plan(runbook([{ name: 'a', script: 'echo a', continueOnError: true }])).plan)).toBe(true);
    expect(usesStepControls(plan(runbook([{ name: 'a', script: 'echo a', condition: { param: 'drain' } }])).plan)).toBe(
      true,
    );
  });
});

describe('each attempt is its own command and its own records', () => {
  const base = { executionId: 'mx-controls01', stepIndex: 2, phase: 'main' as const };
  test('the first attempt keeps the token and instance-record id older runs used; later ones get their own', () => {
    expect(dispatchToken(base)).toBe('mechanic mx-controls01 step 2');
    expect(dispatchToken({ ...base, attempt: 1 })).toBe('mechanic mx-controls01 step 2');
    expect(dispatchToken({ ...base, attempt: 2 })).toBe('mechanic mx-controls01 step 2 attempt 2');
    expect(dispatchToken({ ...base, phase: 'onFailure', attempt: 3 })).toBe(
      'mechanic mx-controls01 onfailure 2 attempt 3',
    );
    expect(instanceEventId('mx-1', 'main', 2, 'i-1')).toBe('mx-1:step.instance:main:2:i-1');
    expect(instanceEventId('mx-1', 'main', 2, 'i-1', 1)).toBe('mx-1:step.instance:main:2:i-1');
    expect(instanceEventId('mx-1', 'main', 2, 'i-1', 2)).toBe('mx-1:step.instance:main:2:i-1:attempt:2');
  });
});

describe('the view rebuilt from the audit log shows skips, attempts and allowed failures', () => {
  const rb = runbook(
    [
      { name: 'full-only', script: 'echo full', condition: { param: 'mode', equals: 'full' } },
      { name: 'flaky', script: 'echo flaky', retries: 2 },
      { name: 'optional', script: 'exit 1', continueOnError: true },
    ],
    [{ name: 'report', script: 'echo report' }],
  );
  const { plan: p, planDigest } = plan(rb);
  const id = p.executionId;
  let n = 0;
  const ev = (type: NewAuditEvent['type'], data: Record<string, unknown>): NewAuditEvent =>
    auditEvent(type, {
      eventId: `${id}:${String(++n).padStart(4, '0')}:${type}`,
      executionId: id,
      actor: 'mechanic',
      at: '2026-11-01T00:00:01.000Z',
      data: data,
    });
  const ref = (index: number, step: string) => ({ step, index, phase: 'main' });
  const instance = (index: number, step: string, attempt: number, commandId: string, status: string) =>
    ev('step.instance', {
      ...ref(index, step),
      attempt,
      commandId,
      instanceId: 'i-0d3f1ee7000000001',
      status,
      statusDetails: status,
      responseCode: status === 'Success' ? 0 : 1,
      stdout: '',
      stderr: '',
      outputSha256: '0'.repeat(64),
    });
  const story = (upTo?: number): NewAuditEvent[] => {
    n = 0;
    const all = [
      requestedEvent({ plan: p, planDigest }) as NewAuditEvent,
      ev('approval.granted', { planDigest }),
      ev('execution.running', { approvedBy: ['bob'] }),
      ev('step.skipped', { ...ref(0, 'full-only'), reason: p.steps[0]!.skipped }),
      ev('step.started', { ...ref(1, 'flaky'), attempt: 1, commandId: 'c-1' }),
      instance(1, 'flaky', 1, 'c-1', 'Failed'),
      ev('step.completed', { ...ref(1, 'flaky'), attempt: 1, commandId: 'c-1', ok: false, retrying: true }),
      ev('step.started', { ...ref(1, 'flaky'), attempt: 2, commandId: 'c-2' }),
      instance(1, 'flaky', 2, 'c-2', 'Success'),
      ev('step.completed', { ...ref(1, 'flaky'), attempt: 2, commandId: 'c-2', ok: true }),
      ev('step.started', { ...ref(2, 'optional'), commandId: 'c-3' }),
      ev('step.completed', { ...ref(2, 'optional'), commandId: 'c-3', ok: false, continuedOnError: true }),
      ev('execution.completed', { reason: completedWithFailures(['optional']), failedSteps: ['optional'] }),
    ];
    return upTo === undefined ? all : all.slice(0, upTo);
  };

  test('every record fits the vocabulary', () => {
    expect(viewFromAudit(story())?.unreadable).toBeUndefined();
  });

  test('after a failed attempt the step is still running, on its next attempt with fresh results', () => {
    const view = viewFromAudit(story(7))!;
    expect(view.steps[1]).toMatchObject({ status: 'running', attempt: 1 });
    const next = viewFromAudit(story(8))!;
    expect(next.steps[1]).toMatchObject({ status: 'running', attempt: 2, commandId: 'c-2', instances: [] });
  });

  test('at the end: skipped with why, succeeded on attempt 2, failed and gone past, completed saying so', () => {
    const view = viewFromAudit(story())!;
    expect(view.status).toBe('completed');
    expect(view.reason).toBe('completed, but step "optional" failed and the run went on past it (continueOnError)');
    expect(view.steps).toEqual([
      expect.objectContaining({ name: 'full-only', status: 'skipped', reason: p.steps[0]!.skipped }),
      expect.objectContaining({ name: 'flaky', status: 'succeeded', attempt: 2, commandId: 'c-2' }),
      expect.objectContaining({ name: 'optional', status: 'failed', continuedOnError: true }),
      expect.objectContaining({ name: 'report', status: 'skipped' }),
    ]);
    expect(view.steps[1]!.instances.map((i) => i.status)).toEqual(['Success']);
  });

  test('several allowed failures are named together', () => {
    expect(completedWithFailures(['a', 'b'])).toBe(
      'completed, but steps "a", "b" failed and the run went on past them (continueOnError)',
    );
  });
});
