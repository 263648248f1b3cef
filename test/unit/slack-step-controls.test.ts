/**
 * What Slack shows of the step language (issue 9): the request message and the high-risk confirm
 * page say what `mechanic plan` says — a skipped step is one line with why and never its script,
 * retries, continueOnError, rate control, secret references — in the shared wording
 * (src/core/step-controls-text.ts); a run's message says each retried step's attempt and a failure
 * the run went past.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, test } from 'vitest';
import type { User } from '../../src/authz/users.ts';
import type { ExecutionView } from '../../src/core/execution.ts';
import type { Plan } from '../../src/core/plan.ts';
import { confirmRoutes } from '../../src/slack/confirm.ts';
import type { SlackExecutions } from '../../src/slack/interactions.ts';
import { runMessage, summaryMessage } from '../../src/slack/message.ts';
import { openSlackState, type SlackState } from '../../src/slack/state.ts';
import { testInput } from '../helpers/plans.ts';

const DIGEST = 'c0ffee'.padEnd(64, '0');
const SKIP_WHY = 'mode is "quick", and this step runs only when mode is "full"';

/** A plan with every step control: a skipped step, a retried and rate-controlled one, one that may fail, a secret. */
function controlledPlan(): Plan {
  const { plan } = testInput();
  return {
    ...plan,
    params: { ...plan.params, dbPassword: '/prod/db/password' },
    secretParams: ['dbPassword'],
    steps: [
      { ...plan.steps[0]!, script: 'echo SKIPPED-SCRIPT', condition: 'mode is "full"', skipped: SKIP_WHY },
      { ...plan.steps[1]!, retries: 2, retryDelaySeconds: 10, maxConcurrency: '1', maxErrors: '0' },
      { name: 'third', script: 'echo third', timeoutSeconds: 30, continueOnError: true },
    ],
  };
}

function viewOf(plan: Plan, over: Partial<ExecutionView> = {}): ExecutionView {
  return {
    executionId: plan.executionId,
    status: 'awaiting_approval',
    planDigest: DIGEST,
    plan,
    approval: { status: 'pending', approvedBy: [], missing: plan.approval.required },
    votes: [],
    steps: [],
    ...over,
  };
}

function texts(blocks: readonly Record<string, unknown>[]): string {
  return JSON.stringify(blocks);
}

const RETRIES = 'if it fails, sent again up to 2 times, 10 s apart, to the instances it failed on';
const RATE = 'at most 1 instance at a time, no further instance after the first failure';
const MAY_FAIL = 'a failure does not stop the run (continueOnError)';
const SECRET = 'dbPassword=secret /prod/db/password (SSM Parameter Store, read on the instance)';

describe('the Slack request message', () => {
  test('lists each planned step as mechanic plan does: skipped with why, retries, rate control, continueOnError', () => {
    const all = texts(runMessage(viewOf(controlledPlan())).blocks);
    expect(all).toContain(`1 of 3: first — skipped, never sent: ${SKIP_WHY.replace(/"/g, '\\"')}`);
    expect(all).toContain(`2 of 3: second — times out after 30 s, ${RATE}, ${RETRIES}`);
    expect(all).toContain(`3 of 3: third — times out after 30 s, ${MAY_FAIL}`);
    expect(all).toContain('if a step fails, 1 of 1: cleanup — times out after 30 s');
    expect(all).not.toContain('SKIPPED-SCRIPT');
  });

  test('says a secret parameter is the name of a secret read on the instance', () => {
    expect(texts(runMessage(viewOf(controlledPlan())).blocks)).toContain(SECRET);
    // A plain parameter keeps its value as typed.
    expect(texts(runMessage(viewOf(controlledPlan())).blocks)).toContain('word = `hello`');
  });

  test('a running or finished run says the attempt of a retried step and a failure it went past', () => {
    const plan = controlledPlan();
    const view = viewOf(plan, {
      status: 'completed',
      steps: [
        { name: 'first', phase: 'main', status: 'skipped', instances: [], reason: SKIP_WHY },
        { name: 'second', phase: 'main', status: 'succeeded', instances: [], attempt: 2 },
        { name: 'third', phase: 'main', status: 'failed', instances: [], continuedOnError: true },
        { name: 'cleanup', phase: 'onFailure', status: 'pending', instances: [] },
      ],
    });
    for (const m of [runMessage(view), summaryMessage(view)]) {
      const all = texts(m.blocks);
      expect(all).toContain(`– first: skipped, ${SKIP_WHY.replace(/"/g, '\\"')}`);
      expect(all).toContain('✓ second: succeeded, attempt 2 of 3');
      expect(all).toContain('✗ third: failed, failed, and the run went on (continueOnError)');
    }
  });
});

describe('the high-risk confirm page', () => {
  let state: SlackState | undefined;
  afterEach(() => state?.close());

  async function confirmPage(plan: Plan): Promise<string> {
    state = openSlackState(':memory:');
    const user: User = { id: 'bob', displayName: 'Bob', roles: ['approver'] };
    const token = 'a'.repeat(43);
    state.saveTicket({
      token,
      executionId: plan.executionId,
      planDigest: DIGEST,
      userId: 'bob',
      slackUserId: 'U0BOB',
      expiresAtMs: Date.now() + 300_000,
    });
    const executions = {
      // The page reads the run from its records; a status query (get) would wait for a busy worker.
      approvalView: async () => viewOf(plan),
      get: () => Promise.reject(new Error('the confirm page asked the worker')),
    } as unknown as SlackExecutions;
    const app = confirmRoutes({
      state,
      sessions: { userOf: () => user, loginPath: (next) => `/auth/login?next=${next}` },
      executions,
      log: pino({ level: 'silent' }),
    });
    const res = await app.request(`/${token}`);
    expect(res.status).toBe(200);
    return res.text();
  }

  test('a skipped step is one line saying why, without its script', async () => {
    const page = await confirmPage(controlledPlan());
    expect(page).toContain(`<h3>first — skipped, never sent: ${SKIP_WHY.replace(/"/g, '&quot;')}</h3>`);
    expect(page).not.toContain('SKIPPED-SCRIPT');
  });

  test('the steps that run say their rate control, condition, retries and continueOnError above the script', async () => {
    const page = await confirmPage(controlledPlan());
    expect(page).toContain(
      `<h3>second — up to 30 s</h3><ul><li>${RATE}</li><li>${RETRIES}</li></ul><pre><code>echo second</code></pre>`,
    );
    expect(page).toContain(`<h3>third — up to 30 s</h3><ul><li>${MAY_FAIL}</li></ul>`);
    // A step on the defaults has no list, only its script.
    expect(page).toContain('<h3>cleanup (on failure) — up to 30 s</h3><pre><code>echo cleanup</code></pre>');
  });

  test('a secret parameter says it is the name of a secret read on the instance', async () => {
    expect(await confirmPage(controlledPlan())).toContain(`<td>${SECRET}</td>`);
  });
});
