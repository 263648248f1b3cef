/**
 * A run's state inside the workflow, and the audit recorder: what the status query shows and how
 * each event gets its id. Pure bookkeeping; the only commands issued here are the search-attribute
 * upsert of a status change and the recordEvent activity (a local activity in runs that carry the
 * local-records patch), or recordEvents for records written together.
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
import { searchAttributes, type StatusSummary } from './messages.ts';

// The audit write must eventually land: retry it for as long as it takes, it is idempotent.
const { recordEvent } = wf.proxyActivities<MechanicActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

// The same activity run inside the workflow task (runs with the local-records patch): no server
// round trip and no task of its own per record, so a step costs two activities instead of four.
// Retried as long as it takes, like the activity above; the workflow task is kept alive meanwhile.
const local = wf.proxyLocalActivities<MechanicActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

/**
 * The patch id of audit records written by local activities (recorded histories depend on it):
 * runs recorded before it keep their recordEvent activities when they replay.
 */
export const LOCAL_RECORDS_PATCH = 'local-records';

/** Appends one event as written (the request, whose id and content the API server shares). */
export function recordAsIs(event: NewAuditEvent): Promise<void> {
  return recordEvent(event);
}

export type Recorder = <T extends AuditEventType>(type: T, actor: string, data: AuditEventData<T>) => Promise<void>;

/** One record to write, before it gets its id and time. */
export type PendingRecord = {
  [T in AuditEventType]: { readonly type: T; readonly actor: string; readonly data: AuditEventData<T> };
}[AuditEventType];

/** The run's recorder, which can also write several records in one local activity. */
export type RunRecorder = Recorder & {
  /**
   * Writes `records` in order, in one local activity and one audit transaction: the same ids,
   * content and chain as recording them one after another, in one round trip instead of several.
   * Only for runs with local records (a local activity's retry keeps the records already there).
   */
  readonly together: (records: readonly PendingRecord[]) => Promise<void>;
};

/**
 * Records the workflow's own events, numbered in the order they are recorded (0 is the request).
 * Audit writes happen even while a cancellation is unwinding the run: they are the record of it.
 * With `localRecords`, each is written by a local activity in the workflow task that decided it.
 */
export function auditRecorder(executionId: string, localRecords = false): RunRecorder {
  let counter = 1;
  const numbered = (record: PendingRecord): NewAuditEvent =>
    auditEvent(record.type, {
      eventId: workflowEventId(executionId, counter++, record.type),
      executionId,
      actor: record.actor,
      at: new Date().toISOString(),
      data: record.data,
    });
  const one: Recorder = (type, actor, data) => {
    const event = numbered({ type, actor, data } as PendingRecord);
    return wf.CancellationScope.nonCancellable(() => (localRecords ? recordLocally(event) : recordEvent(event)));
  };
  const together = (records: readonly PendingRecord[]): Promise<void> => {
    if (!localRecords) throw new Error('records are written together only by runs with local records');
    // Numbered now, in order, as the same records written one by one would be.
    const events = records.map(numbered);
    return wf.CancellationScope.nonCancellable(() => local.recordEvents(events));
  };
  return Object.assign(one, { together });
}

/**
 * A local activity's result is kept only once its workflow task completes: a worker that dies
 * before that runs the task again, and the record again, stamped with the new task's time. The id
 * is this run's own (its counter is deterministic), so a record already under it is this very
 * record from the attempt that died, and it stands.
 */
async function recordLocally(event: NewAuditEvent): Promise<void> {
  try {
    await local.recordEvent(event);
  } catch (e) {
    if (failureType(e) === 'AUDIT_EVENT_CONFLICT') return;
    throw e;
  }
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
  /** Votes whose records are being written (the deciding vote's record waits for them). */
  votesRecording = 0;
  /** The deciding vote wrote `execution.running` with its own record: the main line does not. */
  runningRecorded = false;

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

  /** The view without the plan (statusSummaryQuery): the same fields, in the same order. */
  summary(): StatusSummary {
    const { plan: _plan, ...rest } = this.view();
    return rest;
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

/**
 * The type of a local activity's failure: by its type, as instanceof is unreliable across the
 * sandbox, and on the failure itself or its cause (wrapped in an ActivityFailure or not).
 */
function failureType(e: unknown): unknown {
  const failure = e as { type?: unknown; cause?: { type?: unknown } } | undefined;
  return failure?.type ?? failure?.cause?.type;
}
