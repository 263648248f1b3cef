import { describe, expect, test } from 'vitest';
import type { NewAuditEvent } from '../../src/core/audit.ts';
import { requestedEvent } from '../../src/core/audit-events.ts';
import { listedText, summaryText, viewFromAudit } from '../../src/core/execution-view.ts';
import { buildPlan } from '../../src/core/plan.ts';
import { parseRunbook } from '../../src/core/runbook.ts';

/**
 * Issue 11, part 1: the view rebuilt from the audit log (the web page's, the TUI's, and the API's
 * when no worker answers) shows a step on more than 50 instances as the workflow does: every
 * instance counted by status, only the unsuccessful listed (at most 100, in target order).
 */

const id = (n: number) => `i-${(0xa000 + n).toString(16).padStart(17, '0')}`;

function planOn(count: number, extra: Record<string, unknown> = {}) {
  return buildPlan({
    executionId: `mx-sum${count}`,
    runbook: parseRunbook({
      name: 'fleet-wide',
      version: 1,
      description: 'a step on the fleet',
      roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
      targets: { tags: { Fleet: 'all' } },
      steps: [{ name: 'work', script: 'echo hi', timeoutSeconds: 60, maxErrors: '100%', ...extra }],
    }),
    runbookDigest: 'f'.repeat(64),
    rawParams: {},
    targets: Array.from({ length: count }, (_, n) => ({ instanceId: id(n), name: `node-${n}` })),
    requester: 'alice',
    reason: 'summary test',
    region: 'us-east-1',
    now: new Date('2026-11-30T12:00:00Z'),
  });
}

/** The records of a run whose one step ended on each instance with `statusOf(n)`, batches in `order`. */
function story(
  count: number,
  statusOf: (n: number) => string,
  options: { order?: readonly number[]; notSentFrom?: number; extra?: Record<string, unknown> } = {},
): NewAuditEvent[] {
  const { plan, planDigest } = planOn(count, options.extra);
  const x = plan.executionId;
  let seq = 0;
  const ev = (type: NewAuditEvent['type'], data: Record<string, unknown>): NewAuditEvent => ({
    eventId: `${x}:${seq++}:${type}`,
    executionId: x,
    type,
    actor: 'mechanic',
    at: new Date(Date.UTC(2026, 10, 30, 12, 0, seq)).toISOString(),
    data,
  });
  const ref = { step: 'work', index: 0, phase: 'main' };
  const sent = options.notSentFrom ?? count;
  const order = options.order ?? Array.from({ length: sent }, (_, n) => n);
  const status = (n: number) => statusOf(n);
  return [
    requestedEvent({ plan, planDigest }),
    ev('approval.granted', { planDigest }),
    ev('execution.running', { approvedBy: ['bob'] }),
    ...Array.from({ length: Math.ceil(sent / 50) }, (_, b) => ev('step.started', { ...ref, commandId: `cmd-${b}` })),
    ...order.map((n) =>
      ev('step.instance', {
        ...ref,
        commandId: `cmd-${Math.floor(n / 50)}`,
        instanceId: id(n),
        status: status(n) === 'TimedOut' ? 'TimedOut' : status(n) === 'Success' ? 'Success' : 'Failed',
        statusDetails: status(n),
        responseCode: status(n) === 'Success' ? 0 : 3,
        stdout: `out of ${n}`,
        stderr: '',
        outputSha256: 'e'.repeat(64),
      }),
    ),
    ev('step.completed', {
      ...ref,
      ok: false,
      ...(sent < count
        ? {
            instances: Array.from({ length: count - sent }, (_, k) => ({
              instanceId: id(sent + k),
              status: 'Terminated',
              responseCode: -1,
            })),
          }
        : {}),
    }),
    ev('execution.failed', { reason: 'step "work" failed' }),
  ];
}

describe('a step on more than 50 instances, rebuilt from the log', () => {
  test('counts every instance by status and lists only the unsuccessful, in target order', () => {
    // The batches' records interleave (batch 3 ends first): the list still follows the targets.
    const order = [...Array.from({ length: 20 }, (_, n) => 100 + n), ...Array.from({ length: 100 }, (_, n) => n)];
    const failing = new Set([3, 64, 110]);
    const view = viewFromAudit(story(120, (n) => (failing.has(n) ? 'Failed' : 'Success'), { order }))!;
    const step = view.steps[0]!;
    expect(step.summary).toEqual({ total: 120, byStatus: { Success: 117, Failed: 3 } });
    expect(step.instances.map((i) => [i.instanceId, i.statusDetails, i.responseCode, i.stdout])).toEqual(
      [3, 64, 110].map((n) => [id(n), 'Failed', 3, `out of ${n}`]),
    );
    expect(step.status).toBe('failed');
    expect(summaryText(step.summary!)).toBe('120 instances: 117 Success, 3 Failed');
    expect(listedText(step)).toBeUndefined();
  });

  test('lists at most 100 unsuccessful instances, the first in target order, and says the list is cut', () => {
    const view = viewFromAudit(story(150, (n) => (n % 10 === 0 ? 'Success' : n % 3 === 0 ? 'TimedOut' : 'Failed')))!;
    const step = view.steps[0]!;
    expect(step.summary).toEqual({ total: 150, byStatus: { Success: 15, Failed: 90, TimedOut: 45 } });
    expect(step.instances).toHaveLength(100);
    const expected = Array.from({ length: 150 }, (_, n) => n)
      .filter((n) => n % 10 !== 0)
      .slice(0, 100)
      .map(id);
    expect(step.instances.map((i) => i.instanceId)).toEqual(expected);
    expect(summaryText(step.summary!)).toBe('150 instances: 15 Success, 90 Failed, 45 TimedOut');
    expect(listedText(step)).toBe('showing the first 100 of 135 unsuccessful instances');
  });

  test('batches never sent are counted from the step record, as the workflow reports them (Terminated)', () => {
    const view = viewFromAudit(story(120, (n) => (n === 7 ? 'Failed' : 'Success'), { notSentFrom: 100 }))!;
    const step = view.steps[0]!;
    expect(step.summary).toEqual({ total: 120, byStatus: { Success: 99, Failed: 1, Terminated: 20 } });
    expect(step.instances.map((i) => [i.instanceId, i.status])).toEqual([
      [id(7), 'Failed'],
      ...Array.from({ length: 20 }, (_, k) => [id(100 + k), 'Cancelled']),
    ]);
  });

  test('a retried step counts the successes of earlier attempts with its own', () => {
    const events = story(120, (n) => (n < 60 ? 'Failed' : 'Success'), { extra: { retries: 1 } });
    // Attempt 1 ended failed (retrying); attempt 2 ran on the 60 and succeeded.
    const completedAt = events.findIndex((e) => e.type === 'step.completed');
    const first = { ...events[completedAt]!, data: { ...events[completedAt]!.data, attempt: 1, retrying: true } };
    const ref = { step: 'work', index: 0, phase: 'main', attempt: 2 };
    const retry: NewAuditEvent[] = [
      { ...first, eventId: 'r:started', type: 'step.started', data: { ...ref, commandId: 'cmd-r' } },
      ...Array.from({ length: 60 }, (_, n): NewAuditEvent => ({
        ...first,
        eventId: `r:${n}`,
        type: 'step.instance',
        data: {
          ...ref,
          commandId: 'cmd-r',
          instanceId: id(n),
          status: 'Success',
          statusDetails: 'Success',
          responseCode: 0,
          stdout: 'ok',
          stderr: '',
          outputSha256: 'e'.repeat(64),
        },
      })),
      { ...first, eventId: 'r:completed', type: 'step.completed', data: { ...ref, ok: true } },
      { ...first, eventId: 'r:end', type: 'execution.completed', data: {} },
    ];
    const withAttempts = events.map((e) =>
      e.type === 'step.started' || e.type === 'step.instance' ? { ...e, data: { ...e.data, attempt: 1 } } : e,
    );
    const view = viewFromAudit([...withAttempts.slice(0, completedAt), first, ...retry])!;
    const step = view.steps[0]!;
    expect([view.status, step.status, step.attempt]).toEqual(['completed', 'succeeded', 2]);
    expect(step.summary).toEqual({ total: 120, byStatus: { Success: 120 } });
    expect(step.instances).toEqual([]);
  });

  test('a run on 50 instances or fewer keeps every instance and no summary, as before', () => {
    const view = viewFromAudit(story(50, (n) => (n === 4 ? 'Failed' : 'Success')))!;
    const step = view.steps[0]!;
    expect(step.summary).toBeUndefined();
    expect(step.instances).toHaveLength(50);
    expect(listedText(step)).toBeUndefined();
  });

  test('a step still running is counted as far as its records go', () => {
    const events = story(120, (n) => (n === 2 ? 'Failed' : 'Success'));
    const upTo = events.findIndex((e) => e.type === 'step.instance') + 30;
    const step = viewFromAudit(events.slice(0, upTo))!.steps[0]!;
    expect(step.status).toBe('running');
    expect(step.summary).toEqual({ total: 30, byStatus: { Success: 29, Failed: 1 } });
  });
});

describe('the words of a summary', () => {
  test('Success first, then the most frequent, with thousands separators', () => {
    expect(summaryText({ total: 10_000, byStatus: { TimedOut: 10, Failed: 40, Success: 9_950 } })).toBe(
      '10,000 instances: 9,950 Success, 40 Failed, 10 TimedOut',
    );
    expect(summaryText({ total: 0, byStatus: {} })).toBe('0 instances');
    expect(summaryText({ total: 1, byStatus: { Failed: 1 } })).toBe('1 instance: 1 Failed');
  });
});
