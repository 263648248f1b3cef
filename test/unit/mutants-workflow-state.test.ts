/**
 * Tests written for Stryker over workflows/state.ts and workflows/step-runner.ts. Workflow code runs
 * in Temporal's sandbox from a webpack bundle, where Stryker cannot switch mutants on; the parts
 * that are plain bookkeeping (RunState, failureMessage) are tested here directly, outside the
 * sandbox. What needs a workflow context (the search-attribute upsert, the audit activity) is
 * pinned by the stack tests named in docs/claims.md.
 */
import { RetryState } from '@temporalio/common';
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import { describe, expect, test } from 'vitest';
import type { Vote } from '../../src/core/approval.ts';
import { RunState } from '../../workflows/state.ts';
import { failureMessage } from '../../workflows/step-runner.ts';
import { testInput } from '../helpers/plans.ts';

const vote = (approver: string, decision: Vote['decision'], planDigest: string, comment?: string): Vote => ({
  approver,
  decision,
  planDigest,
  ...(comment !== undefined ? { comment } : {}),
});

describe('RunState', () => {
  test('starts awaiting approval, with every main step and then every onFailure step pending', () => {
    const input = testInput({ executionId: 'mx-state00001' });
    const state = new RunState(input);
    expect(state.status).toBe('awaiting_approval');
    expect(state.reason).toBeUndefined();
    expect(state.credentials).toBeUndefined();
    expect(state.cancelRequest).toBeUndefined();
    expect(state.stepsDone).toBe(false);
    expect(state.requestRecorded).toBe(false);
    // Nothing of the run's start is recorded, and no vote is being recorded: the main line writes
    // execution.running itself unless a deciding vote did.
    expect(state.runningRecorded).toBe(false);
    expect(state.votesRecording).toBe(0);
    expect(state.votes).toEqual([]);
    expect(state.steps).toEqual([
      { name: 'first', phase: 'main', status: 'pending', instances: [] },
      { name: 'second', phase: 'main', status: 'pending', instances: [] },
      { name: 'cleanup', phase: 'onFailure', status: 'pending', instances: [] },
    ]);
  });

  test('the view is the whole state, without credentials or a reason until there are some', () => {
    const input = testInput({ executionId: 'mx-state00002' });
    const state = new RunState(input);
    expect(state.view()).toStrictEqual({
      executionId: 'mx-state00002',
      status: 'awaiting_approval',
      planDigest: input.planDigest,
      plan: input.plan,
      approval: { status: 'pending', approvedBy: [], missing: 1 },
      votes: [],
      steps: state.steps,
    });
  });

  test('the view carries credentials and a reason once set, an empty reason too', () => {
    const state = new RunState(testInput());
    const credentials = { accessKeyId: 'ASIAEXAMPLE', expiration: '2026-11-01T01:00:00.000Z', policyDigest: 'd' };
    state.credentials = credentials;
    state.reason = '';
    const view = state.view();
    expect(view.credentials).toEqual(credentials);
    expect(view).toHaveProperty('reason', '');
  });

  test('the summary (statusSummary) is the view without the plan, field for field and in order', () => {
    const state = new RunState(testInput({ executionId: 'mx-state00009' }));
    state.reason = 'why';
    const { plan, ...rest } = state.view();
    expect(plan.executionId).toBe('mx-state00009');
    const summary = state.summary();
    expect(summary).toEqual(rest);
    expect(Object.keys(summary)).toEqual(Object.keys(rest));
    expect(summary).not.toHaveProperty('plan');
  });

  test('the view is a copy: changing it does not change the state', () => {
    const input = testInput();
    const state = new RunState(input);
    state.votes.push(vote('bob', 'approve', input.planDigest));
    const view = state.view();
    (view.votes as Vote[]).push(vote('carol', 'approve', input.planDigest));
    (view.steps[0] as { status: string }).status = 'failed';
    expect(state.votes).toHaveLength(1);
    expect(state.steps[0]!.status).toBe('pending');
    expect(view.votes).not.toBe(state.votes);
    expect(state.view().votes).toEqual(state.votes);
  });

  test('setStatus changes the status before it upserts the search attribute', () => {
    const state = new RunState(testInput());
    // Outside a workflow the upsert has no workflow to act on and throws; the status is already set.
    // That the upsert reaches Temporal is pinned on the real stack (docs/claims.md, MechanicStatus).
    expect(() => state.setStatus('running')).toThrow();
    expect(state.status).toBe('running');
  });

  test('approval follows the plan: its required count and requester, and a rejection', () => {
    const input = testInput({ required: 2 });
    const state = new RunState(input);
    state.votes.push(vote('alice', 'approve', input.planDigest)); // the requester: does not count
    state.votes.push(vote('bob', 'approve', input.planDigest));
    expect(state.approval()).toEqual({ status: 'pending', approvedBy: ['bob'], missing: 1 });
    state.votes.push(vote('carol', 'approve', input.planDigest));
    expect(state.approval()).toEqual({ status: 'approved', approvedBy: ['bob', 'carol'] });
    state.votes.push(vote('dave', 'reject', input.planDigest, 'not today'));
    expect(state.approval()).toEqual({ status: 'rejected', by: 'dave', comment: 'not today' });
    expect(state.view().approval).toEqual(state.approval());
  });

  test('setStep changes one step and keeps the rest of it', () => {
    const state = new RunState(testInput());
    state.setStep(1, { status: 'running', commandId: 'c-1' });
    expect(state.steps[1]).toEqual({
      name: 'second',
      phase: 'main',
      status: 'running',
      commandId: 'c-1',
      instances: [],
    });
    expect(state.steps[0]!.status).toBe('pending');
    expect(state.steps[2]!.status).toBe('pending');
  });

  test('skipPending marks only the pending steps of [from, to) as skipped', () => {
    const state = new RunState(testInput());
    state.setStep(0, { status: 'succeeded' });
    state.skipPending(0, 2);
    expect(state.steps.map((s) => s.status)).toEqual(['succeeded', 'skipped', 'pending']);

    const other = new RunState(testInput());
    other.skipPending(1, 3);
    expect(other.steps.map((s) => s.status)).toEqual(['pending', 'skipped', 'skipped']);
    other.skipPending(0, 0);
    expect(other.steps[0]!.status).toBe('pending');
  });
});

describe('failureMessage', () => {
  test("an activity failure reads as its cause's message", () => {
    const cause = ApplicationFailure.nonRetryable('command ended Failed', 'SSM_COMMAND_FAILED');
    const failure = new ActivityFailure(
      'activity failed',
      'dispatchStep',
      '1',
      RetryState.NON_RETRYABLE_FAILURE,
      undefined,
      cause,
    );
    expect(failureMessage(failure)).toBe('command ended Failed');
  });

  test('an activity failure without a cause reads as itself; other errors by message; anything else as text', () => {
    const bare = new ActivityFailure('activity failed', 'dispatchStep', '1', RetryState.TIMEOUT, undefined);
    expect(failureMessage(bare)).toBe('activity failed');
    expect(failureMessage(new Error('boom'))).toBe('boom');
    expect(failureMessage('plain words')).toBe('plain words');
    expect(failureMessage(42)).toBe('42');
  });
});
