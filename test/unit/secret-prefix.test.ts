import { describe, expect, test } from 'vitest';
import { fieldProblems, initialForm } from '../../cli/tui/form-model.ts';
import type { RunbookInfo } from '../../src/api/schemas.ts';
import { digestOf } from '../../src/core/canonical.ts';
import { lintRunbookText, type LintProblem } from '../../src/core/lint.ts';
import { checkParamValue, parseParams } from '../../src/core/params.ts';
import { buildPlan } from '../../src/core/plan.ts';
import { parseRunbook, type Parameter, type Runbook } from '../../src/core/runbook.ts';

/**
 * A secret parameter's `prefix`: the Parameter Store path an operator's name must lie under,
 * checked wherever a value is (plan, defaults, the TUI form), and flagged by lint when missing.
 */

function caught(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a throw, but nothing was thrown');
}

const runbook = (secret: Record<string, unknown>): Runbook =>
  parseRunbook({
    name: 'rotate-db',
    version: 1,
    description: 'Uses a database password.',
    roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
    parameters: { db_password: { type: 'secret', ...secret } },
    targets: { tags: { Role: 'db' } },
    steps: [{ name: 'check', script: 'printf %s {{ db_password }} | sha256sum' }],
  });

const bounded = runbook({ prefix: '/app/staging/' });
const spec = bounded.parameters['db_password']!;

describe('the prefix field', () => {
  test.each(['/', '/app/', '/app/staging/', '/a_b.c-d/e/'])('%s is a prefix', (prefix) => {
    expect(runbook({ prefix }).parameters['db_password']).toEqual({ type: 'secret', prefix });
  });

  test.each([
    ['app/', 'must be a Parameter Store path that starts and ends with "/", like /app/staging/'],
    ['/app', 'must be a Parameter Store path that starts and ends with "/", like /app/staging/'],
    ['/app//db/', 'must be a Parameter Store path that starts and ends with "/", like /app/staging/'],
    ['/app/db password/', 'must be a Parameter Store path that starts and ends with "/", like /app/staging/'],
    ['/app/../other/', 'must not contain ".." (a Parameter Store name is not a file path)'],
  ])('%s is refused at load: %s', (prefix, why) => {
    const e = caught(() => runbook({ prefix }));
    expect(e.code).toBe('RUNBOOK_INVALID');
    expect(e.message).toContain(why);
  });

  test('a malformed prefix is the one problem: its default is not judged against it', () => {
    const e = caught(() => runbook({ prefix: 'app/', default: '/app/x' }));
    expect(e.message).toContain('must be a Parameter Store path that starts and ends with "/"');
    expect(e.message).not.toContain('the default of');
  });

  test('absent, it is absent from the parsed runbook: runbooks without it keep their digest', () => {
    const plain = runbook({ default: '/app/db/password' });
    expect(plain.parameters['db_password']).toEqual({ type: 'secret', default: '/app/db/password' });
    // The digest of that runbook as it was before the field existed.
    expect(digestOf(plain)).toBe(PLAIN_DIGEST);
  });
});

describe('a name outside the prefix', () => {
  test('is refused in one sentence naming the parameter, the value and the prefix', () => {
    expect(checkParamValue('db_password', spec, '/prod/db/password')).toMatchInlineSnapshot(
      `"parameter "db_password" must name an SSM parameter under /app/staging/, the only path this runbook lets it read; got "/prod/db/password""`,
    );
  });

  test.each([
    ['/app/staging/db/password', undefined],
    ['/app/staging/x', undefined],
    ['/app/stagingdb/password', 'outside'],
    ['/App/staging/db', 'outside'],
    ['/app/', 'not a name'],
    ['/app/staging', 'outside'],
    ['app/staging/db', 'not a name'],
    ['/app/staging/../../prod/db', 'not a name'],
  ])('%s: %s', (name, verdict) => {
    const problem = checkParamValue('db_password', spec, name);
    if (verdict === undefined) expect(problem).toBeUndefined();
    else if (verdict === 'outside') expect(problem).toContain('must name an SSM parameter under /app/staging/');
    else expect(problem).toMatch(/must (not|start)/);
  });

  test('"/" admits every name in a hierarchy and none outside one', () => {
    const any = runbook({ prefix: '/' }).parameters['db_password']!;
    expect(checkParamValue('db_password', any, '/prod/db/password')).toBeUndefined();
    expect(checkParamValue('db_password', any, 'password')).toContain('must name an SSM parameter under /');
  });

  test('a default outside it is refused when the runbook is loaded', () => {
    const e = caught(() => runbook({ prefix: '/app/staging/', default: '/app/prod/password' }));
    expect(e.code).toBe('RUNBOOK_INVALID');
    expect(e.message).toContain(
      'the default of parameter "db_password" must name an SSM parameter under /app/staging/, the only path this runbook lets it read; got "/app/prod/password"',
    );
  });

  test('refuses the plan, so nothing is approved or started', () => {
    const plan = (db_password: string, rb = bounded) =>
      buildPlan({
        executionId: 'mx-bound0001',
        runbook: rb,
        runbookDigest: 'a'.repeat(64),
        rawParams: { db_password },
        targets: [{ instanceId: 'i-0123456789abcdef0' }],
        requester: 'alice',
        reason: 'rotate the password',
        region: 'us-east-1',
        now: new Date('2026-01-01T00:00:00Z'),
      });
    const e = caught(() => plan('/prod/db/password'));
    expect(e.code).toBe('PARAMS_INVALID');
    expect(e.message).toContain('/prod/db/password');
    expect(e.message).toContain('/app/staging/');
    // Inside: the plan holds the name only, and is the plan the runbook without a prefix makes.
    const ok = plan('/app/staging/db/password');
    expect(ok.plan.params).toEqual({ db_password: '/app/staging/db/password' });
    expect(ok).toEqual(plan('/app/staging/db/password', runbook({})));
    expect(() => parseParams(bounded, { db_password: '/app/staging/db' })).not.toThrow();
  });

  test("the TUI launch form refuses it before anything is sent, with the server's sentence", () => {
    const info = {
      name: 'rotate-db',
      version: 1,
      description: 'Uses a database password.',
      roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
      // As the API sends it: the runbook's parameters as loaded.
      parameters: { db_password: { type: 'secret', prefix: '/app/staging/' } },
      targets: { tags: { Role: 'db' } },
      approval: { required: 1, expiresAfterMinutes: 60 },
      steps: [],
      onFailure: [],
      digest: 'a'.repeat(64),
      source: 'rotate-db.yaml',
    } as unknown as RunbookInfo;
    const field = initialForm(info).form.params[0]!;
    expect(fieldProblems({ ...field, text: '/prod/db/password' })).toEqual([
      checkParamValue('db_password', spec, '/prod/db/password'),
    ]);
    expect(fieldProblems({ ...field, text: '/app/staging/db/password' })).toEqual([]);
  });
});

describe('lint: a secret parameter without a prefix', () => {
  const lint = (param: string): LintProblem[] => [
    ...lintRunbookText(
      'r.yaml',
      [
        'name: rotate-db',
        'version: 1',
        'description: Uses a database password.',
        'roleArn: arn:aws:iam::123456789012:role/mechanic-runner',
        'targets: { tags: { Role: db } }',
        'parameters:',
        `  db_password: ${param}`,
        'steps:',
        '  - name: check',
        '    script: printf %s {{ db_password }} | sha256sum',
        '',
      ].join('\n'),
    ).problems,
  ];

  test('is flagged at its type, suggesting the folder of its default', () => {
    expect(lint('{ type: secret, default: /prod/db/password }')).toEqual([
      {
        file: 'r.yaml',
        line: 7,
        column: 24,
        rule: 'secret-without-prefix',
        message:
          'parameter "db_password" is a secret reference without a prefix, so an operator may name any Parameter Store secret the instances\' role can read; add the path it may read, e.g. prefix: /prod/db/',
      },
    ]);
    expect(lint('{ type: secret }')[0]!.message).toContain('e.g. prefix: /prod/app/');
  });

  test('with a prefix it is not, and the runbook is returned with the advice as without it', () => {
    const text = (param: string) =>
      lintRunbookText(
        'r.yaml',
        `name: rotate-db\nversion: 1\ndescription: d\nroleArn: arn:aws:iam::123456789012:role/r\ntargets: { tags: { Role: db } }\nparameters:\n  pw: ${param}\nsteps:\n  - name: check\n    script: echo {{ pw }}\n`,
      );
    expect(text('{ type: secret, prefix: /prod/db/ }').problems).toEqual([]);
    // Advice, not a refusal: the registry accepts the file, and an evidence pack still reads it.
    const advised = text('{ type: secret }');
    expect(advised.problems.map((p) => p.rule)).toEqual(['secret-without-prefix']);
    expect(advised.runbook?.parameters['pw']).toEqual({ type: 'secret' } satisfies Parameter);
  });
});

/** digestOf(runbook({ default: '/app/db/password' })) at the commit before `prefix` existed. */
const PLAIN_DIGEST = '8af68beab44281ff9278606f97565895f95a5810996aa728711ee0323c0b43e9';
