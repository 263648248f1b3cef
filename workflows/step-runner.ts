/**
 * Runs one planned step through SSM and records how it ended; stops the step that is running when
 * the run is cancelled. Every step is dispatched once (find-or-send), followed until each instance
 * is done, and closed by exactly one step.completed record.
 */
import * as wf from '@temporalio/workflow';
import type { MechanicActivities } from '../src/activities/index.ts';
import type { CredentialRequest, ExecutionInput, StepOutcome, StepRequest } from '../src/core/execution.ts';
import type { PlannedStep } from '../src/core/plan.ts';
import type { Recorder, RunState } from './state.ts';

export interface StepRunnerDeps {
  readonly input: ExecutionInput;
  readonly state: RunState;
  readonly audit: Recorder;
  readonly credentials: CredentialRequest;
}

export function failureMessage(e: unknown): string {
  if (e instanceof wf.ActivityFailure && e.cause) return e.cause.message;
  return e instanceof Error ? e.message : String(e);
}

export function stepRunner({ input, state, audit, credentials }: StepRunnerDeps) {
  const { plan } = input;
  const id = plan.executionId;
  // A worker that dies while following a step is noticed after this long.
  // Durations in milliseconds: the same as the "N seconds" strings recorded histories were made with.
  const heartbeatTimeout = (input.settings?.heartbeatTimeoutSeconds ?? 60) * 1000;
  // Cancelling a step means cancelling its SSM command; the step that was running when the
  // cancel came is followed to its final per-instance statuses and recorded.
  let running: { request: StepRequest; commandId: string } | undefined;

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
      ...(end.cancelled ? { cancelled: true as const } : {}),
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

  /** Runs step `index` (main steps first, then onFailure); true when it succeeded everywhere. */
  const runStep = async (step: PlannedStep, index: number): Promise<boolean> => {
    const phase = index < plan.steps.length ? 'main' : 'onFailure';
    state.setStep(index, { status: 'running' });
    const request = {
      executionId: id,
      stepIndex: index,
      phase,
      step,
      instanceIds: plan.targets.map((t) => t.instanceId),
      credentials,
      notBefore: plan.createdAt,
    } as const;
    try {
      // Dispatch is find-or-send (the Comment token), so a retry after a lost response adopts the
      // command it already sent instead of running the step twice. It heartbeats while SSM
      // answers, so a worker that dies mid-send is noticed within the heartbeat timeout.
      const { dispatchStep } = wf.proxyActivities<MechanicActivities>({
        startToCloseTimeout: '2 minutes',
        heartbeatTimeout,
        retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['SSM_COMMAND_FAILED', 'STS_FAILED'] },
      });
      // Never cancel a send half-way: the command id is what a cancellation needs to stop it.
      const { commandId } = await wf.CancellationScope.nonCancellable(() => dispatchStep(request));
      running = { request, commandId };
      state.setStep(index, { commandId });
      await audit('step.started', 'mechanic', { step: step.name, index, phase, commandId });
      // Following a step may take as long as the step is allowed to run, plus delivery.
      const { awaitStep } = wf.proxyActivities<MechanicActivities>({
        startToCloseTimeout: (step.timeoutSeconds + 900) * 1000,
        heartbeatTimeout,
        retry: { maximumAttempts: 20, maximumInterval: '30 seconds', nonRetryableErrorTypes: ['SSM_COMMAND_FAILED'] },
      });
      const result = await awaitStep({ ...request, commandId });
      running = undefined;
      state.setStep(index, { status: result.ok ? 'succeeded' : 'failed', instances: result.instances });
      await stepCompleted(request, { commandId, ok: result.ok, result });
      return result.ok;
    } catch (e) {
      if (wf.isCancellation(e)) throw e;
      running = undefined;
      state.setStep(index, { status: 'failed' });
      await stepCompleted(request, { ok: false, error: failureMessage(e) });
      return false;
    }
  };

  /** Cancels the SSM command of the step that was running, and records its final statuses. */
  const stopRunning = async (): Promise<void> => {
    if (!running) return;
    const { request, commandId } = running;
    const index = request.stepIndex;
    const { cancelStep } = wf.proxyActivities<MechanicActivities>({
      startToCloseTimeout: '10 minutes',
      heartbeatTimeout,
      retry: { maximumAttempts: 10, maximumInterval: '30 seconds' },
    });
    try {
      const result = await cancelStep({ ...request, commandId });
      state.setStep(index, { status: 'cancelled', instances: result.instances });
      await stepCompleted(request, { commandId, ok: false, cancelled: true, result });
    } catch (e) {
      state.setStep(index, { status: 'cancelled' });
      await stepCompleted(request, { ok: false, cancelled: true, error: failureMessage(e) });
    }
  };

  return { runStep, stopRunning };
}
