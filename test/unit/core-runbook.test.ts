import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseRunbook, placeholdersOf } from '../../src/core/runbook.ts';

/** Runs `fn` and returns what it threw; fails the test when nothing was thrown. */
function caught(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a throw, but nothing was thrown');
}

/** A small valid runbook as YAML would give it; each test changes one thing. */
function input(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'restart-web',
    version: 1,
    description: 'Restart the web service.',
    roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
    parameters: { service: { type: 'string', default: 'web' } },
    targets: { tags: { Role: 'web' } },
    steps: [{ name: 'restart', script: 'systemctl restart {{ service }}' }],
    ...overrides,
  };
}

const examples = ['deploy-web', 'rotate-logs'] as const;

describe('example runbooks', () => {
  test.each(examples)('runbooks/%s.yaml parses', (name) => {
    const text = readFileSync(new URL(`../../runbooks/${name}.yaml`, import.meta.url), 'utf8');
    const runbook = parseRunbook(parseYaml(text), `runbooks/${name}.yaml`);
    expect(runbook.name).toBe(name);
    expect(runbook.steps.length).toBeGreaterThan(0);
  });
});

describe('defaults', () => {
  test('approval, onFailure, parameters and step timeouts get their defaults', () => {
    const runbook = parseRunbook(input({ parameters: undefined, steps: [{ name: 'restart', script: 'true' }] }));
    expect({
      approval: runbook.approval,
      onFailure: runbook.onFailure,
      parameters: runbook.parameters,
      timeoutSeconds: runbook.steps[0]?.timeoutSeconds,
    }).toEqual({
      approval: { required: 1, expiresAfterMinutes: 60, groups: [] },
      onFailure: [],
      parameters: {},
      timeoutSeconds: 300,
    });
  });

  test('a runbook that says nothing about ownership, risk or groups still loads, with safe defaults', () => {
    const runbook = parseRunbook(input());
    expect({
      owners: runbook.owners,
      risk: runbook.risk,
      readOnly: runbook.readOnly,
      environment: runbook.environment,
      tags: runbook.tags,
      groups: runbook.approval.groups,
    }).toEqual({ owners: [], risk: 'medium', readOnly: false, environment: 'default', tags: [], groups: [] });
  });

  test('an approval block without groups gets an empty list', () => {
    expect(parseRunbook(input({ approval: { required: 2 } })).approval).toEqual({
      required: 2,
      expiresAfterMinutes: 60,
      groups: [],
    });
  });

  test('a string parameter gets a maxLength of 256', () => {
    const runbook = parseRunbook(input());
    expect(runbook.parameters['service']).toMatchObject({ type: 'string', maxLength: 256 });
  });
});

describe('typos are refused (strict objects)', () => {
  test.each([
    ['top level', input({ descripton: 'typo' })],
    ['step', input({ steps: [{ name: 'restart', script: 'true', timeout: 30 }] })],
    ['parameter', input({ parameters: { service: { type: 'string', defualt: 'web' } } })],
    ['approval', input({ approval: { requried: 2 } })],
    ['targets', input({ targets: { tags: { Role: 'web' }, instanceIds: ['i-0123456789abcdef0'] } })],
  ])('an unknown key in the %s', (_where, raw) => {
    expect(caught(() => parseRunbook(raw))).toMatchObject({ code: 'RUNBOOK_INVALID' });
  });

  test('the message names the source and the unknown key', () => {
    expect(caught(() => parseRunbook(input({ descripton: 'typo' }), 'runbooks/restart-web.yaml')).message)
      .toMatchInlineSnapshot(`
        "runbooks/restart-web.yaml is not a valid runbook:
        ✖ Unrecognized key: "descripton""
      `);
  });
});

describe('placeholders', () => {
  test('an undeclared placeholder is refused, naming the step and the placeholder', () => {
    const raw = input({ steps: [{ name: 'restart', script: 'systemctl restart {{ servce }}' }] });
    const error = caught(() => parseRunbook(raw));
    expect(error).toMatchObject({ code: 'RUNBOOK_INVALID' });
    expect(error.message).toMatchInlineSnapshot(`
      "runbook is not a valid runbook:
      ✖ step "restart" uses {{ servce }}, which is not a declared parameter
        → at steps"
    `);
  });

  test('an undeclared placeholder in an onFailure step is refused too', () => {
    const raw = input({ onFailure: [{ name: 'report', script: 'echo {{ nope }}' }] });
    expect(caught(() => parseRunbook(raw)).message).toContain('step "report" uses {{ nope }}');
  });

  test.each(['mechanic_execution_id', 'mechanic_step'])('the built-in {{ %s }} needs no declaration', (name) => {
    const runbook = parseRunbook(input({ steps: [{ name: 'restart', script: `echo {{ ${name} }}` }] }));
    expect(runbook.steps[0]?.script).toBe(`echo {{ ${name} }}`);
  });

  test.each([
    ['{{ a }}', ['a']],
    ['{{a}}', ['a']],
    ['{{   a_b1   }}', ['a_b1']],
    ['x{{ a }}y{{ b }}', ['a', 'b']],
    ['{{ a-b }}', []],
    ['{ a }', []],
  ])('placeholdersOf(%j)', (script, names) => {
    expect(placeholdersOf(script)).toEqual(names);
  });

  // Regression: `name in rb.parameters` once saw Object.prototype, so {{ toString }} counted as
  // declared and the inherited function's source text was rendered into the script.
  test.each(['toString', 'constructor', 'hasOwnProperty'])(
    '{{ %s }} (an Object.prototype name) is refused as undeclared',
    (name) => {
      const raw = input({ steps: [{ name: 'restart', script: `echo {{ ${name} }}` }] });
      expect(caught(() => parseRunbook(raw))).toMatchObject({ code: 'RUNBOOK_INVALID' });
    },
  );
});

describe('rules across the runbook', () => {
  test('a step name used twice is refused', () => {
    const raw = input({
      steps: [
        { name: 'restart', script: 'true' },
        { name: 'restart', script: 'false' },
      ],
    });
    expect(caught(() => parseRunbook(raw)).message).toMatchInlineSnapshot(`
      "runbook is not a valid runbook:
      ✖ step name "restart" is used twice"
    `);
  });

  test('a step name shared by a step and an onFailure step is refused', () => {
    const raw = input({ onFailure: [{ name: 'restart', script: 'true' }] });
    expect(caught(() => parseRunbook(raw)).message).toContain('step name "restart" is used twice');
  });

  test('an enum default that is not one of its values is refused', () => {
    const raw = input({
      parameters: { mode: { type: 'enum', values: ['fast', 'safe'], default: 'slow' } },
      steps: [{ name: 'restart', script: 'echo {{ mode }}' }],
    });
    expect(caught(() => parseRunbook(raw)).message).toMatchInlineSnapshot(`
      "runbook is not a valid runbook:
      ✖ the default of parameter "mode" must be one of fast, safe; got "slow""
    `);
  });

  test('a pattern that does not compile is reported once, even with a default (not thrown as a crash)', () => {
    const raw = input({ parameters: { service: { type: 'string', pattern: '^(web', default: 'web' } } });
    expect(caught(() => parseRunbook(raw)).message).toMatchInlineSnapshot(`
      "runbook is not a valid runbook:
      ✖ parameter "service" has a pattern that is not a valid RE2 regular expression (missing closing ): ^(web); fix the pattern"
    `);
  });

  test('a string pattern that is not a valid regular expression is refused', () => {
    const raw = input({ parameters: { service: { type: 'string', pattern: '^(web' } } });
    expect(caught(() => parseRunbook(raw)).message).toMatchInlineSnapshot(`
      "runbook is not a valid runbook:
      ✖ parameter "service" has a pattern that is not a valid RE2 regular expression (missing closing ): ^(web); fix the pattern"
    `);
  });

  // Regression: patterns were JavaScript RegExps, so a backtracking pattern could hold the server
  // for seconds per request. They are RE2 now: what RE2 cannot match in linear time is refused at load.
  test.each([
    ['a backreference', '^(a)\\1$', 'a backreference (\\1)'],
    ['a named backreference', '^(?<x>a)\\k<x>$', 'a backreference (\\k)'],
    ['a lookahead', '^(?=v)v\\d+$', 'a lookahead or lookbehind ((?=)'],
    ['a negative lookahead', '^(?!latest)\\w+$', 'a lookahead or lookbehind ((?!)'],
    ['a lookbehind', '(?<=v)\\d+', 'a lookahead or lookbehind ((?<=)'],
    ['a negative lookbehind', '(?<!x)\\d+', 'a lookahead or lookbehind ((?<!)'],
  ])('a pattern with %s is refused: RE2 cannot express it', (_what, pattern, said) => {
    const raw = input({ parameters: { service: { type: 'string', pattern } } });
    expect(caught(() => parseRunbook(raw)).message).toBe(
      `runbook is not a valid runbook:\n✖ parameter "service" has a pattern with ${said}, which RE2 cannot match in linear time; rewrite the pattern without it`,
    );
  });

  test('a pattern too costly for its maxLength is refused, and a smaller maxLength makes it fit', () => {
    const pattern = '^[a-z]{1000}$';
    const long = input({ parameters: { service: { type: 'string', pattern, maxLength: 4096 } } });
    expect(caught(() => parseRunbook(long)).message).toMatchInlineSnapshot(`
      "runbook is not a valid runbook:
      ✖ parameter "service" has a pattern too large to check quickly against values of up to 4096 characters (RE2 program size 1004); simplify the pattern or lower maxLength"
    `);
    const short = input({ parameters: { service: { type: 'string', pattern, maxLength: 256 } } });
    expect(parseRunbook(short).parameters['service']).toMatchObject({ pattern });
  });

  test.each(['mechanic_execution_id', 'mechanic_step', 'mechanic_anything'])(
    'a parameter named %s is refused: the mechanic_ names are built-in placeholders',
    (name) => {
      const raw = input({ parameters: { [name]: { type: 'string' } }, steps: [{ name: 'restart', script: 'true' }] });
      expect(caught(() => parseRunbook(raw)).message).toBe(
        `runbook is not a valid runbook:\n✖ parameter "${name}" takes a name reserved for mechanic's built-in placeholders (names starting with mechanic_); rename it`,
      );
    },
  );

  // Regression: defaults were once unchecked, so a runbook could run with a value no operator could
  // have typed (`keep: { min: 1, max: 30, default: 0 }` ran with keep=0).
  test.each([
    ['an integer default below min', { type: 'integer', min: 1, max: 30, default: 0 }],
    ['a string default that does not match its pattern', { type: 'string', pattern: '^v\\d+$', default: 'latest' }],
    ['a string default longer than maxLength', { type: 'string', maxLength: 3, default: 'abcd' }],
    ['a string default with a control character', { type: 'string', default: 'a\nb' }],
    ['a string default with a right-to-left mark', { type: 'string', default: 'web\u200f' }],
  ])('%s is refused', (_rule, spec) => {
    const raw = input({ parameters: { value: spec }, steps: [{ name: 'restart', script: 'echo {{ value }}' }] });
    expect(caught(() => parseRunbook(raw))).toMatchObject({ code: 'RUNBOOK_INVALID' });
  });
});

describe('field rules', () => {
  test.each([
    ['a role ARN without an account', { roleArn: 'arn:aws:iam:::role/mechanic-runner' }],
    ['a user ARN instead of a role', { roleArn: 'arn:aws:iam::123456789012:user/alice' }],
    ['an ARN of another service', { roleArn: 'arn:aws:s3:::bucket' }],
    ['a role name alone', { roleArn: 'mechanic-runner' }],
    ['a name with capitals', { name: 'Restart-Web' }],
    ['a version of 0', { version: 0 }],
    ['an empty step list', { steps: [] }],
    ['a step name with an underscore', { steps: [{ name: 're_start', script: 'true' }] }],
    ['an empty script', { steps: [{ name: 'restart', script: '' }] }],
    ['a step timeout of 0', { steps: [{ name: 'restart', script: 'true', timeoutSeconds: 0 }] }],
    ['a parameter name that is not an identifier', { parameters: { 'service-name': { type: 'string' } } }],
    ['an unknown parameter type', { parameters: { service: { type: 'float' } } }],
    ['an enum with no values', { parameters: { service: { type: 'enum', values: [] } } }],
    ['an approval quorum of 0', { approval: { required: 0 } }],
    ['an approval quorum of 11', { approval: { required: 11 } }],
    ['an instance id of the wrong shape', { targets: { instanceIds: ['i-123'] } }],
    ['an empty instance id list', { targets: { instanceIds: [] } }],
    ['an unknown risk', { risk: 'critical' }],
    ['a risk in capitals', { risk: 'High' }],
    ['owners that are not a list', { owners: 'sre' }],
    ['an owner with a space', { owners: ['site reliability'] }],
    ['an owner listed twice', { owners: ['sre', 'sre'] }],
    ['an approval group listed twice', { approval: { required: 1, groups: ['sre', 'sre'] } }],
    ['an empty approval group name', { approval: { required: 1, groups: [''] } }],
    ['readOnly as a string', { readOnly: 'yes' }],
    ['an environment with capitals', { environment: 'Production' }],
    ['a tag with a space', { tags: ['web tier'] }],
  ])('%s is refused', (_rule, overrides) => {
    expect(caught(() => parseRunbook(input(overrides)))).toMatchObject({ code: 'RUNBOOK_INVALID' });
  });

  test('a bad role ARN is refused with the schema message', () => {
    expect(caught(() => parseRunbook(input({ roleArn: 'arn:aws:iam::123456789012:user/alice' }))).message)
      .toMatchInlineSnapshot(`
        "runbook is not a valid runbook:
        ✖ must be an IAM role ARN
          → at roleArn"
      `);
  });

  test('51 instance ids are refused', () => {
    const instanceIds = Array.from({ length: 51 }, (_, i) => `i-${i.toString(16).padStart(17, '0')}`);
    expect(caught(() => parseRunbook(input({ targets: { instanceIds } })))).toMatchObject({ code: 'RUNBOOK_INVALID' });
  });

  test('50 instance ids are accepted', () => {
    const instanceIds = Array.from({ length: 50 }, (_, i) => `i-${i.toString(16).padStart(17, '0')}`);
    expect(parseRunbook(input({ targets: { instanceIds } })).targets).toEqual({ instanceIds });
  });
});

describe('tag scope size', () => {
  const tags = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`Tag${i}`, 'x']));

  test.each([0, 6])('%i tags are refused', (n) => {
    const error = caught(() => parseRunbook(input({ targets: { tags: tags(n) } })));
    expect(error).toMatchObject({ code: 'RUNBOOK_INVALID' });
    expect(error.message).toContain('tags must name between 1 and 5 tags');
  });

  test.each([1, 5])('%i tags are accepted', (n) => {
    expect(parseRunbook(input({ targets: { tags: tags(n) } })).targets).toEqual({ tags: tags(n) });
  });

  test('the message for 6 tags', () => {
    expect(caught(() => parseRunbook(input({ targets: { tags: tags(6) } }))).message).toMatchInlineSnapshot(`
      "runbook is not a valid runbook:
      ✖ tags must name between 1 and 5 tags
        → at targets"
    `);
  });
});

describe('ownership, risk and approval groups', () => {
  const high = (approval: Record<string, unknown>) => input({ risk: 'high', approval });

  test('a high-risk runbook with two approval groups and two approvals loads', () => {
    const runbook = parseRunbook(high({ required: 2, groups: ['sre', 'dba'] }));
    expect({ risk: runbook.risk, approval: runbook.approval }).toEqual({
      risk: 'high',
      approval: { required: 2, expiresAfterMinutes: 60, groups: ['sre', 'dba'] },
    });
  });

  test('every field an author may set is kept as written', () => {
    const runbook = parseRunbook(
      input({
        owners: ['sre', 'alice'],
        risk: 'low',
        readOnly: true,
        environment: 'production',
        tags: ['web', 'team:payments'],
        approval: { required: 1, groups: ['sre'] },
      }),
    );
    expect(runbook).toMatchObject({
      owners: ['sre', 'alice'],
      risk: 'low',
      readOnly: true,
      environment: 'production',
      tags: ['web', 'team:payments'],
      approval: { groups: ['sre'] },
    });
  });

  test('a high-risk runbook naming one approval group is refused, saying what to add', () => {
    expect(caught(() => parseRunbook(high({ required: 2, groups: ['sre'] }))).message).toMatchInlineSnapshot(`
      "runbook is not a valid runbook:
      ✖ a high-risk runbook needs approvers from two different groups: list at least two groups under approval.groups
        → at approval.groups"
    `);
  });

  test('a high-risk runbook naming no approval group is refused', () => {
    expect(caught(() => parseRunbook(high({ required: 2 })))).toMatchObject({ code: 'RUNBOOK_INVALID' });
  });

  test('a high-risk runbook asking for one approval is refused, saying why', () => {
    expect(caught(() => parseRunbook(high({ required: 1, groups: ['sre', 'dba'] }))).message).toMatchInlineSnapshot(`
      "runbook is not a valid runbook:
      ✖ a high-risk runbook needs approvals from two different groups, so approval.required must be at least 2
        → at approval.required"
    `);
  });

  test('a medium-risk runbook may name one approval group and ask for one approval', () => {
    expect(parseRunbook(input({ approval: { required: 1, groups: ['sre'] } })).approval.groups).toEqual(['sre']);
  });
});
