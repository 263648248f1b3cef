import { UserError } from './errors.ts';
import { humanTextProblem } from './text.ts';

export interface Vote {
  /** The authenticated voter, set by the server from the caller's identity; never typed by a client. */
  readonly approver: string;
  readonly decision: 'approve' | 'reject';
  /** The plan digest the voter saw; a vote for another plan is refused. */
  readonly planDigest: string;
  readonly comment?: string;
  /**
   * The runbook's approval groups the voter belongs to, from their authenticated identity (empty
   * when the runbook names none). Absent in votes cast before mechanic recorded groups.
   */
  readonly groups?: readonly string[];
  /** The ids of the policies that allowed the vote, for the audit record. */
  readonly policies?: readonly string[];
}

/** What the plan says about who may approve: the runbook's risk and approval groups. */
export interface ApprovalRules {
  readonly risk?: 'low' | 'medium' | 'high' | undefined;
  /** Groups whose members may vote; empty or absent: any approver. */
  readonly approvalGroups?: readonly string[] | undefined;
}

/** The rules a plan's runbook section carries (absent fields in plans made before they existed). */
export function approvalRulesOf(runbook: ApprovalRules): ApprovalRules {
  return { risk: runbook.risk, approvalGroups: runbook.approvalGroups ?? [] };
}

/** The groups a voter votes as: their groups among the approval groups (none when there are none). */
export function votingGroups(memberOf: readonly string[], approvalGroups: readonly string[]): string[] {
  return approvalGroups.filter((g) => memberOf.includes(g));
}

/**
 * How many different approval groups the approvals come from, counting each approver for one
 * group only (a person in two groups is still one person): the size of a largest matching of
 * approvers to distinct groups, capped at 2 since the rules never ask for more.
 */
export function approvingGroupCount(approvals: readonly { readonly groups?: readonly string[] }[]): number {
  const sets = approvals.map((a) => new Set(a.groups ?? [])).filter((g) => g.size > 0);
  if (sets.length === 0) return 0;
  for (let i = 0; i < sets.length; i++) {
    for (let j = i + 1; j < sets.length; j++) {
      // Two approvers cover two groups unless both can only stand for the same single group.
      if (new Set([...sets[i]!, ...sets[j]!]).size >= 2) return 2;
    }
  }
  return 1;
}

/**
 * True when a high-risk run would be approved (its count reached) with every approval from one
 * group: the approval that completes the count must bring a second group.
 */
function lacksSecondGroup(required: number, approvals: readonly Vote[], rules: ApprovalRules | undefined): boolean {
  return rules?.risk === 'high' && approvals.length >= required && approvingGroupCount(approvals) < 2;
}

export type ApprovalState =
  | { readonly status: 'pending'; readonly approvedBy: readonly string[]; readonly missing: number }
  | { readonly status: 'approved'; readonly approvedBy: readonly string[] }
  | { readonly status: 'rejected'; readonly by: string; readonly comment?: string };

/**
 * Where the approval stands. A single rejection ends it, whatever the number of approvals; the
 * requester's own votes never count (they are refused before they get here, and ignored if
 * they somehow did).
 */
export function decideApproval(
  required: number,
  requester: string,
  votes: readonly Vote[],
  rules?: ApprovalRules,
): ApprovalState {
  const rejection = votes.find((v) => v.decision === 'reject' && v.approver !== requester);
  if (rejection) {
    return rejection.comment === undefined
      ? { status: 'rejected', by: rejection.approver }
      : { status: 'rejected', by: rejection.approver, comment: rejection.comment };
  }
  const approvals = firstApprovals(votes, requester);
  const approvedBy = approvals.map((v) => v.approver);
  if (approvedBy.length >= required) {
    // A high-risk run is approved only once two of its approvers come from different groups.
    if (!lacksSecondGroup(required, approvals, rules)) return { status: 'approved', approvedBy };
    return { status: 'pending', approvedBy, missing: 1 };
  }
  return { status: 'pending', approvedBy, missing: required - approvedBy.length };
}

/** Each approver's first approval, requester excluded, in the order they came. */
function firstApprovals(votes: readonly Vote[], requester: string): Vote[] {
  const seen = new Set<string>();
  return votes.filter((v) => {
    if (v.decision !== 'approve' || v.approver === requester || seen.has(v.approver)) return false;
    seen.add(v.approver);
    return true;
  });
}

export interface VoteContext {
  readonly requester: string;
  readonly planDigest: string;
  readonly votes: readonly Vote[];
  /** False once the execution has left the approval stage. */
  readonly open: boolean;
  /**
   * The plan's approval rules. The workflow always passes them; the server's early check leaves
   * them out, so that Cedar, which sees the same facts, decides them and records its policy ids.
   */
  readonly rules?: ApprovalRules;
  /** Approvals the run needs (the plan's approval.required); with `rules`, for the high-risk rule. */
  readonly required?: number;
}

/**
 * Refuses a vote that must not count, or whose comment holds control, direction-changing or
 * invisible characters. Runs in the workflow's update validator (so it and what it imports stay
 * sandbox-safe), so a refused vote never enters history; the caller audits the refusal.
 */
export function checkVote(ctx: VoteContext, vote: Vote): void {
  if (!ctx.open) throw new UserError('EXECUTION_FINISHED', 'this execution is no longer waiting for approval');
  if (vote.approver === ctx.requester) {
    throw new UserError('APPROVAL_SELF', `${vote.approver} requested this execution and cannot approve or reject it`);
  }
  if (vote.planDigest !== ctx.planDigest) {
    throw new UserError(
      'APPROVAL_PLAN_MISMATCH',
      'the plan you reviewed is not the plan of this execution; review it again',
    );
  }
  const earlier = ctx.votes.find((v) => v.approver === vote.approver);
  if (earlier) {
    // Say what they already did: a voter who approved and now rejects must not think it counted.
    throw new UserError(
      'APPROVAL_DUPLICATE',
      `${vote.approver} already ${earlier.decision === 'approve' ? 'approved' : 'rejected'} this execution; a vote cannot be repeated or changed`,
    );
  }
  const groups = ctx.rules?.approvalGroups ?? [];
  if (groups.length > 0 && !(vote.groups ?? []).some((g) => groups.includes(g))) {
    throw new UserError(
      'APPROVAL_NOT_ALLOWED',
      `${vote.approver} is in none of this runbook's approval groups (${groups.join(', ')}); a member of one of them must vote`,
    );
  }
  if (vote.decision === 'approve' && ctx.rules?.risk === 'high') {
    const approvals = [...firstApprovals(ctx.votes, ctx.requester), vote];
    if (lacksSecondGroup(ctx.required ?? 1, approvals, ctx.rules)) {
      const covered = new Set(approvals.flatMap((a) => a.groups ?? []));
      const others = groups.filter((g) => !covered.has(g));
      throw new UserError(
        'APPROVAL_NOT_ALLOWED',
        `a high-risk run needs approvals from two different groups, and ${vote.approver}'s approval would complete it with every approval from ${[...covered].join(', ') || 'no approval group'}; a member of ${others.length > 0 ? others.join(' or ') : 'another approval group'} must approve`,
      );
    }
  }
  if (vote.comment !== undefined) {
    // A comment is stored in history and the audit log and shown to everyone who reads the run.
    const refused = humanTextProblem('the comment', vote.comment);
    if (refused !== undefined) throw new UserError('USAGE', refused);
    if (vote.comment.length > MAX_COMMENT_LENGTH) {
      throw new UserError('USAGE', `the comment is longer than ${MAX_COMMENT_LENGTH} characters; shorten it`);
    }
  }
}

/** The longest vote comment; the API's request schema allows the same. */
export const MAX_COMMENT_LENGTH = 500;
