/**
 * One step on more than 50 instances, as a child workflow of its run: batches of at most 50
 * instance ids, one SendCommand each (find-or-send on the batch's own token), with the step's
 * maxConcurrency and maxErrors held across all of them. The parent's history holds one child per
 * step and its compact result; this history holds one activity per batch, so a step on 10,000
 * instances (200 batches) stays far under Temporal's history limits, and no output ever enters
 * either history: each instance's output is in the audit log, recorded by the batch's activity.
 *
 * Recorded histories replay against this code (test/replay): the commands it issues, and their
 * order, must not change without wf.patched().
 */
import * as wf from '@temporalio/workflow';
import type { MechanicActivities } from '../src/activities/index.ts';
import type { BatchInstance } from '../src/activities/ssm.ts';
import type { StepRequest } from '../src/core/execution.ts';
import { countsAsError, fanOutOf } from '../src/core/targets.ts';

/** Stops the step: no further batch is sent, the batches under way are cancelled in SSM and followed to their end. */
export const stopFanOutSignal = wf.defineSignal('stopFanOut');

export interface FanOutInput {
  /** The step, on every one of its instances (none listed when `allTargets` is set). */
  readonly request: StepRequest;
  readonly heartbeatTimeoutMs: number;
  /**
   * Set when the step goes to every target of the plan (the fan-out-targets patch of the run): the
   * ids are not in this input, which the run's history holds, but loaded from the run's request
   * record by the plan with this digest. Absent in every input made before it, so a recorded child
   * history replays unchanged: this code takes the new branch only when the input says so.
   */
  readonly allTargets?: { readonly planDigest: string };
}

export interface FanOutResult {
  /** True when every instance succeeded. */
  readonly ok: boolean;
  /** Every batch's command, in batch order (batches never sent have none). */
  readonly commandIds: readonly string[];
  /**
   * Every instance of the step with a result, in batch order: its final status, or how it was not
   * run. Results of steps run before compact results; newer ones carry `outcomes` instead.
   */
  readonly instances?: readonly BatchInstance[];
  /** The instances of batches that were never sent (they have no step.instance record of their own). */
  readonly notSent?: readonly BatchInstance[];
  /** The same as `instances` and `notSent`, at a few bytes an instance (see compactOutcomes). */
  readonly outcomes?: CompactOutcomes;
  /** Why a batch could not be sent or followed; no further batch was sent after it. */
  readonly error?: string;
  /** Set when the step was stopped (the run was cancelled). */
  readonly stopped?: true;
}

/**
 * Every instance's result in a form whose size does not grow with its text: 10,000 instances
 * listed as objects were a 1.3 MB payload (Temporal refuses one over 2 MB), in both the child's and
 * the run's history; as indexes into the few distinct results, about 20 KB.
 */
export interface CompactOutcomes {
  /** Each distinct result: status, statusDetails, responseCode. */
  readonly kinds: readonly (readonly [string, string, number])[];
  /** For each of the step's instance ids, in order, the index of its result in `kinds`; -1: none (its batch could not run). */
  readonly of: readonly number[];
  /** How many of the last instances with a result were never sent. */
  readonly notSent: number;
}

/** Packs the results of a step on `instanceIds` (each id at most once among them). */
export function compactOutcomes(
  instanceIds: readonly string[],
  results: readonly BatchInstance[],
  notSent: number,
): CompactOutcomes {
  const kinds: [string, string, number][] = [];
  const kindOf = new Map<string, number>();
  const byId = new Map<string, number>();
  for (const r of results) {
    const key = JSON.stringify([r.status, r.statusDetails, r.responseCode]);
    let kind = kindOf.get(key);
    if (kind === undefined) {
      kind = kinds.push([r.status, r.statusDetails, r.responseCode]) - 1;
      kindOf.set(key, kind);
    }
    byId.set(r.instanceId, kind);
  }
  return { kinds, of: instanceIds.map((id) => byId.get(id) ?? -1), notSent };
}

/** The results a FanOutResult carries, in either form: every instance with a result, and how many at the end were never sent. */
export function fanOutInstances(
  result: FanOutResult,
  instanceIds: readonly string[],
): { instances: BatchInstance[]; notSent: number } {
  if (result.outcomes === undefined)
    return {
      instances: [...(result.instances ?? []), ...(result.notSent ?? [])],
      notSent: result.notSent?.length ?? 0,
    };
  const { kinds, of, notSent } = result.outcomes;
  const instances: BatchInstance[] = [];
  instanceIds.forEach((instanceId, i) => {
    const kind = kinds[of[i] ?? -1];
    if (kind) instances.push({ instanceId, status: kind[0], statusDetails: kind[1], responseCode: kind[2] });
  });
  return { instances, notSent };
}

/** How often a stop looks again for a batch whose command SSM does not show yet. */
const CANCEL_LOOK_AGAIN_MS = 1_000;

export async function fanOutStep(input: FanOutInput): Promise<FanOutResult> {
  const { heartbeatTimeoutMs, allTargets } = input;
  let request = input.request;
  if (allTargets) {
    try {
      request = { ...request, instanceIds: await loadTargets(request.executionId, allTargets.planDigest) };
    } catch (e) {
      // Nothing was sent: the step fails with why, and the run records it and goes on as for any failed step.
      return { ok: false, commandIds: [], outcomes: { kinds: [], of: [], notSent: 0 }, error: failureMessage(e) };
    }
  }
  const fan = fanOutOf(request.instanceIds, request.step);
  // A batch runs its instances in waves of its share of the concurrency; each wave may take the
  // step's timeout, plus delivery.
  const waves = Math.ceil(Math.min(50, request.instanceIds.length) / fan.perBatchConcurrency);
  const { runBatch, cancelBatches } = wf.proxyActivities<MechanicActivities>({
    startToCloseTimeout: (waves * request.step.timeoutSeconds + 900) * 1000,
    heartbeatTimeout: heartbeatTimeoutMs,
    // find-or-send: a retry adopts the batch's command instead of sending it again.
    retry: {
      maximumAttempts: 20,
      maximumInterval: '30 seconds',
      nonRetryableErrorTypes: ['SSM_COMMAND_FAILED', 'STS_FAILED'],
    },
  });

  let stopping = false;
  wf.setHandler(stopFanOutSignal, () => {
    stopping = true;
  });

  const results: (readonly BatchInstance[] | undefined)[] = fan.batches.map(() => undefined);
  const commandIds: string[] = [];
  const inFlight = new Set<number>();
  let errors = 0;
  let error: string | undefined;
  let next = 0;

  const launch = (batch: number): void => {
    inFlight.add(batch);
    void runBatch({
      ...request,
      instanceIds: fan.batches[batch]!,
      batch,
      maxConcurrency: String(fan.perBatchConcurrency),
      // What is left of the step's error budget: SSM stops this batch where the step would stop.
      maxErrors: String(Math.max(0, fan.errorBudget - errors)),
    })
      .then(
        (out) => {
          commandIds[batch] = out.commandId;
          results[batch] = out.instances;
          errors += out.instances.filter((i) => countsAsError(i.statusDetails)).length;
        },
        (e: unknown) => {
          error ??= failureMessage(e);
        },
      )
      .finally(() => inFlight.delete(batch));
  };

  while (next < fan.batches.length) {
    await wf.condition(() => inFlight.size < fan.parallel || stopping);
    // Once more instances failed than maxErrors allows, or a batch could not run, no further batch is sent.
    if (stopping || error !== undefined || errors > fan.errorBudget) break;
    launch(next++);
  }
  await wf.condition(() => inFlight.size === 0 || stopping);
  if (stopping) {
    // Cancel what is under way; a batch still being sent is looked for again until its command shows or it ends.
    let pending = [...inFlight];
    while (pending.length > 0) {
      const notFound = await cancelBatches({ ...request, batches: pending });
      pending = notFound.filter((b) => inFlight.has(b));
      if (pending.length > 0) await wf.condition(() => pending.every((b) => !inFlight.has(b)), CANCEL_LOOK_AGAIN_MS);
      pending = pending.filter((b) => inFlight.has(b));
    }
    await wf.condition(() => inFlight.size === 0);
  }

  // Instances of batches never sent are reported as SSM reports its own never-started ones.
  const notRun = (id: string): BatchInstance =>
    stopping
      ? { instanceId: id, status: 'Cancelled', statusDetails: 'Cancelled', responseCode: -1 }
      : { instanceId: id, status: 'Cancelled', statusDetails: 'Terminated', responseCode: -1 };
  const notSent = fan.batches.slice(next).flatMap((ids) => ids.map(notRun));
  const instances = [...results.flatMap((r) => r ?? []), ...notSent];
  const ok =
    error === undefined &&
    !stopping &&
    instances.length === request.instanceIds.length &&
    instances.every((i) => i.status === 'Success');
  return {
    ok,
    commandIds: commandIds.filter((c) => c !== undefined),
    outcomes: compactOutcomes(request.instanceIds, instances, notSent.length),
    ...(error !== undefined ? { error } : {}),
    ...(stopping ? { stopped: true as const } : {}),
  };
}

/**
 * The plan's instance ids, read by an activity: its result lands in this child's history, not the
 * run's. A broken request record (another plan) fails the step, naming it, instead of running it.
 */
function loadTargets(executionId: string, planDigest: string): Promise<string[]> {
  const { planTargets } = wf.proxyActivities<MechanicActivities>({
    startToCloseTimeout: '1 minute',
    retry: { maximumInterval: '30 seconds', nonRetryableErrorTypes: ['AUDIT_CHAIN_BROKEN', 'CONFIG_INVALID'] },
  });
  return planTargets({ executionId, planDigest });
}

function failureMessage(e: unknown): string {
  if (e instanceof wf.ActivityFailure && e.cause) return e.cause.message;
  return e instanceof Error ? e.message : String(e);
}
