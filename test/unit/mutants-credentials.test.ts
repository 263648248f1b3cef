/**
 * Tests written to kill mutants Stryker found alive or uncovered in src/activities/credentials.ts
 * (npm run mutate -- --mutate src/activities/credentials.ts): the AssumeRole request a run's
 * lease makes, how STS failures are classified, when a lease is re-issued, and how long a
 * released run is remembered. STS is a fake that records what it was asked; time is injected.
 */
import type { AssumeRoleCommand } from '@aws-sdk/client-sts';
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, test } from 'vitest';
import { CredentialLeases, sessionName, sourceIdentity } from '../../src/activities/credentials.ts';
import type { NewAuditEvent } from '../../src/core/audit.ts';
import type { CredentialRequest } from '../../src/core/execution.ts';
import { rejectionOf } from '../helpers/core-samples.ts';
import { T0, credentialRequest } from '../helpers/fake-sts.ts';

const MINUTE = 60_000;

const request = (over: Partial<CredentialRequest> = {}): CredentialRequest =>
  credentialRequest({ approvers: ['bob', 'carol'], ...over });

/** A fake STS: each AssumeRole gets keys that live `lifetimeMs` from the injected clock. */
function harness(opts: { lifetimeMs?: number; fail?: unknown; noCredentials?: boolean } = {}) {
  let now = T0;
  let n = 0;
  const inputs: AssumeRoleCommand['input'][] = [];
  const events: NewAuditEvent[] = [];
  const leases = new CredentialLeases({
    now: () => new Date(now),
    record: async (e) => events.push(e),
    sts: {
      send: (async (command: AssumeRoleCommand) => {
        inputs.push(command.input);
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- what the SDK throws is not always an Error
        if (opts.fail !== undefined) throw opts.fail;
        if (opts.noCredentials) return {};
        n++;
        return {
          Credentials: {
            AccessKeyId: `ASIAFAKE${n}`,
            SecretAccessKey: `secret-${n}`,
            SessionToken: `token-${n}`,
            Expiration: new Date(now + (opts.lifetimeMs ?? 60 * MINUTE)),
          },
        };
      }) as never,
    },
  });
  return {
    leases,
    inputs,
    events,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe('the AssumeRole request', () => {
  test('names the run, the operator, the runbook and its approvers', async () => {
    const h = harness();
    await h.leases.issue(request(), 'approved');
    expect(h.inputs).toEqual([
      {
        RoleArn: 'arn:aws:iam::123456789012:role/runner',
        RoleSessionName: 'mechanic-mx-0000000001',
        Policy: '{"Version":"2012-10-17","Statement":[]}',
        DurationSeconds: 1200,
        SourceIdentity: 'alice',
        Tags: [
          { Key: 'MechanicExecution', Value: 'mx-0000000001' },
          { Key: 'MechanicRunbook', Value: 'deploy-web@3' },
          { Key: 'MechanicApprovers', Value: 'bob carol' },
        ],
      },
    ]);
  });

  test('tag values are cut to 256 characters, and no approvers reads "none"', async () => {
    const h = harness();
    await h.leases.issue(request({ runbook: 'r'.repeat(300), approvers: [] }), 'approved');
    await h.leases.issue(request({ approvers: ['a'.repeat(200), 'b'.repeat(200)] }), 'approved');
    const tags = h.inputs.map((i) =>
      Object.fromEntries((i.Tags ?? []).map((t): [string, string] => [t.Key ?? '', t.Value ?? ''])),
    );
    expect(tags[0]!['MechanicRunbook']).toBe('r'.repeat(256));
    expect(tags[0]!['MechanicApprovers']).toBe('none');
    expect(tags[1]!['MechanicApprovers']).toBe(`${'a'.repeat(200)} ${'b'.repeat(55)}`);
  });

  test('the lease holds the key id, expiry and policy digest, never the secret', async () => {
    const h = harness();
    const lease = await h.leases.issue(request(), 'approved');
    expect(Object.keys(lease).sort()).toEqual(['accessKeyId', 'expiration', 'policyDigest']);
    expect(JSON.stringify(lease)).not.toMatch(/secret-|token-/);
    expect(h.events).toEqual([]); // the first issue is recorded by the workflow, not here
  });
});

describe('STS failures', () => {
  test('an answer without credentials is retried (STS_INCOMPLETE)', async () => {
    const e = await rejectionOf(
      harness({ noCredentials: true }).leases.issue(request(), 'approved'),
      ApplicationFailure,
    );
    expect([e.type, e.nonRetryable, e.message]).toEqual([
      'STS_INCOMPLETE',
      false,
      'STS answered AssumeRole without credentials',
    ]);
  });

  test('a client fault stops the run (STS_FAILED), naming the error', async () => {
    const fail = Object.assign(new Error('not authorized to assume it'), { name: 'AccessDenied', $fault: 'client' });
    const e = await rejectionOf(harness({ fail }).leases.issue(request(), 'approved'), ApplicationFailure);
    expect([e.type, e.nonRetryable, e.message]).toEqual([
      'STS_FAILED',
      true,
      'AssumeRole failed: AccessDenied: not authorized to assume it',
    ]);
  });

  test.each(['ThrottlingException', 'Throttling'])('%s is retried even though it is a client fault', async (name) => {
    const fail = Object.assign(new Error('slow down'), { name, $fault: 'client' });
    const e = await rejectionOf(harness({ fail }).leases.issue(request(), 'approved'), ApplicationFailure);
    expect([e.type, e.nonRetryable, e.message]).toEqual([
      'STS_UNAVAILABLE',
      false,
      `AssumeRole failed: ${name}: slow down`,
    ]);
  });

  test('a server fault is retried; an error without name or message is still described', async () => {
    const e = await rejectionOf(
      harness({ fail: { $fault: 'server' } }).leases.issue(request(), 'approved'),
      ApplicationFailure,
    );
    expect([e.type, e.nonRetryable, e.message]).toEqual([
      'STS_UNAVAILABLE',
      false,
      'AssumeRole failed: Error: [object Object]',
    ]);
  });

  test('an ApplicationFailure passes through unchanged', async () => {
    const fail = ApplicationFailure.nonRetryable('already classified', 'SOMETHING');
    expect(await rejectionOf(harness({ fail }).leases.issue(request(), 'approved'), ApplicationFailure)).toBe(fail);
  });
});

describe('credentialsFor', () => {
  test('a lease with more than two minutes left is reused', async () => {
    const h = harness();
    await h.leases.issue(request(), 'approved');
    h.advance(60 * MINUTE - 2 * MINUTE - 1);
    expect((await h.leases.credentialsFor(request())).accessKeyId).toBe('ASIAFAKE1');
    expect(h.inputs).toHaveLength(1);
  });

  test.each([2 * MINUTE, MINUTE])('a lease with %i ms left is refreshed, and the refresh is audited', async (left) => {
    const h = harness();
    await h.leases.issue(request(), 'approved');
    h.advance(60 * MINUTE - left);
    expect((await h.leases.credentialsFor(request())).accessKeyId).toBe('ASIAFAKE2');
    expect(h.events).toEqual([
      {
        eventId: 'mx-0000000001:credentials.refreshed:ASIAFAKE2',
        executionId: 'mx-0000000001',
        type: 'credentials.issued',
        actor: 'mechanic',
        at: new Date(T0 + 60 * MINUTE - left).toISOString(),
        data: expect.objectContaining({ accessKeyId: 'ASIAFAKE2', reason: 'refreshed' }) as unknown,
      },
    ]);
  });

  test('a lease the service refused is dropped, so the next attempt re-issues', async () => {
    const h = harness();
    await h.leases.issue(request(), 'approved');
    h.leases.drop('mx-0000000001');
    expect((await h.leases.credentialsFor(request())).accessKeyId).toBe('ASIAFAKE2');
  });

  test('a worker without a lease issues one', async () => {
    const h = harness();
    expect((await h.leases.credentialsFor(request())).secretAccessKey).toBe('secret-1');
  });

  test('a released run cannot mint credentials again', async () => {
    const h = harness();
    await h.leases.issue(request(), 'approved');
    h.leases.release('mx-0000000001');
    const e = await rejectionOf(h.leases.credentialsFor(request()), ApplicationFailure);
    expect([e.type, e.nonRetryable, e.message]).toEqual([
      'CREDENTIALS_RELEASED',
      true,
      'execution mx-0000000001 has released its credentials',
    ]);
  });

  test('a released run is remembered for a day, then forgotten when another run releases', async () => {
    const h = harness();
    const a = request();
    const b = request({ executionId: 'mx-0000000002' });
    h.leases.release(a.executionId);
    h.advance(24 * 60 * MINUTE);
    h.leases.release(b.executionId);
    await rejectionOf(h.leases.credentialsFor(a), ApplicationFailure); // exactly a day: still remembered
    h.advance(1);
    h.leases.release(b.executionId);
    expect((await h.leases.credentialsFor(a)).accessKeyId).toBe('ASIAFAKE1');
  });

  test('a run released an hour ago is still refused', async () => {
    const h = harness();
    h.leases.release('mx-0000000001');
    h.advance(60 * MINUTE);
    h.leases.release('mx-0000000002');
    await rejectionOf(h.leases.credentialsFor(request()), ApplicationFailure);
  });
});

describe('names STS accepts', () => {
  test.each([
    ['mx-0000000001', 'mechanic-mx-0000000001'],
    ['mx a/b#c', 'mechanic-mx-a-b-c'],
    ['x'.repeat(80), `mechanic-${'x'.repeat(55)}`],
  ])('sessionName(%j) is %j', (id, name) => {
    expect(sessionName(id)).toBe(name);
  });

  test.each([
    ['alice@example.com', 'alice@example.com'],
    ['ada lovelace/ops', 'ada_lovelace_ops'],
    ['x', 'x_'],
    ['', '__'],
    ['ab', 'ab'],
    ['y'.repeat(70), 'y'.repeat(64)],
  ])('sourceIdentity(%j) is %j', (who, identity) => {
    expect(sourceIdentity(who)).toBe(identity);
  });
});

/*
 * Equivalent mutant left alive: sourceIdentity's `clean.length >= 2` → `> 2` differs only for a
 * two-character name, where `${clean}__`.slice(0, 2) gives back the same two characters.
 */
