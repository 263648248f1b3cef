/**
 * Tests written to kill the mutants Stryker left alive or uncovered in src/core/audit-events.ts,
 * src/core/execution-index.ts and src/core/execution-view.ts (docs/mutation.md): how a record
 * that does not fit the vocabulary is named, time normalisation and which of two equal times
 * the index keeps, a repeated request, and how the view rebuilt from the log treats comments,
 * late and out-of-range records, cancelled steps and end reasons.
 */
import { describe, expect, test } from 'vitest';
import { checkAuditEvent, readAuditEvent, requestedEvent, type NewAuditEvent } from '../../src/core/audit-events.ts';
import { normalizeIsoTime, projectExecution } from '../../src/core/execution-index.ts';
import { viewFromAudit } from '../../src/core/execution-view.ts';
import { buildPlan } from '../../src/core/plan.ts';
import { parseRunbook } from '../../src/core/runbook.ts';
import { executionSummary } from '../helpers/core-samples.ts';

describe('checkAuditEvent names what it cannot read', () => {
  test.each([
    [null, 'event (no id) has an unknown type'],
    [undefined, 'event (no id) has an unknown type'],
    [{ type: 42, eventId: 7 }, 'event (no id) has an unknown type'],
    [{ type: 'nope', eventId: 'e-1' }, 'nope e-1 has an unknown type'],
    // Not a string, though `in` would find it as one: still an unknown type, not a schema misfit.
    [{ type: ['execution.running'], eventId: 'e-3' }, 'event e-3 has an unknown type'],
  ])('%j → %s', (input, problem) => {
    expect(checkAuditEvent(input)).toEqual({ ok: false, problem });
  });

  test('a record read without a seq is named without one', () => {
    const read = readAuditEvent({
      eventId: 'e-2',
      executionId: 'x',
      type: 'nope' as never,
      actor: 'a',
      at: '2025-01-01T00:00:00Z',
      data: {},
    });
    expect(read).toEqual({ ok: false, problem: 'nope e-2 has an unknown type' });
  });
});

describe('the execution index', () => {
  test('normalizeIsoTime refuses what is not a time, naming it', () => {
    expect(() => normalizeIsoTime('yesterday')).toThrow('not an ISO time: yesterday');
    expect(normalizeIsoTime('2025-01-01T10:00:00Z')).toBe('2025-01-01T10:00:00.000Z');
  });

  const end = (at: string) =>
    ({
      eventId: 'exec-1:end',
      executionId: 'exec-1',
      type: 'execution.completed',
      actor: 'mechanic',
      at,
      data: {},
    }) as const;

  test('of two equal times, updatedAt keeps the one it has', () => {
    const current = executionSummary({ updatedAt: '2025-01-01T10:05:00.000Z', status: 'completed' });
    const next = projectExecution(current, end('2025-01-01T10:05:00Z'));
    expect(next?.updatedAt).toBe('2025-01-01T10:05:00.000Z');
    // Stored before times were normalised: an equal time does not rewrite it.
    const old = executionSummary({ updatedAt: '2025-01-01T10:05:00Z', status: 'completed' });
    expect(projectExecution(old, end('2025-01-01T10:05:00.000Z'))?.updatedAt).toBe('2025-01-01T10:05:00Z');
  });

  test('a request seen again moves updatedAt only: the summary is not started over', () => {
    const current = executionSummary();
    const again = requestedEvent({ plan, planDigest });
    const next = projectExecution(current, { ...again, at: '2025-01-01T11:00:00Z' });
    expect(next).toEqual({ ...current, updatedAt: '2025-01-01T11:00:00.000Z' });
  });
});

const EXEC = 'exec-0002';
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
  targets: [{ instanceId: 'i-0aaaaaaaaaaaaaaa1' }],
  requester: 'alice',
  reason: 'INC-43',
  region: 'eu-west-1',
  now: new Date('2025-01-01T10:00:00.000Z'),
});

let n = 0;
function ev(type: NewAuditEvent['type'], data: Record<string, unknown>, actor = 'mechanic'): NewAuditEvent {
  n += 1;
  return {
    eventId: `${EXEC}:${n}`,
    executionId: EXEC,
    type,
    actor,
    at: `2025-01-01T10:00:${String(n).padStart(2, '0')}Z`,
    data,
  };
}
const requested = requestedEvent({ plan, planDigest });
const ref = (index: number) => ({
  step: index === 2 ? 'report' : plan.steps[index]!.name,
  index,
  phase: index === 2 ? 'onFailure' : 'main',
});

describe('requestedEvent', () => {
  test('is the request as the plan has it: id 0 of the run, by the requester, at the plan time, with the whole plan', () => {
    expect(requestedEvent({ plan, planDigest })).toEqual({
      eventId: `${EXEC}:0000:execution.requested`,
      executionId: EXEC,
      type: 'execution.requested',
      actor: 'alice',
      at: plan.createdAt,
      data: {
        runbook: plan.runbook,
        params: plan.params,
        targets: ['i-0aaaaaaaaaaaaaaa1'],
        planDigest,
        reason: 'INC-43',
        requester: 'alice',
        plan,
      },
    });
  });
});

describe('viewFromAudit', () => {
  test('a vote without a comment has no comment key', () => {
    const view = viewFromAudit([requested, ev('approval.granted', { planDigest }, 'bob')])!;
    expect(view.votes).toStrictEqual([{ approver: 'bob', decision: 'approve', planDigest }]);
  });

  test('a late execution.running does not reopen an ended run', () => {
    const view = viewFromAudit([
      requested,
      ev('execution.rejected', { reason: 'no' }),
      ev('execution.running', { approvedBy: [] }),
    ])!;
    expect(view.status).toBe('rejected');
  });

  test('records for a step the plan does not have are ignored, and add no step', () => {
    const view = viewFromAudit([
      requested,
      ev('step.instance', {
        step: 'ghost',
        index: 9,
        phase: 'main',
        commandId: 'c',
        instanceId: 'i-0aaaaaaaaaaaaaaa1',
        status: 'Success',
        statusDetails: 'Success',
        responseCode: 0,
        stdout: '',
        stderr: '',
        outputSha256: 's',
      }),
      ev('step.completed', { step: 'ghost', index: 9, phase: 'main', ok: true }),
    ])!;
    expect(view.steps).toHaveLength(3);
    expect(view.steps.map((s) => s.status)).toEqual(['pending', 'pending', 'pending']);
  });

  test('a step completed as cancelled reads cancelled; ok and not ok read succeeded and failed', () => {
    const view = viewFromAudit([
      requested,
      ev('step.completed', { ...ref(0), ok: true }),
      ev('step.completed', { ...ref(1), ok: false, cancelled: true }),
      ev('step.completed', { ...ref(2), ok: false }),
    ])!;
    expect(view.steps.map((s) => s.status)).toEqual(['succeeded', 'cancelled', 'failed']);
  });

  test('the reason is the last one an end record gave; no reason, no key', () => {
    const withReason = viewFromAudit([
      requested,
      ev('execution.failed', { reason: 'step check failed' }),
      ev('execution.cancelled', {}),
    ])!;
    expect(withReason.status).toBe('cancelled');
    expect(withReason.reason).toBe('step check failed');

    const without = viewFromAudit([requested, ev('execution.completed', {})])!;
    expect(without).not.toHaveProperty('reason');
    expect(without).not.toHaveProperty('unreadable');
  });
});
