/**
 * What crosses the boundary of a runbookExecution workflow: the updates people send it, the query
 * that reads it, and the search attributes it keeps current. The names are part of recorded
 * histories and of every client's calls: never rename one.
 */
import * as wf from '@temporalio/workflow';
import type { ApprovalState, Vote } from '../src/core/approval.ts';
import type { CancelRequest, ExecutionStatus, ExecutionView } from '../src/core/execution.ts';

export { searchAttributes } from '../src/temporal/search-attributes.ts';

/** A vote on the plan; validated (own change, wrong plan, twice, too late) before it enters history. */
export const voteUpdate = wf.defineUpdate<ApprovalState, [Vote]>('vote');
/** Stops the run wherever it is; answers the status it had when the cancel was accepted. */
export const cancelUpdate = wf.defineUpdate<ExecutionStatus, [CancelRequest]>('cancel');
/** The live view: status, approvals, steps and per-instance results. */
export const statusQuery = wf.defineQuery<ExecutionView>('status');

/**
 * The live view without its plan, which never changes and is on the record (the run's
 * execution.requested event; its digest is in the view). A plan on 10,000 targets is over half a
 * megabyte, and every status read would carry it: readers fill it in from the record instead.
 */
export type StatusSummary = Omit<ExecutionView, 'plan'>;
/**
 * The live view minus the plan: the status read of the API server. Added after `status`, which
 * stays for older clients (and is what a worker on older code answers, so readers fall back to it).
 */
export const statusSummaryQuery = wf.defineQuery<StatusSummary>('statusSummary');
