/**
 * What a vote or a cancel needs to know of a run, from the run's own audit records: who asked, the
 * plan (its digest, runbook, approval rules and targets), the votes so far and whether the run is
 * still waiting for them. A server that asked the run's workflow instead would wait for a worker
 * that may be busy running other runs' steps; the log is written by that same workflow, so it is
 * at most a little behind it — and the workflow's update validator holds every rule again, so a
 * vote that the log lets through and the run has moved past is still refused there.
 */
import { approvalRulesOf, decideApproval } from './approval.ts';
import { END_EVENT_STATUS, type AuditEventType, type NewAuditEvent } from './audit-events.ts';
import type { ExecutionView } from './execution.ts';
import { viewFromAudit } from './execution-view.ts';

/**
 * The record types that decide a vote or a cancel: the request (the plan), the votes, the start of
 * the steps and every end. Reading only these keeps the read small however large the run's step
 * records grow (a step on thousands of instances writes a record per instance).
 */
export const VOTE_FACT_TYPES: readonly AuditEventType[] = [
  'execution.requested',
  'approval.granted',
  'approval.rejected',
  'execution.running',
  ...(Object.keys(END_EVENT_STATUS) as AuditEventType[]),
];

/**
 * The run as a vote sees it, from its records (those of VOTE_FACT_TYPES, or all of them), or
 * undefined when they do not include its request. The approval is decided with the plan's approval
 * rules (risk, groups), as the workflow decides it; step detail is not part of these facts.
 */
export function voteFactsFromAudit(
  records: readonly (NewAuditEvent & { readonly seq?: number })[],
): ExecutionView | undefined {
  const view = viewFromAudit(records);
  if (!view) return undefined;
  const { plan } = view;
  return {
    ...view,
    approval: decideApproval(plan.approval.required, plan.requester, view.votes, approvalRulesOf(plan.runbook)),
  };
}
