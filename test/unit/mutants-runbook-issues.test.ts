/**
 * The issues a runbook's cross-field rules raise (issue 12, mutation round four): each is a zod
 * issue of code "custom" — lint reads that code to give the rule and the located message, any
 * other code would be explained as a plain invalid value — at the path it is about. Every
 * runbook is built inside its test.
 */
import { describe, expect, test } from 'vitest';
import { RunbookSchema, parseRunbook } from '../../src/core/runbook.ts';

const base = {
  name: 'tune',
  version: 1,
  description: 'Tune the service.',
  roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
  targets: { tags: { Role: 'api' } },
  steps: [{ name: 's', script: 'echo hi' }],
};

function issues(overrides: Record<string, unknown>): { code: string; path: PropertyKey[]; message: string }[] {
  const result = RunbookSchema.safeParse({ ...base, ...overrides });
  if (result.success) return [];
  return result.error.issues.map((i) => ({ code: i.code, path: i.path, message: i.message }));
}

describe('each cross-field rule raises one custom issue at its path', () => {
  test.each<[string, Record<string, unknown>, PropertyKey[], string | RegExp]>([
    [
      'high risk with one approval group',
      { risk: 'high', approval: { required: 2, groups: ['sre'] } },
      ['approval', 'groups'],
      'a high-risk runbook needs approvers from two different groups: list at least two groups under approval.groups',
    ],
    [
      'high risk with one approval required',
      { risk: 'high', approval: { required: 1, groups: ['sre', 'dba'] } },
      ['approval', 'required'],
      'a high-risk runbook needs approvals from two different groups, so approval.required must be at least 2',
    ],
    [
      'a retry delay without retries',
      { steps: [{ name: 's', script: 'echo hi', retryDelaySeconds: 5 }] },
      ['steps', 0, 'retryDelaySeconds'],
      /rule retry-delay-without-retries/,
    ],
    [
      'a step name used twice',
      {
        steps: [{ name: 's', script: 'echo hi' }],
        onFailure: [{ name: 's', script: 'echo undo' }],
      },
      [],
      'step name "s" is used twice',
    ],
    [
      'a script bash cannot parse',
      { steps: [{ name: 's', script: 'if true; then echo' }] },
      ['steps'],
      /^step "s", line \d+, column \d+: .*; fix the syntax \(rule unparsable-script\)$/,
    ],
    [
      'an undeclared placeholder',
      { steps: [{ name: 's', script: 'echo {{ who }}' }] },
      ['steps'],
      'step "s" uses {{ who }}, which is not a declared parameter',
    ],
    [
      'a placeholder where bash runs it as code',
      { parameters: { who: { type: 'string' } }, steps: [{ name: 's', script: 'eval {{ who }}' }] },
      ['steps'],
      /^step "s", line 1: \{\{ who \}\} stands /,
    ],
    [
      'a "{{" that is no placeholder',
      { steps: [{ name: 's', script: 'echo {{ 1x }}' }] },
      ['steps'],
      'step "s" has a "{{" that is not a placeholder like {{ name }}',
    ],
    [
      'targets from an undeclared parameter',
      { targets: { fromParameter: 'hosts' } },
      ['targets', 'fromParameter'],
      /rule target-parameter\)$/,
    ],
    [
      'a parameter with a reserved name',
      { parameters: { mechanic_x: { type: 'string' } } },
      [],
      `parameter "mechanic_x" takes a name reserved for mechanic's built-in placeholders (names starting with mechanic_); rename it`,
    ],
    [
      'a pattern RE2 cannot run',
      { parameters: { who: { type: 'string', pattern: '(a)\\1' } } },
      [],
      /^parameter "who" /,
    ],
    [
      'a default its own rules refuse',
      { parameters: { n: { type: 'integer', min: 1, default: 0 } } },
      [],
      /^the default of parameter "n" /,
    ],
    [
      'a list whose minItems is above its maxItems',
      { parameters: { hosts: { type: 'list', items: { type: 'string' }, minItems: 3, maxItems: 2 } } },
      ['parameters', 'hosts', 'minItems'],
      'parameter "hosts" has minItems greater than maxItems; swap them or fix one (rule list-bounds)',
    ],
  ])('%s', (_what, overrides, path, message) => {
    const found = issues(overrides);
    expect(found).toHaveLength(1);
    expect(found[0]).toEqual({
      code: 'custom',
      path,
      message: typeof message === 'string' ? message : expect.stringMatching(message),
    });
  });
});

describe('a placeholder is written {{ name }} with or without spaces inside the braces', () => {
  test.each(['echo {{who}}', 'echo {{ who}}', 'echo {{who }}', 'echo {{  who  }}'])('%s', (script) => {
    expect(() =>
      parseRunbook({ ...base, parameters: { who: { type: 'string' } }, steps: [{ name: 's', script }] }),
    ).not.toThrow();
  });
});
