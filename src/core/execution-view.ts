import type { AuditRecord } from './audit.ts';
import type { ExecutionStatus, ExecutionView, InstanceResult, StepView } from './execution.ts';
import type { Plan } from './plan.ts';
import type { Vote } from './approval.ts';
import { decideApproval } from './approval.ts';

const TERMINAL_EVENT: Partial<Record<AuditRecord['type'], ExecutionStatus>> = {
  'execution.completed': 'completed',
  'execution.failed': 'failed',
  'execution.expired': 'expired',
  'execution.cancelled': 'cancelled',
  'execution.rejected': 'rejected',
};

/**
 * Rebuilds an execution's view from its audit records alone, so an execution stays readable
 * after Temporal has dropped its history (retention) — the audit log is the record of truth.
 * Returns undefined when the records do not include the execution's request.
 */
export function viewFromAudit(records: readonly AuditRecord[]): ExecutionView | undefined {
  const requested = records.find((r) => r.type === 'execution.requested');
  const plan = requested?.data['plan'] as Plan | undefined;
  if (!requested || !plan) return undefined;
  const planDigest = text(requested.data['planDigest']);
  let status: ExecutionStatus = 'awaiting_approval';
  let reason: string | undefined;
  const votes: Vote[] = [];
  const steps: StepView[] = [
    ...plan.steps.map((s): StepView => ({ name: s.name, phase: 'main', status: 'pending', instances: [] })),
    ...plan.onFailure.map((s): StepView => ({ name: s.name, phase: 'onFailure', status: 'pending', instances: [] })),
  ];
  for (const r of records) {
    const d = r.data;
    const index = typeof d['index'] === 'number' ? d['index'] : -1;
    const step = steps[index];
    switch (r.type) {
      case 'approval.granted':
      case 'approval.rejected':
        // Only votes for this plan count, exactly as the workflow and the index count them.
        if (d['planDigest'] !== planDigest) break;
        votes.push({
          approver: r.actor,
          decision: r.type === 'approval.granted' ? 'approve' : 'reject',
          planDigest: text(d['planDigest']),
          ...(typeof d['comment'] === 'string' ? { comment: d['comment'] } : {}),
        });
        break;
      case 'execution.running':
        if (status === 'awaiting_approval') status = 'running';
        break;
      case 'step.started':
        if (step) steps[index] = { ...step, status: 'running', commandId: text(d['commandId']) };
        break;
      case 'step.instance':
        if (step) {
          const result: InstanceResult = {
            instanceId: text(d['instanceId']),
            status: String(d['status']),
            statusDetails: text(d['statusDetails']),
            responseCode: Number(d['responseCode'] ?? -1),
            stdout: text(d['stdout']),
            stderr: text(d['stderr']),
            outputSha256: text(d['outputSha256']),
          };
          steps[index] = {
            ...step,
            instances: [...step.instances.filter((i) => i.instanceId !== result.instanceId), result],
          };
        }
        break;
      case 'step.completed':
        if (step)
          steps[index] = {
            ...step,
            status: d['cancelled'] === true ? 'cancelled' : d['ok'] === true ? 'succeeded' : 'failed',
          };
        break;
      default: {
        const terminal = TERMINAL_EVENT[r.type];
        if (terminal) {
          status = terminal;
          if (typeof d['reason'] === 'string') reason = d['reason'];
        }
      }
    }
  }
  if (status !== 'awaiting_approval' && status !== 'running') {
    for (const [i, s] of steps.entries()) if (s.status === 'pending') steps[i] = { ...s, status: 'skipped' };
  }
  return {
    executionId: plan.executionId,
    status,
    planDigest,
    plan,
    approval: decideApproval(plan.approval.required, plan.requester, votes),
    votes,
    steps,
    ...(reason !== undefined ? { reason } : {}),
  };
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}
