import * as wf from '@temporalio/workflow';
import type { MechanicActivities } from '../src/activities/index.ts';
import type { NewAuditEvent } from '../src/core/audit.ts';
import { checkVote, decideApproval, type ApprovalState, type Vote } from '../src/core/approval.ts';
import { isMechanicError } from '../src/core/errors.ts';
import { TERMINAL_STATUSES, requestedEvent } from '../src/core/execution.ts';
import type {
  CancelRequest,
  CredentialLease,
  CredentialRequest,
  ExecutionInput,
  ExecutionStatus,
  ExecutionView,
  StepOutcome,
  StepRequest,
  StepView,
} from '../src/core/execution.ts';
import type { PlannedStep } from '../src/core/plan.ts';
import { searchAttributes } from '../src/temporal/search-attributes.ts';

export const voteUpdate = wf.defineUpdate<ApprovalState, [Vote]>('vote');
export const cancelUpdate = wf.defineUpdate<ExecutionStatus, [CancelRequest]>('cancel');
export const statusQuery = wf.defineQuery<ExecutionView>('status');

// The audit write must eventually land: retry it for as long as it takes, it is idempotent.
const { recordEvent } = wf.proxyActivities<MechanicActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

const { issueCredentials, releaseCredentials } = wf.proxyActivities<MechanicActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['STS_FAILED'] },
});

// Dispatch is find-or-send (the Comment token), so a retry after a lost response adopts the
// command it already sent instead of running the step twice.
const { dispatchStep } = wf.proxyActivities<MechanicActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['SSM_COMMAND_FAILED', 'STS_FAILED'] },
});

/**
 * One run of one approved plan: ask, wait for approval (or rejection, or expiry), get scoped
 * credentials, run each step on every target through SSM, record everything. The workflow only
 * sequences and waits; the plan, the approval rules and the AWS calls live elsewhere.
 */
export async function runbookExecution(input: ExecutionInput): Promise<ExecutionView> {
  const { plan, planDigest } = input;
  const id = plan.executionId;
  let status: ExecutionStatus = 'awaiting_approval';
  let reason: string | undefined;
  let credentials: CredentialLease | undefined;
  const votes: Vote[] = [];
  const steps: StepView[] = [
    ...plan.steps.map((s): StepView => ({ name: s.name, phase: 'main', status: 'pending', instances: [] })),
    ...plan.onFailure.map((s): StepView => ({ name: s.name, phase: 'onFailure', status: 'pending', instances: [] })),
  ];
  let eventCounter = 1; // 0 is the request itself
  let requestRecorded = false;
  // Audit writes happen even while a cancellation is unwinding the run: they are the record of it.
  const audit = (type: NewAuditEvent['type'], actor: string, data: Record<string, unknown> = {}): Promise<void> => {
    const event: NewAuditEvent = {
      eventId: `${id}:${String(eventCounter++).padStart(4, '0')}:${type}`,
      executionId: id,
      type,
      actor,
      at: new Date().toISOString(),
      data,
    };
    return wf.CancellationScope.nonCancellable(() => recordEvent(event));
  };
  let cancelRequest: CancelRequest | undefined;
  // The steps run in this scope; a cancel request cancels it, whatever step is under way.
  const stepsScope = new wf.CancellationScope();
  let stepsDone = false;
  const approval = (): ApprovalState => decideApproval(plan.approval.required, plan.requester, votes);
  const view = (): ExecutionView => ({
    executionId: id,
    status,
    planDigest,
    plan,
    approval: approval(),
    votes: [...votes],
    steps: steps.map((s) => ({ ...s })),
    ...(credentials ? { credentials } : {}),
    ...(reason !== undefined ? { reason } : {}),
  });
  const setStatus = (next: ExecutionStatus): void => {
    status = next;
    wf.upsertSearchAttributes([{ key: searchAttributes.status, value: next }]);
  };

  wf.setHandler(statusQuery, view);
  wf.setHandler(
    voteUpdate,
    async (vote) => {
      votes.push(vote);
      // The request is the first record of every execution, even when a vote races the start.
      await wf.condition(() => requestRecorded);
      await audit(vote.decision === 'approve' ? 'approval.granted' : 'approval.rejected', vote.approver, {
        planDigest: vote.planDigest,
        ...(vote.comment !== undefined ? { comment: vote.comment } : {}),
      });
      return approval();
    },
    {
      // A refused vote never enters history. Domain refusals carry their code as the failure
      // type, which survives the sandbox and reaches the caller.
      validator: (vote: Vote) => {
        try {
          checkVote(
            {
              requester: plan.requester,
              planDigest,
              votes,
              open: status === 'awaiting_approval' && approval().status === 'pending',
            },
            vote,
          );
        } catch (e) {
          if (isMechanicError(e)) throw wf.ApplicationFailure.nonRetryable(e.message, e.code);
          throw e;
        }
      },
    },
  );

  wf.setHandler(
    cancelUpdate,
    (req) => {
      cancelRequest = req;
      stepsScope.cancel();
      return status;
    },
    {
      validator: (_req: CancelRequest) => {
        if (TERMINAL_STATUSES.has(status) || cancelRequest !== undefined || stepsDone) {
          throw wf.ApplicationFailure.nonRetryable(
            cancelRequest
              ? 'this execution is already being cancelled'
              : stepsDone
                ? 'this execution has run all its steps and is finishing'
                : `this execution has already ended (${status})`,
            'EXECUTION_FINISHED',
          );
        }
      },
    },
  );
  /** Every way a run ends: its status, why, and the record that closes its audit story. */
  const finish = async (
    final: Exclude<ExecutionStatus, 'awaiting_approval' | 'running'>,
    actor: string,
    why?: string,
  ): Promise<ExecutionView> => {
    setStatus(final);
    reason = why;
    await audit(`execution.${final}`, actor, why !== undefined ? { reason: why } : {});
    return view();
  };
  const finishCancelled = (): Promise<ExecutionView> =>
    finish('cancelled', cancelRequest!.by, `cancelled by ${cancelRequest!.by}: ${cancelRequest!.reason}`);

  // Same event id and content as the API server's own write of this event (requestedEvent), so
  // whichever lands first is the one record of the request.
  await recordEvent(requestedEvent(input));
  requestRecorded = true;

  const decided = await wf.condition(
    () => approval().status !== 'pending' || cancelRequest !== undefined,
    plan.approval.expiresAfterSeconds * 1000,
  );
  // Let a vote's audit write finish before anything that follows it is recorded.
  await wf.condition(wf.allHandlersFinished);
  if (cancelRequest) return finishCancelled();
  const outcome = approval();
  if (!decided || outcome.status === 'pending') {
    return finish(
      'expired',
      'mechanic',
      `not enough approvals within ${Math.round(plan.approval.expiresAfterSeconds / 60)} minutes`,
    );
  }
  if (outcome.status === 'rejected') {
    return finish('rejected', outcome.by, `rejected by ${outcome.by}${outcome.comment ? `: ${outcome.comment}` : ''}`);
  }

  setStatus('running');
  await audit('execution.running', 'mechanic', { approvedBy: outcome.approvedBy });
  const credentialRequest: CredentialRequest = {
    executionId: id,
    roleArn: plan.roleArn,
    region: plan.region,
    sessionPolicy: plan.sessionPolicy,
    durationSeconds: plan.budgetSeconds,
    sourceIdentity: plan.requester,
    runbook: `${plan.runbook.name}@${plan.runbook.version}`,
    approvers: outcome.approvedBy,
  };

  try {
    credentials = await issueCredentials(credentialRequest);
  } catch (e) {
    return finish('failed', 'mechanic', `could not obtain credentials: ${failureMessage(e)}`);
  }
  await audit('credentials.issued', 'mechanic', { ...credentials, roleArn: plan.roleArn, reason: 'approved' });
  // Cancelling a step means cancelling its SSM command; the step that was running when the
  // cancel came is followed to its final per-instance statuses and recorded.
  let running: { request: StepRequest; commandId: string } | undefined;
  // A worker that dies while following a step is noticed after this long.
  const heartbeatTimeout = `${input.settings?.heartbeatTimeoutSeconds ?? 60} seconds`;

  /** One record per step, however it ended; per-instance detail is in the step.instance events. */
  const stepCompleted = (
    request: StepRequest,
    end: { commandId?: string; ok: boolean; cancelled?: boolean; result?: StepOutcome; error?: string },
  ): Promise<void> =>
    audit('step.completed', 'mechanic', {
      step: request.step.name,
      index: request.stepIndex,
      phase: request.phase,
      ...(end.commandId !== undefined ? { commandId: end.commandId } : {}),
      ok: end.ok,
      ...(end.cancelled ? { cancelled: true } : {}),
      ...(end.result
        ? {
            instances: end.result.instances.map((i) => ({
              instanceId: i.instanceId,
              status: i.statusDetails,
              responseCode: i.responseCode,
            })),
          }
        : {}),
      ...(end.error !== undefined ? { error: end.error } : {}),
    });

  const runStep = async (step: PlannedStep, index: number): Promise<boolean> => {
    const phase = index < plan.steps.length ? 'main' : 'onFailure';
    steps[index] = { ...steps[index]!, status: 'running' };
    const request = {
      executionId: id,
      stepIndex: index,
      phase,
      step,
      instanceIds: plan.targets.map((t) => t.instanceId),
      credentials: credentialRequest,
      notBefore: plan.createdAt,
    } as const;
    try {
      // Never cancel a send half-way: the command id is what a cancellation needs to stop it.
      const { commandId } = await wf.CancellationScope.nonCancellable(() => dispatchStep(request));
      running = { request, commandId };
      steps[index] = { ...steps[index], commandId };
      await audit('step.started', 'mechanic', { step: step.name, index, phase, commandId });
      // Following a step may take as long as the step is allowed to run, plus delivery.
      const { awaitStep } = wf.proxyActivities<MechanicActivities>({
        startToCloseTimeout: `${step.timeoutSeconds + 900} seconds`,
        heartbeatTimeout,
        retry: { maximumAttempts: 20, maximumInterval: '30 seconds', nonRetryableErrorTypes: ['SSM_COMMAND_FAILED'] },
      });
      const result = await awaitStep({ ...request, commandId });
      running = undefined;
      steps[index] = { ...steps[index], status: result.ok ? 'succeeded' : 'failed', instances: result.instances };
      await stepCompleted(request, { commandId, ok: result.ok, result });
      return result.ok;
    } catch (e) {
      if (wf.isCancellation(e)) throw e;
      running = undefined;
      steps[index] = { ...steps[index], status: 'failed' };
      await stepCompleted(request, { ok: false, error: failureMessage(e) });
      return false;
    }
  };

  const skipPending = (from: number, to: number): void => {
    for (let i = from; i < to; i++) if (steps[i]!.status === 'pending') steps[i] = { ...steps[i]!, status: 'skipped' };
  };
  const stopStep = async (request: StepRequest, commandId: string): Promise<void> => {
    const index = request.stepIndex;
    const { cancelStep } = wf.proxyActivities<MechanicActivities>({
      startToCloseTimeout: '10 minutes',
      heartbeatTimeout,
      retry: { maximumAttempts: 10, maximumInterval: '30 seconds' },
    });
    try {
      const result = await cancelStep({ ...request, commandId });
      steps[index] = { ...steps[index]!, status: 'cancelled', instances: result.instances };
      await stepCompleted(request, { commandId, ok: false, cancelled: true, result });
    } catch (e) {
      steps[index] = { ...steps[index]!, status: 'cancelled' };
      await stepCompleted(request, { ok: false, cancelled: true, error: failureMessage(e) });
    }
  };

  let failedStep: string | undefined;
  try {
    await stepsScope.run(async () => {
      if (cancelRequest) throw new wf.CancelledFailure('cancelled before the first step');
      for (const [index, step] of plan.steps.entries()) {
        if (!(await runStep(step, index))) {
          failedStep = step.name;
          break;
        }
      }
      if (failedStep !== undefined) {
        skipPending(0, plan.steps.length);
        for (const [offset, step] of plan.onFailure.entries()) await runStep(step, plan.steps.length + offset);
      }
    });
  } catch (e) {
    if (!wf.isCancellation(e) || !cancelRequest) throw e;
  }
  if (cancelRequest) {
    await wf.CancellationScope.nonCancellable(async () => {
      if (running) await stopStep(running.request, running.commandId);
      skipPending(0, steps.length);
      await releaseCredentials(id);
    });
    return finishCancelled();
  }
  stepsDone = true;
  if (failedStep === undefined) skipPending(plan.steps.length, steps.length);
  await releaseCredentials(id);
  return failedStep === undefined
    ? finish('completed', 'mechanic')
    : finish('failed', 'mechanic', `step "${failedStep}" failed`);
}

function failureMessage(e: unknown): string {
  if (e instanceof wf.ActivityFailure && e.cause) return e.cause.message;
  return e instanceof Error ? e.message : String(e);
}
