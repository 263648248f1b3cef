/**
 * A run as the policies see it, built from its view: who asked, the runbook as its plan pinned it,
 * the targets, and who approved so far as which approval groups. The vote path and the web pages
 * that offer a vote ask the Authorizer with the same facts, so a page never offers a button the
 * vote behind it would refuse.
 */
import type { Resource } from '../authz/authorizer.ts';
import { approvalRulesOf } from '../core/approval.ts';
import type { ExecutionView } from '../core/execution.ts';

export function executionResource(executionId: string, view: ExecutionView): Resource {
  const { plan } = view;
  const rules = approvalRulesOf(plan.runbook);
  const approvedBy = new Set(view.approval.status === 'rejected' ? [] : view.approval.approvedBy);
  const approvers = view.votes
    .filter((v) => v.decision === 'approve' && approvedBy.has(v.approver))
    .map((v) => ({ approver: v.approver, groups: [...(v.groups ?? [])] }));
  return {
    kind: 'execution',
    id: executionId,
    requester: plan.requester,
    runbook: {
      name: plan.runbook.name,
      owners: plan.runbook.owners,
      risk: plan.runbook.risk,
      environment: plan.runbook.environment,
      tags: plan.runbook.tags,
      approvalGroups: rules.approvalGroups,
    },
    targets: plan.targets.map((t) => t.instanceId),
    approvers,
    approvalsRequired: plan.approval.required,
  };
}
