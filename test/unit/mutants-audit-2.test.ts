/**
 * Kills survivors of the whole mutation run of 56f4ca8 (docs/mutation.md) in
 * src/core/audit-events.ts: refusalCount with a folded count that is not an integer (228:10, →
 * true and ||), and requestedEvent with and without the launch's policies (413:11 ×3, 413:42).
 *
 * Equivalent, left alive: audit-events 228:10 `typeof count === 'number'` → true (Number.isInteger
 * is false for anything that is not a number); 359:10 `attempt !== undefined` → true (undefined >
 * 1 is false); audit-chain 131:59 `executionId === null` → false (JSON.stringify(null) is 'null');
 * audit-chain 168:7 `dataJson !== undefined` → true (every envelope requires data, so an event
 * without it is refused by checkAuditEvent on the line before).
 */
import { describe, expect, test } from 'vitest';
import { refusalCount, requestedEvent } from '../../src/core/audit-events.ts';
import { canonicalJson } from '../../src/core/canonical.ts';
import { DIGEST, makePlan } from '../helpers/tui.ts';

describe('refusalCount', () => {
  test.each([
    [{ count: 2.5 }, 1],
    [{ count: -2 }, 1],
    [{ count: 3 }, 3],
  ])('a record with %j stands for %i refusals', (data, n) => {
    expect(refusalCount({ data })).toBe(n);
  });
});

describe('requestedEvent', () => {
  test('names the policies that allowed the launch only when it is told them', () => {
    const plan = makePlan();
    const without = requestedEvent({ plan, planDigest: DIGEST });
    expect(Object.keys(without.data)).not.toContain('policies');
    expect(canonicalJson(without.data)).not.toContain('"policies"');
    const withPolicies = requestedEvent({ plan, planDigest: DIGEST, launchPolicies: ['p1'] });
    expect(withPolicies.data.policies).toEqual(['p1']);
  });
});
