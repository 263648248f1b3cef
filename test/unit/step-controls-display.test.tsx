import { afterEach, describe, expect, test } from 'vitest';
import { cleanup, render } from 'ink-testing-library';
import { formatExecution, formatPlan, formatPlanDetail } from '../../cli/format.ts';
import { planLines } from '../../cli/tui/plan-lines.ts';
import { RunView } from '../../cli/tui/RunView.tsx';
import type { StepView } from '../../src/core/execution.ts';
import type { Plan } from '../../src/core/plan.ts';
import { DIGEST, executionsOf, fakeApi, makePlan, record, requested, until, viewOf } from '../helpers/tui.ts';

/**
 * Step controls on every screen that lists steps: `mechanic plan` and `mechanic status`, the TUI's
 * plan review and its run view. Approvers must see which steps will not run and which may fail
 * without stopping the run; operators must see the attempt under way and an allowed failure.
 */
afterEach(() => cleanup());

const SKIP = 'its condition (mode is "full") does not hold: mode is "quick"';
const plan: Plan = makePlan({
  executionId: 'mx-test00001',
  steps: [
    { name: 'deep-check', script: 'echo deep', timeoutSeconds: 60, condition: 'mode is "full"', skipped: SKIP },
    { name: 'install', script: 'echo install', timeoutSeconds: 60, retries: 2, retryDelaySeconds: 10 },
    { name: 'warm-cache', script: 'exit 1', timeoutSeconds: 30, continueOnError: true },
    { name: 'verify', script: 'echo ok', timeoutSeconds: 30, condition: 'mode is not "full"' },
  ],
});

describe('the plan, as approvers read it', () => {
  test('mechanic plan: a skipped step is one line, never sent; the others say when they run, retry, may fail', () => {
    const text = formatPlanDetail(plan, DIGEST);
    expect(text).toContain(`step 1 of 4: deep-check — skipped, never sent: ${SKIP}\n\nstep 2 of 4: install`);
    expect(text).not.toContain('echo deep');
    expect(text).toContain(
      'step 2 of 4: install — times out after 60 s, runs on 2 instances, if it fails, sent again up to 2 times, 10 s apart, to the instances it failed on:',
    );
    expect(text).toContain(
      'step 3 of 4: warm-cache — times out after 30 s, runs on 2 instances, a failure does not stop the run (continueOnError):',
    );
    expect(text).toContain(
      'step 4 of 4: verify — times out after 30 s, runs on 2 instances, runs because mode is not "full":',
    );
    expect(formatPlan(plan, DIGEST)).toContain(
      'steps     1. deep-check (skipped)  2. install  3. warm-cache  4. verify',
    );
  });

  test('a plan without step controls reads as before', () => {
    const text = formatPlanDetail(makePlan(), DIGEST);
    expect(text).toContain('step 1 of 2: install — times out after 60 s, runs on 2 instances:');
    expect(formatPlan(makePlan(), DIGEST)).toContain('steps     1. install  2. verify');
  });

  test('the TUI plan review says the same', () => {
    const lines = planLines(viewOf(plan).plan, DIGEST).map((l) => l.text);
    const at = lines.indexOf('Steps');
    expect(lines.slice(at, at + 8)).toEqual([
      'Steps',
      `1. deep-check  skipped, never sent: ${SKIP}`,
      '2. install  (timeout 1m00s) on every target:',
      '   if it fails, sent again up to 2 times, 10 s apart, to the instances it failed on',
      '   │ echo install',
      '3. warm-cache  (timeout 30s) on every target:',
      '   a failure does not stop the run (continueOnError)',
      '   │ exit 1',
    ]);
  });
});

const view = {
  ...viewOf(plan, 'completed'),
  approval: { status: 'approved' as const, approvedBy: ['bob'] },
  reason: 'completed, but step "warm-cache" failed and the run went on past it (continueOnError)',
  steps: [
    { name: 'deep-check', phase: 'main', status: 'skipped', reason: SKIP, instances: [] },
    { name: 'install', phase: 'main', status: 'succeeded', attempt: 2, commandId: 'cmd-2', instances: [] },
    { name: 'warm-cache', phase: 'main', status: 'failed', continuedOnError: true, commandId: 'cmd-3', instances: [] },
    { name: 'verify', phase: 'main', status: 'succeeded', commandId: 'cmd-4', instances: [] },
    { name: 'report', phase: 'onFailure', status: 'skipped', instances: [] },
  ] satisfies StepView[],
};

describe('the run, as operators follow it', () => {
  test('mechanic status: the attempt, the failure gone past, why a step was skipped', () => {
    const text = formatExecution(view, { output: false });
    expect(text).toContain(
      'mx-test00001  COMPLETED — completed, but step "warm-cache" failed and the run went on past it (continueOnError)',
    );
    expect(text).toContain(`- deep-check  skipped — ${SKIP}`);
    expect(text).toContain('✓ install  succeeded  (cmd-2) — attempt 2 of 3');
    expect(text).toContain('✗ warm-cache  failed  (cmd-3) — failed, and the run went on (continueOnError)');
    expect(text).toMatch(/\n- \[on failure\] report {2}skipped$/);
  });

  test('the TUI run view, rebuilt from the records', async () => {
    const api = fakeApi({ id: 'alice', displayName: 'Alice', roles: ['operator'] });
    executionsOf(api).set(plan.executionId, view);
    const ref = (index: number, step: string) => ({ step, index, phase: 'main' as const });
    api.history.set(plan.executionId, [
      requested(plan),
      record('approval.granted', plan.executionId, { planDigest: DIGEST }, 'bob'),
      record('execution.running', plan.executionId, { approvedBy: ['bob'] }),
      record('step.skipped', plan.executionId, { ...ref(0, 'deep-check'), reason: SKIP }),
      record('step.started', plan.executionId, { ...ref(1, 'install'), attempt: 1, commandId: 'cmd-1' }),
      record('step.completed', plan.executionId, { ...ref(1, 'install'), attempt: 1, ok: false, retrying: true }),
      record('step.started', plan.executionId, { ...ref(1, 'install'), attempt: 2, commandId: 'cmd-2' }),
      record('step.completed', plan.executionId, { ...ref(1, 'install'), attempt: 2, ok: true }),
      record('step.started', plan.executionId, { ...ref(2, 'warm-cache'), commandId: 'cmd-3' }),
      record('step.completed', plan.executionId, { ...ref(2, 'warm-cache'), ok: false, continuedOnError: true }),
      record('step.started', plan.executionId, { ...ref(3, 'verify'), commandId: 'cmd-4' }),
    ]);
    const r = render(
      <RunView
        api={api}
        me={{ id: 'alice', displayName: 'Alice', roles: ['operator'] }}
        executionId={plan.executionId}
        width={140}
        height={30}
        active
        setTyping={() => undefined}
        onBack={() => undefined}
        now={() => Date.parse('2026-11-30T05:10:00.000Z')}
      />,
    );
    const f = await until(r.lastFrame, (x) => x.includes('warm-cache'));
    expect(f).toMatch(/install .* succeeded · attempt 2 of 3/);
    expect(f).toMatch(/warm-cache .* failed · failed, and the run went on \(continueOnError\)/);
    expect(f).toMatch(/deep-check .* skipped · its condition \(mode is "full"\) does not hold/);
  });
});
