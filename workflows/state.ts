/**
 * A run's state inside the workflow, and the audit recorder: what the status query shows and how
 * each event gets its id. Pure bookkeeping; the only commands issued here are the search-attribute
 * upsert of a status change and the recordEvent activity.
 */
import * as wf from '@temporalio/workflow';
import type { MechanicActivities } from '../src/activities/index.ts';
import { approvalRulesOf, decideApproval, type ApprovalState, type Vote } from '../src/core/approval.ts';
import {
  auditEvent,
  workflowEventId,
  type AuditEventData,
  type AuditEventType,
  type NewAuditEvent,
} from '../src/core/audit-events.ts';
import type {
  CancelRequest,
  CredentialLease,
  ExecutionInput,
  ExecutionStatus,
  ExecutionView,
  StepView,
} from '../src/core/execution.ts';
import { searchAttributes } from './messages.ts';

// The audit write must eventually land: retry it for as long as it takes, it is idempotent.
const { recordEvent } = wf.proxyActivities<MechanicActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

/** Appends one event as written (the request, whose id and content the API server shares). */
export function recordAsIs(event: NewAuditEvent): Promise<void> {
  return recordEvent(event);
}

export type Recorder = <T extends AuditEventType>(type: T, actor: string, data: AuditEventData<T>) => Promise<void>;

/**
 * Records the workflow's own events, numbered in the order they are recorded (0 is the request).
 * Audit writes happen even while a cancellation is unwinding the run: they are the record of it.
 */
export function auditRecorder(executionId: string): Recorder {
  let counter = 1;
  return (type, actor, data) => {
    const event = auditEvent(type, {
      eventId: workflowEventId(executionId, counter++, type),
      executionId,
      actor,
      at: new Date().toISOString(),
      data,
    });
    return wf.CancellationScope.nonCancellable(() => recordEvent(event as NewAuditEvent));
  };
}

/** Everything the status query shows, and the flags the handlers and the main line share. */
export class RunState {
  status: ExecutionStatus = 'awaiting_approval';
  reason: string | undefined;
  credentials: CredentialLease | undefined;
  readonly votes: Vote[] = [];
  readonly steps: StepView[];
  cancelRequest: CancelRequest | undefined;
  /** Every step has run; the run is only finishing (a cancel is refused from here). */
  stepsDone = false;
  /** The request is recorded: votes wait for it, so it is always the first record. */
  requestRecorded = false;

  constructor(private readonly input: ExecutionInput) {
    const { plan } = input;
    this.steps = [
      ...plan.steps.map((s): StepView => ({ name: s.name, phase: 'main', status: 'pending', instances: [] })),
      ...plan.onFailure.map((s): StepView => ({ name: s.name, phase: 'onFailure', status: 'pending', instances: [] })),
    ];
  }

  approval(): ApprovalState {
    const { plan } = this.input;
    return decideApproval(plan.approval.required, plan.requester, this.votes, approvalRulesOf(plan.runbook));
  }

  view(): ExecutionView {
    return {
      executionId: this.input.plan.executionId,
      status: this.status,
      planDigest: this.input.planDigest,
      plan: this.input.plan,
      approval: this.approval(),
      votes: [...this.votes],
      steps: this.steps.map((s) => ({ ...s })),
      ...(this.credentials ? { credentials: this.credentials } : {}),
      ...(this.reason !== undefined ? { reason: this.reason } : {}),
    };
  }

  setStatus(next: ExecutionStatus): void {
    this.status = next;
    wf.upsertSearchAttributes([{ key: searchAttributes.status, value: next }]);
  }

  setStep(index: number, change: Partial<StepView>): void {
    this.steps[index] = { ...this.steps[index]!, ...change };
  }

  /** Marks the steps in [from, to) that never started as skipped. */
  skipPending(from: number, to: number): void {
    for (let i = from; i < to; i++) if (this.steps[i]!.status === 'pending') this.setStep(i, { status: 'skipped' });
  }
}
