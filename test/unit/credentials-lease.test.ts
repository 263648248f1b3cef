/**
 * How long a run's lease asks STS for, and when it is refreshed: within what the worker's own
 * credentials allow (role chaining: one hour), never more than the plan needs, and renewed before
 * its end with the same session policy, each renewal audited. STS is a fake that records what it
 * was asked and grants what it was asked; time is injected.
 */
import type { AssumeRoleCommand } from '@aws-sdk/client-sts';
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, test } from 'vitest';
import {
  CredentialLeases,
  leaseSeconds,
  needsRefresh,
  refreshMarginMs,
  type CredentialDeps,
} from '../../src/activities/credentials.ts';
import { loadConfig } from '../../src/config.ts';
import type { NewAuditEvent } from '../../src/core/audit.ts';
import { sha256Hex } from '../../src/core/canonical.ts';
import type { CredentialRequest } from '../../src/core/execution.ts';
import { rejectionOf } from '../helpers/core-samples.ts';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

const request = (over: Partial<CredentialRequest> = {}): CredentialRequest => ({
  executionId: 'mx-0000000004',
  roleArn: 'arn:aws:iam::123456789012:role/runner',
  region: 'us-east-1',
  sessionPolicy: '{"Version":"2012-10-17","Statement":[]}',
  durationSeconds: 4 * 3600, // a four-hour plan
  sourceIdentity: 'alice',
  runbook: 'long-run@1',
  approvers: ['bob'],
  ...over,
});

/**
 * A fake STS granting each AssumeRole what it asked for, `scale` times as long (a time-scaled
 * devfleet); `refuseAbove` makes it refuse longer sessions as a role's MaxSessionDuration does.
 */
function harness(
  opts: Pick<CredentialDeps, 'baseIsRoleSession' | 'maxSeconds'> & { refuseAbove?: number; scale?: number } = {},
) {
  let now = T0;
  let n = 0;
  const asked: number[] = [];
  const events: NewAuditEvent[] = [];
  let gate: Promise<void> | undefined;
  const leases = new CredentialLeases({
    now: () => new Date(now),
    record: async (e) => events.push(e),
    ...(opts.baseIsRoleSession ? { baseIsRoleSession: opts.baseIsRoleSession } : {}),
    maxSeconds: opts.maxSeconds,
    sts: {
      send: (async (command: AssumeRoleCommand) => {
        const seconds = command.input.DurationSeconds ?? 3600;
        asked.push(seconds);
        if (gate) await gate;
        if (opts.refuseAbove !== undefined && seconds > opts.refuseAbove) {
          throw Object.assign(
            new Error('The requested DurationSeconds exceeds the MaxSessionDuration set for this role.'),
            { name: 'ValidationError', $fault: 'client' },
          );
        }
        n++;
        return {
          Credentials: {
            AccessKeyId: `ASIAFAKE${n}`,
            SecretAccessKey: `secret-${n}`,
            SessionToken: `token-${n}`,
            Expiration: new Date(now + seconds * SECOND * (opts.scale ?? 1)),
          },
        };
      }) as never,
    },
  });
  return {
    leases,
    asked,
    events,
    advance: (ms: number) => {
      now += ms;
    },
    /** Holds every AssumeRole answer until the returned function is called. */
    hold: () => {
      let open!: () => void;
      gate = new Promise((r) => (open = r));
      return () => {
        gate = undefined;
        open();
      };
    },
  };
}

describe('leaseSeconds: what a lease asks STS for', () => {
  test.each([
    // plan seconds, chained, operator's ceiling → asked
    [4 * 3600, true, undefined, 3600],
    [4 * 3600, false, undefined, 4 * 3600],
    [1200, true, undefined, 1200],
    [600, true, undefined, 900],
    [600, false, undefined, 900],
    [1000.2, false, undefined, 1001],
    [50_000, false, undefined, 43_200],
    [4 * 3600, true, 1800, 1800],
    [4 * 3600, false, 7200, 7200],
    [2000, false, 1800, 1800],
    [1000, false, 1800, 1000],
  ])('a %i s plan, chained %s, ceiling %s: %i s', (plan, chained, maxSeconds, expected) => {
    expect(leaseSeconds(plan, { chained, maxSeconds })).toBe(expected);
  });
});

describe('refreshMarginMs: how close to its end a lease is replaced', () => {
  test.each([
    [HOUR, 2 * MINUTE],
    [15 * MINUTE, 2 * MINUTE],
    [8 * MINUTE, 2 * MINUTE],
    [4 * MINUTE, MINUTE],
    [8 * SECOND, 2 * SECOND],
    [0, 0],
    [-SECOND, 0],
  ])('a %i ms lease: %i ms', (lifetime, margin) => {
    expect(refreshMarginMs(lifetime)).toBe(margin);
  });

  test('a lease is handed out until its margin, and replaced from it on', () => {
    const obtainedAt = new Date(T0);
    const expiration = new Date(T0 + 8 * SECOND);
    expect(needsRefresh({ obtainedAt, expiration }, new Date(T0 + 6 * SECOND - 1))).toBe(false);
    expect(needsRefresh({ obtainedAt, expiration }, new Date(T0 + 6 * SECOND))).toBe(true);
    expect(needsRefresh({ obtainedAt, expiration }, new Date(T0 + 9 * SECOND))).toBe(true);
  });
});

describe('a lease within what the worker credentials allow', () => {
  test('from a role session (chaining), a four-hour plan asks for one hour', async () => {
    const h = harness({ baseIsRoleSession: async () => true });
    const lease = await h.leases.issue(request(), 'approved');
    expect(h.asked).toEqual([3600]);
    expect(lease.expiration).toBe(new Date(T0 + HOUR).toISOString());
  });

  test('from long-term keys, it asks for what the plan needs, and no more', async () => {
    const h = harness({ baseIsRoleSession: async () => false });
    await h.leases.issue(request(), 'approved');
    await h.leases.issue(request({ durationSeconds: 1200 }), 'approved');
    expect(h.asked).toEqual([4 * 3600, 1200]);
  });

  test('when the worker cannot tell what its credentials are, it asks for the hour every role grants', async () => {
    const h = harness({
      baseIsRoleSession: async () => {
        throw new Error('the container endpoint did not answer');
      },
    });
    await h.leases.issue(request(), 'approved');
    expect(h.asked).toEqual([3600]);
  });

  test("the operator's ceiling (MECHANIC_CREDENTIAL_MAX_SECONDS) bounds every lease", async () => {
    const h = harness({ baseIsRoleSession: async () => false, maxSeconds: 1800 });
    await h.leases.issue(request(), 'approved');
    expect(h.asked).toEqual([1800]);
  });

  test('a role whose MaxSessionDuration is shorter than the plan gets the hour every role allows', async () => {
    const h = harness({ baseIsRoleSession: async () => false, refuseAbove: 3600 });
    const lease = await h.leases.issue(request(), 'approved');
    expect(h.asked).toEqual([4 * 3600, 3600]);
    expect(lease.accessKeyId).toBe('ASIAFAKE1');
  });

  test('a refusal of an hour or less is the run’s failure, with STS’s reason', async () => {
    const h = harness({ baseIsRoleSession: async () => true, refuseAbove: 900 });
    const e = await rejectionOf(h.leases.issue(request(), 'approved'), ApplicationFailure);
    expect([e.type, e.nonRetryable, e.message]).toEqual([
      'STS_FAILED',
      true,
      'AssumeRole failed: ValidationError: The requested DurationSeconds exceeds the MaxSessionDuration set for this role.',
    ]);
    expect(h.asked).toEqual([3600]);
  });
});

describe('refreshed before it expires', () => {
  test('a four-hour run lives on hourly leases, each refresh audited with its key, expiry and policy digest', async () => {
    const h = harness({ baseIsRoleSession: async () => true });
    const req = request();
    await h.leases.issue(req, 'approved');
    const keys: string[] = [];
    for (let t = 0; t < 4 * HOUR; t += 30 * SECOND) {
      const c = await h.leases.credentialsFor(req);
      // Every step call gets a key with more than its margin left.
      expect(c.expiration.getTime() - (T0 + t)).toBeGreaterThan(2 * MINUTE);
      if (keys.at(-1) !== c.accessKeyId) keys.push(c.accessKeyId);
      h.advance(30 * SECOND);
    }
    expect(keys).toEqual(['ASIAFAKE1', 'ASIAFAKE2', 'ASIAFAKE3', 'ASIAFAKE4', 'ASIAFAKE5']);
    expect(h.asked.every((s) => s === 3600)).toBe(true);
    expect(h.events.map((e) => [e.eventId, e.data['reason'], e.data['accessKeyId']])).toEqual(
      ['ASIAFAKE2', 'ASIAFAKE3', 'ASIAFAKE4', 'ASIAFAKE5'].map((k) => [
        `mx-0000000004:credentials.refreshed:${k}`,
        'refreshed',
        k,
      ]),
    );
    const first = h.events[0]!;
    expect(first).toMatchObject({ type: 'credentials.issued', executionId: 'mx-0000000004', actor: 'mechanic' });
    expect(first.data).toEqual({
      accessKeyId: 'ASIAFAKE2',
      expiration: new Date(T0 + 58 * MINUTE + HOUR).toISOString(),
      policyDigest: sha256Hex(req.sessionPolicy),
      roleArn: req.roleArn,
      reason: 'refreshed',
    });
    expect(JSON.stringify(h.events)).not.toMatch(/secret-|token-/);
  });

  test('a short lease is refreshed at a quarter of its life left, not two minutes (which is all of it)', async () => {
    // A time-scaled STS: a one-hour session lives 8 s, so the margin is 2 s.
    const h = harness({ baseIsRoleSession: async () => true, scale: 8 / 3600 });
    await h.leases.issue(request(), 'approved');
    h.advance(6 * SECOND - 1);
    expect((await h.leases.credentialsFor(request())).accessKeyId).toBe('ASIAFAKE1');
    h.advance(1);
    expect((await h.leases.credentialsFor(request())).accessKeyId).toBe('ASIAFAKE2');
    expect(h.events.map((e) => e.data['reason'])).toEqual(['refreshed']);
  });

  test('steps asking at once near the end share one AssumeRole and one record', async () => {
    const h = harness({ baseIsRoleSession: async () => true });
    await h.leases.issue(request(), 'approved');
    h.advance(59 * MINUTE);
    const release = h.hold();
    const asking = Promise.all([1, 2, 3].map(() => h.leases.credentialsFor(request())));
    release();
    const got = await asking;
    expect(got.map((c) => c.accessKeyId)).toEqual(['ASIAFAKE2', 'ASIAFAKE2', 'ASIAFAKE2']);
    expect(h.asked).toHaveLength(2);
    expect(h.events).toHaveLength(1);
  });

  test('a lease for another session policy is never handed out: a new one is issued', async () => {
    const h = harness({ baseIsRoleSession: async () => true });
    await h.leases.issue(request(), 'approved');
    const other = request({ sessionPolicy: '{"Version":"2012-10-17","Statement":[{"Effect":"Deny"}]}' });
    expect((await h.leases.credentialsFor(other)).accessKeyId).toBe('ASIAFAKE2');
    expect(h.events.map((e) => [e.data['reason'], e.data['policyDigest']])).toEqual([
      ['reissued', sha256Hex(other.sessionPolicy)],
    ]);
  });

  test('a run released while its refresh was under way keeps nothing', async () => {
    const h = harness({ baseIsRoleSession: async () => true });
    await h.leases.issue(request(), 'approved');
    h.advance(59 * MINUTE);
    const release = h.hold();
    const refreshing = h.leases.credentialsFor(request());
    await new Promise((r) => setImmediate(r));
    h.leases.release('mx-0000000004');
    release();
    const e = await rejectionOf(refreshing, ApplicationFailure);
    expect(e.type).toBe('CREDENTIALS_RELEASED');
    expect(h.events).toEqual([]);
  });
});

describe('settings', () => {
  test('MECHANIC_CREDENTIAL_MAX_SECONDS: unset or empty is no ceiling; 900 to 43200 seconds', () => {
    expect(loadConfig({}).aws.credentialMaxSeconds).toBeUndefined();
    expect(loadConfig({ MECHANIC_CREDENTIAL_MAX_SECONDS: '' }).aws.credentialMaxSeconds).toBeUndefined();
    expect(loadConfig({ MECHANIC_CREDENTIAL_MAX_SECONDS: '1800' }).aws.credentialMaxSeconds).toBe(1800);
    for (const bad of ['600', '50000', 'an hour']) {
      expect(() => loadConfig({ MECHANIC_CREDENTIAL_MAX_SECONDS: bad })).toThrow(/MECHANIC_CREDENTIAL_MAX_SECONDS/);
    }
  });

  test("a session's keys in the environment keep their token", () => {
    const env = { AWS_ACCESS_KEY_ID: 'ASIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret', AWS_SESSION_TOKEN: 'token' };
    expect(loadConfig(env).aws.baseCredentials).toEqual({
      accessKeyId: 'ASIAEXAMPLE',
      secretAccessKey: 'secret',
      sessionToken: 'token',
    });
    expect(loadConfig({ ...env, AWS_SESSION_TOKEN: undefined }).aws.baseCredentials).toEqual({
      accessKeyId: 'ASIAEXAMPLE',
      secretAccessKey: 'secret',
    });
  });

  test('MECHANIC_DEV_WORKER_CREDENTIALS: role by default, or keys', () => {
    expect(loadConfig({}).aws.devWorkerCredentials).toBe('role');
    expect(loadConfig({ MECHANIC_DEV_WORKER_CREDENTIALS: 'keys' }).aws.devWorkerCredentials).toBe('keys');
    expect(() => loadConfig({ MECHANIC_DEV_WORKER_CREDENTIALS: 'root' })).toThrow(/MECHANIC_DEV_WORKER_CREDENTIALS/);
  });
});
