import { spawnSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { formatPlan, formatPlanDetail } from '../../cli/format.ts';
import { checkParamValue, parseParams, planParamText, ssmParameterNameProblem } from '../../src/core/params.ts';
import { buildPlan } from '../../src/core/plan.ts';
import { parseRunbook, type Runbook } from '../../src/core/runbook.ts';
import { analyzeScript } from '../../src/core/shell-placement.ts';
import { renderScript, secretFetchLine } from '../../src/core/template.ts';

function caught(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a throw, but nothing was thrown');
}

function runbookWith(parameters: Record<string, unknown>, script: string): Runbook {
  return parseRunbook({
    name: 'fan-out',
    version: 1,
    description: 'Lists and secrets.',
    roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
    parameters,
    targets: { tags: { Role: 'web' } },
    steps: [{ name: 'run', script }],
  });
}

const hostsList = {
  type: 'list',
  items: { type: 'string', pattern: '^[a-z0-9.-]+$', maxLength: 20 },
  minItems: 1,
  maxItems: 3,
};
const lists = runbookWith(
  {
    hosts: hostsList,
    ports: { type: 'list', items: { type: 'integer', min: 1, max: 65535 }, default: [80, 443] },
    flags: { type: 'list', items: { type: 'boolean' }, minItems: 0, default: [] },
    modes: { type: 'list', items: { type: 'enum', values: ['a', 'b'] }, default: ['a'] },
  },
  'ping -c 1 {{ hosts }}\necho {{ ports }} {{ flags }} {{ modes }}',
);

/** Runs bash on a rendered script with no environment of its own: what each word became. */
function wordsOf(script: string): string[] {
  const r = spawnSync('bash', ['-c', `set -- ${script}; printf '%s\\n' "$@"`], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  return r.stdout.split('\n').slice(0, -1);
}

describe('list parameters: values', () => {
  test('items are checked with the item rules, and typed', () => {
    expect(parseParams(lists, { hosts: ['web-1', 'web-2'], ports: ['8080', 9090], flags: ['true', false] })).toEqual({
      hosts: ['web-1', 'web-2'],
      ports: [8080, 9090],
      flags: [true, false],
      modes: ['a'],
    });
  });

  test('a default list is copied, not shared', () => {
    const a = parseParams(lists, { hosts: ['x'] });
    (a['ports'] as number[]).push(1);
    expect(parseParams(lists, { hosts: ['x'] })['ports']).toEqual([80, 443]);
  });

  test('a single string is a list of that one item, never split at commas or spaces', () => {
    expect(parseParams(lists, { hosts: 'web-1' })['hosts']).toEqual(['web-1']);
    expect(caught(() => parseParams(lists, { hosts: 'web-1,web-2' })).message).toBe(
      'parameter "hosts[0]" must match ^[a-z0-9.-]+$; got "web-1,web-2"',
    );
  });

  test('every bad item is named with its index, all at once', () => {
    const e = caught(() => parseParams(lists, { hosts: ['ok', 'BAD', 'a b'], ports: [0, 22, 'x'] }));
    expect(e.code).toBe('PARAMS_INVALID');
    expect(e.message).toBe(
      [
        '- parameter "hosts[1]" must match ^[a-z0-9.-]+$; got "BAD"; parameter "hosts[2]" must match ^[a-z0-9.-]+$; got "a b"',
        '- parameter "ports[0]" must be an integer from 1 to 65535; got 0; parameter "ports[2]" must be an integer from 1 to 65535; got "x"',
      ].join('\n'),
    );
  });

  test('minItems and maxItems bound the count', () => {
    expect(caught(() => parseParams(lists, { hosts: [] })).message).toBe(
      'parameter "hosts" must list at least 1 item; got 0',
    );
    expect(caught(() => parseParams(lists, { hosts: ['a', 'b', 'c', 'd'] })).message).toBe(
      'parameter "hosts" must list at most 3 items; got 4',
    );
    expect(parseParams(lists, { hosts: ['a', 'b', 'c'] })['hosts']).toHaveLength(3);
  });

  test('an item with a control or direction character is refused, as any value', () => {
    expect(checkParamValue('hosts', lists.parameters['hosts']!, ['a', 'b\u202e'])).toMatch(/^parameter "hosts\[1\]"/);
  });

  test('a list must be a list, and a list is no scalar', () => {
    expect(caught(() => parseParams(lists, { hosts: { a: 1 } })).message).toBe(
      'parameter "hosts" must be a list of string values; got {"a":1}',
    );
    const scalar = runbookWith({ name: { type: 'string' } }, 'echo {{ name }}');
    expect(caught(() => parseParams(scalar, { name: ['a', 'b'] })).message).toBe(
      'parameter "name" must be a string; got ["a","b"]',
    );
  });

  test('a list is required unless it has a default, and says what it takes', () => {
    expect(caught(() => parseParams(lists, {})).message).toBe(
      'parameter "hosts" is required: a list of 1 to 3 items, each a string matching ^[a-z0-9.-]+$',
    );
  });

  test('defaults: minItems 1, maxItems 100', () => {
    const rb = runbookWith({ l: { type: 'list', items: { type: 'string' } } }, 'echo {{ l }}');
    expect(rb.parameters['l']).toMatchObject({ minItems: 1, maxItems: 100 });
  });
});

describe('list parameters: the runbook', () => {
  test('an item type is required, and a list of lists or secrets is refused', () => {
    expect(() => runbookWith({ l: { type: 'list' } }, 'echo {{ l }}')).toThrow(/items/);
    expect(() => runbookWith({ l: { type: 'list', items: { type: 'list' } } }, 'echo {{ l }}')).toThrow(/items\.type/);
    expect(() => runbookWith({ l: { type: 'list', items: { type: 'secret' } } }, 'echo {{ l }}')).toThrow(
      /items\.type/,
    );
  });

  test('minItems above maxItems, a bad item range, a twice-listed item value and an RE2-less pattern are refused', () => {
    expect(caught(() => runbookWith({ l: { ...hostsList, minItems: 4 } }, 'echo {{ l }}')).message).toMatch(
      /parameter "l" has minItems greater than maxItems/,
    );
    expect(
      caught(() => runbookWith({ l: { type: 'list', items: { type: 'integer', min: 5, max: 1 } } }, 'echo {{ l }}'))
        .message,
    ).toMatch(/parameter "l" has items.min greater than items.max/);
    expect(
      caught(() => runbookWith({ l: { type: 'list', items: { type: 'enum', values: ['a', 'a'] } } }, 'echo {{ l }}'))
        .message,
    ).toMatch(/parameter "l" lists an item value twice/);
    expect(
      caught(() => runbookWith({ l: { type: 'list', items: { type: 'string', pattern: '(a)\\1' } } }, 'echo {{ l }}'))
        .message,
    ).toMatch(/parameter "l" has an item pattern/);
  });

  test('maxItems may be 500 at most, and a 500-item list is taken', () => {
    const atCap = runbookWith({ l: { type: 'list', items: { type: 'integer' }, maxItems: 500 } }, 'echo {{ l }}');
    const items = Array.from({ length: 500 }, (_, i) => i);
    expect(parseParams(atCap, { l: items })).toEqual({ l: items });
    expect(() =>
      runbookWith({ l: { type: 'list', items: { type: 'integer' }, maxItems: 501 } }, 'echo {{ l }}'),
    ).toThrow(/maxItems/);
    expect(() =>
      runbookWith({ l: { type: 'list', items: { type: 'integer' }, minItems: 501, maxItems: 501 } }, 'echo {{ l }}'),
    ).toThrow(/minItems|maxItems/);
  });

  test('a default list is checked item by item', () => {
    expect(caught(() => runbookWith({ l: { ...hostsList, default: ['ok', 'NO'] } }, 'echo {{ l }}')).message).toMatch(
      /the default of parameter "l\[1\]" must match/,
    );
  });

  test.each([
    ['glued to text', 'echo --host={{ l }}'],
    ['inside double quotes', 'echo "{{ l }}"'],
    ['as an assignment', 'x={{ l }}'],
    ['in arithmetic', 'echo $(( {{ l }} + 1 ))'],
    ['inside [ ]', '[ -n {{ l }} ]'],
    ['in a here-document', 'cat <<EOF\n{{ l }}\nEOF'],
    ['as the command name', '{{ l }} --version'],
  ])('a list placeholder %s is refused with its rule', (_where, script) => {
    const message = caught(() => runbookWith({ l: hostsList }, script)).message;
    expect(message).toMatch(/\{\{ l \}\}/);
    expect(message).toMatch(/\(rule [\w-]+\)/);
  });

  test('a list glued to text names the list rule', () => {
    expect(caught(() => runbookWith({ l: hostsList }, 'echo --host={{ l }}')).message).toMatch(/rule list-placement/);
    expect(caught(() => runbookWith({ l: hostsList }, '[ -n {{ l }} ]')).message).toMatch(/rule list-placement/);
  });

  test('a whole argument, after -- or in a comment, is allowed', () => {
    expect(() => runbookWith({ l: hostsList }, 'ls -l -- {{ l }} # {{ l }}')).not.toThrow();
  });
});

describe('list parameters: rendering', () => {
  test('each item becomes one quoted word, and bash reads exactly those words', () => {
    const script = renderScript('printf %s {{ l }}', { l: ["it's", 'a b', '$(id)', ''] });
    expect(script).toBe(`printf %s 'it'\\''s' 'a b' '$(id)' ''`);
    expect(wordsOf(script.slice('printf %s '.length))).toEqual(["it's", 'a b', '$(id)', '']);
  });

  test('an item starting with "-" where it could be an option is refused, naming the item', () => {
    expect(caught(() => renderScript('ls {{ l }}', { l: ['a', '-rf'] })).message).toMatch(
      /would have item 1 start with "-"/,
    );
    expect(renderScript('ls -- {{ l }}', { l: ['a', '-rf'] })).toBe(`ls -- 'a' '-rf'`);
  });

  test('a hand-built plan with a list glued to text is refused when rendered', () => {
    const e = caught(() => renderScript('echo x{{ l }}', { l: ['a', 'b'] }));
    expect(e.code).toBe('TEMPLATE_UNSAFE');
    expect(e.message).toMatch(/rule list-placement/);
    expect(caught(() => renderScript('echo $(( {{ l }} ))', { l: [1, 2] })).message).toMatch(/only an integer/);
  });

  test('the placement knows a whole argument from a glued one and from [ … ]', () => {
    const kinds = analyzeScript('echo {{ a }} x{{ b }} ; [ -n {{ c }} ]').uses.map((u) =>
      u.placement.kind === 'argument' ? u.placement.wholeArgument : u.placement.kind,
    );
    expect(kinds).toEqual([true, false, false]);
  });
});

describe('secret references', () => {
  test.each([
    ['/prod/db/password', undefined],
    ['db_password', undefined],
    ['prod.db-pass_1', undefined],
    ['prod/db', 'must start with "/"'],
    ['/prod/../x', 'must not contain ".."'],
    ['/prod//x', 'empty level'],
    ['/prod/', 'empty level'],
    ['/a b', 'must be an SSM Parameter Store name'],
    ["/x';id;'", 'must be an SSM Parameter Store name'],
    ['', 'must be an SSM Parameter Store name'],
    [`/${'a/'.repeat(15)}b`, 'more than 15 levels'],
  ])('the name %j', (name, problem) => {
    const found = ssmParameterNameProblem(name);
    if (problem === undefined) expect(found).toBeUndefined();
    else expect(found).toContain(problem);
  });

  const secrets = runbookWith(
    { db_password: { type: 'secret', default: '/prod/db/password' }, user: { type: 'string' } },
    '#!/bin/bash\nset -eu\ncurl --user {{ user }}:{{ db_password }} https://db.internal/check\nprintf -- %s {{ db_password }} | wc -c # {{ db_password }}',
  );

  test('the value is the name, checked as a name', () => {
    expect(parseParams(secrets, { user: 'app' })).toEqual({ db_password: '/prod/db/password', user: 'app' });
    expect(caught(() => parseParams(secrets, { user: 'app', db_password: 'x y' })).message).toMatch(
      /^parameter "db_password" must be an SSM Parameter Store name/,
    );
    expect(caught(() => parseParams(secrets, { user: 'app', db_password: 42 })).message).toBe(
      'parameter "db_password" must be the name of an SSM Parameter Store parameter; got 42',
    );
  });

  test('a default that is not a name is refused when the runbook loads', () => {
    expect(
      caught(() => runbookWith({ pw: { type: 'secret', default: 'hunter2 is my password' } }, 'echo -- {{ pw }}'))
        .message,
    ).toMatch(/the default of parameter "pw" must be an SSM Parameter Store name/);
  });

  test('the plan carries the name and a read on the instance, never a value; secretParams names it', () => {
    const { plan } = buildPlan({
      executionId: 'mx-secret1',
      runbook: secrets,
      runbookDigest: 'f'.repeat(64),
      rawParams: { user: 'app' },
      targets: [{ instanceId: 'i-0d3f1ee7000000001' }],
      requester: 'alice',
      reason: 'rotate check',
      region: 'us-east-1',
      now: new Date('2026-11-01T00:00:00Z'),
    });
    expect(plan.secretParams).toEqual(['db_password']);
    expect(plan.params['db_password']).toBe('/prod/db/password');
    expect(plan.steps[0]!.script).toBe(
      [
        '#!/bin/bash',
        secretFetchLine('db_password', '/prod/db/password'),
        'set -eu',
        `curl --user 'app':"\${__mechanic_secret_db_password}" https://db.internal/check`,
        `printf -- %s "\${__mechanic_secret_db_password}" | wc -c # '/prod/db/password'`,
      ].join('\n'),
    );
    expect(secretFetchLine('db_password', '/prod/db/password')).toBe(
      `__mechanic_secret_db_password=$(aws ssm get-parameter --name '/prod/db/password' --with-decryption --query Parameter.Value --output text) || { echo 'mechanic: cannot read the SSM parameter /prod/db/password with this instance'\\''s role; see the error above' >&2; exit 1; }`,
    );
  });

  test('plans show a secret as a reference, and a list as its items', () => {
    expect(planParamText('pw', '/prod/db', ['pw'])).toBe(
      'pw=secret /prod/db (SSM Parameter Store, read on the instance)',
    );
    expect(planParamText('hosts', ['a', 'b'], ['pw'])).toBe('hosts=["a","b"]');
    const { plan, planDigest } = buildPlan({
      executionId: 'mx-secret2',
      runbook: secrets,
      runbookDigest: 'f'.repeat(64),
      rawParams: { user: 'app' },
      targets: [{ instanceId: 'i-0d3f1ee7000000001' }],
      requester: 'alice',
      reason: 'rotate check',
      region: 'us-east-1',
      now: new Date('2026-11-01T00:00:00Z'),
    });
    for (const text of [formatPlan(plan, planDigest), formatPlanDetail(plan, planDigest)]) {
      expect(text).toContain('db_password=secret /prod/db/password (SSM Parameter Store, read on the instance)');
      expect(text).toContain('user="app"');
    }
  });

  test('a plan without secrets has no secretParams field (old digests hold)', () => {
    const { plan } = buildPlan({
      executionId: 'mx-plain1',
      runbook: lists,
      runbookDigest: 'f'.repeat(64),
      rawParams: { hosts: ['a'] },
      targets: [{ instanceId: 'i-0d3f1ee7000000001' }],
      requester: 'alice',
      reason: 'fan out',
      region: 'us-east-1',
      now: new Date('2026-11-01T00:00:00Z'),
    });
    expect('secretParams' in plan).toBe(false);
    expect(plan.params['hosts']).toEqual(['a']);
    expect(plan.steps[0]!.script).toBe(`ping -c 1 'a'\necho '80' '443'  'a'`);
  });

  test('a secret in arithmetic, an assignment or quotes is refused', () => {
    expect(caught(() => runbookWith({ pw: { type: 'secret' } }, 'x={{ pw }}')).message).toMatch(
      /rule secret-placement/,
    );
    expect(caught(() => runbookWith({ pw: { type: 'secret' } }, 'echo $(( {{ pw }} ))')).message).toMatch(
      /rule secret-placement/,
    );
    expect(caught(() => runbookWith({ pw: { type: 'secret' } }, 'echo "{{ pw }}"')).message).toMatch(
      /rule double-quotes/,
    );
    expect(() => runbookWith({ pw: { type: 'secret' } }, 'echo -- {{ pw }}')).not.toThrow();
  });

  test('rendering refuses a name that is not one', () => {
    expect(
      caught(() => renderScript('echo -- {{ pw }}', { pw: "/x';id'" }, { secrets: new Set(['pw']) })).message,
    ).toMatch(/must be an SSM Parameter Store name/);
  });

  /** Runs a rendered script with an `aws` that answers `value` (or fails), in an empty folder. */
  function runWithAws(script: string, aws: string) {
    return spawnSync('bash', ['-c', `aws() { ${aws}; }\ncd "$(mktemp -d)"\n${script}`], { encoding: 'utf8' });
  }

  test('where a command could read the secret as an option, a value starting with "-" stops the script on the instance', () => {
    const script = renderScript('echo {{ pw }}', { pw: '/x' }, { secrets: new Set(['pw']) });
    expect(runWithAws(script, 'echo fine').stdout).toBe('fine\n');
    const refused = runWithAws(script, 'echo --to-command=id');
    expect(refused.status).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toContain('starts with "-"');
    // After --, the value is no option: no check, and it is passed as it is.
    const after = renderScript('echo -- {{ pw }}', { pw: '/x' }, { secrets: new Set(['pw']) });
    expect(after).not.toContain('case ');
    expect(runWithAws(after, "printf '%s' -n").stdout).toBe('-- -n\n');
  });

  test('the secret is one word whatever it holds', () => {
    const script = renderScript('printf [%s] {{ pw }}', { pw: '/x' }, { secrets: new Set(['pw']) });
    expect(runWithAws(script, `printf '%s' 'a b $(id) *'`).stdout).toBe('[a b $(id) *]');
  });

  test('the read stops the script when it fails, before any command runs', () => {
    const script = renderScript('touch -- ran {{ pw }}', { pw: '/x' }, { secrets: new Set(['pw']) });
    // An `aws` that fails, as one without permission does.
    const r = runWithAws(`${script}\n[ -e ran ] && echo RAN`, 'echo denied >&2; return 254');
    expect(r.status).toBe(1);
    expect(r.stdout).not.toContain('RAN');
    expect(r.stderr).toContain('mechanic: cannot read the SSM parameter /x');
  });
});
