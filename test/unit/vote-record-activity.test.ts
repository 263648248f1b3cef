/**
 * recordEvents, the activity that writes the deciding vote's record and the run's start together:
 * one transaction on a real SQLite audit log, in order, and a retry whose records carry a later
 * time stamp keeps what the first attempt wrote. A store without appendMany gets the records one
 * by one, with the same tolerance of a record already there.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createActivities, type ActivityDeps } from '../../src/activities/index.ts';
import type { NewAuditEvent } from '../../src/core/audit.ts';
import { requestedEvent, workflowEventId } from '../../src/core/audit-events.ts';
import { AuditEventConflictError, openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { testInput } from '../helpers/plans.ts';

const activitiesOver = (audit: ActivityDeps['audit']) =>
  createActivities({
    audit,
    sts: { send: (() => Promise.reject(new Error('unused'))) as never },
    ssmFor: () => {
      throw new Error('unused');
    },
    pollIntervalMs: { min: 50, max: 50 },
    deliveryTimeoutSeconds: 60,
  });

/** A run's request, and its deciding vote and start stamped at `at`. */
function story(at: string) {
  const input = testInput();
  const id = input.plan.executionId;
  const pair: NewAuditEvent[] = [
    {
      eventId: workflowEventId(id, 1, 'approval.granted'),
      executionId: id,
      type: 'approval.granted',
      actor: 'bob',
      at,
      data: { planDigest: input.planDigest },
    },
    {
      eventId: workflowEventId(id, 2, 'execution.running'),
      executionId: id,
      type: 'execution.running',
      actor: 'mechanic',
      at,
      data: { approvedBy: ['bob'] },
    },
  ];
  return { id, request: requestedEvent(input) as NewAuditEvent, pair };
}

describe('recordEvents', () => {
  let dir: string;
  let audit: AuditStore;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mechanic-record-events-'));
    audit = await openAuditStore({ kind: 'sqlite', file: path.join(dir, 'audit.db') });
  });
  afterAll(async () => {
    await audit?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('writes the records in order, in one write, and a retry stamped later keeps the first', async () => {
    const writes: number[] = [];
    const acts = activitiesOver({
      append: (e) => audit.append(e),
      appendMany: (events, options) => {
        writes.push(events.length);
        return audit.appendMany(events, options);
      },
    });
    const first = story('2026-11-01T00:00:01.000Z');
    await acts.recordEvent(first.request);
    await acts.recordEvents(first.pair);
    expect(writes).toEqual([2]);
    const written = await audit.list({ executionId: first.id });
    expect(written.map((r) => [r.eventId, r.at])).toEqual([
      [first.request.eventId, first.request.at],
      [first.pair[0]!.eventId, '2026-11-01T00:00:01.000Z'],
      [first.pair[1]!.eventId, '2026-11-01T00:00:01.000Z'],
    ]);
    // The retry after a worker died: same ids, a later stamp. Accepted, and nothing changes.
    const again = first.pair.map((e) => ({ ...e, at: '2026-11-01T00:00:09.000Z' }));
    await acts.recordEvents(again);
    expect(await audit.list({ executionId: first.id })).toEqual(written);
    expect(await audit.verify()).toMatchObject({ ok: true });
  });

  test('without appendMany: one by one, a record already there stands, and any other failure is passed on', async () => {
    const appended: string[] = [];
    const acts = activitiesOver({
      append: async (e) => {
        appended.push(e.eventId);
        if (e.type === 'approval.granted') throw new AuditEventConflictError(e.eventId, 2);
        return audit.append(e);
      },
    });
    const { id, request, pair } = story('2026-11-01T00:00:01.000Z');
    await audit.append(request);
    await acts.recordEvents(pair);
    expect(appended).toEqual(pair.map((e) => e.eventId));
    expect((await audit.list({ executionId: id })).map((r) => r.type)).toEqual([
      'execution.requested',
      'execution.running',
    ]);
    const down = new Error('database is locked');
    await expect(activitiesOver({ append: () => Promise.reject(down) }).recordEvents(pair)).rejects.toBe(down);
  });
});
