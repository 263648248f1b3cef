/**
 * Tests written to kill what a whole Stryker run left alive in src/activities/credentials.ts
 * after mutants-credentials and credentials-lease: which issuances of one run share an
 * AssumeRole under way (an approved issue never waits for a re-issue, a re-issue shares the
 * approved one), what a released run still gets, the id of a re-issue's record, the probe of the
 * worker's own credentials (asked until it answers, then never again; no probe is long-term keys),
 * and which STS refusals are asked again for one hour. STS is a fake whose answers the test can
 * hold and give one by one; time is injected.
 *
 * Each mutant (line:column of the file as the run saw it), and what kills it or why it cannot be:
 * - 122:20 `why !== 'approved'` → true, 122:28 `'approved'` → "": "an approved issue does not
 *   wait for a re-issue under way: it makes its own AssumeRole".
 * - 125:11 `why !== 'approved'` → true, 125:19 `'approved'` → "": "an approved issue is never
 *   refused as released" and "… whose run is released while STS answers still gets its lease".
 * - 131:23 `why === 'refreshed'` → true: "a re-issue is recorded under its own id, not a refresh's".
 * - 146:11 `this.#pending.get(…) === p` → true: "a re-issue that ends while an approved issue is
 *   under way leaves that issue for the next caller to share".
 * - 170:9 the condition → true, `&&` → `||`, and 178:40 `?? false` → `?? true`: "without a probe
 *   the worker has long-term keys: a two-hour plan asks for two hours".
 * - 170:9 `this.#chained === undefined` → true (and `||` again): "the probe is asked until it
 *   answers, then never again".
 * - 230:10 the condition → true, `&&` → `||`: "ValidationError saying … Member must have length
 *   …: the run's failure, asked once" (a ValidationError about anything but the duration);
 *   230:10 `err.name === 'ValidationError'` → true: "InvalidParameterValue saying … DurationSeconds
 *   exceeds …: the run's failure, asked once" (another name, though it mentions the duration).
 * - 230:90 `err.message ?? ''` → `?? 'Stryker was here!'` (no coverage): equivalent, the pattern
 *   /DurationSeconds exceeds/ matches neither string, so a refusal without a message is never
 *   asked again either way.
 * - 252:10 `clean.length >= 2` → `> 2`: equivalent (as mutants-credentials says): for two
 *   characters, `${clean}__`.slice(0, 2) is the same two.
 */
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, test } from 'vitest';
import type { CredentialRequest } from '../../src/core/execution.ts';
import { credentialRequest, fakeSts as harness, settle } from '../helpers/fake-sts.ts';
import { rejectionOf } from '../helpers/core-samples.ts';

const ID = 'mx-0000000007';
const request = (over: Partial<CredentialRequest> = {}): CredentialRequest =>
  credentialRequest({ executionId: ID, ...over });

describe('issuances of one run under way at once', () => {
  test('an approved issue does not wait for a re-issue under way: it makes its own AssumeRole', async () => {
    const h = harness({ held: true });
    const reissuing = h.leases.credentialsFor(request());
    await settle();
    const approving = h.leases.issue(request(), 'approved');
    await settle();
    expect(h.asked).toHaveLength(2);
    await h.answer(1);
    await h.answer(2);
    expect((await reissuing).accessKeyId).toBe('ASIAFAKE1');
    expect((await approving).accessKeyId).toBe('ASIAFAKE2');
  });

  test('a re-issue that ends while an approved issue is under way leaves that issue for the next caller to share', async () => {
    const h = harness({ held: true });
    const reissuing = h.leases.credentialsFor(request());
    await settle();
    const approving = h.leases.issue(request(), 'approved');
    await settle();
    await h.answer(1);
    expect((await reissuing).accessKeyId).toBe('ASIAFAKE1');
    // The service refuses that key: the next step asks again while the approved issue is still out.
    h.leases.drop(ID);
    const next = h.leases.credentialsFor(request());
    await settle();
    expect(h.asked).toHaveLength(2);
    await h.answer(2);
    expect((await next).accessKeyId).toBe('ASIAFAKE2');
    expect((await approving).accessKeyId).toBe('ASIAFAKE2');
  });
});

describe('released runs and the records of a re-issue', () => {
  test('an approved issue is never refused as released (only the steps’ own asks are)', async () => {
    const h = harness();
    h.leases.release(ID);
    expect((await h.leases.issue(request(), 'approved')).accessKeyId).toBe('ASIAFAKE1');
    const e = await rejectionOf(h.leases.credentialsFor(request()), ApplicationFailure);
    expect(e.type).toBe('CREDENTIALS_RELEASED');
  });

  test('an approved issue whose run is released while STS answers still gets its lease', async () => {
    const h = harness({ held: true });
    const approving = h.leases.issue(request(), 'approved');
    await settle();
    h.leases.release(ID);
    await h.answer(1);
    expect((await approving).accessKeyId).toBe('ASIAFAKE1');
  });

  test("a re-issue is recorded under its own id, not a refresh's", async () => {
    const h = harness();
    await h.leases.issue(request(), 'approved');
    h.leases.drop(ID);
    expect((await h.leases.credentialsFor(request())).accessKeyId).toBe('ASIAFAKE2');
    expect(h.events.map((e) => [e.eventId, e.data['reason']])).toEqual([
      [`${ID}:credentials.reissued:ASIAFAKE2`, 'reissued'],
    ]);
  });
});

describe("the worker's own credentials", () => {
  test('without a probe the worker has long-term keys: a two-hour plan asks for two hours', async () => {
    const h = harness();
    await h.leases.issue(request({ durationSeconds: 2 * 3600 }), 'approved');
    expect(h.asked).toEqual([7200]);
  });

  test('the probe is asked until it answers, then never again', async () => {
    let calls = 0;
    const h = harness({
      probe: async () => {
        if (++calls === 1) throw new Error('the container endpoint did not answer');
        return false;
      },
    });
    const plan = request({ durationSeconds: 2 * 3600 });
    await h.leases.issue(plan, 'approved'); // unknown: the hour every role grants
    await h.leases.issue(plan, 'approved'); // long-term keys: what the plan needs
    await h.leases.issue(plan, 'approved');
    h.leases.drop(ID);
    await h.leases.credentialsFor(plan);
    expect(h.asked).toEqual([3600, 7200, 7200, 7200]);
    expect(h.probes()).toBe(2);
  });
});

describe('which refusals are asked again for one hour', () => {
  const twoHours = request({ durationSeconds: 2 * 3600 });
  const refusal = (name: string, message: string) => Object.assign(new Error(message), { name, $fault: 'client' });

  test("STS's refusal of the duration is asked again for the hour every role allows", async () => {
    const too = refusal('ValidationError', 'The requested DurationSeconds exceeds the 1 hour session limit');
    const h = harness({ refuse: (seconds) => (seconds > 3600 ? too : undefined) });
    expect((await h.leases.issue(twoHours, 'approved')).accessKeyId).toBe('ASIAFAKE2');
    expect(h.asked).toEqual([7200, 3600]);
  });

  test.each([
    ['ValidationError', 'Value at policy failed to satisfy constraint: Member must have length less than 2048'],
    ['InvalidParameterValue', 'The requested DurationSeconds exceeds what this test allows'],
  ])('%s saying %j: the run’s failure, asked once', async (name, message) => {
    const h = harness({ refuse: () => refusal(name, message) });
    const e = await rejectionOf(h.leases.issue(twoHours, 'approved'), ApplicationFailure);
    expect([e.type, e.nonRetryable, e.message]).toEqual(['STS_FAILED', true, `AssumeRole failed: ${name}: ${message}`]);
    expect(h.asked).toEqual([7200]);
  });
});
