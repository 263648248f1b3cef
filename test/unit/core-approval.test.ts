import { describe, expect, test } from 'vitest';
import {
  approvingGroupCount,
  checkVote,
  decideApproval,
  votingGroups,
  type ApprovalRules,
  type ApprovalState,
  type Vote,
  type VoteContext,
} from '../../src/core/approval.ts';

function caught(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a throw, but nothing was thrown');
}

const REQUESTER = 'alice@example.com';
const PLAN = 'plan-digest-1';

const approve = (approver: string, planDigest = PLAN): Vote => ({ approver, decision: 'approve', planDigest });
const reject = (approver: string, comment?: string): Vote =>
  comment === undefined
    ? { approver, decision: 'reject', planDigest: PLAN }
    : { approver, decision: 'reject', planDigest: PLAN, comment };

describe('decideApproval', () => {
  test.each<[string, number, Vote[], ApprovalState]>([
    ['no votes yet', 1, [], { status: 'pending', approvedBy: [], missing: 1 }],
    ['one approval meets a quorum of 1', 1, [approve('bob')], { status: 'approved', approvedBy: ['bob'] }],
    [
      'a rejection beats any number of approvals',
      1,
      [approve('bob'), approve('carol'), approve('dave'), reject('erin')],
      { status: 'rejected', by: 'erin' },
    ],
    [
      'a rejection before approvals still wins',
      2,
      [reject('erin'), approve('bob'), approve('carol')],
      { status: 'rejected', by: 'erin' },
    ],
    [
      'the first rejection is the one reported',
      1,
      [reject('erin'), reject('frank')],
      { status: 'rejected', by: 'erin' },
    ],
    [
      'a rejection keeps its comment',
      1,
      [reject('erin', 'not during the sale')],
      { status: 'rejected', by: 'erin', comment: 'not during the sale' },
    ],
    [
      'the requester approving does not count',
      1,
      [approve(REQUESTER)],
      { status: 'pending', approvedBy: [], missing: 1 },
    ],
    [
      'the requester rejecting does not count',
      1,
      [reject(REQUESTER), approve('bob')],
      { status: 'approved', approvedBy: ['bob'] },
    ],
    [
      'a quorum of 2 is not met by one approver voting twice',
      2,
      [approve('bob'), approve('bob')],
      { status: 'pending', approvedBy: ['bob'], missing: 1 },
    ],
    [
      'a quorum of 2 is not met by an approver and the requester',
      2,
      [approve('bob'), approve(REQUESTER)],
      { status: 'pending', approvedBy: ['bob'], missing: 1 },
    ],
    [
      'a quorum of 2 is met by two distinct approvers',
      2,
      [approve('bob'), approve('carol')],
      { status: 'approved', approvedBy: ['bob', 'carol'] },
    ],
    [
      'approvers beyond the quorum are all listed',
      2,
      [approve('bob'), approve('carol'), approve('dave')],
      { status: 'approved', approvedBy: ['bob', 'carol', 'dave'] },
    ],
  ])('%s', (_rule, required, votes, expected) => {
    expect(decideApproval(required, REQUESTER, votes)).toEqual(expected);
  });
});

describe('checkVote', () => {
  const ctx = (overrides: Partial<VoteContext> = {}): VoteContext => ({
    requester: REQUESTER,
    planDigest: PLAN,
    votes: [approve('bob')],
    open: true,
    ...overrides,
  });

  test.each<[string, VoteContext, Vote, string]>([
    ['the requester approving', ctx(), approve(REQUESTER), 'APPROVAL_SELF'],
    ['the requester rejecting', ctx(), reject(REQUESTER), 'APPROVAL_SELF'],
    ['a vote for another plan', ctx(), approve('carol', 'plan-digest-2'), 'APPROVAL_PLAN_MISMATCH'],
    ['a second vote by the same person', ctx(), approve('bob'), 'APPROVAL_DUPLICATE'],
    ['a rejection after the same person approved', ctx(), reject('bob'), 'APPROVAL_DUPLICATE'],
    ['a vote once the execution stopped waiting', ctx({ open: false }), approve('carol'), 'EXECUTION_FINISHED'],
    [
      'a self-vote on a closed execution (closed is said first)',
      ctx({ open: false }),
      approve(REQUESTER),
      'EXECUTION_FINISHED',
    ],
    ['a self-vote for another plan (self is said first)', ctx(), approve(REQUESTER, 'plan-digest-2'), 'APPROVAL_SELF'],
  ])('refuses %s', (_what, context, vote, code) => {
    expect(caught(() => checkVote(context, vote))).toMatchObject({ code });
  });

  test('accepts a first vote by someone else for this plan', () => {
    expect(() => checkVote(ctx(), approve('carol'))).not.toThrow();
  });

  test('accepts a rejection by someone else for this plan', () => {
    expect(() => checkVote(ctx({ votes: [] }), reject('carol'))).not.toThrow();
  });

  // Regression: vote comments were not filtered at all; a comment with U+202E and a newline was
  // stored and printed raw to the terminal.
  test.each([
    ['a right-to-left override', 'looks \u202egood', 'a right-to-left override (U+202E)'],
    ['a newline', 'ok\nplan      deadbeef', 'a line break (U+000A)'],
    ['an escape sequence', '\u001b[2Jall clear', 'an escape character (U+001B)'],
    ['a zero-width joiner', 'o\u200dk', 'a zero-width joiner (U+200D)'],
    ['a byte order mark', '\ufeffok', 'a byte order mark (U+FEFF)'],
  ])('refuses a comment with %s, naming it', (_what, comment, said) => {
    const error = caught(() => checkVote(ctx({ votes: [] }), reject('carol', comment)));
    expect(error).toMatchObject({ code: 'USAGE' });
    expect(error.message).toBe(
      `the comment contains ${said}; control, direction-changing and invisible characters are never allowed, so remove it`,
    );
  });

  test('accepts a comment in any script, with emoji', () => {
    expect(() => checkVote(ctx({ votes: [] }), reject('carol', 'нет: окно закрыто — 待って 🚫 ❤️'))).not.toThrow();
  });

  test('refuses a comment longer than 500 characters', () => {
    expect(caught(() => checkVote(ctx({ votes: [] }), reject('carol', 'x'.repeat(501)))).message).toBe(
      'the comment is longer than 500 characters; shorten it',
    );
  });

  test('messages', () => {
    expect({
      self: caught(() => checkVote(ctx(), approve(REQUESTER))).message,
      mismatch: caught(() => checkVote(ctx(), approve('carol', 'other'))).message,
      duplicate: caught(() => checkVote(ctx(), approve('bob'))).message,
      finished: caught(() => checkVote(ctx({ open: false }), approve('carol'))).message,
    }).toMatchInlineSnapshot(`
      {
        "duplicate": "bob already approved this execution; a vote cannot be repeated or changed",
        "finished": "this execution is no longer waiting for approval",
        "mismatch": "the plan you reviewed is not the plan of this execution; review it again",
        "self": "alice@example.com requested this execution and cannot approve or reject it",
      }
    `);
  });
});

/** A vote cast as a member of `groups` (the runbook's approval groups the voter is in). */
const approveAs = (approver: string, ...groups: string[]): Vote => ({ ...approve(approver), groups });
const rejectAs = (approver: string, ...groups: string[]): Vote => ({ ...reject(approver), groups });
const HIGH: ApprovalRules = { risk: 'high', approvalGroups: ['sre', 'dba'] };
const GROUPED: ApprovalRules = { risk: 'medium', approvalGroups: ['dba'] };

describe('approval groups and high risk', () => {
  test.each<[string, readonly { groups?: readonly string[] }[], number]>([
    ['no approvals', [], 0],
    ['approvals without groups', [{}, { groups: [] }], 0],
    ['one approver in two groups is still one', [{ groups: ['sre', 'dba'] }], 1],
    ['two approvers of one group', [{ groups: ['sre'] }, { groups: ['sre'] }], 1],
    ['two approvers of two groups', [{ groups: ['sre'] }, { groups: ['dba'] }], 2],
    ['one of one group and one of both', [{ groups: ['sre'] }, { groups: ['sre', 'dba'] }], 2],
  ])('approvingGroupCount: %s', (_what, approvals, expected) => {
    expect(approvingGroupCount(approvals)).toBe(expected);
  });

  test("a voter's groups are their groups among the approval groups, in the runbook's order", () => {
    expect(votingGroups(['approver', 'dba', 'sre'], ['sre', 'dba', 'net'])).toEqual(['sre', 'dba']);
    expect(votingGroups(['approver', 'sre'], [])).toEqual([]);
  });

  test.each<[string, number, Vote[], ApprovalRules | undefined, ApprovalState]>([
    [
      'a high-risk run approved twice by one group is still pending',
      2,
      [approveAs('bob', 'sre'), approveAs('erin', 'sre')],
      HIGH,
      { status: 'pending', approvedBy: ['bob', 'erin'], missing: 1 },
    ],
    [
      'a high-risk run approved by two groups is approved',
      2,
      [approveAs('bob', 'sre'), approveAs('carol', 'dba')],
      HIGH,
      { status: 'approved', approvedBy: ['bob', 'carol'] },
    ],
    [
      'a high-risk run reaches two groups with a third approver',
      2,
      [approveAs('bob', 'sre'), approveAs('erin', 'sre'), approveAs('carol', 'dba')],
      HIGH,
      { status: 'approved', approvedBy: ['bob', 'erin', 'carol'] },
    ],
    [
      'a medium-risk run counts approvals of one group',
      2,
      [approveAs('bob', 'sre'), approveAs('erin', 'sre')],
      { risk: 'medium', approvalGroups: ['sre', 'dba'] },
      { status: 'approved', approvedBy: ['bob', 'erin'] },
    ],
    [
      'a plan from before the rules existed counts approvals only',
      2,
      [approve('bob'), approve('erin')],
      undefined,
      { status: 'approved', approvedBy: ['bob', 'erin'] },
    ],
  ])('decideApproval: %s', (_rule, required, votes, rules, expected) => {
    expect(decideApproval(required, REQUESTER, votes, rules)).toEqual(expected);
  });

  const ctx = (rules: ApprovalRules, votes: Vote[], required = 2): VoteContext => ({
    requester: REQUESTER,
    planDigest: PLAN,
    votes,
    open: true,
    rules,
    required,
  });

  test('a voter outside the approval groups is refused, approving or rejecting, in one sentence', () => {
    const refusal = caught(() => checkVote(ctx(GROUPED, []), approveAs('bob')));
    expect(refusal).toMatchObject({ code: 'APPROVAL_NOT_ALLOWED' });
    expect(refusal.message).toMatchInlineSnapshot(
      `"bob is in none of this runbook's approval groups (dba); a member of one of them must vote"`,
    );
    expect(caught(() => checkVote(ctx(GROUPED, []), rejectAs('bob')))).toMatchObject({
      code: 'APPROVAL_NOT_ALLOWED',
    });
  });

  test('a vote that carries no groups is refused when the runbook names approval groups', () => {
    expect(caught(() => checkVote(ctx(GROUPED, []), approve('carol')))).toMatchObject({
      code: 'APPROVAL_NOT_ALLOWED',
    });
  });

  test('a member of an approval group may vote', () => {
    expect(() => checkVote(ctx(GROUPED, []), approveAs('carol', 'dba'))).not.toThrow();
    expect(() => checkVote(ctx(GROUPED, []), rejectAs('carol', 'dba'))).not.toThrow();
  });

  test('without approval groups anyone may vote, groups or not', () => {
    expect(() => checkVote(ctx({ risk: 'medium', approvalGroups: [] }, []), approve('bob'))).not.toThrow();
  });

  test("a high-risk run's completing approval from the same group is refused, naming the group to ask", () => {
    const refusal = caught(() => checkVote(ctx(HIGH, [approveAs('bob', 'sre')]), approveAs('erin', 'sre')));
    expect(refusal).toMatchObject({ code: 'APPROVAL_NOT_ALLOWED' });
    expect(refusal.message).toMatchInlineSnapshot(
      `"a high-risk run needs approvals from two different groups, and erin's approval would complete it with every approval from sre; a member of dba must approve"`,
    );
  });

  test("a high-risk run's completing approval from the other group is accepted", () => {
    expect(() => checkVote(ctx(HIGH, [approveAs('bob', 'sre')]), approveAs('carol', 'dba'))).not.toThrow();
  });

  test('a high-risk run that needs three approvals takes a second one from the same group, not a third', () => {
    const two = [approveAs('bob', 'sre')];
    expect(() => checkVote(ctx(HIGH, two, 3), approveAs('erin', 'sre'))).not.toThrow();
    const three = [approveAs('bob', 'sre'), approveAs('erin', 'sre')];
    expect(caught(() => checkVote(ctx(HIGH, three, 3), approveAs('frank', 'sre')))).toMatchObject({
      code: 'APPROVAL_NOT_ALLOWED',
    });
    expect(() => checkVote(ctx(HIGH, three, 3), approveAs('carol', 'dba'))).not.toThrow();
  });

  test("a high-risk run's rejection from any approval group is accepted", () => {
    expect(() => checkVote(ctx(HIGH, [approveAs('bob', 'sre')]), rejectAs('erin', 'sre'))).not.toThrow();
  });

  test("the server's early check, without the rules, leaves groups to Cedar", () => {
    const early: VoteContext = { requester: REQUESTER, planDigest: PLAN, votes: [], open: true };
    expect(() => checkVote(early, approve('bob'))).not.toThrow();
  });
});
