/**
 * How step controls (condition, retries, continueOnError) read on every screen that lists steps:
 * `mechanic plan`, `mechanic status`, the TUI's plan review and run view. One wording, so an
 * approver and an operator read the same thing. Pure; the callers neutralise what they print.
 */
import type { StepView } from './execution.ts';
import type { PlannedStep } from './plan.ts';

/** What the plan says about a step beyond its script: whether it runs, retries, may fail. */
export function plannedStepNotes(s: PlannedStep): string[] {
  if (s.skipped !== undefined) return [`skipped, never sent: ${s.skipped}`];
  const notes: string[] = [];
  if (s.condition !== undefined) notes.push(`runs because ${s.condition}`);
  if (s.retries !== undefined) {
    const delay = s.retryDelaySeconds ?? 0;
    notes.push(
      `if it fails, sent again up to ${s.retries} time${s.retries === 1 ? '' : 's'}, ${delay} s apart, to the instances it failed on`,
    );
  }
  if (s.continueOnError === true) notes.push('a failure does not stop the run (continueOnError)');
  return notes;
}

/** What a run shows about a step beyond its status: its attempt, an allowed failure, why it was skipped. */
export function stepRunNotes(step: StepView, planned: PlannedStep | undefined): string[] {
  const notes: string[] = [];
  if (step.attempt !== undefined) {
    const of = planned?.retries !== undefined ? ` of ${planned.retries + 1}` : '';
    notes.push(`attempt ${step.attempt}${of}`);
  }
  if (step.continuedOnError === true) notes.push('failed, and the run went on (continueOnError)');
  if ((step.status === 'skipped' || step.status === 'failed') && step.reason !== undefined) notes.push(step.reason);
  return notes;
}

/** The planned step of a view's step `index` (main steps first, then onFailure). */
export function plannedStepAt(
  plan: { readonly steps: readonly PlannedStep[]; readonly onFailure: readonly PlannedStep[] },
  index: number,
): PlannedStep | undefined {
  return index < plan.steps.length ? plan.steps[index] : plan.onFailure[index - plan.steps.length];
}
