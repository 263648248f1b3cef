/**
 * The audit export formats, branch by branch (issue 12, mutation round five): which texts are an
 * ISO time and which Date.parse would guess at, ranges that are empty, CSV cells a spreadsheet would
 * run, every field of an OCSF event (the activity a refusal asked for, who the actor is, the
 * resources, the outcome of the events that are neither success nor failure, severity, detail,
 * message, times), the Parquet schema element by element and a Parquet row's 64-bit columns. Each
 * record is built here; the sample of every type is test/unit/audit-export.test.ts.
 */
import { describe, expect, test } from 'vitest';
import type { AuditRecord } from '../../src/core/audit-chain.ts';
import {
  OCSF_ACTIVITY,
  csvField,
  csvRow,
  exportRange,
  exportTime,
  jsonlLine,
  ocsfEvent,
  ocsfJson,
  parquetRow,
  parquetSchema,
  recordOf,
  unmappedEventTypes,
  type StoredAuditRecord,
} from '../../src/core/audit-export.ts';

const PRODUCT = { version: '9.8.7' };
const HASH_A = 'a'.repeat(64);
const HASH_B = 'b'.repeat(64);

function stored(over: Partial<StoredAuditRecord> = {}): StoredAuditRecord {
  return {
    seq: 42,
    eventId: 'mx-1:0001:step.started',
    executionId: 'mx-1',
    type: 'step.started',
    actor: 'mechanic',
    at: '2026-03-01T09:00:00.000Z',
    data: '{"commandId":"cmd-1","index":0,"phase":"main","step":"restart"}',
    prevHash: HASH_A,
    hash: HASH_B,
    recordedAt: '2026-03-01T09:00:02.500Z',
    ...over,
  };
}

/** An OCSF event of a record of `type` with `data` (no vocabulary check: the mapping alone). */
const event = (type: string, data: Record<string, unknown>, over: Partial<AuditRecord> = {}) =>
  ocsfEvent({ ...recordOf(stored({ type, data: JSON.stringify(data) })), ...over }, PRODUCT);

describe('exportTime', () => {
  test('no value is no bound', () => {
    expect(exportTime(undefined, 'since')).toBeUndefined();
  });

  test.each([
    ['2026-03-01T12:30:15Z', '2026-03-01T12:30:15Z'],
    ['2026-03-01T12:30:15.5', '2026-03-01T12:30:15.500Z'],
    ['2026-03-01T12:30:15.123456789Z', '2026-03-01T12:30:15.123Z'],
    ['2026-03-01T12:30:00-05:00', '2026-03-01T17:30:00Z'],
    ['2026-03-01T12:30:00.000+02:00', '2026-03-01T10:30:00Z'],
  ])('%j is %s', (value, utc) => {
    expect(exportTime(value, 'until')).toBe(Date.parse(utc));
  });

  // Each of these Date.parse reads as some time; only ISO 8601 in full is taken.
  test.each([
    '2026-3-01',
    '2026-03-011',
    '2026-003-01',
    '20260-03-01',
    '2026-03-01T12:30+0200',
    '2026-03-01T12:30:15.1234567890Z',
    '2026-03-01Tx',
    '2026-03-01T12:3Z',
    '2026-03-01T12:30:00+02',
  ])('%j is refused, naming the flag', (bad) => {
    expect(() => exportTime(bad, 'until')).toThrow(
      `until must be an ISO 8601 date or time such as 2026-03-01 or 2026-03-01T12:00:00Z, got "${bad}"`,
    );
  });

  test('a long value is quoted by its first 100 characters only', () => {
    const bad = `${'y'.repeat(100)}${'z'.repeat(50)}`;
    let message = '';
    try {
      exportTime(bad, 'since');
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message.endsWith(`got "${'y'.repeat(100)}"`)).toBe(true);
  });
});

describe('exportRange', () => {
  test('a bad bound is a usage error naming its own flag', () => {
    expect(() => exportRange({ since: 'soon' })).toThrow(
      expect.objectContaining({ code: 'USAGE', message: expect.stringMatching(/^since must be /) }),
    );
    expect(() => exportRange({ until: 'later' })).toThrow(
      expect.objectContaining({ code: 'USAGE', message: expect.stringMatching(/^until must be /) }),
    );
    expect(() => exportRange({ since: '2026-03-02', until: '2026-03-01' })).toThrow(
      expect.objectContaining({ code: 'USAGE' }),
    );
  });
  test('a range whose until is its since is empty and refused', () => {
    expect(() => exportRange({ since: '2026-03-01T00:00:00Z', until: '2026-03-01' })).toThrow(
      'until (2026-03-01) must be later than since (2026-03-01T00:00:00Z)',
    );
  });
  test('a range one millisecond long, or open on either side, is taken', () => {
    expect(exportRange({ since: '2026-03-01T00:00:00Z', until: '2026-03-01T00:00:00.001Z' })).toEqual({
      since: Date.parse('2026-03-01T00:00:00Z'),
      until: Date.parse('2026-03-01T00:00:00.001Z'),
    });
    expect(exportRange({ since: '2026-03-02' })).toEqual({ since: Date.parse('2026-03-02'), until: undefined });
    expect(exportRange({ until: '2026-03-02' })).toEqual({ since: undefined, until: Date.parse('2026-03-02') });
  });
});

describe('csv', () => {
  test.each([
    ['\rfoo', `"'\rfoo"`],
    ['a\rb', '"a\rb"'],
    ['x=1', 'x=1'],
    ['a-b', 'a-b'],
    ["'quoted'", "'quoted'"],
  ])('%j is written as %j', (value, cell) => {
    expect(csvField(value)).toBe(cell);
  });
  test('a row is every column in order', () => {
    expect(csvRow(stored({ executionId: null, actor: '@bob', data: '{"a":1}' }))).toBe(
      `42,mx-1:0001:step.started,,step.started,'@bob,2026-03-01T09:00:00.000Z,2026-03-01T09:00:02.500Z,${HASH_A},${HASH_B},"{""a"":1}"\r\n`,
    );
  });
});

describe('jsonl', () => {
  test('a record of no execution says null, and the line is the record', () => {
    const line = jsonlLine(stored({ executionId: null }));
    expect(line).toBe(
      `{"eventId":"mx-1:0001:step.started","executionId":null,"type":"step.started","actor":"mechanic","at":"2026-03-01T09:00:00.000Z","data":{"commandId":"cmd-1","index":0,"phase":"main","step":"restart"},"seq":42,"prevHash":"${HASH_A}","hash":"${HASH_B}","recordedAt":"2026-03-01T09:00:02.500Z"}\n`,
    );
    expect(JSON.parse(line)).toEqual(recordOf(stored({ executionId: null })));
  });
});

describe('OCSF: the table of event types', () => {
  test('only a refusal takes its activity from what was asked: a skipped step naming an action stays Other', () => {
    expect(event('step.skipped', { action: 'launch', method: 'GET' })).toMatchObject({ activity_id: 99 });
    expect(event('mystery.event', { action: 'readRun' })).toMatchObject({ activity_id: 99 });
  });

  test('a type the table leaves out is named by unmappedEventTypes', () => {
    // The table is complete (audit-export.test.ts); take one entry out for a moment to see a gap named.
    const table = OCSF_ACTIVITY as Record<string, unknown>;
    const saved = table['policy.reloaded'];
    delete table['policy.reloaded'];
    try {
      expect(unmappedEventTypes()).toEqual(['policy.reloaded']);
    } finally {
      table['policy.reloaded'] = saved;
    }
    expect(unmappedEventTypes()).toEqual([]);
  });
});

describe('OCSF: the activity a refusal names', () => {
  test.each([
    [{ action: 'readRunbook' }, 2, 'Read'],
    [{ action: 'readRun' }, 2, 'Read'],
    [{ action: 'readAudit' }, 2, 'Read'],
    [{ action: 'exportAudit' }, 2, 'Read'],
    [{ action: 'launch' }, 1, 'Create'],
    [{ action: 'publish' }, 1, 'Create'],
    [{ action: 'cancel' }, 3, 'Update'],
    [{ action: 'launch', method: 'GET' }, 1, 'Create'],
    [{ method: 'GET' }, 2, 'Read'],
    [{ method: 'HEAD' }, 2, 'Read'],
    [{ method: 'POST' }, 3, 'Update'],
    [{ method: 'DELETE' }, 99, 'Other'],
    [{}, 99, 'Other'],
    [{ action: 7, method: 'POST' }, 3, 'Update'],
  ])('%j: activity %i (%s)', (data, id, name) => {
    for (const type of ['access.denied', 'request.refused']) {
      expect(event(type, data)).toMatchObject({
        activity_id: id,
        activity_name: name,
        type_uid: 600300 + id,
        type_name: `API Activity: ${name}`,
      });
    }
  });
  test('a refused vote keeps its own activity (Update), whatever it asked', () => {
    expect(event('approval.refused', { method: 'GET', reason: 'no' })).toMatchObject({
      activity_id: 3,
      activity_name: 'Update',
      status_id: 2,
      status: 'Failure',
      severity_id: 3,
      severity: 'Medium',
    });
  });
});

describe('OCSF: status and severity', () => {
  test.each([
    ['execution.requested', {}, 1, 'Success', 1, 'Informational'],
    ['execution.failed', { reason: 'x' }, 2, 'Failure', 2, 'Low'],
    ['access.denied', { action: 'readRun', reason: 'x' }, 2, 'Failure', 3, 'Medium'],
    ['step.completed', { ok: true }, 1, 'Success', 1, 'Informational'],
    ['step.completed', { ok: false }, 2, 'Failure', 2, 'Low'],
    ['step.completed', { ok: 'true' }, 2, 'Failure', 2, 'Low'],
    ['step.instance', { status: 'Success' }, 1, 'Success', 1, 'Informational'],
    ['step.instance', { status: 'TimedOut' }, 2, 'Failure', 2, 'Low'],
    ['policy.reloaded', { applied: true }, 1, 'Success', 1, 'Informational'],
    ['policy.reloaded', { applied: false }, 2, 'Failure', 2, 'Low'],
    ['step.skipped', {}, 99, 'skipped', 1, 'Informational'],
    ['execution.expired', {}, 99, 'expired', 1, 'Informational'],
    ['mystery.event', {}, 99, 'event', 1, 'Informational'],
  ])('%s %j: status %i %s, severity %i %s', (type, data, statusId, status, severityId, severity) => {
    const e = event(type, data);
    expect([e.status_id, e.status, e.severity_id, e.severity]).toEqual([statusId, status, severityId, severity]);
  });
  test('a type outside the table is an Other activity', () => {
    expect(event('mystery.event', {})).toMatchObject({ activity_id: 99, activity_name: 'Other', type_uid: 600399 });
  });
});

describe('OCSF: detail, code and message', () => {
  test('the detail is the reason, else the status details, else the error, skipping empty ones; cut at 2,000', () => {
    expect(event('execution.failed', { reason: 'r', statusDetails: 's', error: 'e' }).status_detail).toBe('r');
    expect(event('execution.failed', { reason: '', statusDetails: 's', error: 'e' }).status_detail).toBe('s');
    expect(event('execution.failed', { statusDetails: '', error: 'e' }).status_detail).toBe('e');
    expect(event('execution.failed', { reason: 7 })).not.toHaveProperty('status_detail');
    expect(event('execution.failed', { reason: 'x'.repeat(2_001) }).status_detail).toBe('x'.repeat(2_000));
  });
  test('a code is the status code only when it is text', () => {
    expect(event('access.denied', { code: 'DENIED' }).status_code).toBe('DENIED');
    expect(event('access.denied', { code: 403 })).not.toHaveProperty('status_code');
    expect(event('access.denied', { code: '' })).not.toHaveProperty('status_code');
  });
  test('the message names the type, the actor and the execution when there is one', () => {
    expect(event('step.started', {}).message).toBe('step.started by mechanic on execution mx-1');
    expect(event('policy.reloaded', {}, { executionId: null, actor: 'root' }).message).toBe('policy.reloaded by root');
  });
});

describe('OCSF: the whole event', () => {
  test('every mapped field of a plain record', () => {
    const { unmapped, ...mapped } = event('step.started', { channel: 'web', address: '10.0.0.9' });
    expect(mapped).toStrictEqual({
      activity_id: 1,
      activity_name: 'Create',
      category_uid: 6,
      category_name: 'Application Activity',
      class_uid: 6003,
      class_name: 'API Activity',
      type_uid: 600301,
      type_name: 'API Activity: Create',
      severity_id: 1,
      severity: 'Informational',
      status_id: 1,
      status: 'Success',
      message: 'step.started by mechanic on execution mx-1',
      time: Date.parse('2026-03-01T09:00:00.000Z'),
      timezone_offset: 0,
      metadata: {
        uid: 'mx-1:0001:step.started',
        version: '1.1.0',
        product: { name: 'mechanic', vendor_name: 'mechanic', version: '9.8.7' },
        sequence: 42,
        logged_time: Date.parse('2026-03-01T09:00:02.500Z'),
        original_time: '2026-03-01T09:00:00.000Z',
        log_name: 'audit',
        log_provider: 'mechanic',
        correlation_uid: 'mx-1',
      },
      actor: { user: { uid: 'mechanic', name: 'mechanic', type: 'System', type_id: 3 } },
      api: { operation: 'step.started', service: { name: 'mechanic' } },
      src_endpoint: { ip: '10.0.0.9', svc_name: 'web' },
      resources: [{ uid: 'mx-1', type: 'execution' }],
    });
    expect(unmapped.seq).toBe(42);
  });
  test('a record of no execution has no correlation id, and no address means no ip', () => {
    const e = event('policy.reloaded', { applied: true, channel: '' }, { executionId: null });
    expect(e.metadata).not.toHaveProperty('correlation_uid');
    expect(e.src_endpoint).toStrictEqual({ svc_name: 'mechanic' });
    expect(e.resources).toEqual([]);
  });
  test.each([
    ['mechanic', { uid: 'mechanic', name: 'mechanic', type: 'System', type_id: 3 }],
    ['anonymous', { uid: 'anonymous', name: 'anonymous', type: 'Unknown', type_id: 0 }],
    ['alice', { uid: 'alice', name: 'alice', type: 'User', type_id: 1 }],
  ])('the actor %s is %j', (actor, user) => {
    expect(event('step.started', {}, { actor }).actor.user).toStrictEqual(user);
  });
});

describe('OCSF: resources', () => {
  test('a runbook event names the runbook version; a version that is no number leaves the version out', () => {
    expect(event('runbook.published', { name: 'deploy', version: 3 }, { executionId: null }).resources).toStrictEqual([
      { uid: 'deploy@3', name: 'deploy', type: 'runbook', version: '3' },
    ]);
    expect(
      event('runbook.deprecated', { name: 'deploy', version: '3' }, { executionId: null }).resources,
    ).toStrictEqual([{ uid: 'deploy', name: 'deploy', type: 'runbook' }]);
    expect(event('runbook.reviewed', { name: '' }, { executionId: null }).resources).toEqual([]);
  });
  test('only a request or a runbook event names a runbook; only a request lists targets', () => {
    expect(event('step.started', { name: 'deploy', version: 3, targets: ['i-1'] }).resources).toStrictEqual([
      { uid: 'mx-1', type: 'execution' },
    ]);
    expect(event('policy.reloaded', { runbook: { name: 'deploy', version: 1 } }).resources).toStrictEqual([
      { uid: 'mx-1', type: 'execution' },
    ]);
  });
  test('a request names its runbook from its own data and its targets that are text', () => {
    expect(
      event('execution.requested', {
        runbook: { name: 'deploy', version: 2 },
        name: 'not-this',
        targets: ['i-1', 5, 'i-2'],
      }).resources,
    ).toStrictEqual([
      { uid: 'mx-1', type: 'execution' },
      { uid: 'deploy@2', name: 'deploy', type: 'runbook', version: '2' },
      { uid: 'i-1', type: 'instance' },
      { uid: 'i-2', type: 'instance' },
    ]);
    expect(event('execution.requested', { runbook: { name: 'deploy', version: 2 }, targets: 'i-1' }).resources).toEqual(
      [
        { uid: 'mx-1', type: 'execution' },
        { uid: 'deploy@2', name: 'deploy', type: 'runbook', version: '2' },
      ],
    );
  });
  test('an instance event names its instance; an empty id is none', () => {
    expect(event('step.instance', { instanceId: 'i-9', status: 'Success' }).resources).toStrictEqual([
      { uid: 'mx-1', type: 'execution' },
      { uid: 'i-9', type: 'instance' },
    ]);
    expect(event('step.instance', { instanceId: '', status: 'Success' }).resources).toHaveLength(1);
  });
});

describe('parquet', () => {
  // Built inside each test: a schema built while the file loads is judged static by Stryker, so a
  // mutant of it would go unseen (docs/mutation.md, "a kill Stryker did not see").
  const at = (name: string, nth = 0) => parquetSchema().filter((e) => e.name === name)[nth];

  test('each kind of leaf has its physical and converted type; a leaf not always set is OPTIONAL', () => {
    expect(at('activity_id')).toStrictEqual({ name: 'activity_id', type: 'INT32', repetition_type: 'REQUIRED' });
    expect(at('type_uid')).toStrictEqual({ name: 'type_uid', type: 'INT64', repetition_type: 'REQUIRED' });
    expect(at('message')).toStrictEqual({
      name: 'message',
      type: 'BYTE_ARRAY',
      converted_type: 'UTF8',
      repetition_type: 'REQUIRED',
    });
    expect(at('status_code')).toStrictEqual({
      name: 'status_code',
      type: 'BYTE_ARRAY',
      converted_type: 'UTF8',
      repetition_type: 'OPTIONAL',
    });
    expect(at('unmapped')).toStrictEqual({
      name: 'unmapped',
      type: 'BYTE_ARRAY',
      converted_type: 'JSON',
      repetition_type: 'REQUIRED',
    });
    expect(at('logged_time')).toStrictEqual({
      name: 'logged_time',
      type: 'INT64',
      converted_type: 'TIMESTAMP_MILLIS',
      repetition_type: 'REQUIRED',
    });
  });

  test('the root, groups and the list, in order, each with its children', () => {
    const schema = parquetSchema();
    expect(schema[0]).toStrictEqual({ name: 'schema', repetition_type: 'REQUIRED', num_children: 23 });
    expect(at('metadata')).toStrictEqual({ name: 'metadata', repetition_type: 'REQUIRED', num_children: 9 });
    expect(at('product')).toStrictEqual({ name: 'product', repetition_type: 'REQUIRED', num_children: 3 });
    const list = schema.findIndex((e) => e.name === 'resources');
    expect(schema.slice(list, list + 7)).toStrictEqual([
      { name: 'resources', converted_type: 'LIST', repetition_type: 'REQUIRED', num_children: 1 },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      { name: 'element', repetition_type: 'REQUIRED', num_children: 4 },
      { name: 'uid', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
      { name: 'name', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
      { name: 'type', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
      { name: 'version', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
    ]);
    expect(schema.map((e) => e.name).slice(0, 4)).toEqual(['schema', 'activity_id', 'activity_name', 'category_uid']);
  });

  test('a row is the OCSF event with its 64-bit columns as bigint and unmapped as the stored JSON text', () => {
    const r = stored();
    const row = parquetRow(r, PRODUCT);
    const e = ocsfEvent(recordOf(r), PRODUCT);
    expect(row['type_uid']).toBe(600301n);
    expect(row['time']).toBe(BigInt(Date.parse(r.at)));
    expect(row['metadata']).toStrictEqual({
      ...e.metadata,
      sequence: 42n,
      logged_time: BigInt(Date.parse(r.recordedAt)),
    });
    expect(row['unmapped']).toBe(jsonlLine(r).slice(0, -1));
    expect(row['message']).toBe(e.message);
    expect(row['resources']).toEqual(e.resources);
  });

  test('the OCSF JSON text is the event with the stored record spliced in as unmapped', () => {
    const r = stored();
    const { unmapped: _u, ...mapped } = ocsfEvent(recordOf(r), PRODUCT);
    expect(ocsfJson(r, PRODUCT)).toBe(
      `${JSON.stringify(mapped).slice(0, -1)},"unmapped":${jsonlLine(r).slice(0, -1)}}`,
    );
  });
});
