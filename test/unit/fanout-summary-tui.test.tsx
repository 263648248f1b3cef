import { afterEach, describe, expect, test } from 'vitest';
import { cleanup, render } from 'ink-testing-library';
import { RunView } from '../../cli/tui/RunView.tsx';
import type { AuditRecordInfo } from '../../src/api/schemas.ts';
import { KEY, executionsOf, fakeApi, makePlan, press, record, requested, until, viewOf } from '../helpers/tui.ts';

/**
 * Issue 11, part 1: the TUI's run view of a run on more than 50 instances shows each step's
 * instances counted by status and lists only those that did not succeed (at most 100), never a
 * row per host; the keys work as on any run, and a failed instance's output opens.
 */

afterEach(() => cleanup());

const ALICE = { id: 'alice', displayName: 'Alice', roles: ['operator', 'approver'] };
const id = (n: number) => `i-${(0xb000 + n).toString(16).padStart(17, '0')}`;
const ref = { step: 'install', index: 0, phase: 'main' as const };

function setup(count: number, height: number) {
  const api = fakeApi(ALICE);
  const plan = makePlan({
    executionId: `mx-tui${count}`,
    targets: Array.from({ length: count }, (_, n) => ({ instanceId: id(n), name: `node-${n}` })),
  });
  executionsOf(api).set(plan.executionId, viewOf(plan));
  api.history.set(plan.executionId, [requested(plan)]);
  const r = render(
    <RunView
      api={api}
      me={ALICE}
      executionId={plan.executionId}
      width={120}
      height={height}
      active
      setTyping={() => undefined}
      onBack={() => undefined}
    />,
  );
  return { api, plan, r };
}

/** The records of step 0 ending on each instance, batch by batch, failing where `fails(n)`. */
function stepRecords(executionId: string, count: number, fails: (n: number) => boolean): AuditRecordInfo[] {
  const out: AuditRecordInfo[] = [record('execution.running', executionId, { approvedBy: ['bob'] })];
  for (let b = 0; b * 50 < count; b++) {
    out.push(record('step.started', executionId, { ...ref, commandId: `cmd-${b}` }));
    for (let n = b * 50; n < Math.min(count, b * 50 + 50); n++) {
      out.push(
        record('step.instance', executionId, {
          ...ref,
          commandId: `cmd-${b}`,
          instanceId: id(n),
          status: fails(n) ? 'Failed' : 'Success',
          statusDetails: fails(n) ? 'Failed' : 'Success',
          responseCode: fails(n) ? 1 : 0,
          stdout: fails(n) ? `broken on node-${n}\n` : `fine on node-${n}\n`,
          stderr: '',
          outputSha256: 'e'.repeat(64),
        }),
      );
    }
  }
  out.push(record('step.completed', executionId, { ...ref, ok: false }));
  return out;
}

const instanceRows = (frame: string) => frame.split('\n').filter((l) => /node-\d+ \(i-/.test(l));

describe('a run on 120 instances', () => {
  test('each step shows its counts and lists only the instances that did not succeed; their output opens', async () => {
    const { api, plan, r } = setup(120, 40);
    await until(r.lastFrame, (x) => x.includes('Waiting for approval'));
    const failing = new Set([5, 70, 119]);
    for (const rec of stepRecords(plan.executionId, 120, (n) => failing.has(n))) api.emit(rec);
    let f = await until(r.lastFrame, (x) => x.includes('120 instances: 117 Success, 3 Failed'));
    expect(f).toContain('120/120');
    // Three rows, one per failure, in target order; no row for any of the 117 that succeeded.
    expect(instanceRows(f).map((l) => /node-\d+/.exec(l)![0])).toEqual(['node-5', 'node-70', 'node-119']);
    expect(instanceRows(f).every((l) => l.includes('Failed (exit 1)'))).toBe(true);
    expect(f).not.toContain('showing the first');

    // The workflow's own view at the end (outputs are in the audit log, not in the workflow): the
    // counts and failures it lists are the same; the output pane reads the recorded output.
    const done = viewOf(plan, 'failed');
    executionsOf(api).set(plan.executionId, {
      ...done,
      reason: 'step "install" failed',
      approval: { status: 'approved', approvedBy: ['bob'] },
      steps: done.steps.map((s, i) =>
        i === 0
          ? {
              ...s,
              status: 'failed' as const,
              summary: { total: 120, byStatus: { Success: 117, Failed: 3 } },
              instances: [...failing].map((n) => ({
                instanceId: id(n),
                status: 'Failed',
                statusDetails: 'Failed',
                responseCode: 1,
                stdout: '',
                stderr: '',
                outputSha256: '',
              })),
            }
          : { ...s, status: 'skipped' as const },
      ),
    });
    api.emit(record('execution.failed', plan.executionId, { reason: 'step "install" failed' }));
    f = await until(r.lastFrame, (x) => x.includes('0 of 2 steps succeeded'));
    await until(
      () => String(api.calls.filter((c) => c.name === 'getExecution').length),
      (x) => x === '2',
    );
    expect(instanceRows(f)).toHaveLength(3);
    // Down: the counts row, then the first failure; Enter opens its output.
    await press(r, KEY.down, KEY.down, KEY.enter);
    f = await until(r.lastFrame, (x) => x.includes('Output of install on node-5'));
    expect(f).toContain('broken on node-5');
    await press(r, 'q');
    await press(r, KEY.down, KEY.enter);
    f = await until(r.lastFrame, (x) => x.includes('Output of install on node-70'));
    expect(f).toContain('broken on node-70');
  });

  test('more than 100 failures: the first 100 are listed, and the counts row says the list is cut', async () => {
    const { api, plan, r } = setup(150, 140);
    await until(r.lastFrame, (x) => x.includes('Waiting for approval'));
    for (const rec of stepRecords(plan.executionId, 150, (n) => n % 5 !== 0)) api.emit(rec);
    const f = await until(r.lastFrame, (x) => x.includes('150 instances: 30 Success, 120 Failed'));
    expect(f).toContain('showing the first 100 of 120 unsuccessful instances');
    const rows = instanceRows(f);
    expect(rows).toHaveLength(100);
    expect(rows.some((l) => /node-(0|5|10) /.test(l))).toBe(false);
    expect(rows.at(-1)).toContain('node-124 ');
  });
});

test('a run on two instances still lists every instance, with no counts row', async () => {
  const api = fakeApi(ALICE);
  const plan = makePlan();
  executionsOf(api).set(plan.executionId, viewOf(plan));
  api.history.set(plan.executionId, [requested(plan)]);
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
    />,
  );
  await until(r.lastFrame, (x) => x.includes('Waiting for approval'));
  api.emit(record('execution.running', plan.executionId, { approvedBy: ['bob'] }));
  api.emit(record('step.started', plan.executionId, { ...ref, commandId: 'cmd-0' }));
  const f = await until(r.lastFrame, (x) => x.includes('in progress'));
  expect(f).toContain('web-1 (i-0000000000000web1)');
  expect(f).toContain('web-2 (i-0000000000000web2)');
  expect(f).not.toContain('instances:');
});
