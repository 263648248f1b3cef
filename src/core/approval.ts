import { UserError } from './errors.ts';
import { humanTextProblem } from './text.ts';

export interface Vote {
  readonly approver: string;
  readonly decision: 'approve' | 'reject';
  /** The plan digest the voter saw; a vote for another plan is refused. */
  readonly planDigest: string;
  readonly comment?: string;
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
export function decideApproval(required: number, requester: string, votes: readonly Vote[]): ApprovalState {
  const rejection = votes.find((v) => v.decision === 'reject' && v.approver !== requester);
  if (rejection) {
    return rejection.comment === undefined
      ? { status: 'rejected', by: rejection.approver }
      : { status: 'rejected', by: rejection.approver, comment: rejection.comment };
  }
  const approvedBy = [
    ...new Set(votes.filter((v) => v.decision === 'approve' && v.approver !== requester).map((v) => v.approver)),
  ];
  if (approvedBy.length >= required) return { status: 'approved', approvedBy };
  return { status: 'pending', approvedBy, missing: required - approvedBy.length };
}

export interface VoteContext {
  readonly requester: string;
  readonly planDigest: string;
  readonly votes: readonly Vote[];
  /** False once the execution has left the approval stage. */
  readonly open: boolean;
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
