import { describe, expect, test } from 'vitest';
import {
  evaluatePolicy,
  evaluateSession,
  instanceContext,
  parsePolicyJson,
  wildcardMatch,
  type PolicyDocument,
} from '../../src/devfleet/iam.ts';

const DOC = 'arn:aws:ssm:us-east-1::document/AWS-RunShellScript';
const WEB = 'arn:aws:ec2:us-east-1:123456789012:instance/i-0d3f1ee7000000001';
const webTags = instanceContext({ Role: 'web', Env: 'staging' });
const dbTags = instanceContext({ Role: 'db', Env: 'staging' });
const req = (action: string, resource: string, context: Record<string, string> = {}) => ({ action, resource, context });
const allow = (stmt: Record<string, unknown>): PolicyDocument => ({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', ...stmt }] as PolicyDocument['Statement'],
});

describe('wildcardMatch', () => {
  test.each([
    ['ssm:*', 'ssm:SendCommand', true, true],
    ['ssm:List*', 'ssm:ListCommands', true, true],
    ['ssm:list*', 'ssm:ListCommands', true, true],
    ['ssm:list*', 'ssm:ListCommands', false, false],
    ['ssm:Get?ommandInvocation', 'ssm:GetCommandInvocation', true, true],
    ['arn:aws:ec2:*:*:instance/i-0d3f*', WEB, false, true],
    ['arn:aws:ec2:us-east-1:123456789012:instance/i-0d3f1ee700000000?', WEB, false, true],
    ['arn:aws:ec2:us-east-1:123456789012:instance/i-0d3f1ee70000000', WEB, false, false],
    ['arn:aws:ec2:.*', WEB, false, false], // regex syntax is not special
    ['*', '*', false, true],
  ])('%s vs %s (ignoreCase %s) → %s', (pattern, value, ignoreCase, expected) => {
    expect(wildcardMatch(pattern, value, ignoreCase)).toBe(expected);
  });
});

describe('evaluatePolicy', () => {
  test('actions match case-insensitively, resources case-sensitively', () => {
    expect(evaluatePolicy(allow({ Action: 'SSM:sendcommand', Resource: DOC }), req('ssm:SendCommand', DOC))).toBe(
      'allow',
    );
    expect(
      evaluatePolicy(allow({ Action: 'ssm:SendCommand', Resource: DOC.toLowerCase() }), req('ssm:SendCommand', DOC)),
    ).toBe('implicit-deny');
  });

  test('a statement on instance ARNs does not cover the "*" resource of read calls', () => {
    const p = allow({ Action: 'ssm:*', Resource: 'arn:aws:ec2:*:*:instance/*' });
    expect(evaluatePolicy(p, req('ssm:ListCommands', '*'))).toBe('implicit-deny');
    expect(evaluatePolicy(allow({ Action: 'ssm:*', Resource: '*' }), req('ssm:ListCommands', '*'))).toBe('allow');
  });

  test('explicit Deny wins over Allow', () => {
    const p: PolicyDocument = {
      Statement: [
        { Effect: 'Allow', Action: '*', Resource: '*' },
        { Effect: 'Deny', Action: 'ssm:SendCommand', Resource: WEB },
      ],
    };
    expect(evaluatePolicy(p, req('ssm:SendCommand', WEB))).toBe('explicit-deny');
    expect(evaluatePolicy(p, req('ssm:ListCommands', '*'))).toBe('allow');
  });

  test('NotAction and NotResource', () => {
    expect(
      evaluatePolicy(allow({ NotAction: 'ssm:CancelCommand', Resource: '*' }), req('ssm:CancelCommand', '*')),
    ).toBe('implicit-deny');
    expect(evaluatePolicy(allow({ NotAction: 'ssm:CancelCommand', Resource: '*' }), req('ssm:ListCommands', '*'))).toBe(
      'allow',
    );
    expect(evaluatePolicy(allow({ Action: 'ssm:*', NotResource: WEB }), req('ssm:SendCommand', WEB))).toBe(
      'implicit-deny',
    );
  });

  test.each([
    [{ StringEquals: { 'ssm:resourceTag/Role': 'web' } }, webTags, 'allow'],
    [{ StringEquals: { 'ssm:resourceTag/Role': 'web' } }, dbTags, 'implicit-deny'],
    [{ StringEquals: { 'aws:ResourceTag/Role': ['db', 'web'] } }, dbTags, 'allow'],
    [{ StringEquals: { 'AWS:RESOURCETAG/role': 'web' } }, webTags, 'allow'], // key names are case-insensitive
    [{ StringEquals: { 'ssm:resourceTag/Role': 'WEB' } }, webTags, 'implicit-deny'], // values are not
    [{ StringLike: { 'ssm:resourceTag/Env': 'stag*' } }, webTags, 'allow'],
    [{ StringLike: { 'ssm:resourceTag/Env': 'prod*' } }, webTags, 'implicit-deny'],
    [{ StringEquals: { 'ssm:resourceTag/Role': 'web', 'ssm:resourceTag/Env': 'prod' } }, webTags, 'implicit-deny'], // keys AND
    [{ StringEquals: { 'ssm:resourceTag/Team': 'x' } }, webTags, 'implicit-deny'], // missing key
    [{ StringNotEquals: { 'ssm:resourceTag/Role': 'db' } }, webTags, 'allow'],
    [{ StringNotEquals: { 'ssm:resourceTag/Role': 'db' } }, dbTags, 'implicit-deny'],
    [{ StringEqualsIfExists: { 'ssm:resourceTag/Team': 'x' } }, webTags, 'allow'],
    [{ NumericLessThan: { 'ssm:resourceTag/Size': '3' } }, webTags, 'implicit-deny'], // unsupported: Allow does not apply
    [{ 'ForAnyValue:StringEquals': { 'ssm:resourceTag/Role': 'web' } }, webTags, 'implicit-deny'],
  ])('Allow with %j on %j → %s', (condition, context, expected) => {
    const p = allow({ Action: 'ssm:SendCommand', Resource: 'arn:aws:ec2:*:*:instance/*', Condition: condition });
    expect(evaluatePolicy(p, req('ssm:SendCommand', WEB, context))).toBe(expected);
  });

  test('an unsupported operator makes a Deny apply (fail closed both ways)', () => {
    const p: PolicyDocument = {
      Statement: [
        { Effect: 'Allow', Action: '*', Resource: '*' },
        {
          Effect: 'Deny',
          Action: '*',
          Resource: '*',
          Condition: { DateGreaterThan: { 'aws:CurrentTime': '2020-01-01T00:00:00Z' } },
        },
      ],
    };
    expect(evaluatePolicy(p, req('ssm:ListCommands', '*'))).toBe('explicit-deny');
  });
});

describe('evaluateSession', () => {
  const role = allow({ Action: 'ssm:*', Resource: '*' });
  test('the session policy narrows, never widens', () => {
    const narrow = allow({
      Action: 'ssm:SendCommand',
      Resource: 'arn:aws:ec2:*:*:instance/*',
      Condition: { StringEquals: { 'ssm:resourceTag/Role': 'web' } },
    });
    expect(evaluateSession(role, narrow, req('ssm:SendCommand', WEB, webTags)).allowed).toBe(true);
    expect(evaluateSession(role, narrow, req('ssm:SendCommand', WEB, dbTags))).toEqual({
      allowed: false,
      reason: 'because no session policy allows the ssm:SendCommand action',
    });
    const wide = allow({ Action: '*', Resource: '*' });
    expect(
      evaluateSession(allow({ Action: 'ssm:List*', Resource: '*' }), wide, req('ssm:SendCommand', DOC)).allowed,
    ).toBe(false);
  });
  test('no session policy means the role policy alone decides', () => {
    expect(evaluateSession(role, undefined, req('ssm:SendCommand', DOC)).allowed).toBe(true);
    expect(evaluateSession(role, undefined, req('sts:AssumeRole', 'arn:aws:iam::123456789012:role/x')).allowed).toBe(
      false,
    );
  });
});

describe('parsePolicyJson', () => {
  test.each([
    ['not json', false],
    ['{"Statement":[]}', false],
    ['{"Statement":{"Effect":"Allow","Action":"ssm:*","Resource":"*"}}', true],
    ['{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"*"}]}', true],
    ['{"Statement":[{"Effect":"Permit","Action":"ssm:*","Resource":"*"}]}', false],
    ['{"Statement":[{"Effect":"Allow","Action":"ssm:*","NotAction":"x","Resource":"*"}]}', false],
    ['{"Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"*","Principal":"*"}]}', false],
    ['{"Version":"2099-01-01","Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"*"}]}', false],
  ])('%s → ok %s', (text, ok) => {
    expect(parsePolicyJson(text).ok).toBe(ok);
  });
});
