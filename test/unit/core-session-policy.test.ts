import { describe, expect, test } from 'vitest';
import {
  RUN_SHELL_SCRIPT,
  SESSION_POLICY_MAX_CHARS,
  accountOf,
  buildSessionPolicy,
} from '../../src/core/session-policy.ts';

function caught(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a throw, but nothing was thrown');
}

interface Statement {
  Sid: string;
  Effect: string;
  Action: string | string[];
  Resource: string | string[];
  Condition?: unknown;
}

function statements(policy: string): Record<string, Statement> {
  const parsed = JSON.parse(policy) as { Version: string; Statement: Statement[] };
  expect(parsed.Version).toBe('2012-10-17');
  return Object.fromEntries(parsed.Statement.map((s) => [s.Sid, s]));
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => `i-${i.toString(16).padStart(17, '0')}`);
const base = { region: 'eu-west-1', accountId: '123456789012' };

describe('buildSessionPolicy', () => {
  test('a small run lists exactly the planned instances, the shell document and the follow/cancel calls', () => {
    const policy = buildSessionPolicy({
      ...base,
      instanceIds: ['i-0aaaaaaaaaaaaaaa1', 'i-0aaaaaaaaaaaaaaa2'],
      scope: { tags: { Role: 'web' } },
    });
    expect(statements(policy)).toEqual({
      OnlyShellDocument: {
        Sid: 'OnlyShellDocument',
        Effect: 'Allow',
        Action: 'ssm:SendCommand',
        Resource: `arn:aws:ssm:eu-west-1::document/${RUN_SHELL_SCRIPT}`,
      },
      OnlyPlannedInstances: {
        Sid: 'OnlyPlannedInstances',
        Effect: 'Allow',
        Action: 'ssm:SendCommand',
        Resource: [
          'arn:aws:ec2:eu-west-1:123456789012:instance/i-0aaaaaaaaaaaaaaa1',
          'arn:aws:ec2:eu-west-1:123456789012:instance/i-0aaaaaaaaaaaaaaa2',
        ],
      },
      FollowAndCancel: {
        Sid: 'FollowAndCancel',
        Effect: 'Allow',
        Action: ['ssm:ListCommands', 'ssm:ListCommandInvocations', 'ssm:GetCommandInvocation', 'ssm:CancelCommand'],
        Resource: '*',
      },
    });
  });

  test('the shell document is AWS-RunShellScript', () => {
    expect(RUN_SHELL_SCRIPT).toBe('AWS-RunShellScript');
  });

  test('no statement denies, and only SendCommand and the follow/cancel calls are allowed', () => {
    const all = Object.values(
      statements(buildSessionPolicy({ ...base, instanceIds: ids(3), scope: { instanceIds: ids(3) } })),
    );
    expect(new Set(all.map((s) => s.Effect))).toEqual(new Set(['Allow']));
    expect(new Set(all.flatMap((s) => s.Action))).toEqual(
      new Set([
        'ssm:SendCommand',
        'ssm:ListCommands',
        'ssm:ListCommandInvocations',
        'ssm:GetCommandInvocation',
        'ssm:CancelCommand',
      ]),
    );
  });

  test('too many instances for a tag scope fall back to the runbook tags as conditions', () => {
    const policy = buildSessionPolicy({
      ...base,
      instanceIds: ids(40),
      scope: { tags: { Role: 'web', Env: 'staging' } },
    });
    const s = statements(policy);
    expect(s['OnlyPlannedInstances']).toBeUndefined();
    expect(s['OnlyTaggedInstances']).toEqual({
      Sid: 'OnlyTaggedInstances',
      Effect: 'Allow',
      Action: 'ssm:SendCommand',
      Resource: 'arn:aws:ec2:eu-west-1:123456789012:instance/*',
      Condition: { StringEquals: { 'ssm:resourceTag/Role': 'web', 'ssm:resourceTag/Env': 'staging' } },
    });
    expect(s['OnlyShellDocument']).toBeDefined();
    expect(s['FollowAndCancel']).toBeDefined();
  });

  test('the explicit list is used for as long as it fits', () => {
    // Find the largest run whose explicit policy fits; it must still list the instances.
    let n = 1;
    while (
      buildSessionPolicy({ ...base, instanceIds: ids(n + 1), scope: { tags: { Role: 'web' } } }).includes(
        'OnlyPlannedInstances',
      )
    )
      n++;
    const fits = buildSessionPolicy({ ...base, instanceIds: ids(n), scope: { tags: { Role: 'web' } } });
    expect(fits.length).toBeLessThanOrEqual(SESSION_POLICY_MAX_CHARS);
    const next = buildSessionPolicy({ ...base, instanceIds: ids(n + 1), scope: { tags: { Role: 'web' } } });
    expect(next).toContain('OnlyTaggedInstances');
  });

  test.each([1, 10, 25, 50])('the policy for %i instances is within the STS limit', (n) => {
    expect(
      buildSessionPolicy({ ...base, instanceIds: ids(n), scope: { tags: { Role: 'web' } } }).length,
    ).toBeLessThanOrEqual(SESSION_POLICY_MAX_CHARS);
  });

  test('too many instances for an instance-id scope are refused', () => {
    const error = caught(() => buildSessionPolicy({ ...base, instanceIds: ids(40), scope: { instanceIds: ids(40) } }));
    expect(error).toMatchObject({ code: 'TARGETS_INVALID' });
    expect(error.message).toMatchInlineSnapshot(
      `"the session policy for 40 instances is larger than STS allows; target fewer instances"`,
    );
  });

  test('a tag scope whose tag policy is also too large is refused', () => {
    const tags = Object.fromEntries(
      Array.from({ length: 5 }, (_, i) => [`Tag${i}-${'k'.repeat(120)}`, 'v'.repeat(256)]),
    );
    expect(caught(() => buildSessionPolicy({ ...base, instanceIds: ids(40), scope: { tags } }))).toMatchObject({
      code: 'TARGETS_INVALID',
    });
  });
});

describe('accountOf', () => {
  test('reads the account of a role ARN', () => {
    expect(accountOf('arn:aws:iam::123456789012:role/mechanic-runner')).toBe('123456789012');
  });

  test('reads the account of a role ARN with a path', () => {
    expect(accountOf('arn:aws:iam::210987654321:role/ops/mechanic-runner')).toBe('210987654321');
  });

  test.each([
    'mechanic-runner',
    'arn:aws:iam:::role/x',
    'arn:aws:iam::12345:role/x',
    'arn:aws:iam::12345678901a:role/x',
    '',
  ])('%j is refused', (arn) => {
    expect(caught(() => accountOf(arn))).toMatchObject({ code: 'RUNBOOK_INVALID' });
  });

  test('the refusal names the ARN', () => {
    expect(caught(() => accountOf('arn:aws:iam:::role/x')).message).toMatchInlineSnapshot(
      `"arn:aws:iam:::role/x is not an IAM role ARN"`,
    );
  });
});
