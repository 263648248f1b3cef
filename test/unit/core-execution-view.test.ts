import { describe, expect, test } from 'vitest';
import { GENESIS_HASH, chainHash, type AuditRecord, type NewAuditEvent } from '../../src/core/audit.ts';
import { requestedEvent } from '../../src/core/audit-events.ts';
import { viewFromAudit } from '../../src/core/execution-view.ts';
import { buildPlan } from '../../src/core/plan.ts';
import { parseRunbook } from '../../src/core/runbook.ts';

const WEB_1 = 'i-0aaaaaaaaaaaaaaa1';
const WEB_2 = 'i-0aaaaaaaaaaaaaaa2';
const EXEC = 'exec-0001';

const { plan, planDigest } = buildPlan({
  executionId: EXEC,
  runbook: parseRunbook({
    name: 'restart-web',
    version: 1,
    description: 'Restart the web service.',
    roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
    targets: { tags: { Role: 'web' } },
    steps: [
      { name: 'restart', script: 'systemctl restart web' },
      { name: 'check', script: 'curl -fsS localhost' },
    ],
    onFailure: [{ name: 'report', script: 'journalctl -u web -n 50' }],
  }),
  runbookDigest: 'rb-digest',
  rawParams: {},
  targets: [{ instanceId: WEB_1 }, { instanceId: WEB_2 }],
  requester: 'alice',
  reason: 'INC-42: workers stuck',
  region: 'eu-west-1',
  now: new Date('2025-01-01T10:00:00.000Z'),
});

let clock = 0;
function event(type: NewAuditEvent['type'], actor: string, data: Record<string, unknown>): NewAuditEvent {
  clock += 1;
  return {
    eventId: `${EXEC}:${clock}:${type}`,
    executionId: EXEC,
    type,
    actor,
    at: new Date(Date.UTC(2025, 0, 1, 10, 0, clock)).toISOString(),
    data,
  };
}

/** Chains events into records as the store would. */
function records(events: readonly NewAuditEvent[]): AuditRecord[] {
  let prevHash = GENESIS_HASH;
  return events.map((e, i) => {
    const hash = chainHash(prevHash, e);
    const record: AuditRecord = { ...e, seq: i + 1, prevHash, hash, recordedAt: e.at };
    prevHash = hash;
    return record;
  });
}

const instance = (instanceId: string, status = 'Success', responseCode = 0) => ({
  instanceId,
  status,
  statusDetails: status,
  responseCode,
  stdout: `ok on ${instanceId}`,
  stderr: '',
  outputSha256: `sha-${instanceId}`,
});

/** The step fields every step event carries. */
const stepRef = (index: number) => ({
  step: [...plan.steps, ...plan.onFailure][index]!.name,
  index,
  phase: index < plan.steps.length ? ('main' as const) : ('onFailure' as const),
});

const requested = requestedEvent({ plan, planDigest });
const granted = event('approval.granted', 'bob', { planDigest });
const running = event('execution.running', 'mechanic', { approvedBy: ['bob'] });
const stepEvents = [0, 1].flatMap((index) => [
  event('step.started', 'mechanic', { step: plan.steps[index]!.name, index, phase: 'main', commandId: `cmd-${index}` }),
  event('step.instance', 'mechanic', { ...stepRef(index), commandId: `cmd-${index}`, ...instance(WEB_1) }),
  event('step.instance', 'mechanic', { ...stepRef(index), commandId: `cmd-${index}`, ...instance(WEB_2) }),
  event('step.completed', 'mechanic', { step: plan.steps[index]!.name, index, phase: 'main', ok: true }),
]);
const completed = event('execution.completed', 'mechanic', {});

describe('viewFromAudit', () => {
  test('rebuilds a completed run', () => {
    const view = viewFromAudit(records([requested, granted, running, ...stepEvents, completed]));
    expect(view).toEqual({
      executionId: EXEC,
      status: 'completed',
      planDigest,
      plan,
      approval: { status: 'approved', approvedBy: ['bob'] },
      votes: [{ approver: 'bob', decision: 'approve', planDigest }],
      steps: [
        {
          name: 'restart',
          phase: 'main',
          status: 'succeeded',
          commandId: 'cmd-0',
          instances: [instance(WEB_1), instance(WEB_2)],
        },
        {
          name: 'check',
          phase: 'main',
          status: 'succeeded',
          commandId: 'cmd-1',
          instances: [instance(WEB_1), instance(WEB_2)],
        },
        { name: 'report', phase: 'onFailure', status: 'skipped', instances: [] },
      ],
    });
  });

  test('returns undefined without the request', () => {
    expect(viewFromAudit(records([granted, running, ...stepEvents, completed]))).toBeUndefined();
  });

  test('returns undefined for no records', () => {
    expect(viewFromAudit([])).toBeUndefined();
  });

  test('a run still waiting shows its pending approval and pending steps', () => {
    const view = viewFromAudit(records([requested]));
    expect(view).toMatchObject({
      status: 'awaiting_approval',
      approval: { status: 'pending', approvedBy: [], missing: 1 },
      votes: [],
      steps: [{ status: 'pending' }, { status: 'pending' }, { status: 'pending' }],
    });
  });

  test('a running step shows as running with its command', () => {
    const view = viewFromAudit(records([requested, granted, running, stepEvents[0]!]));
    expect(view?.status).toBe('running');
    expect(view?.steps.map((s) => [s.name, s.status, s.commandId])).toEqual([
      ['restart', 'running', 'cmd-0'],
      ['check', 'pending', undefined],
      ['report', 'pending', undefined],
    ]);
  });

  test('a failed step, the onFailure step and the reason of a failed run', () => {
    const view = viewFromAudit(
      records([
        requested,
        granted,
        running,
        event('step.started', 'mechanic', { ...stepRef(0), commandId: 'cmd-0' }),
        event('step.instance', 'mechanic', { ...stepRef(0), commandId: 'cmd-0', ...instance(WEB_1, 'Failed', 1) }),
        event('step.completed', 'mechanic', { ...stepRef(0), ok: false }),
        event('step.started', 'mechanic', { ...stepRef(2), commandId: 'cmd-2' }),
        event('step.completed', 'mechanic', { ...stepRef(2), ok: true }),
        event('execution.failed', 'mechanic', { reason: 'step restart failed on 1 instance' }),
      ]),
    );
    expect(view?.status).toBe('failed');
    expect(view?.reason).toBe('step restart failed on 1 instance');
    expect(view?.steps.map((s) => [s.name, s.status])).toEqual([
      ['restart', 'failed'],
      ['check', 'skipped'],
      ['report', 'succeeded'],
    ]);
    expect(view?.steps[0]?.instances).toEqual([instance(WEB_1, 'Failed', 1)]);
  });

  test('a repeated result for the same instance replaces the earlier one', () => {
    const view = viewFromAudit(
      records([
        requested,
        event('step.instance', 'mechanic', { ...stepRef(0), commandId: 'c', ...instance(WEB_1, 'InProgress', -1) }),
        event('step.instance', 'mechanic', { ...stepRef(0), commandId: 'c', ...instance(WEB_1) }),
      ]),
    );
    expect(view?.steps[0]?.instances).toEqual([instance(WEB_1)]);
  });

  test('a step event with an index outside the plan is ignored', () => {
    const view = viewFromAudit(
      records([
        requested,
        event('step.started', 'mechanic', { step: 'x', index: 7, phase: 'main', commandId: 'cmd-7' }),
      ]),
    );
    expect(view?.steps.map((s) => s.status)).toEqual(['pending', 'pending', 'pending']);
  });

  test('a rejected run shows who rejected it, and every step skipped', () => {
    const view = viewFromAudit(
      records([
        requested,
        event('approval.rejected', 'carol', { planDigest, comment: 'not during the sale' }),
        event('execution.rejected', 'mechanic', { reason: 'rejected by carol' }),
      ]),
    );
    expect(view).toMatchObject({
      status: 'rejected',
      reason: 'rejected by carol',
      approval: { status: 'rejected', by: 'carol', comment: 'not during the sale' },
      votes: [{ approver: 'carol', decision: 'reject', planDigest, comment: 'not during the sale' }],
    });
    expect(view?.steps.map((s) => s.status)).toEqual(['skipped', 'skipped', 'skipped']);
  });

  test.each([
    ['execution.expired', 'expired'],
    ['execution.cancelled', 'cancelled'],
  ] as const)('%s ends the run as %s', (type, status) => {
    expect(viewFromAudit(records([requested, event(type, 'mechanic', {})]))?.status).toBe(status);
  });

  test("the requester's own approval does not count", () => {
    const view = viewFromAudit(records([requested, event('approval.granted', 'alice', { planDigest })]));
    expect(view?.approval).toEqual({ status: 'pending', approvedBy: [], missing: 1 });
  });

  // Regression: viewFromAudit once counted an approval naming another plan, while the execution
  // index (projectExecution in audit.ts) ignores it, so the two views of one log disagreed.
  test('an approval naming another plan does not count', () => {
    const view = viewFromAudit(records([requested, event('approval.granted', 'bob', { planDigest: 'another-plan' })]));
    expect(view?.approval).toEqual({ status: 'pending', approvedBy: [], missing: 1 });
  });

  test('a record that does not fit the vocabulary is left out and named, not guessed at', () => {
    const forged = event('approval.granted', 'carol', { planDigest, approved: 'yes' });
    const view = viewFromAudit(records([requested, forged]));
    expect(view?.approval).toEqual({ status: 'pending', approvedBy: [], missing: 1 });
    expect(view?.unreadable).toEqual([
      expect.stringMatching(/^record #2: approval.granted .* does not fit its schema/),
    ]);
    expect(viewFromAudit(records([requested]))).not.toHaveProperty('unreadable');
  });
});
