/**
 * The export formats, record by record: JSON Lines exactly as stored, CSV quoting and formula
 * safety, OCSF API Activity events checked against the class's JSON Schema (ajv), and the ranges.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, test } from 'vitest';
import { GENESIS_HASH, chainHash, verifyChain, type AuditRecord } from '../../src/core/audit-chain.ts';
import { AUDIT_EVENT_TYPES, checkAuditEvent, type NewAuditEvent } from '../../src/core/audit-events.ts';
import {
  csvField,
  csvHeader,
  csvRow,
  exportRange,
  exportTime,
  jsonlLine,
  ocsfEvent,
  ocsfJson,
  parquetSchema,
  unmappedEventTypes,
  type StoredAuditRecord,
} from '../../src/core/audit-export.ts';
import { canonicalJson } from '../../src/core/canonical.ts';
import { everyTypeSample } from '../helpers/audit-samples.ts';

const SCHEMA = JSON.parse(
  readFileSync(new URL('../fixtures/ocsf/api_activity.schema.json', import.meta.url), 'utf8'),
) as object;
const validate = new Ajv({ allErrors: true, strict: false }).compile(SCHEMA);
const PRODUCT = { version: '0.1.0' };

/** Events chained as the store chains them, with `data` stored as canonical text. */
function stored(events: readonly NewAuditEvent[]): StoredAuditRecord[] {
  let prevHash = GENESIS_HASH;
  return events.map((e, i) => {
    const hash = chainHash(prevHash, e);
    const r = { ...e, data: canonicalJson(e.data), seq: i + 1, prevHash, hash, recordedAt: e.at };
    prevHash = hash;
    return r;
  });
}

const SAMPLE = everyTypeSample('mx-unit', '2026-03-01T09:00:00.000Z');
const ROWS = stored(SAMPLE);
const recordAt = (r: StoredAuditRecord): AuditRecord =>
  ({ ...r, data: JSON.parse(r.data) as Record<string, unknown> }) as AuditRecord;

describe('the sample', () => {
  test('covers every event type, each valid in the vocabulary', () => {
    expect(new Set(SAMPLE.map((e) => e.type))).toEqual(new Set(AUDIT_EVENT_TYPES));
    for (const e of SAMPLE) expect(checkAuditEvent(e)).toMatchObject({ ok: true });
  });
});

describe('jsonl', () => {
  test('each line is the record as stored: it parses to the record, and the chain re-verifies', () => {
    const records = ROWS.map((r) => JSON.parse(jsonlLine(r)) as AuditRecord);
    expect(records.map((r) => canonicalJson(r.data))).toEqual(ROWS.map((r) => r.data));
    expect(verifyChain(records, GENESIS_HASH, 1)).toEqual({ ok: true, count: ROWS.length });
    expect(ROWS.every((r) => jsonlLine(r).endsWith('}\n') && !jsonlLine(r).slice(0, -1).includes('\n'))).toBe(true);
  });
  test('data is the stored text itself, not re-encoded (a re-encoding would reorder integer-like keys)', () => {
    const row = stored([{ ...SAMPLE[0]!, data: { ...SAMPLE[0]!.data, params: { b: 1, '10': 'x', '2': 'y' } } }])[0]!;
    expect(row.data).toContain('"params":{"10":"x","2":"y","b":1}');
    expect(jsonlLine(row)).toContain(`"data":${row.data},"seq":1,`);
  });
  test('a changed byte of data breaks the re-verification at that record', () => {
    const lines = ROWS.map(jsonlLine);
    lines[3] = lines[3]!.replace('"mechanic"', '"mechanix"');
    const verdict = verifyChain(
      lines.map((l) => JSON.parse(l) as AuditRecord),
      GENESIS_HASH,
      1,
    );
    expect(verdict).toMatchObject({ ok: false, seq: 4 });
  });
});

describe('csv', () => {
  test.each([
    ['plain', 'plain'],
    ['=1+2', "'=1+2"],
    ['+SUM(A1)', "'+SUM(A1)"],
    ['-2', "'-2"],
    ['@cmd', "'@cmd"],
    ['\t=x', "'\t=x"],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\nlines', '"two\nlines"'],
    ['=a,"b"', `"'=a,""b"""`],
    ['', ''],
  ])('%j is written as %j', (value, cell) => {
    expect(csvField(value)).toBe(cell);
  });
  test('a header, then one CRLF-terminated row per record with the documented columns', () => {
    expect(csvHeader()).toBe('seq,event_id,execution_id,type,actor,at,recorded_at,prev_hash,hash,data\r\n');
    const row = csvRow(ROWS[0]!);
    expect(row.endsWith('\r\n')).toBe(true);
    expect(row.startsWith(`1,mx-unit-0:0000:execution.requested,mx-unit-0,execution.requested,alice,`)).toBe(true);
    // The data cell is the canonical JSON, quoted (it holds quotes and commas), never a formula.
    expect(row).toContain(`"${ROWS[0]!.data.replaceAll('"', '""')}"\r\n`);
  });
  test('an execution-less record has an empty execution_id cell', () => {
    const loose = ROWS.find((r) => r.executionId === null)!;
    expect(csvRow(loose).split(',')[2]).toBe('');
  });
});

describe('OCSF API Activity', () => {
  test('every event type is mapped', () => {
    expect(unmappedEventTypes()).toEqual([]);
  });
  test('every event of every type validates against the OCSF 1.1.0 API Activity schema', () => {
    for (const r of ROWS) {
      const event = JSON.parse(ocsfJson(r, PRODUCT)) as unknown;
      const ok = validate(event);
      expect(ok ? [] : validate.errors, r.type).toEqual([]);
    }
  });
  test('the schema is not a rubber stamp: a misspelt attribute, a wrong class or a missing actor fails', () => {
    const good = ocsfEvent(recordAt(ROWS[0]!), PRODUCT) as unknown as Record<string, unknown>;
    expect(validate(good)).toBe(true);
    expect(validate({ ...good, actr: good['actor'] })).toBe(false);
    expect(validate({ ...good, class_uid: 6001 })).toBe(false);
    const { actor: _actor, ...noActor } = good;
    expect(validate(noActor)).toBe(false);
    expect(validate({ ...good, metadata: { ...(good['metadata'] as object), product: {} } })).toBe(false);
    expect(validate({ ...good, time: '2026-03-01T09:00:00Z' })).toBe(false);
  });
  test('the request: Create, who, what, on which resources, when (epoch ms), mechanic as the product', () => {
    const e = ocsfEvent(recordAt(ROWS[0]!), PRODUCT);
    expect(e).toMatchObject({
      class_uid: 6003,
      category_uid: 6,
      activity_id: 1,
      activity_name: 'Create',
      type_uid: 600301,
      status_id: 1,
      severity_id: 1,
      time: Date.parse('2026-03-01T09:00:00.000Z'),
      metadata: {
        uid: 'mx-unit-0:0000:execution.requested',
        version: '1.1.0',
        product: { name: 'mechanic', vendor_name: 'mechanic', version: '0.1.0' },
        sequence: 1,
        correlation_uid: 'mx-unit-0',
      },
      actor: { user: { uid: 'alice', name: 'alice', type_id: 1 } },
      api: { operation: 'execution.requested' },
      src_endpoint: { svc_name: 'mechanic' },
    });
    expect(e.resources).toEqual([
      { uid: 'mx-unit-0', type: 'execution' },
      { uid: 'deploy-web@3', name: 'deploy-web', type: 'runbook', version: '3' },
      { uid: 'i-0abc', type: 'instance' },
      { uid: 'i-0def', type: 'instance' },
    ]);
    expect(e.unmapped).toEqual(recordAt(ROWS[0]!));
  });
  test('a refusal: the activity asked for, Failure, Medium, the reason and code, the client address', () => {
    const denied = ocsfEvent(recordAt(ROWS.find((r) => r.type === 'access.denied')!), PRODUCT);
    expect(denied).toMatchObject({
      activity_id: 2,
      status_id: 2,
      status: 'Failure',
      severity_id: 3,
      status_detail: 'mallory (operator) may not export the audit log',
      src_endpoint: { svc_name: 'cli' },
    });
    const limited = ocsfEvent(recordAt(ROWS.find((r) => r.type === 'request.refused')!), PRODUCT);
    expect(limited).toMatchObject({
      activity_id: 2,
      status_code: 'RATE_LIMITED',
      src_endpoint: { ip: '127.0.0.1', svc_name: 'api' },
      actor: { user: { uid: 'anonymous', type_id: 0 } },
    });
  });
  test('outcomes: a failed run and a failed instance are failures; expired, cancelled and rejected are named', () => {
    const status = (type: string, nth = 0) =>
      ocsfEvent(recordAt(ROWS.filter((r) => r.type === type)[nth]!), PRODUCT).status;
    expect(status('execution.completed')).toBe('Success');
    expect(status('execution.failed')).toBe('Failure');
    expect(status('step.instance', 1)).toBe('Failure');
    expect(status('step.instance', 0)).toBe('Success');
    expect(status('execution.expired')).toBe('expired');
    expect(status('execution.cancelled')).toBe('cancelled');
    expect(status('execution.rejected')).toBe('rejected');
    expect(ocsfEvent(recordAt(ROWS.find((r) => r.type === 'credentials.issued')!), PRODUCT).actor.user).toEqual({
      uid: 'mechanic',
      name: 'mechanic',
      type: 'System',
      type_id: 3,
    });
  });
  test('unmapped carries the stored record byte for byte (data as the hashed text)', () => {
    const withIntegerKeys = stored([
      { ...SAMPLE[0]!, data: { ...SAMPLE[0]!.data, params: { b: 1, '10': 'x', '2': 'y' } } },
    ])[0]!;
    const text = ocsfJson(withIntegerKeys, PRODUCT);
    expect(text).toContain(`"unmapped":${jsonlLine(withIntegerKeys).trimEnd()}}`);
  });
});

describe('parquet schema', () => {
  test('OCSF nesting with typed leaves, resources as a standard LIST, unmapped as JSON', () => {
    const schema = parquetSchema();
    expect(schema[0]).toMatchObject({ name: 'schema', num_children: 23 });
    expect(schema.find((e) => e.name === 'time')).toEqual({
      name: 'time',
      type: 'INT64',
      converted_type: 'TIMESTAMP_MILLIS',
      repetition_type: 'REQUIRED',
    });
    expect(schema.find((e) => e.name === 'resources')).toMatchObject({ converted_type: 'LIST', num_children: 1 });
    expect(schema.find((e) => e.name === 'unmapped')).toMatchObject({ type: 'BYTE_ARRAY', converted_type: 'JSON' });
    // Every group declares exactly the children that follow it.
    let i = 0;
    const walk = (): void => {
      const e = schema[i++]!;
      for (let c = 0; c < (e.num_children ?? 0); c++) walk();
    };
    walk();
    expect(i).toBe(schema.length);
  });
});

describe('ranges', () => {
  test('ISO dates and times; a time without an offset is UTC', () => {
    expect(exportTime('2026-03-01', 'since')).toBe(Date.parse('2026-03-01T00:00:00Z'));
    expect(exportTime('2026-03-01T12:30', 'since')).toBe(Date.parse('2026-03-01T12:30:00Z'));
    expect(exportTime('2026-03-01T12:30:00+02:00', 'since')).toBe(Date.parse('2026-03-01T10:30:00Z'));
  });
  test('a time without an offset is UTC on a machine in another zone too', () => {
    // In a process of its own: a zone set on process.env in this one does not apply in a worker thread.
    const module = new URL('../../src/core/audit-export.ts', import.meta.url).href;
    const script = `
      const { exportTime } = await import(${JSON.stringify(module)});
      console.log(JSON.stringify([new Date('2026-03-01T12:30').getUTCHours(), exportTime('2026-03-01T12:30', 'since')]));`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, TZ: 'America/New_York' },
      encoding: 'utf8',
    });
    const [localHours, since] = JSON.parse(out) as [number, number];
    expect(localHours).not.toBe(12); // the zone really applies
    expect(since).toBe(Date.parse('2026-03-01T12:30:00Z'));
  });
  test.each(['yesterday', 'March 7', '2026-13-01', '2026-03-01T25:00Z', '1700000000', '2026-03-01 12:00'])(
    '%j is one sentence naming the flag',
    (bad) => {
      expect(() => exportTime(bad, 'since')).toThrow(
        `since must be an ISO 8601 date or time such as 2026-03-01 or 2026-03-01T12:00:00Z, got "${bad}"`,
      );
    },
  );
  test('until must be after since', () => {
    expect(() => exportRange({ since: '2026-03-02', until: '2026-03-01' })).toThrow(
      'until (2026-03-01) must be later than since (2026-03-02)',
    );
    expect(exportRange({})).toEqual({ since: undefined, until: undefined });
  });
});
