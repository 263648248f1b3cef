/**
 * Runs one planned step through SSM and records how it ended; stops the step that is running when
 * the run is cancelled. Every step is dispatched once (find-or-send), followed until each instance
 * is done, and closed by exactly one step.completed record.
 */
import * as wf from '@temporalio/workflow';
import type { MechanicActivities } from '../src/activities/index.ts';
import type {
  CredentialRequest,
  ExecutionInput,
  InstanceResult,
  StepOutcome,
  StepRequest,
  StepView,
} from '../src/core/execution.ts';
import type { PlannedStep } from '../src/core/plan.ts';
import { MAX_BATCH } from '../src/core/targets.ts';
import { fanOutInstances, fanOutStep, stopFanOutSignal, type FanOutResult } from './fan-out.ts';
import type { Recorder, RunState } from './state.ts';

export interface StepRunnerDeps {
  readonly input: ExecutionInput;
  readonly state: RunState;
  readonly audit: Recorder;
  readonly credentials: CredentialRequest;
  /**
   * The run may send a step on more than 50 instances as batches, through a child workflow (the
   * fan-out patch; only runs on more than 50 instances ask it, and older runs had at most 50).
   */
  readonly fanOut?: boolean;
  /**
   * A fan-out step sent to every target of the plan gives its child no id list, only the plan's
   * digest: the child loads the ids (the fan-out-targets patch; runs recorded before it list them).
   */
  readonly fanOutTargets?: boolean;
}

/** The most unsuccessful instances a large step's view lists; its summary counts them all. */
const LISTED_UNSUCCESSFUL = 100;

export function failureMessage(e: unknown): string {
  if (e instanceof wf.ActivityFailure && e.cause) return e.cause.message;
  return e instanceof Error ? e.message : String(e);
}

export function stepRunner({
  input,
  state,
  audit,
  credentials,
  fanOut = false,
  fanOutTargets = false,
}: StepRunnerDeps) {
  const { plan } = input;
  const id = plan.executionId;
  // A worker that dies while following a step is noticed after this long.
  // Durations in milliseconds: the same as the "N seconds" strings recorded histories were made with.
  const heartbeatTimeout = (input.settings?.heartbeatTimeoutSeconds ?? 60) * 1000;
  // Cancelling a step means cancelling its SSM command; the step that was running when the
  // cancel came is followed to its final per-instance statuses and recorded.
  let running: { request: StepRequest; commandId: string; kept: readonly InstanceResult[] } | undefined;

  /**
   * One record per step (per attempt, for a retried step), however it ended; per-instance detail
   * is in the step.instance events. Without step controls, exactly the record older runs made.
   */
  const stepCompleted = (
    request: StepRequest,
    end: {
      commandId?: string;
      ok: boolean;
      cancelled?: boolean;
      result?: StepOutcome;
      error?: string;
      retrying?: boolean;
      continuedOnError?: boolean;
    },
  ): Promise<void> =>
    audit('step.completed', 'mechanic', {
      step: request.step.name,
      index: request.stepIndex,
      phase: request.phase,
      ...(request.attempt !== undefined ? { attempt: request.attempt } : {}),
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
      ...(end.retrying === true ? { retrying: true as const } : {}),
      ...(end.continuedOnError === true ? { continuedOnError: true as const } : {}),
    });

  /**
   * What the view holds of a step's instances. On a run of more than 50 instances (a fan-out run),
   * every instance counted by status and only the unsuccessful listed (at most LISTED_UNSUCCESSFUL,
   * in target order), whichever way this attempt was sent — a retry may go to 50 or fewer directly —
   * so the view stays bounded and agrees with the one rebuilt from the audit log.
   */
  const shown = (all: readonly InstanceResult[]): Partial<StepView> => {
    if (!fanOut) return { instances: [...all] };
    const rank = new Map(plan.targets.map((t, n) => [t.instanceId, n]));
    const at = (id: string): number => rank.get(id) ?? rank.size;
    const byStatus: Record<string, number> = {};
    for (const i of all) byStatus[i.statusDetails || i.status] = (byStatus[i.statusDetails || i.status] ?? 0) + 1;
    return {
      instances: all
        .filter((i) => i.status !== 'Success')
        .sort((a, b) => at(a.instanceId) - at(b.instanceId))
        .slice(0, LISTED_UNSUCCESSFUL),
      summary: { total: all.length, byStatus },
    };
  };

  /**
   * Runs step `index` (main steps first, then onFailure); true when it succeeded everywhere. With
   * step controls (a plan that uses them, under the workflow's patch), a failed step with retries
   * is sent again after its pause as a new command, to the instances it has not yet succeeded on
   * (an instance where it succeeded does not run it again), and a failure the step may have
   * (continueOnError) is recorded as such.
   */
  const runStep = async (step: PlannedStep, index: number, controls = false): Promise<boolean> => {
    const all = plan.targets.map((t) => t.instanceId);
    if (!controls || step.retries === undefined) {
      const { ok } = await runAttempt(step, index, {
        continuedOnError: controls && step.continueOnError === true,
        instanceIds: all,
        kept: [],
      });
      return ok;
    }
    let kept: InstanceResult[] = [];
    for (let attempt = 1; ; attempt++) {
      const last = attempt > step.retries;
      // A Set: with 10,000 instances, a scan of `kept` per instance was 100 million comparisons.
      const succeeded = new Set(kept.map((k) => k.instanceId));
      const { ok, instances } = await runAttempt(step, index, {
        attempt,
        retrying: !last,
        continuedOnError: step.continueOnError === true,
        instanceIds: all.filter((i) => !succeeded.has(i)),
        kept,
      });
      if (ok || last) return ok;
      kept = [...kept, ...instances.filter((i) => i.status === 'Success')];
      try {
        await wf.sleep((step.retryDelaySeconds ?? 0) * 1000);
      } catch (e) {
        // Cancelled between attempts: no command is out, so the step ends here, cancelled.
        if (wf.isCancellation(e)) {
          const phase = index < plan.steps.length ? 'main' : 'onFailure';
          state.setStep(index, { status: 'cancelled' });
          await stepCompleted(requestFor(step, index, phase, attempt, all), { ok: false, cancelled: true });
        }
        throw e;
      }
    }
  };

  const requestFor = (
    step: PlannedStep,
    index: number,
    phase: 'main' | 'onFailure',
    attempt: number | undefined,
    instanceIds: readonly string[],
  ): StepRequest => ({
    executionId: id,
    stepIndex: index,
    phase,
    step,
    instanceIds,
    credentials,
    notBefore: plan.createdAt,
    ...(attempt !== undefined ? { attempt } : {}),
  });

  /** Records a step the plan decided not to run; it is never sent. */
  const skipStep = async (step: PlannedStep, index: number): Promise<void> => {
    const phase = index < plan.steps.length ? 'main' : 'onFailure';
    const reason = step.skipped ?? 'skipped';
    state.setStep(index, { status: 'skipped', reason });
    await audit('step.skipped', 'mechanic', { step: step.name, index, phase, reason });
  };

  /**
   * One send of a step to `instanceIds`, followed to its end and recorded; `kept` are the results
   * of instances an earlier attempt succeeded on, shown with this attempt's.
   */
  const runAttempt = async (
    step: PlannedStep,
    index: number,
    how: {
      attempt?: number;
      retrying?: boolean;
      continuedOnError: boolean;
      instanceIds: readonly string[];
      kept: readonly InstanceResult[];
    },
  ): Promise<{ ok: boolean; instances: readonly InstanceResult[] }> => {
    const phase = index < plan.steps.length ? 'main' : 'onFailure';
    const { attempt, kept } = how;
    // A new attempt shows only what earlier ones succeeded on; their failures are in the audit log.
    state.setStep(
      index,
      attempt !== undefined ? { status: 'running', attempt, instances: [...kept] } : { status: 'running' },
    );
    const request = requestFor(step, index, phase, attempt, how.instanceIds);
    // After a failed attempt that will be retried, the step is still under way; a failure the
    // step may have is flagged in the view and its record.
    const failedAs = (): Partial<StepView> =>
      how.retrying === true
        ? { status: 'running' }
        : how.continuedOnError
          ? { status: 'failed', continuedOnError: true }
          : { status: 'failed' };
    if (fanOut && how.instanceIds.length > MAX_BATCH) return runFanOut(request, how, failedAs);
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
      running = { request, commandId, kept };
      state.setStep(index, { commandId });
      await audit('step.started', 'mechanic', {
        step: step.name,
        index,
        phase,
        ...(attempt !== undefined ? { attempt } : {}),
        commandId,
      });
      // Following a step may take as long as the step is allowed to run, plus delivery.
      const { awaitStep } = wf.proxyActivities<MechanicActivities>({
        startToCloseTimeout: (step.timeoutSeconds + 900) * 1000,
        heartbeatTimeout,
        retry: { maximumAttempts: 20, maximumInterval: '30 seconds', nonRetryableErrorTypes: ['SSM_COMMAND_FAILED'] },
      });
      const result = await awaitStep({ ...request, commandId });
      running = undefined;
      state.setStep(index, {
        ...(result.ok ? { status: 'succeeded' } : failedAs()),
        ...shown([...kept, ...result.instances]),
      });
      await stepCompleted(request, {
        commandId,
        ok: result.ok,
        result,
        ...(result.ok ? {} : { retrying: how.retrying === true, continuedOnError: how.continuedOnError }),
      });
      return result;
    } catch (e) {
      if (wf.isCancellation(e)) throw e;
      running = undefined;
      // Why the step could not run (e.g. SSM refused an instance), once no attempt follows: every
      // view of the run says it.
      state.setStep(index, { ...failedAs(), ...(how.retrying === true ? {} : { reason: failureMessage(e) }) });
      await stepCompleted(request, {
        ok: false,
        error: failureMessage(e),
        retrying: how.retrying === true,
        continuedOnError: how.continuedOnError,
      });
      return { ok: false, instances: [] };
    }
  };

  /**
   * A step (attempt) on more than 50 instances: its child workflow sends the batches and holds the
   * step's rate control across them; this run keeps each instance's status and exit code (outputs
   * are in the audit log) and records the step's end. A cancel of the run stops the child, which
   * cancels the batches under way in SSM and follows them to their end; the step is then recorded
   * as cancelled and the cancellation goes on.
   */
  const runFanOut = async (
    request: StepRequest,
    how: { attempt?: number; retrying?: boolean; continuedOnError: boolean; kept: readonly InstanceResult[] },
    failedAs: () => Partial<StepView>,
  ): Promise<{ ok: boolean; instances: readonly InstanceResult[] }> => {
    const { stepIndex: index, phase } = request;
    const workflowId = `${id}:${phase}-step-${index}${request.attempt !== undefined ? `:attempt-${request.attempt}` : ''}`;
    if (state.cancelRequest) throw new wf.CancelledFailure('the run was cancelled before a fan-out step');
    const result: FanOutResult = await wf.CancellationScope.nonCancellable(async () => {
      // Every target, in the plan's order (a first attempt, or a retry where none succeeded yet):
      // the ids stay out of this run's history, which would hold them once per step.
      const everyTarget =
        fanOutTargets &&
        request.instanceIds.length === plan.targets.length &&
        request.instanceIds.every((i, n) => i === plan.targets[n]!.instanceId);
      const child = await wf.startChild(fanOutStep, {
        workflowId,
        args: [
          everyTarget
            ? {
                request: { ...request, instanceIds: [] },
                heartbeatTimeoutMs: heartbeatTimeout,
                allTargets: { planDigest: input.planDigest },
              }
            : { request, heartbeatTimeoutMs: heartbeatTimeout },
        ],
      });
      const done = child.result();
      const cancelled = await Promise.race([
        done.then(() => false),
        wf.condition(() => state.cancelRequest !== undefined).then(() => true),
      ]);
      if (cancelled) {
        // A child that ended between the cancel and the signal refuses it; its result stands.
        await child.signal(stopFanOutSignal).catch(() => undefined);
      }
      return done;
    });
    const sent = fanOutInstances(result, request.instanceIds);
    const instances: InstanceResult[] = sent.instances.map((i) => ({
      ...i,
      stdout: '',
      stderr: '',
      outputSha256: '',
    }));
    const stopped = result.stopped === true;
    // The view counts the instances and lists only those that did not succeed (at most
    // LISTED_UNSUCCESSFUL): its size, and the run's result, stay bounded however large the fleet.
    state.setStep(index, {
      ...(stopped ? { status: 'cancelled' } : result.ok ? { status: 'succeeded' } : failedAs()),
      ...shown([...how.kept, ...instances]),
      ...(result.error !== undefined && how.retrying !== true && !stopped ? { reason: result.error } : {}),
    });
    await stepCompleted(request, {
      ok: result.ok,
      ...(stopped ? { cancelled: true } : {}),
      // Per-instance detail is in the step.instance records the batches wrote; only the instances
      // never sent have none, so this record names them.
      ...(sent.notSent > 0
        ? { result: { commandId: '', ok: false, instances: instances.slice(instances.length - sent.notSent) } }
        : {}),
      ...(result.error !== undefined ? { error: result.error } : {}),
      ...(result.ok || stopped ? {} : { retrying: how.retrying === true, continuedOnError: how.continuedOnError }),
    });
    if (stopped) throw new wf.CancelledFailure('the run was cancelled during a fan-out step');
    return { ok: result.ok, instances };
  };

  /** Cancels the SSM command of the step that was running, and records its final statuses. */
  const stopRunning = async (): Promise<void> => {
    if (!running) return;
    const { request, commandId, kept } = running;
    const index = request.stepIndex;
    const { cancelStep } = wf.proxyActivities<MechanicActivities>({
      startToCloseTimeout: '10 minutes',
      heartbeatTimeout,
      retry: { maximumAttempts: 10, maximumInterval: '30 seconds' },
    });
    try {
      const result = await cancelStep({ ...request, commandId });
      state.setStep(index, { status: 'cancelled', ...shown([...kept, ...result.instances]) });
      await stepCompleted(request, { commandId, ok: false, cancelled: true, result });
    } catch (e) {
      state.setStep(index, { status: 'cancelled' });
      await stepCompleted(request, { ok: false, cancelled: true, error: failureMessage(e) });
    }
  };

  return { runStep, skipStep, stopRunning };
}
