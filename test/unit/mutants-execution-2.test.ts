/**
 * Survivors of the whole mutation run in src/core/execution.ts and src/core/vote-facts.ts.
 *
 * execution.ts — killed: 157:41 `s.retries !== undefined` → false. A plan whose only step control
 * is a retry takes the workflow's patched branch too (the tests had retries only beside another
 * control).
 *
 * vote-facts.ts — no test reached voteFactsFromAudit (the server's vote and cancel read it; the
 * server's tests that do need Temporal). It is plain code, called here directly. Killed: 34:30 the
 * body emptied, 36:7 `!view` → `view`, → true, → false, 38:10 the object → `{}`: the facts of a
 * run are its view with the approval decided by the plan's rules (a high-risk run approved twice
 * from one group still waits for a second group, where the view without rules says approved), and
 * records without the request give no facts.
 */
import { describe, expect, test } from 'vitest';
import { requestedEvent, type NewAuditEvent } from '../../src/core/audit-events.ts';
import { usesStepControls } from '../../src/core/execution.ts';
import { viewFromAudit } from '../../src/core/execution-view.ts';
import { buildPlan } from '../../src/core/plan.ts';
import { parseRunbook } from '../../src/core/runbook.ts';
import { voteFactsFromAudit } from '../../src/core/vote-facts.ts';

function planOf(over: Record<string, unknown>, steps: Record<string, unknown>[]) {
  return buildPlan({
    executionId: 'exec-facts-1',
    runbook: parseRunbook({
      name: 'failover-db',
      version: 1,
      description: 'Fail the database over.',
      roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
      targets: { tags: { Role: 'db' } },
      steps,
      ...over,
    }),
    runbookDigest: 'rb-digest',
    rawParams: {},
    targets: [{ instanceId: 'i-0ccccccccccccccc1' }],
    requester: 'alice',
    reason: 'INC-77',
    region: 'eu-west-1',
    now: new Date('2025-01-01T10:00:00.000Z'),
  });
}

describe('usesStepControls', () => {
  test('a retry alone is a step control, in the main steps or in onFailure', () => {
    const retried = planOf({}, [{ name: 'promote', script: 'promote-replica', retries: 2 }]);
    expect(retried.plan.steps[0]!.retries).toBe(2);
    expect(usesStepControls(retried.plan)).toBe(true);
    const plain = planOf({}, [{ name: 'promote', script: 'promote-replica' }]);
    expect(usesStepControls(plain.plan)).toBe(false);
    expect(usesStepControls({ steps: plain.plan.steps, onFailure: retried.plan.steps })).toBe(true);
  });
});

describe('voteFactsFromAudit', () => {
  const { plan, planDigest } = planOf({ risk: 'high', approval: { required: 2, groups: ['sre', 'dba'] } }, [
    { name: 'promote', script: 'promote-replica' },
  ]);
  let n = 0;
  const granted = (approver: string, groups: string[]): NewAuditEvent => ({
    eventId: `facts:${++n}`,
    executionId: plan.executionId,
    type: 'approval.granted',
    actor: approver,
    at: '2025-01-01T10:01:00.000Z',
    data: { planDigest, groups },
  });
  const records = [requestedEvent({ plan, planDigest }), granted('bob', ['sre']), granted('carol', ['sre'])];

  test('decides the approval with the plan’s rules: two approvals from one group do not approve a high-risk run', () => {
    const view = viewFromAudit(records)!;
    // The view without the rules counts two approvals of two.
    expect(view.approval).toEqual({ status: 'approved', approvedBy: ['bob', 'carol'] });
    const facts = voteFactsFromAudit(records);
    expect(facts).toStrictEqual({
      ...view,
      approval: { status: 'pending', approvedBy: ['bob', 'carol'], missing: 1 },
    });
    expect(facts!.status).toBe('awaiting_approval');
    expect(facts!.votes.map((v) => v.approver)).toEqual(['bob', 'carol']);
  });

  test('a vote from the second group approves it', () => {
    const facts = voteFactsFromAudit([...records, granted('dave', ['dba'])]);
    expect(facts!.approval).toEqual({ status: 'approved', approvedBy: ['bob', 'carol', 'dave'] });
  });

  test('records without the request give no facts', () => {
    expect(voteFactsFromAudit(records.slice(1))).toBeUndefined();
    expect(voteFactsFromAudit([])).toBeUndefined();
  });
});
