/**
 * One run of one approved plan: ask, wait for approval (or rejection, or expiry), get scoped
 * credentials, run each step on every target through SSM, record everything. The workflow only
 * sequences and waits; the plan, the approval rules and the AWS calls live elsewhere. Its parts:
 * messages.ts (updates, query, search attributes), state.ts (the run's state and the audit
 * recorder), step-runner.ts (one step through SSM).
 *
 * Recorded histories replay against this code (test/replay): the commands it issues, and their
 * order, must not change without wf.patched().
 */
import * as wf from '@temporalio/workflow';
import type { MechanicActivities } from '../src/activities/index.ts';
import { approvalRulesOf, checkVote, type Vote } from '../src/core/approval.ts';
import { END_EVENT_OF, requestedEvent, type FinalStatus } from '../src/core/audit-events.ts';
import { isMechanicError } from '../src/core/errors.ts';
import { TERMINAL_STATUSES, usesStepControls } from '../src/core/execution.ts';
import type { CancelRequest, CredentialRequest, ExecutionInput, ExecutionView } from '../src/core/execution.ts';
import type { PlannedStep } from '../src/core/plan.ts';
import { MAX_BATCH } from '../src/core/targets.ts';
import { cancelUpdate, statusQuery, statusSummaryQuery, voteUpdate } from './messages.ts';
import { LOCAL_RECORDS_PATCH, RunState, auditRecorder, recordAsIs } from './state.ts';
import { failureMessage, stepRunner } from './step-runner.ts';

export { cancelUpdate, statusQuery, voteUpdate } from './messages.ts';

const { issueCredentials, releaseCredentials } = wf.proxyActivities<MechanicActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['STS_FAILED'] },
});

export async function runbookExecution(input: ExecutionInput): Promise<ExecutionView> {
  const { plan, planDigest } = input;
  const id = plan.executionId;
  const state = new RunState(input);
  // Asked once, first: a run recorded before local records keeps recordEvent activities all its life.
  const localRecords = wf.patched(LOCAL_RECORDS_PATCH);
  const audit = auditRecorder(id, localRecords);
  // With local records, the step-controls patch is asked here too, before any local activity: a
  // patch asked after one can land in another workflow task on replay than it did when recorded
  // (a local activity's result is met early on replay), and the run would fail as nondeterministic.
  const earlyControls = localRecords && usesStepControls(plan) && wf.patched(STEP_CONTROLS_PATCH);
  // Steps on more than 50 instances go out as batches through a child workflow. Only such runs ask
  // (older runs had at most 50 targets), and they ask here, before any local activity, as above.
  const fanOut = plan.targets.length > MAX_BATCH && wf.patched(FAN_OUT_PATCH);
  // A fan-out step to every target gives its child the plan's digest, not the ids (which the run's
  // history would hold once per step). Asked here with the fan-out patch, before any local activity.
  const fanOutTargets = fanOut && wf.patched(FAN_OUT_TARGETS_PATCH);
  // The vote that decides the approval writes its record and `execution.running` in one local
  // activity: the workflow task that answers it runs one audit write instead of two. Asked here,
  // before any local activity, as above.
  const votesTogether = localRecords && wf.patched(DECIDING_VOTE_PATCH);
  // The steps run in this scope; a cancel request cancels it, whatever step is under way.
  const stepsScope = new wf.CancellationScope();

  wf.setHandler(statusQuery, () => state.view());
  // A query issues no command and leaves nothing in history: adding one needs no wf.patched().
  wf.setHandler(statusSummaryQuery, () => state.summary());
  wf.setHandler(
    voteUpdate,
    async (vote) => {
      state.votes.push(vote);
      // The request is the first record of every execution, even when a vote races the start.
      await wf.condition(() => state.requestRecorded);
      const data = {
        planDigest: vote.planDigest,
        ...(vote.comment !== undefined ? { comment: vote.comment } : {}),
        ...(vote.groups !== undefined ? { groups: vote.groups } : {}),
        ...(vote.policies !== undefined ? { policies: vote.policies } : {}),
      };
      // The deciding vote (no vote is taken after it): unless a cancel came first, the run starts
      // now, and its record goes with the vote's, in the order the main line would write them.
      if (votesTogether && vote.decision === 'approve' && state.approval().status === 'approved') {
        // Earlier votes' records still being written go first, as the main line waits for them.
        await wf.condition(() => state.votesRecording === 0);
        const outcome = state.approval();
        if (outcome.status === 'approved' && state.cancelRequest === undefined) {
          state.runningRecorded = true;
          await audit.together([
            { type: 'approval.granted', actor: vote.approver, data },
            { type: 'execution.running', actor: 'mechanic', data: { approvedBy: outcome.approvedBy } },
          ]);
          return outcome;
        }
      }
      state.votesRecording++;
      try {
        await audit(vote.decision === 'approve' ? 'approval.granted' : 'approval.rejected', vote.approver, data);
      } finally {
        state.votesRecording--;
      }
      return state.approval();
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
              votes: state.votes,
              open: state.status === 'awaiting_approval' && state.approval().status === 'pending',
              // The plan's approval groups and risk: the server asked Cedar, and this holds even
              // for a vote that raced another one past it.
              rules: approvalRulesOf(plan.runbook),
              required: plan.approval.required,
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
      state.cancelRequest = req;
      stepsScope.cancel();
      return state.status;
    },
    {
      validator: (_req: CancelRequest) => {
        if (TERMINAL_STATUSES.has(state.status) || state.cancelRequest !== undefined || state.stepsDone) {
          throw wf.ApplicationFailure.nonRetryable(
            state.cancelRequest
              ? 'this execution is already being cancelled'
              : state.stepsDone
                ? 'this execution has run all its steps and is finishing'
                : `this execution has already ended (${state.status})`,
            'EXECUTION_FINISHED',
          );
        }
      },
    },
  );
  /** Every way a run ends: its status, why, and the record that closes its audit story. */
  const finish = async (
    final: FinalStatus,
    actor: string,
    why?: string,
    policies?: readonly string[],
    failedSteps?: readonly string[],
  ): Promise<ExecutionView> => {
    state.setStatus(final);
    state.reason = why;
    await audit(END_EVENT_OF[final], actor, {
      ...(why !== undefined ? { reason: why } : {}),
      ...(policies !== undefined ? { policies } : {}),
      ...(failedSteps !== undefined ? { failedSteps } : {}),
    });
    return state.view();
  };
  const finishCancelled = (): Promise<ExecutionView> => {
    const req = state.cancelRequest!;
    // The cancel's record names the policies that let its requester cancel.
    return finish('cancelled', req.by, `cancelled by ${req.by}: ${req.reason}`, req.policies);
  };

  // Same event id and content as the API server's own write of this event (requestedEvent), so
  // whichever lands first is the one record of the request.
  await recordAsIs(requestedEvent(input));
  state.requestRecorded = true;

  const decided = await wf.condition(
    () => state.approval().status !== 'pending' || state.cancelRequest !== undefined,
    plan.approval.expiresAfterSeconds * 1000,
  );
  // Let a vote's audit write finish before anything that follows it is recorded.
  await wf.condition(wf.allHandlersFinished);
  if (state.cancelRequest) return finishCancelled();
  const outcome = state.approval();
  // A deciding vote that recorded the run's start was taken before any expiry: the run starts.
  if (!state.runningRecorded && (!decided || outcome.status === 'pending')) {
    return finish(
      'expired',
      'mechanic',
      `not enough approvals within ${Math.round(plan.approval.expiresAfterSeconds / 60)} minutes`,
    );
  }
  if (outcome.status === 'rejected') {
    return finish('rejected', outcome.by, `rejected by ${outcome.by}${outcome.comment ? `: ${outcome.comment}` : ''}`);
  }

  state.setStatus('running');
  if (!state.runningRecorded) await audit('execution.running', 'mechanic', { approvedBy: outcome.approvedBy });
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
    state.credentials = await issueCredentials(credentialRequest);
  } catch (e) {
    return finish('failed', 'mechanic', `could not obtain credentials: ${failureMessage(e)}`);
  }
  await audit('credentials.issued', 'mechanic', { ...state.credentials, roleArn: plan.roleArn, reason: 'approved' });
  const steps = stepRunner({
    input,
    state,
    audit,
    credentials: credentialRequest,
    ...(fanOut ? { fanOut } : {}),
    ...(fanOutTargets ? { fanOutTargets } : {}),
  });
  // Conditions, retries and continueOnError: only plans that use them take this branch, so runs
  // recorded before it replay unchanged; their histories carry the marker.
  const controls = localRecords ? earlyControls : usesStepControls(plan) && wf.patched(STEP_CONTROLS_PATCH);
  /** A step the plan skips is recorded as skipped, with why; with controls, it is never sent. */
  const run = async (step: PlannedStep, index: number): Promise<boolean> => {
    if (controls && step.skipped !== undefined) {
      await steps.skipStep(step, index);
      return true;
    }
    return steps.runStep(step, index, controls);
  };

  let failedStep: string | undefined;
  /** Steps that failed and were allowed to (continueOnError): the run went on past them. */
  const allowedFailures: string[] = [];
  try {
    await stepsScope.run(async () => {
      if (state.cancelRequest) throw new wf.CancelledFailure('cancelled before the first step');
      for (const [index, step] of plan.steps.entries()) {
        if (!(await run(step, index))) {
          if (controls && step.continueOnError === true) {
            allowedFailures.push(step.name);
            continue;
          }
          failedStep = step.name;
          break;
        }
      }
      if (failedStep !== undefined) {
        state.skipPending(0, plan.steps.length);
        for (const [offset, step] of plan.onFailure.entries()) await run(step, plan.steps.length + offset);
      }
    });
  } catch (e) {
    if (!wf.isCancellation(e) || !state.cancelRequest) throw e;
  }
  if (state.cancelRequest) {
    await wf.CancellationScope.nonCancellable(async () => {
      await steps.stopRunning();
      state.skipPending(0, state.steps.length);
      await releaseCredentials(id);
    });
    return finishCancelled();
  }
  state.stepsDone = true;
  if (failedStep === undefined) state.skipPending(plan.steps.length, state.steps.length);
  await releaseCredentials(id);
  if (failedStep !== undefined) return finish('failed', 'mechanic', `step "${failedStep}" failed`);
  if (allowedFailures.length === 0) return finish('completed', 'mechanic');
  // Completed, and says so with its failures: the status is that every step was attempted and
  // nothing stopped the run; the reason and the record name what failed on the way.
  return finish('completed', 'mechanic', completedWithFailures(allowedFailures), undefined, allowedFailures);
}

/** The patch id of steps sent as batches through a child workflow (recorded histories depend on it). */
export const FAN_OUT_PATCH = 'fan-out';

/** The patch id of fan-out steps whose child loads the plan's targets itself (recorded histories depend on it). */
export const FAN_OUT_TARGETS_PATCH = 'fan-out-targets';

/** The patch id of step conditions, retries and continueOnError (recorded histories depend on it). */
export const STEP_CONTROLS_PATCH = 'step-controls';

/**
 * The patch id of the deciding vote's record written with `execution.running` in one local
 * activity (recorded histories depend on it).
 */
export const DECIDING_VOTE_PATCH = 'deciding-vote-record';

/** The reason of a run that completed past failures it was allowed to have. */
export function completedWithFailures(names: readonly string[]): string {
  const quoted = names.map((n) => `"${n}"`).join(', ');
  return names.length === 1
    ? `completed, but step ${quoted} failed and the run went on past it (continueOnError)`
    : `completed, but steps ${quoted} failed and the run went on past them (continueOnError)`;
}
