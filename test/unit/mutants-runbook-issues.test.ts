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
    [
      'an integer whose min is above its max',
      { parameters: { n: { type: 'integer', min: 2, max: 1 } } },
      [],
      'parameter "n" has min greater than max',
    ],
    [
      'an enum that lists a value twice',
      { parameters: { m: { type: 'enum', values: ['a', 'a'] } } },
      [],
      'parameter "m" lists a value twice',
    ],
    [
      'a list with bad bounds: its default is not judged against them',
      { parameters: { hosts: { type: 'list', items: { type: 'string' }, minItems: 3, maxItems: 2, default: ['a'] } } },
      ['parameters', 'hosts', 'minItems'],
      /rule list-bounds\)$/,
    ],
    [
      'a list glued to other text',
      {
        parameters: { hosts: { type: 'list', items: { type: 'string' } } },
        steps: [{ name: 's', script: 'echo x{{ hosts }}' }],
      },
      ['steps'],
      /^step "s", line 1: \{\{ hosts \}\} is a list, .*\(rule list-placement\)/,
    ],
    [
      'a secret in arithmetic',
      { parameters: { token: { type: 'secret' } }, steps: [{ name: 's', script: 'echo $(( {{ token }} + 1 ))' }] },
      ['steps'],
      /^step "s", line 1: \{\{ token \}\} is a secret reference, .*\(rule secret-placement\)/,
    ],
    [
      'a condition on an undeclared parameter',
      { steps: [{ name: 's', script: 'echo hi', condition: { param: 'mode', equals: 'full' } }] },
      ['steps', 0, 'condition', 'param'],
      /rule condition-parameter\)$/,
    ],
    [
      'a condition value listed under in that the parameter can never take',
      {
        parameters: { n: { type: 'integer' } },
        steps: [{ name: 's', script: 'echo hi', condition: { param: 'n', in: [1, 'x'] } }],
      },
      ['steps', 0, 'condition', 'in', 1],
      /rule condition-value\)$/,
    ],
    [
      'a retry delay with zero retries',
      { steps: [{ name: 's', script: 'echo hi', retries: 0, retryDelaySeconds: 5 }] },
      ['steps', 0, 'retryDelaySeconds'],
      /rule retry-delay-without-retries\)$/,
    ],
    [
      'continueOnError on an onFailure step',
      { onFailure: [{ name: 'undo', script: 'echo undo', continueOnError: true }] },
      ['onFailure', 0, 'continueOnError'],
      /rule continue-on-error-in-on-failure\)$/,
    ],
    [
      'targets from an integer parameter',
      { parameters: { n: { type: 'integer' } }, targets: { fromParameter: 'n' } },
      ['targets', 'fromParameter'],
      'targets.fromParameter names "n", an integer parameter, but targets come from instance ids or Name tags; make it a string, enum or list of strings (rule target-parameter-type)',
    ],
    [
      'targets from a boolean parameter',
      { parameters: { b: { type: 'boolean' } }, targets: { fromParameter: 'b' } },
      ['targets', 'fromParameter'],
      /^targets.fromParameter names "b", a boolean parameter, /,
    ],
    [
      'targets from a list of integers',
      { parameters: { ns: { type: 'list', items: { type: 'integer' } } }, targets: { fromParameter: 'ns' } },
      ['targets', 'fromParameter'],
      /^targets.fromParameter names "ns", a list of integer, /,
    ],
    [
      'a runbook maxErrors above the instances it lists',
      { targets: { instanceIds: ['i-0123456789abcdef0', 'i-0123456789abcdef1'] }, maxErrors: 3 },
      ['maxErrors'],
      'maxErrors is 3, more than the 2 instances this runbook targets, so no failure could ever stop a step; lower it, or write "100%" to never stop (rule max-errors-above-targets)',
    ],
    [
      "a step's maxErrors above the one instance named",
      { targets: { names: ['web-1'] }, steps: [{ name: 's', script: 'echo hi', maxErrors: 2 }] },
      ['steps', 0, 'maxErrors'],
      /^maxErrors is 2, more than the 1 instance this runbook targets, /,
    ],
    [
      "an onFailure step's maxErrors above the instances listed",
      { targets: { names: ['web-1'] }, onFailure: [{ name: 'undo', script: 'echo undo', maxErrors: 2 }] },
      ['onFailure', 0, 'maxErrors'],
      /rule max-errors-above-targets\)$/,
    ],
    [
      'a list of integers whose item min is above its item max',
      { parameters: { ns: { type: 'list', items: { type: 'integer', min: 5, max: 1 } } } },
      ['parameters', 'ns', 'items', 'min'],
      'parameter "ns" has items.min greater than items.max; swap them or fix one (rule min-above-max)',
    ],
    [
      'a list of enum values that lists one twice',
      { parameters: { ms: { type: 'list', items: { type: 'enum', values: ['a', 'a'] } } } },
      ['parameters', 'ms', 'items', 'values'],
      'parameter "ms" lists an item value twice; remove the second one (rule duplicate-value)',
    ],
    [
      'a list of strings whose item pattern RE2 cannot run',
      { parameters: { hs: { type: 'list', items: { type: 'string', pattern: '(a)\\1' } } } },
      ['parameters', 'hs', 'items', 'pattern'],
      /^parameter "hs" has an item pattern .*\(rule pattern\)$/,
    ],
    [
      'a list default its rules refuse',
      { parameters: { hs: { type: 'list', items: { type: 'string' }, maxItems: 1, default: ['a', 'b'] } } },
      [],
      /^the default of /,
    ],
    [
      'a secret without a prefix whose default is no Parameter Store name',
      { parameters: { token: { type: 'secret', default: 'not a name' } } },
      [],
      /^the default of parameter "token" /,
    ],
    [
      'a list where bash would run it as code',
      {
        parameters: { hosts: { type: 'list', items: { type: 'string' } } },
        steps: [{ name: 's', script: 'eval {{ hosts }}' }],
      },
      ['steps'],
      /^step "s", line 1: \{\{ hosts \}\} stands /,
    ],
    [
      'a list in arithmetic',
      {
        parameters: { hosts: { type: 'list', items: { type: 'integer' } } },
        steps: [{ name: 's', script: 'echo $(( {{ hosts }} + 1 ))' }],
      },
      ['steps'],
      /\(rule list-placement\)/,
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

describe('what the cross-field rules accept', () => {
  test.each<[string, Record<string, unknown>]>([
    ['a retry delay with retries', { steps: [{ name: 's', script: 'echo hi', retries: 1, retryDelaySeconds: 5 }] }],
    ['continueOnError on a main step', { steps: [{ name: 's', script: 'echo hi', continueOnError: true }] }],
    ['targets from a string parameter', { parameters: { h: { type: 'string' } }, targets: { fromParameter: 'h' } }],
    [
      'targets from a list of strings',
      { parameters: { hs: { type: 'list', items: { type: 'string' } } }, targets: { fromParameter: 'hs' } },
    ],
    ['maxErrors equal to the instances listed', { targets: { names: ['web-1', 'web-2'] }, maxErrors: 2 }],
    [
      'a list whose minItems equals its maxItems',
      { parameters: { hs: { type: 'list', items: { type: 'string' }, minItems: 2, maxItems: 2 } } },
    ],
    [
      'a list of integers with item bounds in order, or equal',
      {
        parameters: {
          ns: { type: 'list', items: { type: 'integer', min: 1, max: 5 } },
          one: { type: 'list', items: { type: 'integer', min: 2, max: 2 } },
        },
      },
    ],
    [
      'a list of distinct enum values, and a list of strings with a pattern RE2 runs',
      {
        parameters: {
          ms: { type: 'list', items: { type: 'enum', values: ['a', 'b'] } },
          hs: { type: 'list', items: { type: 'string', pattern: '^web-[0-9]+$' } },
        },
      },
    ],
    ['maxErrors as a share', { targets: { names: ['web-1'] }, maxErrors: '100%' }],
    ['maxErrors with targets by tag', { maxErrors: 7 }],
    [
      'a list as a whole argument, and in a comment',
      {
        parameters: { hosts: { type: 'list', items: { type: 'string' } } },
        steps: [{ name: 's', script: 'ls {{ hosts }} # {{ hosts }}' }],
      },
    ],
    [
      'a secret as an argument',
      {
        parameters: { token: { type: 'secret', prefix: '/app/' } },
        steps: [{ name: 's', script: 'echo {{ token }}' }],
      },
    ],
    [
      'an integer in arithmetic',
      { parameters: { n: { type: 'integer' } }, steps: [{ name: 's', script: 'echo $(( {{ n }} + 1 ))' }] },
    ],
  ])('%s', (_what, overrides) => {
    expect(issues(overrides)).toEqual([]);
  });
});

test('a secret whose prefix is malformed is refused there once: its default is not judged against it', () => {
  const found = issues({ parameters: { token: { type: 'secret', prefix: 'app', default: '/other/token' } } });
  expect(found).toEqual([expect.objectContaining({ path: ['parameters', 'token', 'prefix'] })]);
});
