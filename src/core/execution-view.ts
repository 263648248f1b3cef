import { endStatusOf, readAuditEvent, type AuditEvent, type NewAuditEvent } from './audit-events.ts';
import type { ExecutionStatus, ExecutionView, InstanceResult, StepView } from './execution.ts';
import type { Vote } from './approval.ts';
import { decideApproval } from './approval.ts';

/**
 * Rebuilds an execution's view from its audit records alone, so an execution stays readable
 * after Temporal has dropped its history (retention) — the audit log is the record of truth.
 * Records are read through the audit vocabulary: one that does not fit its schema is not guessed
 * at, it is left out and named in `unreadable`. Returns undefined when the records do not include
 * the execution's request.
 */
export function viewFromAudit(
  records: readonly (NewAuditEvent & { readonly seq?: number })[],
): ExecutionView | undefined {
  const events: AuditEvent[] = [];
  const unreadable: string[] = [];
  for (const record of records) {
    const read = readAuditEvent(record);
    if (read.ok) events.push(read.event);
    else unreadable.push(read.problem);
  }
  const requested = events.find((e) => e.type === 'execution.requested');
  if (!requested) return undefined;
  const { plan, planDigest } = requested.data;
  let status: ExecutionStatus = 'awaiting_approval';
  let reason: string | undefined;
  const votes: Vote[] = [];
  const steps: StepView[] = [
    ...plan.steps.map((s): StepView => ({ name: s.name, phase: 'main', status: 'pending', instances: [] })),
    ...plan.onFailure.map((s): StepView => ({ name: s.name, phase: 'onFailure', status: 'pending', instances: [] })),
  ];
  for (const e of events) {
    switch (e.type) {
      case 'approval.granted':
      case 'approval.rejected':
        // Only votes for this plan count, exactly as the workflow and the index count them.
        if (e.data.planDigest !== planDigest) break;
        votes.push({
          approver: e.actor,
          decision: e.type === 'approval.granted' ? 'approve' : 'reject',
          planDigest: e.data.planDigest,
          ...(e.data.comment !== undefined ? { comment: e.data.comment } : {}),
          // The approval groups it counted for: the high-risk rule reads them off the view.
          ...(e.data.groups !== undefined ? { groups: e.data.groups } : {}),
        });
        break;
      case 'execution.running':
        if (status === 'awaiting_approval') status = 'running';
        break;
      case 'step.started': {
        const step = steps[e.data.index];
        const { attempt } = e.data;
        // A new attempt of a retried step runs only where earlier ones did not succeed: it shows
        // their successes and its own results; the failed results stay in the log.
        if (step) {
          // A step sent as batches records one step.started per batch: only a new attempt resets it.
          steps[e.data.index] =
            attempt !== undefined && attempt !== step.attempt
              ? {
                  ...step,
                  status: 'running',
                  commandId: e.data.commandId,
                  attempt,
                  instances: step.instances.filter((i) => i.status === 'Success'),
                }
              : { ...step, status: 'running', commandId: e.data.commandId };
        }
        break;
      }
      case 'step.skipped': {
        const step = steps[e.data.index];
        if (step) steps[e.data.index] = { ...step, status: 'skipped', reason: e.data.reason };
        break;
      }
      case 'step.instance': {
        const step = steps[e.data.index];
        // Results of an earlier attempt (recorded late) do not replace the current attempt's.
        if (!step || (e.data.attempt !== undefined && step.attempt !== undefined && e.data.attempt < step.attempt))
          break;
        const d = e.data;
        const result: InstanceResult = {
          instanceId: d.instanceId,
          status: d.status,
          statusDetails: d.statusDetails,
          responseCode: d.responseCode,
          stdout: d.stdout,
          stderr: d.stderr,
          outputSha256: d.outputSha256,
          ...(d.truncatedBySsm !== undefined ? { truncatedBySsm: d.truncatedBySsm } : {}),
        };
        steps[d.index] = {
          ...step,
          instances: [...step.instances.filter((i) => i.instanceId !== result.instanceId), result],
        };
        break;
      }
      case 'step.completed': {
        const step = steps[e.data.index];
        if (step) {
          const d = e.data;
          // Instances this record names that have no step.instance record of their own: those of
          // a batch never sent (a step on more than 50 instances stopped by maxErrors or a cancel).
          const seen = new Set(step.instances.map((i) => i.instanceId));
          const notSent = (d.instances ?? [])
            .filter((i) => !seen.has(i.instanceId))
            .map((i): InstanceResult => ({
              instanceId: i.instanceId,
              status: i.status === 'Terminated' || i.status === 'Cancelled' ? 'Cancelled' : i.status,
              statusDetails: i.status,
              responseCode: i.responseCode,
              stdout: '',
              stderr: '',
              outputSha256: '',
            }));
          steps[e.data.index] = {
            ...step,
            ...(notSent.length > 0 ? { instances: [...step.instances, ...notSent] } : {}),
            // A failed attempt that is retried leaves the step under way.
            status:
              d.cancelled === true ? 'cancelled' : d.ok ? 'succeeded' : d.retrying === true ? 'running' : 'failed',
            ...(d.attempt !== undefined ? { attempt: d.attempt } : {}),
            ...(d.continuedOnError === true && !d.ok ? { continuedOnError: true as const } : {}),
            ...(!d.ok && d.cancelled !== true && d.retrying !== true && d.error !== undefined
              ? { reason: d.error }
              : {}),
          };
        }
        break;
      }
      default: {
        const terminal = endStatusOf(e.type);
        if (terminal) {
          status = terminal;
          const why = (e.data as { reason?: unknown }).reason;
          if (typeof why === 'string') reason = why;
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
    ...(unreadable.length > 0 ? { unreadable } : {}),
  };
}
