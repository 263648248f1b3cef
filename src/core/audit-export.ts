/**
 * What an audit export says, format by format: one JSON Lines record as stored, one CSV row, one
 * OCSF API Activity event, one Parquet row for an Amazon Security Lake custom source. Pure: the
 * store (src/store/audit-export.ts) reads the log in bounded pages and streams these out.
 *
 * Every format starts from the record exactly as stored — `data` is the canonical JSON text the
 * hash covers — so a reader of the JSON Lines export can re-derive every hash byte for byte, and
 * the OCSF and Parquet exports carry that same record under `unmapped`.
 */
import type { AuditRecord } from './audit-chain.ts';
import { UserError } from './errors.ts';
import { AUDIT_EVENT_TYPES, type AuditEventType } from './audit-events.ts';

export const AUDIT_EXPORT_FORMATS = ['jsonl', 'csv', 'ocsf', 'parquet'] as const;
export type AuditExportFormat = (typeof AUDIT_EXPORT_FORMATS)[number];

export interface AuditExportQuery {
  /** ISO time: only events that happened (`at`) at or after it. */
  readonly since?: string | undefined;
  /** ISO time: only events that happened before it (exclusive). */
  readonly until?: string | undefined;
  readonly executionId?: string | undefined;
}

/**
 * An ISO 8601 date or time as epoch milliseconds; anything else is one sentence naming `flag`. A
 * time without an offset is UTC (as a date alone is), never the machine's local time.
 */
export function exportTime(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const m = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?$/.exec(value);
  // Only ISO 8601: Date.parse alone also takes "March 7" and guesses.
  const t = m ? Date.parse(m[1] !== undefined && m[2] === undefined ? `${value}Z` : value) : NaN;
  if (Number.isNaN(t)) {
    throw new UserError(
      'USAGE',
      `${flag} must be an ISO 8601 date or time such as 2026-03-01 or 2026-03-01T12:00:00Z, got "${value.slice(0, 100)}"`,
    );
  }
  return t;
}

/** Checks a query's times (one sentence naming the bad one); returns them as epoch milliseconds. */
export function exportRange(q: AuditExportQuery): { since: number | undefined; until: number | undefined } {
  const since = exportTime(q.since, 'since');
  const until = exportTime(q.until, 'until');
  if (since !== undefined && until !== undefined && until <= since) {
    throw new UserError('USAGE', `until (${q.until}) must be later than since (${q.since})`);
  }
  return { since, until };
}

/** Content type and file extension of each format (the UI's download names use the extension). */
export const EXPORT_MEDIA: Readonly<Record<AuditExportFormat, { readonly type: string; readonly extension: string }>> =
  {
    jsonl: { type: 'application/x-ndjson; charset=utf-8', extension: 'jsonl' },
    csv: { type: 'text/csv; charset=utf-8; header=present', extension: 'csv' },
    ocsf: { type: 'application/json; charset=utf-8', extension: 'ocsf.json' },
    parquet: { type: 'application/vnd.apache.parquet', extension: 'parquet' },
  };

/** One row of audit_events as stored: `data` is the canonical JSON text the hash covers, not re-encoded. */
export interface StoredAuditRecord {
  readonly seq: number;
  readonly eventId: string;
  readonly executionId: string | null;
  readonly type: string;
  readonly actor: string;
  readonly at: string;
  readonly data: string;
  readonly prevHash: string;
  readonly hash: string;
  readonly recordedAt: string;
}

/**
 * One JSON Lines record: the same fields, in the same order, as the API's audit records, with
 * `data` inserted as the stored text. JSON.parse of the line gives the AuditRecord; canonicalJson
 * of its data is the stored text again.
 */
export function jsonlLine(r: StoredAuditRecord): string {
  return (
    `{"eventId":${JSON.stringify(r.eventId)},"executionId":${JSON.stringify(r.executionId)},` +
    `"type":${JSON.stringify(r.type)},"actor":${JSON.stringify(r.actor)},"at":${JSON.stringify(r.at)},` +
    `"data":${r.data},"seq":${r.seq},"prevHash":${JSON.stringify(r.prevHash)},"hash":${JSON.stringify(r.hash)},` +
    `"recordedAt":${JSON.stringify(r.recordedAt)}}\n`
  );
}

/** The record a stored row stands for (data parsed). */
export function recordOf(r: StoredAuditRecord): AuditRecord {
  return {
    eventId: r.eventId,
    executionId: r.executionId,
    type: r.type as AuditEventType,
    actor: r.actor,
    at: r.at,
    data: JSON.parse(r.data) as Record<string, unknown>,
    seq: r.seq,
    prevHash: r.prevHash,
    hash: r.hash,
    recordedAt: r.recordedAt,
  };
}

// ---------------------------------------------------------------------------------------------
// CSV (RFC 4180)

/** The CSV columns, in order. `data` is the event's canonical JSON, as hashed. */
export const CSV_COLUMNS = [
  'seq',
  'event_id',
  'execution_id',
  'type',
  'actor',
  'at',
  'recorded_at',
  'prev_hash',
  'hash',
  'data',
] as const;

/**
 * One CSV field. A value a spreadsheet would run as a formula (starting with = + - @, or a tab or
 * carriage return that some spreadsheets skip before one) is prefixed with an apostrophe, so it
 * shows as text (OWASP's advice for CSV injection); then RFC 4180 quoting: a field holding a
 * comma, a quote, CR or LF is quoted, with quotes doubled.
 */
export function csvField(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

/** The header line, CRLF-terminated as RFC 4180 says. */
export function csvHeader(): string {
  return `${CSV_COLUMNS.join(',')}\r\n`;
}

export function csvRow(r: StoredAuditRecord): string {
  const cells = [
    String(r.seq),
    r.eventId,
    r.executionId ?? '',
    r.type,
    r.actor,
    r.at,
    r.recordedAt,
    r.prevHash,
    r.hash,
    r.data,
  ];
  return `${cells.map(csvField).join(',')}\r\n`;
}

// ---------------------------------------------------------------------------------------------
// OCSF 1.1.0 API Activity (class_uid 6003, category_uid 6 Application Activity)

export const OCSF_VERSION = '1.1.0';
const API_ACTIVITY = 6003;
const APPLICATION_ACTIVITY = 6;

type ActivityId = 1 | 2 | 3 | 4 | 99;
const ACTIVITY_NAME: Readonly<Record<ActivityId, string>> = {
  1: 'Create',
  2: 'Read',
  3: 'Update',
  4: 'Delete',
  99: 'Other',
};

type Outcome = 'success' | 'failure' | 'refused' | 'other';

/**
 * How each event type reads as an API activity: what it did to mechanic's state (create, read,
 * update), whether it worked, and how much a reviewer should care. Refusals take their activity
 * from what was asked (activityOfRefusal). Every type of the vocabulary is listed; a test keeps it so.
 */
export const OCSF_ACTIVITY: Readonly<Record<string, { activity: ActivityId; outcome: Outcome } | undefined>> = {
  'execution.requested': { activity: 1, outcome: 'success' },
  'approval.granted': { activity: 3, outcome: 'success' },
  'approval.rejected': { activity: 3, outcome: 'success' },
  'approval.refused': { activity: 3, outcome: 'refused' },
  'access.denied': { activity: 99, outcome: 'refused' },
  'request.refused': { activity: 99, outcome: 'refused' },
  'credentials.issued': { activity: 1, outcome: 'success' },
  'execution.running': { activity: 3, outcome: 'success' },
  'step.started': { activity: 1, outcome: 'success' },
  'step.instance': { activity: 3, outcome: 'other' },
  'step.completed': { activity: 3, outcome: 'other' },
  'step.skipped': { activity: 99, outcome: 'other' },
  'execution.completed': { activity: 3, outcome: 'success' },
  'execution.failed': { activity: 3, outcome: 'failure' },
  'execution.expired': { activity: 3, outcome: 'other' },
  'execution.cancelled': { activity: 3, outcome: 'other' },
  'execution.rejected': { activity: 3, outcome: 'other' },
  'runbook.published': { activity: 1, outcome: 'success' },
  'runbook.reviewed': { activity: 3, outcome: 'success' },
  'runbook.deprecated': { activity: 3, outcome: 'success' },
  'policy.reloaded': { activity: 3, outcome: 'other' },
};

/** Event types OCSF_ACTIVITY does not map (empty while the table is complete; a test asserts it). */
export function unmappedEventTypes(): AuditEventType[] {
  return AUDIT_EVENT_TYPES.filter((t) => OCSF_ACTIVITY[t] === undefined);
}

const READ_ACTIONS = new Set(['readRunbook', 'readRun', 'readAudit', 'exportAudit']);
const CREATE_ACTIONS = new Set(['launch', 'publish']);

/** A refusal's activity is what the caller tried: a read, a create, or a change. */
function activityOfRefusal(data: Readonly<Record<string, unknown>>): ActivityId {
  const action = data['action'];
  if (typeof action === 'string') return READ_ACTIONS.has(action) ? 2 : CREATE_ACTIONS.has(action) ? 1 : 3;
  const method = data['method'];
  if (method === 'GET' || method === 'HEAD') return 2;
  if (method === 'POST') return 3;
  return 99;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** OCSF's user.type_id: mechanic's own writer is the system; 'anonymous' is not known. */
function userOf(actor: string): { uid: string; name: string; type: string; type_id: number } {
  if (actor === 'mechanic') return { uid: actor, name: actor, type: 'System', type_id: 3 };
  if (actor === 'anonymous') return { uid: actor, name: actor, type: 'Unknown', type_id: 0 };
  return { uid: actor, name: actor, type: 'User', type_id: 1 };
}

interface OcsfResource {
  uid?: string;
  name?: string;
  type: string;
  version?: string;
}

/** The resources an event touched: its execution, a runbook version, an instance. */
function resourcesOf(record: AuditRecord): OcsfResource[] {
  const d = record.data;
  const out: OcsfResource[] = [];
  if (record.executionId !== null) out.push({ uid: record.executionId, type: 'execution' });
  const runbook =
    record.type === 'execution.requested' ? (d['runbook'] as Record<string, unknown> | undefined) : undefined;
  const name = str(runbook?.['name']) ?? (record.type.startsWith('runbook.') ? str(d['name']) : undefined);
  const version = runbook?.['version'] ?? d['version'];
  if (name !== undefined) {
    out.push({
      uid: typeof version === 'number' ? `${name}@${version}` : name,
      name,
      type: 'runbook',
      ...(typeof version === 'number' ? { version: String(version) } : {}),
    });
  }
  if (record.type === 'execution.requested' && Array.isArray(d['targets'])) {
    for (const t of d['targets']) if (typeof t === 'string') out.push({ uid: t, type: 'instance' });
  }
  const instance = str(d['instanceId']);
  if (instance !== undefined) out.push({ uid: instance, type: 'instance' });
  return out;
}

function outcomeOf(record: AuditRecord, outcome: Outcome): { status_id: number; status: string } {
  const d = record.data;
  switch (outcome) {
    case 'success':
      return { status_id: 1, status: 'Success' };
    case 'failure':
    case 'refused':
      return { status_id: 2, status: 'Failure' };
    case 'other':
      break;
  }
  if (record.type === 'step.completed') return d['ok'] === true ? ok() : fail();
  if (record.type === 'step.instance') return d['status'] === 'Success' ? ok() : fail();
  if (record.type === 'policy.reloaded') return d['applied'] === true ? ok() : fail();
  // expired, cancelled, rejected, skipped: neither success nor failure; OCSF says name it (status_id 99).
  return { status_id: 99, status: record.type.slice(record.type.indexOf('.') + 1) };
}
const ok = () => ({ status_id: 1, status: 'Success' });
const fail = () => ({ status_id: 2, status: 'Failure' });

export interface OcsfProduct {
  /** mechanic's version (package.json), in metadata.product.version. */
  readonly version: string;
}

/** One OCSF API Activity event. The shape is pinned by test/fixtures/ocsf/api_activity.schema.json. */
export interface OcsfApiActivity {
  activity_id: number;
  activity_name: string;
  category_uid: number;
  category_name: string;
  class_uid: number;
  class_name: string;
  type_uid: number;
  type_name: string;
  severity_id: number;
  severity: string;
  status_id: number;
  status: string;
  status_code?: string;
  status_detail?: string;
  message: string;
  time: number;
  timezone_offset: number;
  metadata: {
    uid: string;
    version: string;
    product: { name: string; vendor_name: string; version: string };
    sequence: number;
    logged_time: number;
    original_time: string;
    log_name: string;
    log_provider: string;
    correlation_uid?: string;
  };
  actor: { user: { uid: string; name: string; type: string; type_id: number } };
  api: { operation: string; service: { name: string } };
  src_endpoint: { ip?: string; svc_name: string };
  resources: OcsfResource[];
  /** mechanic's own record, whole and as stored: seq, ids, hashes and data. */
  unmapped: AuditRecord;
}

/**
 * One audit record as an OCSF 1.1.0 API Activity event. The whole record rides under `unmapped`
 * so nothing is lost and the chain can be re-checked from the export; the mapped fields are what
 * a data lake queries: who (actor.user), what (api.operation = the event type, activity_id),
 * on what (resources), from where (src_endpoint: the client address and channel when recorded),
 * when (time, in epoch milliseconds), and how it went (status, severity).
 */
export function ocsfEvent(record: AuditRecord, product: OcsfProduct): OcsfApiActivity {
  const d = record.data;
  const mapped = OCSF_ACTIVITY[record.type] ?? { activity: 99 as const, outcome: 'other' as const };
  const activity = mapped.outcome === 'refused' && mapped.activity === 99 ? activityOfRefusal(d) : mapped.activity;
  const { status_id, status } = outcomeOf(record, mapped.outcome);
  // Refused requests are what a reviewer looks for; failed work next; the rest is the record.
  const [severity_id, severity] =
    mapped.outcome === 'refused' ? [3, 'Medium'] : status_id === 2 ? [2, 'Low'] : [1, 'Informational'];
  const detail = str(d['reason']) ?? str(d['statusDetails']) ?? str(d['error']);
  const code = str(d['code']);
  const address = str(d['address']);
  return {
    activity_id: activity,
    activity_name: ACTIVITY_NAME[activity],
    category_uid: APPLICATION_ACTIVITY,
    category_name: 'Application Activity',
    class_uid: API_ACTIVITY,
    class_name: 'API Activity',
    type_uid: API_ACTIVITY * 100 + activity,
    type_name: `API Activity: ${ACTIVITY_NAME[activity]}`,
    severity_id,
    severity,
    status_id,
    status,
    ...(code !== undefined ? { status_code: code } : {}),
    ...(detail !== undefined ? { status_detail: detail.slice(0, 2000) } : {}),
    message: `${record.type} by ${record.actor}${record.executionId !== null ? ` on execution ${record.executionId}` : ''}`,
    time: Date.parse(record.at),
    // The vocabulary's times are UTC (zod's iso.datetime accepts only Z).
    timezone_offset: 0,
    metadata: {
      uid: record.eventId,
      version: OCSF_VERSION,
      product: { name: 'mechanic', vendor_name: 'mechanic', version: product.version },
      sequence: record.seq,
      logged_time: Date.parse(record.recordedAt),
      original_time: record.at,
      log_name: 'audit',
      log_provider: 'mechanic',
      ...(record.executionId !== null ? { correlation_uid: record.executionId } : {}),
    },
    actor: { user: userOf(record.actor) },
    api: { operation: record.type, service: { name: 'mechanic' } },
    // The client's address when the server recorded it; the channel (cli, web, slack…) or, for
    // what the worker and the server did themselves, mechanic.
    src_endpoint: { ...(address !== undefined ? { ip: address } : {}), svc_name: str(d['channel']) ?? 'mechanic' },
    resources: resourcesOf(record),
    unmapped: record,
  };
}

// ---------------------------------------------------------------------------------------------
// Parquet for an Amazon Security Lake custom source

/** A Parquet schema element (the subset of parquet-format's SchemaElement this export uses). */
export interface ParquetElement {
  name: string;
  type?: 'INT32' | 'INT64' | 'BYTE_ARRAY';
  converted_type?: 'UTF8' | 'TIMESTAMP_MILLIS' | 'LIST' | 'JSON';
  repetition_type: 'REQUIRED' | 'OPTIONAL' | 'REPEATED';
  num_children?: number;
}

type Leaf = ['string' | 'int' | 'long' | 'timestamp' | 'json', boolean];
type Shape = Leaf | { [name: string]: Shape } | [Shape];

/**
 * The Parquet columns: OCSF's own nesting, as Security Lake's native sources store it (so a query
 * reads actor.user.name or metadata.product.name the same way for mechanic as for CloudTrail's API
 * Activity), with fixed types the Glue crawler can infer. `unmapped` — mechanic's record, whose
 * `data` differs per event type — is one JSON text column. Leaves: [type, required].
 */
const PARQUET_SHAPE = {
  activity_id: ['int', true],
  activity_name: ['string', true],
  category_uid: ['int', true],
  category_name: ['string', true],
  class_uid: ['int', true],
  class_name: ['string', true],
  type_uid: ['long', true],
  type_name: ['string', true],
  severity_id: ['int', true],
  severity: ['string', true],
  status_id: ['int', true],
  status: ['string', true],
  status_code: ['string', false],
  status_detail: ['string', false],
  message: ['string', true],
  time: ['timestamp', true],
  timezone_offset: ['int', true],
  metadata: {
    uid: ['string', true],
    version: ['string', true],
    product: { name: ['string', true], vendor_name: ['string', true], version: ['string', true] },
    sequence: ['long', true],
    logged_time: ['timestamp', true],
    original_time: ['string', true],
    log_name: ['string', true],
    log_provider: ['string', true],
    correlation_uid: ['string', false],
  },
  actor: { user: { uid: ['string', true], name: ['string', true], type: ['string', true], type_id: ['int', true] } },
  api: { operation: ['string', true], service: { name: ['string', true] } },
  src_endpoint: { ip: ['string', false], svc_name: ['string', true] },
  resources: [{ uid: ['string', false], name: ['string', false], type: ['string', true], version: ['string', false] }],
  unmapped: ['json', true],
} satisfies Record<string, Shape>;

export const PARQUET_COLUMNS: readonly string[] = Object.keys(PARQUET_SHAPE);

function isLeaf(shape: Shape): shape is Leaf {
  return typeof shape[0] === 'string';
}

function elements(name: string, shape: Shape, required: boolean): ParquetElement[] {
  if (isLeaf(shape)) {
    const [kind, req] = shape;
    const repetition_type = req ? 'REQUIRED' : 'OPTIONAL';
    switch (kind) {
      case 'string':
        return [{ name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type }];
      case 'json':
        return [{ name, type: 'BYTE_ARRAY', converted_type: 'JSON', repetition_type }];
      case 'int':
        return [{ name, type: 'INT32', repetition_type }];
      case 'long':
        return [{ name, type: 'INT64', repetition_type }];
      case 'timestamp':
        return [{ name, type: 'INT64', converted_type: 'TIMESTAMP_MILLIS', repetition_type }];
    }
  }
  if (Array.isArray(shape)) {
    // The standard three-level LIST: <name> (LIST) > list (REPEATED) > element.
    return [
      { name, converted_type: 'LIST', repetition_type: required ? 'REQUIRED' : 'OPTIONAL', num_children: 1 },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      ...elements('element', shape[0], true),
    ];
  }
  const fields = Object.entries(shape);
  return [
    { name, repetition_type: required ? 'REQUIRED' : 'OPTIONAL', num_children: fields.length },
    ...fields.flatMap(([k, v]) => elements(k, v, true)),
  ];
}

/** The Parquet schema of the Security Lake export, root first (parquet-format's flattened tree). */
export function parquetSchema(): ParquetElement[] {
  const fields = Object.entries(PARQUET_SHAPE);
  return [
    { name: 'schema', repetition_type: 'REQUIRED', num_children: fields.length },
    ...fields.flatMap(([k, v]) => elements(k, v as Shape, true)),
  ];
}

/** The stored record as one JSON object (the JSON Lines record without its newline). */
function storedJson(stored: StoredAuditRecord): string {
  return jsonlLine(stored).slice(0, -1);
}

/**
 * The OCSF event of a stored record as JSON text. `unmapped` is spliced in as the stored record's
 * own text, so its `data` is byte for byte the hashed canonical JSON (a parse and re-stringify
 * could reorder integer-like keys).
 */
export function ocsfJson(stored: StoredAuditRecord, product: OcsfProduct): string {
  const { unmapped: _unmapped, ...mapped } = ocsfEvent(recordOf(stored), product);
  return `${JSON.stringify(mapped).slice(0, -1)},"unmapped":${storedJson(stored)}}`;
}

/** One Parquet row: the OCSF event with int64 columns as bigint and `unmapped` as the stored record's JSON text. */
export function parquetRow(stored: StoredAuditRecord, product: OcsfProduct): Record<string, unknown> {
  const event = ocsfEvent(recordOf(stored), product);
  return {
    ...event,
    type_uid: BigInt(event.type_uid),
    time: BigInt(event.time),
    metadata: {
      ...event.metadata,
      sequence: BigInt(event.metadata.sequence),
      logged_time: BigInt(event.metadata.logged_time),
    },
    unmapped: storedJson(stored),
  };
}
