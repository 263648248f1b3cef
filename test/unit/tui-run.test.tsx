import { afterEach, describe, expect, test } from 'vitest';
import { cleanup, render } from 'ink-testing-library';
import { RunView } from '../../cli/tui/RunView.tsx';
import { UserError } from '../../src/core/errors.ts';
import {
  DIGEST,
  KEY,
  TARGETS,
  executionsOf,
  fakeApi,
  makePlan,
  press,
  record,
  requested,
  tick,
  until,
  viewOf,
} from '../helpers/tui.ts';

afterEach(() => cleanup());

const ALICE = { id: 'alice', displayName: 'Alice', roles: ['operator', 'approver'] };
const BOB = { id: 'bob', displayName: 'Bob', roles: ['approver'] };
const DAVE = { id: 'dave', displayName: 'Dave', roles: ['auditor'] };
const NOW = Date.parse('2026-11-30T05:10:00.000Z');

function setup(me = ALICE) {
  const api = fakeApi(me);
  const plan = makePlan();
  executionsOf(api).set(plan.executionId, viewOf(plan));
  api.history.set(plan.executionId, [requested(plan)]);
  const back = { n: 0 };
  const r = render(
    <RunView
      api={api}
      me={me}
      executionId={plan.executionId}
      width={100}
      height={22}
      active
      setTyping={() => undefined}
      onBack={() => back.n++}
      now={() => NOW}
    />,
  );
  return { api, plan, r, back };
}

const step = (index: number, name: string) => ({ step: name, index, phase: 'main' as const });
function instance(
  index: number,
  name: string,
  t: (typeof TARGETS)[number],
  stdout: string,
  status = 'Success',
  code = 0,
) {
  return record('step.instance', 'mx-test00001', {
    ...step(index, name),
    commandId: `cmd-${index}`,
    instanceId: t.instanceId,
    status,
    statusDetails: status,
    responseCode: code,
    stdout,
    stderr: '',
    outputSha256: 'f'.repeat(64),
  });
}

describe('live run', () => {
  test('waiting for approval: how many more, time left; my own run cannot be approved, and says why', async () => {
    const { r } = setup();
    const f = await until(r.lastFrame, (x) => x.includes('Waiting for approval'));
    expect(f).toContain('1 more needed of 1');
    expect(f).toContain('mx-test00001 deploy-web v1 · risk high · … awaiting approval');
    expect(f).toContain('approved by nobody yet');
    expect(f).toContain('Waiting for approval: 50m00s left');
    expect(f).toContain('you requested this run; someone else must approve it');
    expect(f).not.toContain('a: approve');
    await press(r, 'a');
    await until(r.lastFrame, (x) => x.includes('you cannot vote'));
  });

  test('an auditor is told they are not an approver', async () => {
    const { r } = setup(DAVE);
    const f = await until(r.lastFrame, (x) => x.includes('Waiting for approval'));
    expect(f).toContain('you are not an approver');
  });

  test('another approver reads the plan, then approves with a comment bound to its digest', async () => {
    const { r, api } = setup(BOB);
    let f = await until(r.lastFrame, (x) => x.includes('a: approve'));
    await press(r, 'a');
    f = await until(r.lastFrame, (x) => x.includes('You are approving exactly this plan'));
    expect(f).toContain('arn:aws:iam::123456789012:role/mechanic-runner');
    await press(r, ...'looks right', KEY.enter);
    f = await until(r.lastFrame, (x) => x.includes('approved by bob; the run starts'));
    const vote = api.calls.find((c) => c.name === 'vote')!.input;
    expect(vote).toEqual({
      params: { id: 'mx-test00001' },
      body: { decision: 'approve', planDigest: DIGEST, comment: 'looks right' },
    });
  });

  test('a rejection needs a comment; nothing is sent without one', async () => {
    const { r, api } = setup(BOB);
    await until(r.lastFrame, (x) => x.includes('a: approve'));
    await press(r, 'x', KEY.enter);
    await until(r.lastFrame, (x) => x.includes('say why you reject it'));
    expect(api.calls.filter((c) => c.name === 'vote')).toEqual([]);
    await press(r, KEY.esc);
    await until(r.lastFrame, (x) => !x.includes('Reject — say why'));
  });

  test('steps advance with the stream: a bar over the instances, per-instance status, elapsed, a summary from the API', async () => {
    const { r, api, plan } = setup();
    await until(r.lastFrame, (x) => x.includes('Waiting for approval'));
    api.emit(record('approval.granted', plan.executionId, { planDigest: DIGEST }, 'bob'));
    api.emit(record('execution.running', plan.executionId, { approvedBy: ['bob'] }));
    api.emit(
      record(
        'step.started',
        plan.executionId,
        { ...step(0, 'install'), commandId: 'cmd-0' },
        'mechanic',
        '2026-11-30T05:00:10.000Z',
      ),
    );
    api.emit(instance(0, 'install', TARGETS[0]!, 'installed v1.2.3\n'));
    let f = await until(r.lastFrame, (x) => x.includes('1/2') && x.includes('in progress'));
    expect(f).toContain('Running');
    expect(f).toContain('web-1 (i-0000000000000web1)');
    expect(f).toContain('Success (exit 0)');
    api.emit(instance(0, 'install', TARGETS[1]!, 'installed v1.2.3\n'));
    api.emit(
      record(
        'step.completed',
        plan.executionId,
        { ...step(0, 'install'), commandId: 'cmd-0', ok: true },
        'mechanic',
        '2026-11-30T05:00:13.000Z',
      ),
    );
    f = await until(r.lastFrame, (x) => x.includes('2/2 succeeded 3s'));
    const done = viewOf(plan, 'completed');
    executionsOf(api).set(plan.executionId, {
      ...done,
      approval: { status: 'approved', approvedBy: ['bob'] },
      steps: done.steps.map((s, i) => ({ ...s, status: i < 2 ? 'succeeded' : 'skipped' })),
    });
    api.emit(record('step.started', plan.executionId, { ...step(1, 'verify'), commandId: 'cmd-1' }));
    api.emit(instance(1, 'verify', TARGETS[0]!, 'ok'));
    api.emit(instance(1, 'verify', TARGETS[1]!, 'ok'));
    api.emit(record('step.completed', plan.executionId, { ...step(1, 'verify'), commandId: 'cmd-1', ok: true }));
    api.emit(record('execution.completed', plan.executionId, {}));
    f = await until(r.lastFrame, (x) => x.includes('2 of 2 steps succeeded'), 'the summary');
    expect(f).toContain('✓ completed');
    expect(f).toContain('approved by bob');
    // The summary is read once more from the API at the end: what `mechanic status` prints.
    await until(
      () => String(api.calls.filter((c) => c.name === 'getExecution').length),
      (x) => x === '2',
    );
  });

  test('output of any instance, scrollable, with control characters neutralised', async () => {
    const { r, api, plan } = setup();
    await until(r.lastFrame, (x) => x.includes('Waiting'));
    api.emit(record('execution.running', plan.executionId, { approvedBy: ['bob'] }));
    api.emit(record('step.started', plan.executionId, { ...step(0, 'install'), commandId: 'cmd-0' }));
    const evil =
      'line one\n\u001b[2J\u001b]0;pwned\u0007cleared?\rover\u202eright\n' +
      Array.from({ length: 40 }, (_, i) => `row ${i}`).join('\n');
    api.emit(instance(0, 'install', TARGETS[0]!, evil));
    await until(r.lastFrame, (x) => x.includes('Success (exit 0)'));
    await press(r, KEY.down, KEY.enter);
    let f = await until(r.lastFrame, (x) => x.includes('Output of install on web-1'));
    expect(f).toContain('line one');
    expect(f).toContain('cleared?');
    expect(f).toContain('<U+202E>right');
    expect(f).not.toContain('\u001b[2J');
    expect(f).not.toContain('pwned');
    expect(f).not.toContain('row 39');
    await press(r, 'G');
    f = await until(r.lastFrame, (x) => x.includes('row 39'));
    await press(r, 'q');
    await until(r.lastFrame, (x) => x.includes('Running'));
  });

  test('one key has one owner: a q that lands while the output pane opens or closes never also backs out of the run', async () => {
    const { r, api, plan, back } = setup();
    await until(r.lastFrame, (x) => x.includes('Waiting'));
    api.emit(record('execution.running', plan.executionId, { approvedBy: ['bob'] }));
    api.emit(record('step.started', plan.executionId, { ...step(0, 'install'), commandId: 'cmd-0' }));
    api.emit(instance(0, 'install', TARGETS[0]!, 'installed v1.2.3\n'));
    await until(r.lastFrame, (x) => x.includes('Success (exit 0)'));
    await press(r, KEY.down);
    // Enter and q in one burst (a loaded machine delivers them before the screen changes): the
    // pane opens and that q closes it; the run view never sees it.
    r.stdin.write(KEY.enter);
    r.stdin.write('q');
    await tick(50);
    await until(r.lastFrame, (x) => x.includes('Running') && !x.includes('Output of'));
    expect(back.n).toBe(0);
    // The q that closes a pane, with the next key right behind it: only the second q backs out.
    await press(r, KEY.enter);
    await until(r.lastFrame, (x) => x.includes('Output of install on web-1'));
    r.stdin.write('q');
    r.stdin.write('j');
    await tick(50);
    await until(r.lastFrame, (x) => x.includes('Running') && !x.includes('Output of'));
    expect(back.n).toBe(0);
    // The plan overlay too: p and q in one burst open and close it.
    r.stdin.write('p');
    r.stdin.write('q');
    await tick(50);
    await until(r.lastFrame, (x) => x.includes('Running') && !x.includes('Plan of'));
    expect(back.n).toBe(0);
    await press(r, 'q');
    expect(back.n).toBe(1);
  });

  test('cancel asks for a reason, then sends it', async () => {
    const { r, api } = setup();
    await until(r.lastFrame, (x) => x.includes('Waiting'));
    await press(r, 'c');
    await until(r.lastFrame, (x) => x.includes('Cancel mx-test00001?'));
    await press(r, 'n', 'o', KEY.enter);
    expect(api.calls.filter((c) => c.name === 'cancel')).toEqual([]);
    await press(r, ...'pe, wrong window', KEY.enter);
    await until(r.lastFrame, (x) => x.includes('cancel sent'));
    expect(api.calls.find((c) => c.name === 'cancel')!.input).toEqual({
      params: { id: 'mx-test00001' },
      body: { reason: 'nope, wrong window' },
    });
  });

  test('someone else cannot cancel my run: the option says why', async () => {
    const { r } = setup(BOB);
    await until(r.lastFrame, (x) => x.includes('Waiting'));
    await press(r, 'c');
    await until(r.lastFrame, (x) => x.includes('only the requester or an admin can cancel it'));
  });

  test('a dropped connection is shown and resumed after the last record seen', async () => {
    const links: string[] = [];
    const api = fakeApi(ALICE);
    const plan = makePlan();
    executionsOf(api).set(plan.executionId, viewOf(plan));
    const first = requested(plan);
    api.history.set(plan.executionId, [first]);
    const r = render(
      <RunView
        api={api}
        me={ALICE}
        executionId={plan.executionId}
        width={100}
        height={22}
        active
        setTyping={() => undefined}
        onBack={() => undefined}
        onLink={(l) => links.push(l.state)}
      />,
    );
    await until(r.lastFrame, (x) => x.includes('Waiting'));
    await tick(80);
    api.drop();
    await until(
      () => links.join(','),
      (x) => x.includes('lost'),
    );
    await until(
      () => String(api.opened.length),
      (x) => x === '2',
      'a second stream',
    );
    expect(api.opened[1]).toEqual({ target: plan.executionId, after: first.seq });
    api.emit(record('execution.running', plan.executionId, { approvedBy: ['bob'] }));
    await until(r.lastFrame, (x) => x.includes('Running'));
  });

  test('a run that vanished is said in place, with the way back', async () => {
    const api = fakeApi(ALICE);
    api.on('getExecution', () => {
      throw new UserError('EXECUTION_NOT_FOUND', 'there is no execution mx-gone');
    });
    const r = render(
      <RunView
        api={api}
        me={ALICE}
        executionId="mx-gone"
        width={100}
        height={22}
        active
        setTyping={() => undefined}
        onBack={() => undefined}
      />,
    );
    const f = await until(r.lastFrame, (x) => x.includes('there is no execution mx-gone'));
    expect(f).toContain('press q to go back');
  });
});
