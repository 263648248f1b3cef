import { afterEach, describe, expect, test } from 'vitest';
import { cleanup, render } from 'ink-testing-library';
import { App } from '../../cli/tui/App.tsx';
import { LaunchForm } from '../../cli/tui/LaunchForm.tsx';
import { formProblems, initialForm, paramProblem } from '../../cli/tui/form-model.ts';
import { UserError } from '../../src/core/errors.ts';
import {
  DIGEST,
  KEY,
  RUNBOOKS,
  TARGETS,
  executionsOf,
  fakeApi,
  makePlan,
  press,
  requested,
  tick,
  until,
  viewOf,
} from '../helpers/tui.ts';
import { planChanges } from '../../cli/tui/PlanReview.tsx';

afterEach(() => cleanup());

const deployWeb = RUNBOOKS[0]!;
const rotateLogs = RUNBOOKS[1]!;

function form(api = fakeApi(), runbook = deployWeb) {
  const events = { back: 0, planned: [] as unknown[] };
  const r = render(
    <LaunchForm
      api={api}
      runbook={runbook}
      width={100}
      height={22}
      active
      setTyping={() => undefined}
      onBack={() => events.back++}
      onPlanned={(p) => events.planned.push(p)}
    />,
  );
  return { r, events, api };
}

describe('launch form model', () => {
  test('defaults are filled; enums and booleans start on a choice', () => {
    const { form: f } = initialForm(rotateLogs);
    expect(f.params.map((p) => [p.name, p.text])).toEqual([
      ['keep', '5'],
      ['level', 'info'],
      ['dry', 'false'],
    ]);
    expect(Object.keys(formProblems(f))).toEqual(['reason']);
    expect(formProblems(f)['reason']).toMatch(/why/);
  });

  test('values are checked with the server rule, one sentence each', () => {
    const { form: f } = initialForm(deployWeb);
    const release = f.params[0]!;
    expect(paramProblem({ ...release, text: 'latest' })).toMatch(/must match/);
    expect(paramProblem({ ...release, text: 'v1.2.3' })).toBeUndefined();
    expect(paramProblem({ ...release, text: 'v1.2.3\u202e' })).toMatch(/right-to-left override/);
    const keep = initialForm(rotateLogs).form.params[0]!;
    expect(paramProblem({ ...keep, text: '31' })).toMatch(/from 1 to 30/);
    expect(paramProblem({ ...keep, text: '' })).toMatch(/required/);
  });
});

describe('launch form', () => {
  test('errors show beside the field as it is typed; nothing invalid reaches the API', async () => {
    const { r, events, api } = form();
    await tick();
    await press(r, 'l', 'a', 't');
    let f = await until(r.lastFrame, (x) => x.includes('must match'));
    expect(f).toContain('release');
    // Try to submit: focus jumps back to the first problem and nothing is planned.
    await press(r, KEY.down, KEY.down, KEY.down, KEY.down, KEY.enter);
    f = r.lastFrame()!;
    expect(f).toContain('field(s) to fix first');
    expect(api.calls.filter((c) => c.name === 'plan')).toEqual([]);
    expect(events.planned).toEqual([]);
  });

  test('a valid form resolves targets, lets the operator narrow them, and plans with exactly those', async () => {
    const { r, events, api } = form();
    await tick();
    await press(r, 'v1.2.3');
    await until(r.lastFrame, (x) => x.includes('[x] web-1') && x.includes('[x] web-2'), 'the resolved targets');
    // note (skip), targets: drop web-2
    await press(r, KEY.down, KEY.down, KEY.right, ' ');
    await until(r.lastFrame, (x) => x.includes('[ ] web-2'));
    await press(r, KEY.down, ...'ship the login fix'.split(''), KEY.down);
    await until(r.lastFrame, (x) => x.includes('ready: Enter plans it'));
    await press(r, KEY.enter);
    await until(
      () => String(events.planned.length),
      (x) => x === '1',
    );
    const last = api.calls.filter((c) => c.name === 'plan').at(-1)!.input as { body: Record<string, unknown> };
    expect(last.body).toEqual({
      runbook: 'deploy-web',
      version: 1,
      params: { release: 'v1.2.3', note: '' },
      reason: 'ship the login fix',
      targets: ['i-0000000000000web1'],
    });
  });

  test('choices move with arrows; integers are sent as numbers', async () => {
    const { r, events, api } = form(fakeApi(), rotateLogs);
    await tick();
    await press(r, KEY.backspace, '7', KEY.down, KEY.right, KEY.down, ' ');
    let f = await until(r.lastFrame, (x) => x.includes('(•) debug') && x.includes('(•) true'));
    await press(r, KEY.down, KEY.down, ...'rotate now', KEY.enter, KEY.enter);
    await until(
      () => String(events.planned.length),
      (x) => x === '1',
    );
    const body = (api.calls.filter((c) => c.name === 'plan').at(-1)!.input as { body: Record<string, unknown> }).body;
    expect(body['params']).toEqual({ keep: 7, level: 'debug', dry: true });
    f = r.lastFrame()!;
    expect(f).toContain('keep');
  });

  test('the server refusing the plan is shown in place; the form stays', async () => {
    const api = fakeApi();
    const { r } = form(api);
    await tick();
    await press(r, 'v1.2.3');
    await until(r.lastFrame, (x) => x.includes('[x] web-1'));
    api.on('plan', () => {
      throw new UserError('TARGETS_INVALID', 'no instance of deploy-web is online');
    });
    await press(r, KEY.down, KEY.down, KEY.down, ...'why not', KEY.down, KEY.enter);
    const f = await until(r.lastFrame, (x) => x.includes('no instance of deploy-web is online'));
    expect(f).toContain('narrow the targets differently');
    expect(f).toContain('Review plan');
  });

  test('Esc goes back', async () => {
    const { r, events } = form();
    await tick();
    await press(r, KEY.esc);
    await until(
      () => String(events.back),
      (x) => x === '1',
    );
  });
});

describe('catalog → form → plan → submit', () => {
  test('the plan is shown as approvers see it; y submits and the live run opens', async () => {
    const api = fakeApi();
    const r = render(<App api={api} />);
    await until(r.lastFrame, (x) => x.includes('deploy-web v1'));
    await press(r, KEY.enter);
    await until(r.lastFrame, (x) => x.includes('Launch deploy-web v1'));
    await press(r, 'v1.2.3', KEY.down, KEY.down, KEY.down, ...'ship it', KEY.down, KEY.enter);
    let f = await until(r.lastFrame, (x) => x.includes('Plan review'));
    expect(f).toContain('arn:aws:iam::123456789012:role/mechanic-runner');
    expect(f).toContain('targets      2: web-1 (i-0000000000000web1), web-2 (i-0000000000000web2)');
    expect(f).toContain('time budget');
    expect(f).toContain('risk high    owners team-web');
    expect(f).toMatch(
      /approval {5}1 approver\(s\), not alice, within 1h00m, from two different groups of web-leads, sre/,
    );
    // q goes back to the form with what was typed.
    await press(r, 'q');
    f = await until(r.lastFrame, (x) => x.includes('Launch deploy-web'));
    expect(f).toContain('v1.2.3');
    await press(r, KEY.enter);
    await until(r.lastFrame, (x) => x.includes('Plan review'));
    // Scroll to the session policy, then submit.
    await press(r, 'G');
    f = await until(r.lastFrame, (x) => x.includes('Session policy'));
    await press(r, KEY.enter);
    await until(r.lastFrame, (x) => x.includes('Submit this plan for approval?'));
    expect(api.calls.filter((c) => c.name === 'launch')).toEqual([]);
    await press(r, 'y');
    f = await until(r.lastFrame, (x) => x.includes('Waiting for approval'), 'the live run');
    expect(f).toContain('mx-test00001');
    expect(f).toContain('you requested this run; someone else must approve it');
    expect(api.calls.filter((c) => c.name === 'launch')).toHaveLength(1);
  });
});

describe('a plan that changed between review and submit', () => {
  test('planChanges names what differs, ignoring ids and times', () => {
    const reviewed = viewOf(makePlan({ executionId: 'mx-dryrun0001' })).plan;
    const same = viewOf(makePlan({ createdAt: '2026-11-30T06:00:00.000Z' })).plan;
    expect(planChanges(reviewed, same)).toEqual([]);
    const fewer = viewOf(makePlan({ targets: [TARGETS[0]!] })).plan;
    expect(planChanges(reviewed, fewer)).toEqual(['targets']);
  });

  test('the run view says so, with what to do', async () => {
    const api = fakeApi();
    const r = render(<App api={api} />);
    await until(r.lastFrame, (x) => x.includes('deploy-web v1'));
    const launch = api.calls.length;
    api.on('launch', () => {
      const plan = makePlan({ targets: [TARGETS[0]!] });
      executionsOf(api).set(plan.executionId, viewOf(plan));
      api.history.set(plan.executionId, [requested(plan)]);
      return { executionId: plan.executionId, plan: viewOf(plan).plan, planDigest: DIGEST };
    });
    await press(r, KEY.enter);
    await until(r.lastFrame, (x) => x.includes('Launch deploy-web v1'));
    await press(r, 'v1.2.3', KEY.down, KEY.down, KEY.down, ...'ship it', KEY.down, KEY.enter);
    await until(r.lastFrame, (x) => x.includes('Plan review'));
    await press(r, KEY.enter, 'y');
    // Still there once the run has loaded (a load must not wipe it).
    const f = await until(
      r.lastFrame,
      (x) => x.includes('Waiting for approval') && x.includes('planned this run with other targets'),
    );
    expect(f).toContain('press p to read the plan');
    expect(api.calls.length).toBeGreaterThan(launch);
  });
});
