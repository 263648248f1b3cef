import { endStatusOf, readAuditEvent, type AuditEvent, type NewAuditEvent } from './audit-events.ts';
import type { ExecutionStatus, ExecutionView, InstanceResult, StepSummary, StepView } from './execution.ts';
import type { Vote } from './approval.ts';
import { decideApproval } from './approval.ts';
import { MAX_BATCH } from './targets.ts';

/**
 * The most unsuccessful instances a summarised step lists (the workflow's own bound, in
 * workflows/step-runner.ts): its summary counts every instance.
 */
export const LISTED_UNSUCCESSFUL = 100;

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
  // Each step's results by instance while the records are read (a later record of an instance
  // replaces its earlier one, and moves it last): one map operation per record, so a step on
  // 10,000 instances is read in linear time. The steps' `instances` are filled from these at the end.
  const results = steps.map(() => new Map<string, InstanceResult>());
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
          const reset = attempt !== undefined && attempt !== step.attempt;
          if (reset) {
            const found = results[e.data.index]!;
            for (const [id, r] of found) if (r.status !== 'Success') found.delete(id);
          }
          steps[e.data.index] = reset
            ? { ...step, status: 'running', commandId: e.data.commandId, attempt }
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
        const found = results[d.index]!;
        found.delete(result.instanceId);
        found.set(result.instanceId, result);
        break;
      }
      case 'step.completed': {
        const step = steps[e.data.index];
        if (step) {
          const d = e.data;
          // Instances this record names that have no step.instance record of their own: those of
          // a batch never sent (a step on more than 50 instances stopped by maxErrors or a cancel).
          const found = results[e.data.index]!;
          for (const i of d.instances ?? []) {
            if (found.has(i.instanceId)) continue;
            found.set(i.instanceId, {
              instanceId: i.instanceId,
              status: i.status === 'Terminated' || i.status === 'Cancelled' ? 'Cancelled' : i.status,
              statusDetails: i.status,
              responseCode: i.responseCode,
              stdout: '',
              stderr: '',
              outputSha256: '',
            });
          }
          steps[e.data.index] = {
            ...step,
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
  // A run on more than MAX_BATCH instances sends its steps as batches; such a step is shown as the
  // workflow shows it: every instance counted, only the unsuccessful listed (at most 100, in target order).
  const order = plan.targets.length > MAX_BATCH ? new Map(plan.targets.map((t, n) => [t.instanceId, n])) : undefined;
  for (const [i, s] of steps.entries()) {
    const all = [...results[i]!.values()];
    if (!order || s.status === 'pending' || s.status === 'skipped') {
      if (all.length > 0) steps[i] = { ...s, instances: all };
      continue;
    }
    const rank = (id: string) => order.get(id) ?? order.size;
    const unsuccessful = all.filter((r) => r.status !== 'Success');
    unsuccessful.sort((a, b) => rank(a.instanceId) - rank(b.instanceId));
    steps[i] = { ...s, instances: unsuccessful.slice(0, LISTED_UNSUCCESSFUL), summary: summarise(all) };
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

/** Every instance counted by its status, as the workflow counts a fan-out step's (statusDetails, else status). */
function summarise(instances: readonly InstanceResult[]): StepSummary {
  const byStatus: Record<string, number> = {};
  for (const i of instances) {
    const key = i.statusDetails || i.status;
    byStatus[key] = (byStatus[key] ?? 0) + 1;
  }
  return { total: instances.length, byStatus };
}

/**
 * A summarised step in words, for every screen that shows one: "120 instances: 117 Success,
 * 3 Failed" (Success first, then the most frequent; counts with thousands separators).
 */
export function summaryText(summary: StepSummary): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const counts = Object.entries(summary.byStatus)
    .filter(([, c]) => c > 0)
    .sort(
      ([a, x], [b, y]) => Number(b === 'Success') - Number(a === 'Success') || y - x || (a < b ? -1 : a > b ? 1 : 0),
    );
  const head = `${n(summary.total)} ${summary.total === 1 ? 'instance' : 'instances'}`;
  return counts.length > 0 ? `${head}: ${counts.map(([k, c]) => `${n(c)} ${k}`).join(', ')}` : head;
}

/** How many instances of a summarised step did not succeed (every status but Success). */
export function unsuccessfulCount(summary: StepSummary): number {
  return summary.total - (summary.byStatus['Success'] ?? 0);
}

/**
 * Said under a summarised step whose list of unsuccessful instances is cut: "showing the first 100
 * of 150 unsuccessful instances"; undefined when every unsuccessful instance is listed.
 */
export function listedText(step: Pick<StepView, 'instances' | 'summary'>): string | undefined {
  if (!step.summary) return undefined;
  const unsuccessful = unsuccessfulCount(step.summary);
  const listed = step.instances.filter((i) => i.status !== 'Success').length;
  if (listed >= unsuccessful) return undefined;
  return `showing the first ${listed.toLocaleString('en-US')} of ${unsuccessful.toLocaleString('en-US')} unsuccessful instances`;
}
