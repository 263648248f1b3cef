/**
 * Tests written to kill the mutants of src/core/execution-view.ts that survived the whole Stryker
 * run (docs/mutation-survivors.md). Each asserts the whole step or vote (toStrictEqual, so a key
 * set to undefined counts): the attempts of a retried step (the batches of one attempt, a batch
 * record without an attempt, a new attempt, results of an older attempt recorded late, the attempt
 * a step.completed names or leaves out), what step.completed says (reason, continuedOnError,
 * instances never sent), a vote's approval groups, SSM's truncation marks, a pending or skipped
 * step of a run on more than 50 instances, and the words of a summary.
 *
 * Equivalent, left alive:
 * - 23:32 `[]` → `["Stryker was here"]`: a string has no `type`, so the extra entry is not the
 *   request, and in the loop it falls to `default`, where endStatusOf(undefined) is undefined.
 * - 88:23 `e.data.attempt !== undefined && step.attempt !== undefined` → `true` or `||`, 88:23
 *   `e.data.attempt !== undefined` → `true`, 88:55 `step.attempt !== undefined` → `true`: the
 *   guards only satisfy TypeScript; when either attempt is undefined, `e.data.attempt < step.attempt`
 *   compares with undefined and is false anyway.
 * - 117:52 `i.status === 'Cancelled'` → `false`, 117:65 `'Cancelled'` → `""`: a status that is
 *   'Cancelled' is kept as it is, which is 'Cancelled'.
 * - 155:11 `all.length > 0` → `true` or `>= 0`: with no results it sets `instances: []`, which
 *   every step already has (`instances` is filled only here).
 * - 198:90 `a < b` → `a <= b`, 198:103 `a > b` → `true`, `false`, `a >= b`, `a <= b`: the status
 *   keys compared are distinct, so `a === b` never arises, and V8's sort reads a comparator only as
 *   `< 0` or not, so 0 and 1 sort alike (checked on 300 random orders of up to 600 keys).
 */
import { describe, expect, test } from 'vitest';
import { requestedEvent, type NewAuditEvent } from '../../src/core/audit-events.ts';
import type { InstanceResult, StepView } from '../../src/core/execution.ts';
import { listedText, summaryText, viewFromAudit } from '../../src/core/execution-view.ts';
import { buildPlan } from '../../src/core/plan.ts';
import { parseRunbook } from '../../src/core/runbook.ts';

const W1 = 'i-0bbbbbbbbbbbbbbb1';
const W2 = 'i-0bbbbbbbbbbbbbbb2';
const W3 = 'i-0bbbbbbbbbbbbbbb3';
const W4 = 'i-0bbbbbbbbbbbbbbb4';

function planOn(targets: number) {
  return buildPlan({
    executionId: `exec-view2-${targets}`,
    runbook: parseRunbook({
      name: 'restart-web',
      version: 1,
      description: 'Restart the web service.',
      roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
      targets: { tags: { Role: 'web' } },
      steps: [
        { name: 'restart', script: 'systemctl restart web', retries: 2, maxErrors: '100%' },
        { name: 'check', script: 'curl -fsS localhost', maxErrors: '100%' },
      ],
      onFailure: [{ name: 'report', script: 'journalctl -u web -n 50' }],
    }),
    runbookDigest: 'rb-digest',
    rawParams: {},
    targets: Array.from({ length: targets }, (_, n) => ({ instanceId: `i-0${n.toString(16).padStart(16, '0')}` })),
    requester: 'alice',
    reason: 'INC-44',
    region: 'eu-west-1',
    now: new Date('2025-01-01T10:00:00.000Z'),
  });
}
const small = planOn(2);

let n = 0;
const ev = (type: NewAuditEvent['type'], data: Record<string, unknown>, actor = 'mechanic'): NewAuditEvent => ({
  eventId: `view2:${++n}`,
  executionId: small.plan.executionId,
  type,
  actor,
  at: '2025-01-01T10:00:01.000Z',
  data,
});
const ref = (index: number, attempt?: number) => ({
  step: ['restart', 'check', 'report'][index],
  index,
  phase: index < 2 ? 'main' : 'onFailure',
  ...(attempt !== undefined ? { attempt } : {}),
});
const started = (commandId: string, attempt?: number) => ev('step.started', { ...ref(0, attempt), commandId });
const completed = (data: Record<string, unknown>) => ev('step.completed', { ...ref(0), ...data });

/** An instance's result as the view shows it. */
const shown = (instanceId: string, status: string, extra: Partial<InstanceResult> = {}): InstanceResult => ({
  instanceId,
  status,
  statusDetails: status,
  responseCode: status === 'Success' ? 0 : 1,
  stdout: `out of ${instanceId}`,
  stderr: '',
  outputSha256: 'h',
  ...extra,
});
const result = (instanceId: string, status: string, attempt?: number, extra: Record<string, unknown> = {}) =>
  ev('step.instance', { ...ref(0, attempt), commandId: 'c', ...shown(instanceId, status), ...extra });

/** The first step as viewFromAudit shows it after these records. */
function firstStep(records: readonly NewAuditEvent[], plan = small): StepView {
  const view = viewFromAudit([requestedEvent(plan), ...records])!;
  expect(view.unreadable).toBeUndefined();
  return view.steps[0]!;
}
const restart = (over: Partial<StepView>): StepView => ({
  name: 'restart',
  phase: 'main',
  status: 'running',
  instances: [],
  ...over,
});

describe('the attempts of a retried step', () => {
  test.each<[string, NewAuditEvent[], StepView]>([
    [
      'the batches of one attempt add up: a second step.started of the same attempt resets nothing',
      [started('c-1', 2), result(W1, 'Failed', 2), started('c-2', 2), result(W2, 'Success', 2)],
      restart({ commandId: 'c-2', attempt: 2, instances: [shown(W1, 'Failed'), shown(W2, 'Success')] }),
    ],
    [
      'a step.started that names no attempt resets nothing and keeps the attempt',
      [started('c-1', 1), result(W1, 'Failed', 1), started('c-2')],
      restart({ commandId: 'c-2', attempt: 1, instances: [shown(W1, 'Failed')] }),
    ],
    [
      'a new attempt keeps the successes of the last and drops its failures',
      [
        started('c-1', 1),
        result(W1, 'Failed', 1),
        result(W2, 'Success', 1),
        completed({ attempt: 1, ok: false, retrying: true }),
        started('c-2', 2),
      ],
      restart({ commandId: 'c-2', attempt: 2, instances: [shown(W2, 'Success')] }),
    ],
    [
      'a result of an older attempt recorded late does not replace the current attempt',
      [started('c-1', 1), started('c-2', 2), result(W1, 'Failed', 1), result(W2, 'Success', 2)],
      restart({ commandId: 'c-2', attempt: 2, instances: [shown(W2, 'Success')] }),
    ],
    [
      'a step.completed that names no attempt keeps the one started',
      [started('c-1', 2), completed({ ok: true })],
      restart({ status: 'succeeded', commandId: 'c-1', attempt: 2 }),
    ],
    [
      'a step.completed that names an attempt sets it',
      [completed({ attempt: 3, ok: true })],
      restart({ status: 'succeeded', attempt: 3 }),
    ],
  ])('%s', (_, records, expected) => {
    expect(firstStep(records)).toStrictEqual(expected);
  });
});

describe('what a step.completed says', () => {
  test.each<[string, Record<string, unknown>, Partial<StepView>]>([
    ['failed, with why', { ok: false, error: 'boom' }, { status: 'failed', reason: 'boom' }],
    ['failed, without why', { ok: false }, { status: 'failed' }],
    ['cancelled: no reason of its own', { ok: false, cancelled: true, error: 'boom' }, { status: 'cancelled' }],
    ['retrying: still running, no reason', { ok: false, retrying: true, error: 'boom' }, { status: 'running' }],
    ['succeeded: an error is not a reason', { ok: true, error: 'boom' }, { status: 'succeeded' }],
    [
      'failed and gone past',
      { ok: false, continuedOnError: true, error: 'boom' },
      { status: 'failed', continuedOnError: true, reason: 'boom' },
    ],
    ['succeeded: nothing was gone past', { ok: true, continuedOnError: true }, { status: 'succeeded' }],
  ])('%s', (_, data, expected) => {
    expect(firstStep([completed(data)])).toStrictEqual(restart(expected));
  });

  test('instances it names without a result of their own are listed from it; those with one keep theirs', () => {
    const step = firstStep([
      started('c-1'),
      result(W1, 'Failed'),
      completed({
        ok: false,
        instances: [
          { instanceId: W1, status: 'Terminated', responseCode: -1 },
          { instanceId: W2, status: 'Terminated', responseCode: -1 },
          { instanceId: W3, status: 'Cancelled', responseCode: -1 },
          { instanceId: W4, status: 'Failed', responseCode: 2 },
        ],
      }),
    ]);
    const unsent = (instanceId: string, status: string, statusDetails: string, responseCode: number) => ({
      instanceId,
      status,
      statusDetails,
      responseCode,
      stdout: '',
      stderr: '',
      outputSha256: '',
    });
    expect(step).toStrictEqual(
      restart({
        status: 'failed',
        commandId: 'c-1',
        instances: [
          shown(W1, 'Failed'),
          unsent(W2, 'Cancelled', 'Terminated', -1),
          unsent(W3, 'Cancelled', 'Cancelled', -1),
          unsent(W4, 'Failed', 'Failed', 2),
        ],
      }),
    );
  });
});

describe('records read as they are', () => {
  test("SSM's truncation marks are kept, and absent where it cut nothing", () => {
    const step = firstStep([
      started('c-1'),
      result(W1, 'Success', undefined, { truncatedBySsm: ['stdout'] }),
      result(W2, 'Success'),
    ]);
    expect(step.instances).toStrictEqual([shown(W1, 'Success', { truncatedBySsm: ['stdout'] }), shown(W2, 'Success')]);
  });

  test('a vote keeps the approval groups it counted for', () => {
    const view = viewFromAudit([
      requestedEvent(small),
      ev('approval.granted', { planDigest: small.planDigest, groups: ['dba', 'sre'] }, 'bob'),
    ])!;
    expect(view.votes).toStrictEqual([
      { approver: 'bob', decision: 'approve', planDigest: small.planDigest, groups: ['dba', 'sre'] },
    ]);
  });

  test('a skip for a step the plan does not have adds no step', () => {
    const view = viewFromAudit([
      requestedEvent(small),
      ev('step.skipped', { step: 'x', index: 7, phase: 'main', reason: 'r' }),
    ])!;
    expect(view.steps.map((s) => [s.name, s.status])).toEqual([
      ['restart', 'pending'],
      ['check', 'pending'],
      ['report', 'pending'],
    ]);
  });
});

describe('a run on more than 50 instances', () => {
  const big = planOn(51);
  const id = big.plan.targets[0]!.instanceId;

  test('a pending or skipped step lists what it has and is not summarised', () => {
    const view = viewFromAudit([
      requestedEvent(big),
      ev('step.instance', { ...ref(0), commandId: 'c', ...shown(id, 'Failed') }),
      ev('step.skipped', { ...ref(1), reason: 'not needed' }),
      ev('step.instance', { ...ref(1), commandId: 'c', ...shown(id, 'Failed') }),
    ])!;
    expect(view.steps.slice(0, 2)).toStrictEqual([
      restart({ status: 'pending', instances: [shown(id, 'Failed')] }),
      { name: 'check', phase: 'main', status: 'skipped', reason: 'not needed', instances: [shown(id, 'Failed')] },
    ]);
  });
});

describe('the words of a summary', () => {
  test.each([
    [{ total: 2, byStatus: { Success: 2, Failed: 0 } }, '2 instances: 2 Success'],
    [{ total: 9, byStatus: { Failed: 5, TimedOut: 3, Success: 1 } }, '9 instances: 1 Success, 5 Failed, 3 TimedOut'],
    [
      { total: 6, byStatus: { TimedOut: 2, Failed: 2, Cancelled: 2 } },
      '6 instances: 2 Cancelled, 2 Failed, 2 TimedOut',
    ],
    [
      { total: 3, byStatus: { Failed: 1, Cancelled: 1, TimedOut: 1 } },
      '3 instances: 1 Cancelled, 1 Failed, 1 TimedOut',
    ],
  ])('%j → %s', (summary, text) => {
    expect(summaryText(summary)).toBe(text);
  });

  test('listedText counts only the unsuccessful instances listed', () => {
    const step = {
      instances: [shown(W1, 'Success'), shown(W2, 'Failed')],
      summary: { total: 3, byStatus: { Success: 1, Failed: 2 } },
    };
    expect(listedText(step)).toBe('showing the first 1 of 2 unsuccessful instances');
  });
});
