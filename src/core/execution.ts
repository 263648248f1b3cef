import type { Plan, PlannedStep } from './plan.ts';
import type { ApprovalState, Vote } from './approval.ts';

/** What the workflow starts with: the plan and the digest approvers must name. */
export interface ExecutionInput {
  readonly plan: Plan;
  readonly planDigest: string;
  /** How the run is followed, not what it does: outside the plan and its digest. */
  readonly settings?: ExecutionSettings;
  /** The ids of the policies that allowed the launch, recorded with the request (outside the plan). */
  readonly launchPolicies?: readonly string[];
}

export interface ExecutionSettings {
  /** A worker that dies mid-step is noticed after this long and the step is followed by another. */
  readonly heartbeatTimeoutSeconds: number;
}

/** Every status an execution can have; the last five are final. Workflow-safe (no zod here). */
export const EXECUTION_STATUSES = [
  'awaiting_approval',
  'running',
  'completed',
  'failed',
  'expired',
  'cancelled',
  'rejected',
] as const;
export type ExecutionStatus = (typeof EXECUTION_STATUSES)[number];

export const TERMINAL_STATUSES: ReadonlySet<ExecutionStatus> = new Set([
  'completed',
  'failed',
  'expired',
  'cancelled',
  'rejected',
]);

/** Everything STS needs to issue (or re-issue) the run's credentials. No secret in here. */
export interface CredentialRequest {
  readonly executionId: string;
  readonly roleArn: string;
  readonly region: string;
  readonly sessionPolicy: string;
  readonly durationSeconds: number;
  /** Who the session acts for; STS logs it and it can never be changed for the session. */
  readonly sourceIdentity: string;
  readonly runbook: string;
  readonly approvers: readonly string[];
}

/** What crosses into workflow history about credentials: never the secret. */
export interface CredentialLease {
  readonly accessKeyId: string;
  readonly expiration: string;
  readonly policyDigest: string;
  readonly packedPolicySize?: number;
}

export interface StepRequest {
  readonly executionId: string;
  readonly stepIndex: number;
  readonly phase: 'main' | 'onFailure';
  readonly step: PlannedStep;
  readonly instanceIds: readonly string[];
  readonly credentials: CredentialRequest;
  /** When the run was planned: commands of this run cannot be older (bounds the dispatch look-up). */
  readonly notBefore: string;
  /**
   * Which send of a retried step this is, from 2 on (absent: the first). Each attempt is its own
   * SSM command with its own dispatch token, so a retry never adopts the failed attempt.
   */
  readonly attempt?: number;
}

export type InstanceStatus =
  'Pending' | 'InProgress' | 'Delayed' | 'Success' | 'Cancelled' | 'TimedOut' | 'Failed' | 'Cancelling';

export interface InstanceResult {
  readonly instanceId: string;
  readonly status: string;
  readonly statusDetails: string;
  readonly responseCode: number;
  /** Redacted, capped previews; the full redacted output is in the audit log. */
  readonly stdout: string;
  readonly stderr: string;
  readonly outputSha256: string;
  /** Set only when SSM cut the output at its limit (24,000 / 8,000 characters): which streams. */
  readonly truncatedBySsm?: readonly ('stdout' | 'stderr')[];
}

export interface StepOutcome {
  readonly commandId: string;
  readonly ok: boolean;
  readonly instances: readonly InstanceResult[];
}

export interface StepView {
  readonly name: string;
  readonly phase: 'main' | 'onFailure';
  readonly status: 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'skipped';
  readonly commandId?: string;
  readonly instances: readonly InstanceResult[];
  /**
   * Why a skipped step did not run, when the plan decided it (its condition does not hold); why a
   * failed step could not run at all (its dispatch or follow failed, e.g. SSM refused an instance).
   */
  readonly reason?: string;
  /** Set for a step that may be retried: the attempt under way or the last one made (1 is the first send). */
  readonly attempt?: number;
  /** Set when the step failed and the run went on past it (continueOnError). */
  readonly continuedOnError?: true;
  /**
   * Set for a step on more than 50 instances (sent as batches): every instance counted by its
   * status (statusDetails), while `instances` lists only those that did not succeed, at most
   * 100, so the view stays small however large the fleet; each instance's result and output is
   * in the audit log (step.instance records).
   */
  readonly summary?: StepSummary;
}

/** A large step's instances counted: how many, and how many ended with each status. */
export interface StepSummary {
  readonly total: number;
  readonly byStatus: Readonly<Record<string, number>>;
}

/** An operator's request to stop an execution, whatever stage it is in. */
export interface CancelRequest {
  readonly by: string;
  readonly reason: string;
  /** The ids of the policies that allowed it, recorded on the cancellation. */
  readonly policies?: readonly string[];
}

/** The live view of one execution, answered by the workflow's status query. */
export interface ExecutionView {
  readonly executionId: string;
  readonly status: ExecutionStatus;
  readonly planDigest: string;
  readonly plan: Plan;
  readonly approval: ApprovalState;
  readonly votes: readonly Vote[];
  readonly steps: readonly StepView[];
  readonly credentials?: CredentialLease;
  readonly reason?: string;
  /** Rebuilt from the audit log only: records that did not fit the audit vocabulary, named. */
  readonly unreadable?: readonly string[];
}

/**
 * True when a plan uses any step control (condition, retries, continueOnError): only such plans
 * take the workflow's patched branch. Here, not in plan.ts, because the workflow bundle imports it.
 */
export function usesStepControls(plan: Pick<Plan, 'steps' | 'onFailure'>): boolean {
  return [...plan.steps, ...plan.onFailure].some(
    (s) => s.condition !== undefined || s.retries !== undefined || s.continueOnError !== undefined,
  );
}
