import { describe, expect, test } from 'vitest';
import { aggregateStatus, rateLimit } from '../../src/devfleet/fleet.ts';
import { packedPolicySizePercent } from '../../src/devfleet/packed-policy.ts';
import { parseAuthorization } from '../../src/devfleet/sigv4.ts';
import type { InvocationRecord } from '../../src/devfleet/state.ts';

type Inv = Pick<InvocationRecord, 'status' | 'statusDetails'>;
const inv = (status: Inv['status'], statusDetails: string = status): Inv => ({ status, statusDetails });
const cmd = (
  over: Partial<{ cancelRequested: boolean; maxErrors: string; targets: { Key: string; Values: string[] }[] }> = {},
) => ({
  cancelRequested: false,
  maxErrors: '0',
  targets: [],
  ...over,
});

describe('aggregateStatus', () => {
  test.each<[string, ReturnType<typeof cmd>, Inv[], string, string]>([
    ['all pending', cmd(), [inv('Pending'), inv('Pending')], 'Pending', 'Pending'],
    ['one running', cmd(), [inv('InProgress'), inv('Pending')], 'InProgress', 'InProgress'],
    ['one done, one pending', cmd(), [inv('Success'), inv('Pending')], 'InProgress', 'InProgress'],
    ['cancelling', cmd({ cancelRequested: true }), [inv('Cancelling'), inv('Cancelled')], 'Cancelling', 'Cancelling'],
    ['all success', cmd(), [inv('Success'), inv('Success')], 'Success', 'Success'],
    ['one failed, MaxErrors 0', cmd(), [inv('Success'), inv('Failed')], 'Failed', 'Failed'],
    ['one failed, MaxErrors 1', cmd({ maxErrors: '1' }), [inv('Success'), inv('Failed')], 'Failed', 'Incomplete'],
    ['one failed, MaxErrors 50%', cmd({ maxErrors: '50%' }), [inv('Success'), inv('Failed')], 'Failed', 'Incomplete'],
    ['execution timeout', cmd(), [inv('TimedOut', 'ExecutionTimedOut')], 'TimedOut', 'ExecutionTimedOut'],
    ['delivery timeout everywhere', cmd(), [inv('TimedOut', 'DeliveryTimedOut')], 'TimedOut', 'DeliveryTimedOut'],
    // Beside a success, an invocation that never ran does not count toward MaxErrors: Incomplete.
    [
      'delivery timeout beside a success',
      cmd(),
      [inv('Success'), inv('TimedOut', 'DeliveryTimedOut')],
      'Failed',
      'Incomplete',
    ],
    ['access denied only', cmd(), [inv('Failed', 'AccessDenied')], 'Failed', 'AccessDenied'],
    ['access denied beside a success', cmd(), [inv('Success'), inv('Failed', 'AccessDenied')], 'Failed', 'Incomplete'],
    ['undeliverable only', cmd(), [inv('Failed', 'Undeliverable')], 'Failed', 'Undeliverable'],
    // Undeliverable decides neither Success nor Incomplete.
    ['undeliverable beside a success', cmd(), [inv('Success'), inv('Failed', 'Undeliverable')], 'Success', 'Success'],
    ['cancelled', cmd({ cancelRequested: true }), [inv('Success'), inv('Cancelled')], 'Cancelled', 'Cancelled'],
    ['terminated after MaxErrors', cmd(), [inv('Failed'), inv('Cancelled', 'Terminated')], 'Failed', 'Failed'],
  ])('%s', (_name, c, invs, status, details) => {
    expect(aggregateStatus(c, invs)).toEqual({ status, details });
  });

  test('no targets matched', () => {
    expect(aggregateStatus(cmd({ targets: [{ Key: 'tag:Role', Values: ['x'] }] }), [])).toEqual({
      status: 'Success',
      details: 'NoInstancesInTag',
    });
  });
});

describe('rateLimit', () => {
  test.each<[string, number, 'up' | 'down', number]>([
    ['50', 3, 'up', 50],
    ['10%', 3, 'up', 1],
    ['50%', 3, 'up', 2],
    ['100%', 7, 'up', 7],
    ['0', 3, 'down', 0],
    ['50%', 3, 'down', 1],
    ['10%', 3, 'down', 0],
  ])('%s of %i rounded %s → %i', (value, targets, round, expected) => {
    expect(rateLimit(value, targets, round)).toBe(expected);
  });
});

describe('packedPolicySizePercent', () => {
  const policy = JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Action: 'ssm:SendCommand', Resource: 'arn:aws:ssm:us-east-1::document/AWS-RunShellScript' },
      {
        Effect: 'Allow',
        Action: ['ssm:ListCommands', 'ssm:ListCommandInvocations', 'ssm:GetCommandInvocation'],
        Resource: '*',
      },
    ],
  });
  test('a small least-privilege policy uses a small share', () => {
    const p = packedPolicySizePercent(policy, []);
    expect(p).toBeGreaterThan(0);
    expect(p).toBeLessThan(40);
  });
  test('whitespace does not count, tags do', () => {
    const pretty = JSON.stringify(JSON.parse(policy), null, 4);
    expect(packedPolicySizePercent(pretty, [])).toBe(packedPolicySizePercent(policy, []));
    const tags = Array.from({ length: 10 }, (_, i) => ({ key: `Key${i}`, value: `value-${i}-${'x'.repeat(i * 7)}` }));
    expect(packedPolicySizePercent(policy, tags)).toBeGreaterThan(packedPolicySizePercent(policy, []));
  });
  test('high-entropy content goes over the limit', () => {
    let noise = '';
    for (let i = 0; noise.length < 1900; i++) noise += ((i * 2654435761) >>> 0).toString(36);
    expect(packedPolicySizePercent(undefined, [{ key: 'n', value: noise }])).toBeGreaterThan(100);
  });
});

describe('parseAuthorization', () => {
  const header =
    'AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20240101/us-east-1/ssm/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=' +
    'a'.repeat(64);
  test('reads the credential scope and signed headers', () => {
    expect(parseAuthorization(header)).toEqual({
      accessKeyId: 'ASIAEXAMPLE',
      date: '20240101',
      region: 'us-east-1',
      service: 'ssm',
      signedHeaders: ['host', 'x-amz-date', 'x-amz-target'],
      signature: 'a'.repeat(64),
    });
  });
  test('missing and malformed headers fail differently', () => {
    expect(() => parseAuthorization(undefined)).toThrow(expect.objectContaining({ kind: 'missing' }));
    expect(() => parseAuthorization('AWS4-HMAC-SHA256 Credential=x')).toThrow(
      expect.objectContaining({ kind: 'incomplete' }),
    );
    expect(() => parseAuthorization(header.replace('a'.repeat(64), 'zz'))).toThrow(
      expect.objectContaining({ kind: 'incomplete' }),
    );
  });
});
