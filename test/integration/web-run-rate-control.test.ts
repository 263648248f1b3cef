import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Browser } from '../helpers/browser.ts';
import { runEvents, startWebUi, type WebUi } from '../helpers/web-ui.ts';

/**
 * An approver reading a run in the web UI sees its steps' rate control (issue 10), as in the CLI
 * and the TUI: the plan's digest covers it, so the page must say it.
 */
describe('a run’s plan in the web UI', () => {
  let ui: WebUi;
  let dave: Browser;

  /** Stores a run whose one step carries the given rate control in its plan. */
  const storeRunWith = async (id: string, rate: Record<string, string>) => {
    const events = runEvents({
      id,
      runbook: 'deploy-web',
      operator: 'alice',
      approvers: ['bob'],
      at: '2026-11-20T10:00:00.000Z',
      targets: ['i-0abc', 'i-0def', 'i-0fed'],
    });
    const plan = events[0]!.data['plan'] as { steps: Record<string, unknown>[] };
    plan.steps = plan.steps.map((s) => ({ ...s, ...rate }));
    for (const e of events) await ui.audit.append(e);
  };

  beforeAll(async () => {
    ui = await startWebUi();
    await storeRunWith('mx-rate0001', { maxConcurrency: '1', maxErrors: '0' });
    await storeRunWith('mx-rate0002', {});
    dave = await ui.signIn('dave');
  });
  afterAll(async () => {
    await ui?.close();
  });

  const page = async (id: string) => {
    const res = await dave.request(`${ui.origin}/ui/runs/${id}`);
    expect(res.status).toBe(200);
    return res.text();
  };

  test('says how many instances run a step at once and when no further one starts', async () => {
    expect(await page('mx-rate0001')).toContain(
      'at most 1 instance at a time, no further instance after the first failure',
    );
  });

  test('says nothing of it for a step on SSM’s defaults', async () => {
    expect(await page('mx-rate0002')).not.toContain('at a time');
  });
});
