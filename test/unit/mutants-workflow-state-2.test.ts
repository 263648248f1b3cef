/**
 * The audit recorder of workflows/state.ts (recordAsIs, auditRecorder, recordLocally, failureType)
 * and RunState.setStatus's search-attribute upsert, called directly outside Temporal's sandbox. The
 * whole mutation run had no test for them (27 NoCoverage, and setStatus's upsert unchecked): they
 * issue workflow commands, which need a workflow context. Here that context is a stand-in, set only
 * inside each test: the SDK finds its context in `globalThis.__TEMPORAL_ACTIVATOR__`, an activity
 * call goes through the context's outbound interceptors (the stand-in's answer what the activity
 * would, without scheduling anything), and CancellationScope needs an AsyncLocalStorage, which only
 * the sandbox provides (outside it the SDK leaves an empty class, given `run` and `getStore` here
 * for the test's length). Written against @temporalio/workflow 1.24; a change there fails loudly.
 *
 * Killed: 48:65 (recordAsIs's body), 74:67 (`localRecords = false` → true), 74:87, 76:20, 77:29,
 * 78:45 (`counter--`), 84:48, 86:48, 88:74, 89:9 (`localRecords`, → true, → false), 89:40 (the
 * message → ""), 92:48, 94:29 (`{ together }` → `{}`), 103:67, 104:7, 106:15, 107:9 (→ true,
 * → false, `!==`), 107:28, 164:31 and 164:32 (the upsert's list emptied, its entry `{}`), 181:43,
 * 183:10 (`&&`, `failure.type`), 183:27 (`failure?.cause.type`, `failure.cause`).
 */
import * as wf from '@temporalio/workflow';
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import { RootCancellationScope } from '@temporalio/workflow/lib/cancellation-scope.js';
import { RetryState } from '@temporalio/common';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { NewAuditEvent } from '../../src/core/audit-events.ts';
import { auditRecorder, recordAsIs, RunState, type PendingRecord } from '../../workflows/state.ts';
import { testInput } from '../helpers/plans.ts';

type Call = { kind: 'activity' | 'local'; type: string; args: unknown[] };
type ScheduleInput = { activityType: string; args: unknown[] };

let calls: Call[];
let commands: unknown[];
type Typed = { readonly pairs: unknown[]; updateCopy: (pairs: unknown[]) => Typed };
const typed = (pairs: unknown[]): Typed => ({ pairs, updateCopy: (more) => typed(more) });
let info: { searchAttributes: Record<string, unknown>; typedSearchAttributes: Typed };
/** What the next local activity call answers: undefined, or a failure it rejects with. */
let localAnswer: { fail: unknown } | undefined;

const storageProto = (wf.AsyncLocalStorage as unknown as { prototype: Record<string, unknown> }).prototype;
const g = globalThis as { __TEMPORAL_ACTIVATOR__?: unknown };

beforeEach(() => {
  calls = [];
  commands = [];
  localAnswer = undefined;
  info = { searchAttributes: {}, typedSearchAttributes: typed([]) };
  storageProto['run'] = (_store: unknown, fn: () => unknown) => fn();
  storageProto['getStore'] = () => undefined;
  g.__TEMPORAL_ACTIVATOR__ = {
    rootScope: new RootCancellationScope(),
    hasFlag: () => true,
    bindCurrentRandom: (f: unknown) => f,
    nextSeqs: { activity: 0 },
    interceptors: {
      outbound: [
        {
          scheduleActivity: async (i: ScheduleInput) => {
            calls.push({ kind: 'activity', type: i.activityType, args: i.args });
          },
          scheduleLocalActivity: async (i: ScheduleInput) => {
            calls.push({ kind: 'local', type: i.activityType, args: i.args });
            if (localAnswer) throw localAnswer.fail;
          },
        },
      ],
    },
    pushCommand: (c: unknown) => commands.push(c),
    mutateWorkflowInfo: (f: (i: typeof info) => typeof info) => {
      info = f(info);
    },
  };
});

afterEach(() => {
  delete g.__TEMPORAL_ACTIVATOR__;
  delete storageProto['run'];
  delete storageProto['getStore'];
});

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const running = (actor: string): PendingRecord => ({ type: 'execution.running', actor, data: { approvedBy: ['bob'] } });

/** The event the recorder hands the activity, its time checked for shape only. */
function written(call: Call | undefined): NewAuditEvent {
  const event = call!.args[0] as NewAuditEvent;
  expect(event.at).toMatch(ISO);
  return event;
}

describe('recordAsIs', () => {
  test('hands the event as it is to the recordEvent activity', async () => {
    const event = {
      eventId: 'mx-1:0000:execution.requested',
      executionId: 'mx-1',
      type: 'execution.requested',
      actor: 'alice',
      at: '2026-11-01T00:00:00.000Z',
      data: {},
    } as unknown as NewAuditEvent;
    await expect(recordAsIs(event)).resolves.toBeUndefined();
    expect(calls).toEqual([{ kind: 'activity', type: 'recordEvent', args: [event] }]);
  });
});

describe('auditRecorder', () => {
  test('without local records: each event through the recordEvent activity, numbered from 1 in order', async () => {
    const record = auditRecorder('mx-1');
    await record('execution.running', 'mechanic', { approvedBy: ['bob'] });
    await record('execution.completed', 'mechanic', {});
    expect(calls.map((c) => [c.kind, c.type])).toEqual([
      ['activity', 'recordEvent'],
      ['activity', 'recordEvent'],
    ]);
    expect(written(calls[0])).toEqual({
      eventId: 'mx-1:0001:execution.running',
      executionId: 'mx-1',
      type: 'execution.running',
      actor: 'mechanic',
      at: expect.stringMatching(ISO),
      data: { approvedBy: ['bob'] },
    });
    expect(written(calls[1]).eventId).toBe('mx-1:0002:execution.completed');
  });

  test('without local records, records are not written together', () => {
    const record = auditRecorder('mx-1', false);
    expect(() => record.together([running('mechanic')])).toThrow(
      new Error('records are written together only by runs with local records'),
    );
    expect(calls).toEqual([]);
  });

  test('with local records: one by one through the local activity, or together in one, numbered on', async () => {
    const record = auditRecorder('mx-2', true);
    await record('execution.running', 'mechanic', { approvedBy: ['bob'] });
    await record.together([running('carol'), { type: 'execution.completed', actor: 'mechanic', data: {} }]);
    expect(calls.map((c) => [c.kind, c.type])).toEqual([
      ['local', 'recordEvent'],
      ['local', 'recordEvents'],
    ]);
    expect(written(calls[0]).eventId).toBe('mx-2:0001:execution.running');
    const together = calls[1]!.args[0] as NewAuditEvent[];
    expect(together).toEqual([
      {
        eventId: 'mx-2:0002:execution.running',
        executionId: 'mx-2',
        type: 'execution.running',
        actor: 'carol',
        at: expect.stringMatching(ISO),
        data: { approvedBy: ['bob'] },
      },
      {
        eventId: 'mx-2:0003:execution.completed',
        executionId: 'mx-2',
        type: 'execution.completed',
        actor: 'mechanic',
        at: expect.stringMatching(ISO),
        data: {},
      },
    ]);
  });
});

describe('a local record that fails', () => {
  const conflict = () => ApplicationFailure.nonRetryable('another event has this id', 'AUDIT_EVENT_CONFLICT');

  test('a record already under its id (AUDIT_EVENT_CONFLICT), on the failure or as its cause, stands', async () => {
    const record = auditRecorder('mx-3', true);
    localAnswer = { fail: conflict() };
    await expect(record('execution.running', 'mechanic', { approvedBy: [] })).resolves.toBeUndefined();
    localAnswer = {
      fail: new ActivityFailure(
        'activity failed',
        'recordEvent',
        '1',
        RetryState.NON_RETRYABLE_FAILURE,
        undefined,
        conflict(),
      ),
    };
    await expect(record('execution.running', 'mechanic', { approvedBy: [] })).resolves.toBeUndefined();
    expect(calls).toHaveLength(2);
  });

  test('any other failure is passed on as it is: another type, no type, or no object at all', async () => {
    const record = auditRecorder('mx-4', true);
    const other = ApplicationFailure.nonRetryable('disk full', 'AUDIT_WRITE_FAILED');
    const wrapped = new ActivityFailure('activity failed', 'recordEvent', '1', RetryState.TIMEOUT, undefined, other);
    const plain = new Error('boom');
    for (const fail of [other, wrapped, plain, undefined, null, 'words']) {
      localAnswer = { fail };
      const outcome = await record('execution.running', 'mechanic', { approvedBy: [] }).then(
        () => ({ resolved: true }),
        (e: unknown) => ({ rejected: e }),
      );
      expect(outcome).toStrictEqual({ rejected: fail });
    }
  });
});

describe('RunState.setStatus', () => {
  test('sets the status and upserts it as the MechanicStatus search attribute', () => {
    const state = new RunState(testInput({ executionId: 'mx-state-upsert' }));
    state.setStatus('running');
    expect(state.status).toBe('running');
    expect(commands).toHaveLength(1);
    expect(info.searchAttributes).toEqual({ MechanicStatus: ['running'] });
    expect(info.typedSearchAttributes.pairs).toEqual([
      { key: { name: 'MechanicStatus', type: 'KEYWORD' }, value: 'running' },
    ]);
    state.setStatus('completed');
    expect(commands).toHaveLength(2);
    expect(info.searchAttributes).toEqual({ MechanicStatus: ['completed'] });
  });
});
