/**
 * Approval rules (issue 12, mutation round four): the rules an old plan carries, an approver's
 * repeated or self approval, who a high-risk refusal tells to approve, the vote a run without a
 * count defaults to, and the longest comment accepted.
 */
import { describe, expect, test } from 'vitest';
import {
  MAX_COMMENT_LENGTH,
  approvalRulesOf,
  approvingGroupCount,
  checkVote,
  decideApproval,
  type ApprovalRules,
  type Vote,
  type VoteContext,
} from '../../src/core/approval.ts';

const REQUESTER = 'alice';
const PLAN = 'plan-1';
const vote = (approver: string, decision: Vote['decision'], ...groups: string[]): Vote => ({
  approver,
  decision,
  planDigest: PLAN,
  ...(groups.length ? { groups } : {}),
});
const ctx = (over: Partial<VoteContext>): VoteContext => ({
  requester: REQUESTER,
  planDigest: PLAN,
  votes: [],
  open: true,
  ...over,
});
function refusal(c: VoteContext, v: Vote): { code: string | undefined; message: string } | undefined {
  try {
    checkVote(c, v);
    return undefined;
  } catch (e) {
    return { code: (e as { code?: string }).code, message: (e as Error).message };
  }
}

describe('approvalRulesOf', () => {
  test('a plan made before approval groups existed reads as no groups; its risk is kept', () => {
    expect(approvalRulesOf({ risk: 'high' })).toEqual({ risk: 'high', approvalGroups: [] });
    expect(approvalRulesOf({ risk: undefined, approvalGroups: ['sre'] })).toEqual({
      risk: undefined,
      approvalGroups: ['sre'],
    });
  });
});

describe('decideApproval counts each approver once, never the requester', () => {
  test('a second approval by the same approver does not count', () => {
    expect(decideApproval(2, REQUESTER, [vote('bob', 'approve'), vote('bob', 'approve')])).toEqual({
      status: 'pending',
      approvedBy: ['bob'],
      missing: 1,
    });
  });

  test("the requester's own approval does not count", () => {
    expect(decideApproval(1, REQUESTER, [vote(REQUESTER, 'approve')])).toEqual({
      status: 'pending',
      approvedBy: [],
      missing: 1,
    });
  });

  test('three approvers of one group still count as one group', () => {
    expect(approvingGroupCount([{ groups: ['sre'] }, { groups: ['sre'] }, { groups: ['sre'] }])).toBe(1);
  });
});

describe('checkVote refusals name what to do', () => {
  test('a voter who rejected and votes again is told they rejected', () => {
    expect(refusal(ctx({ votes: [vote('bob', 'reject')] }), vote('bob', 'approve'))).toEqual({
      code: 'APPROVAL_DUPLICATE',
      message: 'bob already rejected this execution; a vote cannot be repeated or changed',
    });
  });

  test('a voter outside several approval groups is told all of them', () => {
    const rules: ApprovalRules = { risk: 'medium', approvalGroups: ['sre', 'dba'] };
    expect(refusal(ctx({ rules }), vote('bob', 'approve', 'net'))).toEqual({
      code: 'APPROVAL_NOT_ALLOWED',
      message: "bob is in none of this runbook's approval groups (sre, dba); a member of one of them must vote",
    });
  });

  const HIGH: ApprovalRules = { risk: 'high', approvalGroups: ['sre', 'dba', 'net'] };

  test('a high-risk run without an approval count needs two groups for its first approval', () => {
    expect(refusal(ctx({ rules: HIGH }), vote('bob', 'approve', 'sre'))).toEqual({
      code: 'APPROVAL_NOT_ALLOWED',
      message:
        "a high-risk run needs approvals from two different groups, and bob's approval would complete it with every approval from sre; a member of dba or net must approve",
    });
  });

  test('an approver in every approval group is told another group must approve', () => {
    const rules: ApprovalRules = { risk: 'high', approvalGroups: ['sre', 'dba'] };
    expect(refusal(ctx({ rules, required: 1 }), vote('bob', 'approve', 'sre', 'dba'))?.message).toBe(
      "a high-risk run needs approvals from two different groups, and bob's approval would complete it with every approval from sre, dba; a member of another approval group must approve",
    );
  });

  test('a high-risk run without approval groups names no group', () => {
    expect(refusal(ctx({ rules: { risk: 'high' }, required: 1 }), vote('bob', 'approve'))?.message).toBe(
      "a high-risk run needs approvals from two different groups, and bob's approval would complete it with every approval from no approval group; a member of another approval group must approve",
    );
  });

  test('a rejection of a high-risk run is never held to the two-group rule', () => {
    expect(refusal(ctx({ rules: HIGH, required: 1 }), vote('bob', 'reject', 'sre'))).toBeUndefined();
  });

  test('a medium-risk run takes its completing approval from one group', () => {
    const rules: ApprovalRules = { risk: 'medium', approvalGroups: ['sre', 'dba'] };
    expect(refusal(ctx({ rules, required: 1 }), vote('bob', 'approve', 'sre'))).toBeUndefined();
  });

  test('a comment of exactly the longest length is accepted; one character more is refused', () => {
    expect(MAX_COMMENT_LENGTH).toBe(500);
    const at = (n: number): Vote => ({ ...vote('bob', 'reject'), comment: 'x'.repeat(n) });
    expect(refusal(ctx({}), at(500))).toBeUndefined();
    expect(refusal(ctx({}), at(501))).toEqual({
      code: 'USAGE',
      message: 'the comment is longer than 500 characters; shorten it',
    });
  });

  test('a comment with a control character is refused as usage, naming the comment', () => {
    const r = refusal(ctx({}), { ...vote('bob', 'reject'), comment: 'ok\u0007' });
    expect(r?.code).toBe('USAGE');
    expect(r?.message).toMatch(/^the comment /);
  });
});
