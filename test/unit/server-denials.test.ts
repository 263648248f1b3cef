import { afterEach, describe, expect, test, vi } from 'vitest';
import { checkAuditEvent, refusalCount, refusalEvent, type NewAuditEvent } from '../../src/core/audit-events.ts';
import { createDenialRecorder, routeOf, type Refusal } from '../../src/server/denials.ts';

/** An append-only list standing in for the store's append (the integration test uses the real store). */
function memoryAudit(fail?: (e: NewAuditEvent) => boolean) {
  const events: NewAuditEvent[] = [];
  return {
    events,
    async append(e: NewAuditEvent) {
      await Promise.resolve();
      if (fail?.(e)) throw new Error('the disk is full');
      events.push(e);
      return e as never;
    },
  };
}

const denied = (actor: string, executionId: string | null = null, path = '/api/executions'): Refusal => ({
  type: 'access.denied',
  actor,
  executionId,
  kind: 'launch POST /api/executions',
  data: { action: 'launch', reason: `${actor} may not launch runbooks`, path },
});
const countOf = refusalCount;
const WINDOW = 60_000;

afterEach(() => {
  vi.useRealTimers();
});

describe('folding one caller’s repeated refusals', () => {
  test('the first is written at once, the repeats as one counted record when the window ends', async () => {
    let t = 0;
    const audit = memoryAudit();
    const d = createDenialRecorder({ audit, windowMs: WINDOW, now: () => t });
    await d.record(denied('mallory'));
    expect(audit.events).toHaveLength(1);
    expect(audit.events[0]).toMatchObject({ type: 'access.denied', actor: 'mallory', data: { action: 'launch' } });
    expect(audit.events[0]!.data).not.toHaveProperty('count');
    for (let i = 1; i < 1000; i++) {
      t = i * 10;
      await d.record(denied('mallory'));
    }
    expect(audit.events).toHaveLength(1);
    expect(d.pending).toBe(999);
    await d.flush(); // the window has not ended yet
    expect(audit.events).toHaveLength(1);
    t = WINDOW;
    await d.flush();
    expect(audit.events).toHaveLength(2);
    expect(audit.events[1]).toMatchObject({
      type: 'access.denied',
      actor: 'mallory',
      executionId: null,
      at: new Date(WINDOW).toISOString(),
      data: {
        action: 'launch',
        reason: 'mallory may not launch runbooks',
        count: 999,
        since: new Date(10).toISOString(),
        until: new Date(9990).toISOString(),
      },
    });
    expect(audit.events.reduce((n, e) => n + countOf(e), 0)).toBe(1000);
    expect(d.pending).toBe(0);
    expect(new Set(audit.events.map((e) => e.eventId)).size).toBe(2);
  });

  test('callers, refusal types and kinds fold apart', async () => {
    const audit = memoryAudit();
    const d = createDenialRecorder({ audit, windowMs: WINDOW, now: () => 0 });
    await d.record(denied('mallory'));
    await d.record(denied('eve'));
    await d.record({ ...denied('mallory'), kind: 'approve POST /api/executions/:id/votes' });
    await d.record({
      type: 'request.refused',
      actor: 'mallory',
      executionId: null,
      kind: 'USAGE POST /api/executions',
      data: { code: 'USAGE', reason: 'bad body' },
    });
    await d.record(denied('mallory'));
    expect(audit.events.map((e) => [e.type, e.actor])).toEqual([
      ['access.denied', 'mallory'],
      ['access.denied', 'eve'],
      ['access.denied', 'mallory'],
      ['request.refused', 'mallory'],
    ]);
    expect(d.pending).toBe(1);
  });

  test('a refusal after its window writes the last window’s count first, then itself', async () => {
    let t = 0;
    const audit = memoryAudit();
    const d = createDenialRecorder({ audit, windowMs: WINDOW, now: () => t });
    await d.record(denied('mallory'));
    await d.record(denied('mallory'));
    await d.record(denied('mallory'));
    t = WINDOW + 5;
    await d.record(denied('mallory'));
    expect(audit.events.map((e) => e.data['count'])).toEqual([undefined, 2, undefined]);
  });

  test('a window with no repeats writes nothing more', async () => {
    let t = 0;
    const audit = memoryAudit();
    const d = createDenialRecorder({ audit, windowMs: WINDOW, now: () => t });
    await d.record(denied('mallory'));
    t = WINDOW * 3;
    await d.flush();
    await d.close();
    expect(audit.events).toHaveLength(1);
  });

  test('the summary names the execution the repeats share, and none when they differ', async () => {
    let t = 0;
    const audit = memoryAudit();
    const d = createDenialRecorder({ audit, windowMs: WINDOW, now: () => t });
    await d.record(denied('mallory', 'mx-first'));
    await d.record(denied('mallory', 'mx-one'));
    await d.record(denied('mallory', 'mx-one'));
    await d.record(denied('eve', 'mx-a'));
    await d.record(denied('eve', 'mx-a'));
    await d.record(denied('eve', 'mx-b', '/api/executions/mx-b'));
    t = WINDOW;
    await d.flush();
    expect(audit.events.slice(2).map((e) => [e.actor, e.executionId, e.data['count'], e.data['path']])).toEqual([
      ['mallory', 'mx-one', 2, '/api/executions'],
      ['eve', null, 2, '/api/executions/mx-b'],
    ]);
  });

  test('concurrent refusals open one window: one record at once, the rest counted', async () => {
    const audit = memoryAudit();
    const d = createDenialRecorder({ audit, windowMs: WINDOW, now: () => 0 });
    await Promise.all(Array.from({ length: 100 }, () => d.record(denied('mallory'))));
    expect(audit.events).toHaveLength(1);
    expect(d.pending).toBe(99);
  });

  test('close writes every count still held, ended or not, and later refusals are written one by one', async () => {
    let t = 0;
    const audit = memoryAudit();
    const d = createDenialRecorder({ audit, windowMs: WINDOW, now: () => t });
    for (let i = 0; i < 10; i++) await d.record(denied('mallory'));
    for (let i = 0; i < 4; i++) await d.record(denied('eve'));
    t = 5;
    await d.close();
    expect(audit.events.map((e) => [e.actor, countOf(e)])).toEqual([
      ['mallory', 1],
      ['eve', 1],
      ['mallory', 9],
      ['eve', 3],
    ]);
    await d.record(denied('mallory'));
    await d.record(denied('mallory'));
    expect(audit.events).toHaveLength(6);
    expect(d.pending).toBe(0);
  });

  test('past maxKeys the oldest window’s count is written early, never dropped', async () => {
    const audit = memoryAudit();
    const d = createDenialRecorder({ audit, windowMs: WINDOW, now: () => 0, maxKeys: 2 });
    await d.record(denied('a'));
    await d.record(denied('a'));
    await d.record(denied('b'));
    await d.record(denied('c'));
    expect(audit.events.map((e) => [e.actor, countOf(e)])).toEqual([
      ['a', 1],
      ['b', 1],
      ['a', 1],
      ['c', 1],
    ]);
    expect(audit.events[2]!.data['count']).toBe(1);
  });

  test('a count that cannot be written is reported with its size', async () => {
    let t = 0;
    const audit = memoryAudit((e) => e.data['count'] !== undefined);
    const lost: number[] = [];
    const d = createDenialRecorder({ audit, windowMs: WINDOW, now: () => t, onError: (_e, n) => lost.push(n) });
    for (let i = 0; i < 7; i++) await d.record(denied('mallory'));
    t = WINDOW;
    await d.flush();
    expect(lost).toEqual([6]);
  });

  test('a first refusal that cannot be written fails its request', async () => {
    const d = createDenialRecorder({ audit: memoryAudit(() => true), windowMs: WINDOW });
    await expect(d.record(denied('mallory'))).rejects.toThrow('the disk is full');
  });

  test('the timer writes a count when its window ends, without a later request', async () => {
    vi.useFakeTimers({ now: 0 });
    const audit = memoryAudit();
    const d = createDenialRecorder({ audit, windowMs: WINDOW });
    await d.record(denied('mallory'));
    await d.record(denied('mallory'));
    await vi.advanceTimersByTimeAsync(WINDOW - 1);
    expect(audit.events).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(audit.events.map(countOf)).toEqual([1, 1]);
    expect(audit.events[1]!.data['count']).toBe(1);
    // A new window that fills later gets its own timer.
    await d.record(denied('mallory'));
    await d.record(denied('mallory'));
    await d.record(denied('mallory'));
    await vi.advanceTimersByTimeAsync(WINDOW);
    expect(audit.events.map(countOf)).toEqual([1, 1, 1, 2]);
    expect(vi.getTimerCount()).toBe(0);
    await d.close();
  });
});

describe('the vocabulary of folded records', () => {
  const withData = (data: Record<string, unknown>) =>
    refusalEvent('access.denied', {
      executionId: null,
      actor: 'mallory',
      at: '2026-01-01T00:00:00.000Z',
      unique: 'u',
      data: { action: 'launch', reason: 'no', ...data },
    });

  test.each([
    [{}, true],
    [{ count: 999, since: '2026-01-01T00:00:00.000Z', until: '2026-01-01T00:00:59.000Z' }, true],
    [{ count: 0 }, false],
    [{ count: 2.5 }, false],
    [{ count: '999' }, false],
    [{ since: 'yesterday' }, false],
  ])('data %j fits: %s', (data, fits) => {
    expect(checkAuditEvent(withData(data)).ok).toBe(fits);
  });

  test.each([
    [{}, 1],
    [{ count: 999 }, 999],
    [{ count: 0 }, 1],
    [{ count: 'lots' }, 1],
  ])('a record with %j stands for %i refusals', (data, n) => {
    expect(refusalCount({ data })).toBe(n);
  });
});

describe('the route a refusal folds by', () => {
  test.each([
    ['POST', '/api/executions', 'POST /api/executions'],
    ['POST', '/api/executions/mx-anything/votes', 'POST /api/executions/:id/votes'],
    ['GET', '/api/executions/mx-1', 'GET /api/executions/:id'],
    ['GET', '/api/executions/mx-1/events', 'GET /api/executions/:id/events'],
    ['GET', '/api/runbooks/deploy-web', 'GET /api/runbooks/:name'],
    ['GET', '/api/events', 'GET /api/events'],
    ['DELETE', '/api/executions/mx-1', 'DELETE (not a contract route)'],
    ['GET', '/api/executions/a/b/c/d', 'GET (not a contract route)'],
  ])('%s %s is %s', (method, path, route) => {
    expect(routeOf(method, path)).toBe(route);
  });
});
