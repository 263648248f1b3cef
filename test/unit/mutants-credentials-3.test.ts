/**
 * src/activities/credentials.ts: what a run's approved lease leaves in the worker. An approved
 * issue still answers when its run is released while STS answers (mutants-credentials-2), but
 * the secret of a released run is no longer kept in the worker's leases: no step of that run may
 * use it, and it stayed in memory until the worker exited. Found while reading the whole run's
 * survivors (125:11); fixed in #obtain with these tests. STS is a fake whose answers the test
 * holds and gives one by one; the clock is injected and moved by the test.
 *
 * The mutants of the new guard (`if (!this.#released.has(…)) this.#leases.set(…)`):
 * - the condition → true (the old behaviour, the secret kept): "an approved issue that ends
 *   after its run's release keeps no secret: a day later the run's id gets a re-issue, not a
 *   refresh of it".
 * - the condition → false (no lease ever kept): "a live run's approved lease is what its steps
 *   use, with no second AssumeRole".
 *
 * The same for a step: credentialsFor shares an approved issue under way (one AssumeRole per run),
 * and if the run is released before STS answers, the step now gets the release refusal, not the
 * secret (it checked the release only before waiting).
 *
 * The whole run's survivors of this file are all killed by mutants-credentials-2 or named
 * equivalent in its header (230:90, 252:10); nothing is left for this file.
 */
import { describe, expect, test } from 'vitest';
import type { CredentialRequest } from '../../src/core/execution.ts';
import { HOUR, T0, credentialRequest, fakeSts as harness, settle } from '../helpers/fake-sts.ts';

const ID = 'mx-0000000011';
const request = (over: Partial<CredentialRequest> = {}): CredentialRequest =>
  credentialRequest({ executionId: ID, ...over });

describe('the secret an approved issue leaves in the worker', () => {
  test("a live run's approved lease is what its steps use, with no second AssumeRole", async () => {
    const h = harness();
    expect((await h.leases.issue(request(), 'approved')).accessKeyId).toBe('ASIAFAKE1');
    expect((await h.leases.credentialsFor(request())).accessKeyId).toBe('ASIAFAKE1');
    expect(h.asked.length).toBe(1);
    expect(h.events).toEqual([]);
  });

  test('an approved issue that ends after its run’s release keeps no secret: a day later the run’s id gets a re-issue, not a refresh of it', async () => {
    const h = harness({ held: true });
    const approving = h.leases.issue(request(), 'approved');
    await settle();
    h.leases.release(ID);
    await h.answer(1);
    expect((await approving).accessKeyId).toBe('ASIAFAKE1');
    // The release is remembered for a day; another run's release after that forgets it.
    h.clock.now = T0 + 25 * HOUR;
    h.leases.release('mx-0000000012');
    const later = h.leases.credentialsFor(request());
    await settle();
    await h.answer(2);
    expect((await later).accessKeyId).toBe('ASIAFAKE2');
    // Had ASIAFAKE1 been kept, this would be a refresh of it (same policy, expired).
    expect(h.events.map((e) => [e.eventId, e.data['reason']])).toEqual([
      [`${ID}:credentials.reissued:ASIAFAKE2`, 'reissued'],
    ]);
  });
  test('a step that shares an approved issue under way gets no secret when the run is released before STS answers', async () => {
    const h = harness({ held: true });
    const approving = h.leases.issue(request(), 'approved');
    await settle();
    const step = h.leases.credentialsFor(request());
    const stepOutcome = step.then(
      (c) => c.accessKeyId,
      (e: Error) => e.message,
    );
    await settle();
    h.leases.release(ID);
    await h.answer(1);
    expect((await approving).accessKeyId).toBe('ASIAFAKE1');
    expect(await stepOutcome).toMatch(/released/);
    expect(h.asked.length).toBe(1);
  });

  test('before the release, the same sharing step gets the approved secret', async () => {
    const h = harness({ held: true });
    const approving = h.leases.issue(request(), 'approved');
    await settle();
    const step = h.leases.credentialsFor(request());
    await h.answer(1);
    expect((await approving).accessKeyId).toBe('ASIAFAKE1');
    expect((await step).accessKeyId).toBe('ASIAFAKE1');
    expect(h.asked.length).toBe(1);
  });
});
