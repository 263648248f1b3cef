import type { Risk, Runbook } from './runbook.ts';
import type { ParamValues } from './params.ts';
import type { PlannedTarget } from './targets.ts';
import { parseParams } from './params.ts';
import { humanTextProblem } from './text.ts';
import { renderScript } from './template.ts';
import { accountOf, buildSessionPolicy } from './session-policy.ts';
import { digestOf } from './canonical.ts';
import { UserError } from './errors.ts';
import { rateControlOf, rateLimitCount } from './targets.ts';
import { conditionHolds, describeCondition, type StepCondition } from './step-condition.ts';

export interface PlannedStep {
  readonly name: string;
  /** The script exactly as it will run: parameters already rendered as shell-quoted words. */
  readonly script: string;
  readonly timeoutSeconds: number;
  /**
   * Set only for a step with a condition: the condition as a reader says it (`mode is "full"`).
   * Absent from plans of steps without one, so older plans keep their digests.
   */
  readonly condition?: string;
  /** Set when the condition does not hold: why the step will not run. It is skipped, never sent. */
  readonly skipped?: string;
  /** Set only when the step is retried: how many more times a failed step is sent, and the pause before each. */
  readonly retries?: number;
  readonly retryDelaySeconds?: number;
  /** Set only when true: a failure of this step is recorded and the run goes on. */
  readonly continueOnError?: true;
  /**
   * SSM rate control as SendCommand takes it ("5", "25%"): how many instances run the step at
   * once, and how many may fail before SSM starts it on no further instance. Set only when the
   * runbook or the step sets it (SSM's defaults otherwise), so older plans keep their digests.
   */
  readonly maxConcurrency?: string;
  readonly maxErrors?: string;
}

/**
 * The extra time a rate-limited step may take: with at most N instances at once, the instances
 * run in waves, and each wave after the first may take the step's whole timeout again.
 */
export function queuedSeconds(s: PlannedStep, targets: number): number {
  if (s.maxConcurrency === undefined || s.skipped !== undefined || targets === 0) return 0;
  const waves = Math.ceil(targets / rateLimitCount(s.maxConcurrency, targets, 'concurrency'));
  return (waves - 1) * s.timeoutSeconds * (1 + (s.retries ?? 0));
}

/** The pause before a retry when the runbook names none. */
export const DEFAULT_RETRY_DELAY_SECONDS = 10;

/** The seconds a step may take at most, with every attempt and pause: none when it is skipped. */
function stepBudgetSeconds(s: PlannedStep): number {
  if (s.skipped !== undefined) return 0;
  const attempts = 1 + (s.retries ?? 0);
  return attempts * (s.timeoutSeconds + STEP_OVERHEAD_SECONDS) + (s.retries ?? 0) * (s.retryDelaySeconds ?? 0);
}

/**
 * Everything a run will do, fixed before anyone approves it: what runs, where, as which role,
 * with which session policy and for how long. Approvers approve this object's digest; anything
 * that changes it needs new approvals.
 */
export interface Plan {
  readonly executionId: string;
  readonly runbook: {
    readonly name: string;
    readonly version: number;
    readonly digest: string;
    readonly description: string;
    /**
     * What the policies and the approval rules read, pinned with the plan so a vote is judged by
     * the runbook that was approved, not by whatever the catalog holds later. Absent only in plans
     * made before mechanic recorded them (runs already in flight or in the audit log).
     */
    readonly risk?: Risk;
    readonly owners?: readonly string[];
    /** Groups whose members may approve; empty: any approver. High risk: two of them must. */
    readonly approvalGroups?: readonly string[];
    readonly environment?: string;
    readonly tags?: readonly string[];
  };
  readonly requester: string;
  readonly reason: string;
  readonly params: ParamValues;
  /**
   * The parameters that are secret references: their value in `params` is the name of an SSM
   * Parameter Store parameter, read on the instance; the secret itself is never in the plan.
   * Absent when the runbook has none (so plans without secrets keep their digests).
   */
  readonly secretParams?: readonly string[];
  readonly targets: readonly PlannedTarget[];
  readonly roleArn: string;
  readonly region: string;
  readonly steps: readonly PlannedStep[];
  readonly onFailure: readonly PlannedStep[];
  readonly approval: { readonly required: number; readonly expiresAfterSeconds: number };
  /** Lifetime of the run's credentials, in seconds (STS: 900..43200). */
  readonly budgetSeconds: number;
  readonly sessionPolicy: string;
  readonly createdAt: string;
}

export interface PlanInput {
  readonly executionId: string;
  readonly runbook: Runbook;
  readonly runbookDigest: string;
  readonly rawParams: Readonly<Record<string, unknown>>;
  readonly targets: readonly PlannedTarget[];
  readonly requester: string;
  readonly reason: string;
  readonly region: string;
  readonly now: Date;
}

/** Seconds added per step for delivery and polling, on top of the step's own timeout. */
const STEP_OVERHEAD_SECONDS = 60;
const RUN_OVERHEAD_SECONDS = 300;
/** STS AssumeRole's longest session (and the role's MaxSessionDuration must allow it). */
const MAX_CREDENTIAL_SECONDS = 43_200;

export function buildPlan(input: PlanInput): { plan: Plan; planDigest: string } {
  const { runbook } = input;
  const reason = input.reason.trim();
  if (reason.length < 3)
    throw new UserError('USAGE', 'a reason is required: say in a few words why this run is needed');
  if (reason.length > 500) throw new UserError('USAGE', 'the reason is longer than 500 characters; shorten it');
  const refused = humanTextProblem('the reason', reason);
  if (refused !== undefined) throw new UserError('USAGE', refused);
  const params = parseParams(runbook, input.rawParams);
  const secretParams = Object.keys(runbook.parameters).filter((name) => runbook.parameters[name]?.type === 'secret');
  const secrets = new Set(secretParams);
  const render = (step: Runbook['steps'][number]): PlannedStep => {
    const retries = step.retries ?? 0;
    // Each control enters the plan only when the runbook sets it, so plans without them keep
    // their shape and digest. A condition is decided here, so the approved plan says what runs.
    return {
      name: step.name,
      script: renderScript(
        step.script,
        {
          ...params,
          mechanic_execution_id: input.executionId,
          mechanic_step: step.name,
        },
        { secrets },
      ),
      timeoutSeconds: step.timeoutSeconds,
      ...(step.condition !== undefined ? conditionOutcome(step.condition, params) : {}),
      ...(retries > 0 ? { retries, retryDelaySeconds: step.retryDelaySeconds ?? DEFAULT_RETRY_DELAY_SECONDS } : {}),
      ...(step.continueOnError === true ? { continueOnError: true as const } : {}),
      ...rateControlOf(runbook, step),
    };
  };
  const steps = runbook.steps.map(render);
  const onFailure = runbook.onFailure.map(render);
  const work = [...steps, ...onFailure].reduce(
    (sum, s) => sum + stepBudgetSeconds(s) + queuedSeconds(s, input.targets.length),
    0,
  );
  if (work + RUN_OVERHEAD_SECONDS > MAX_CREDENTIAL_SECONDS) {
    throw new UserError(
      'RUNBOOK_INVALID',
      `${runbook.name}'s steps may take longer than the 12 hours STS credentials can last; shorten their timeouts`,
    );
  }
  const budgetSeconds = Math.max(900, work + RUN_OVERHEAD_SECONDS);
  // The author's bound on the credential lifetime: checked only, never added to the plan.
  const acceptedMinutes = runbook.maxCredentialMinutes;
  if (acceptedMinutes !== undefined && budgetSeconds > acceptedMinutes * 60) {
    throw new UserError(
      'RUNBOOK_INVALID',
      `this run of ${runbook.name} needs credentials for ${Math.ceil(budgetSeconds / 60)} minutes (every step's timeout, retry, pause and wave, plus ${RUN_OVERHEAD_SECONDS / 60} minutes of overhead), more than its maxCredentialMinutes of ${acceptedMinutes}; shorten the steps' timeouts or retries, raise maxConcurrency, or raise maxCredentialMinutes`,
    );
  }
  const plan: Plan = {
    executionId: input.executionId,
    runbook: {
      name: runbook.name,
      version: runbook.version,
      digest: input.runbookDigest,
      description: runbook.description,
      risk: runbook.risk,
      owners: runbook.owners,
      approvalGroups: runbook.approval.groups,
      environment: runbook.environment,
      tags: runbook.tags,
    },
    requester: input.requester,
    reason,
    params,
    ...(secretParams.length > 0 ? { secretParams } : {}),
    targets: input.targets,
    roleArn: runbook.roleArn,
    region: input.region,
    steps,
    onFailure,
    approval: { required: runbook.approval.required, expiresAfterSeconds: runbook.approval.expiresAfterMinutes * 60 },
    budgetSeconds,
    sessionPolicy: buildSessionPolicy({
      region: input.region,
      accountId: accountOf(runbook.roleArn),
      instanceIds: input.targets.map((t) => t.instanceId),
      scope: runbook.targets,
    }),
    createdAt: input.now.toISOString(),
  };
  return { plan, planDigest: digestOf(plan) };
}

/** A condition decided on the run's values: its text, and why the step is skipped when it does not hold. */
function conditionOutcome(condition: StepCondition, params: ParamValues): { condition: string; skipped?: string } {
  const text = describeCondition(condition);
  if (conditionHolds(condition, params)) return { condition: text };
  return {
    condition: text,
    skipped: `its condition (${text}) does not hold: ${condition.param} is ${JSON.stringify(params[condition.param])}`,
  };
}
