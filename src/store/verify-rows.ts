/**
 * One record of `audit verify`'s walk, checked exactly the same way on the main thread (the
 * sequential walk, audit-log.ts) and on the worker threads that walk ranges of a large log
 * (verify-worker.ts): the same code gives the same verdict and the same sentence.
 */
import { chainDigest, chainHashOfStored, verifyChain, type AuditCheck, type AuditRecord } from '../core/audit-chain.ts';
import { fitsAuditVocabulary } from '../core/audit-event-check.ts';
import { readAuditEvent, type AuditEvent, type AuditEventType } from '../core/audit-events.ts';
import { canonicalJson, isCanonicalText, isSurelyCanonicalText } from '../core/canonical.ts';

/** The columns verify reads of each record, in this order (a raw row). */
export const VERIFY_COLUMNS = [
  'seq',
  'event_id',
  'execution_id',
  'type',
  'actor',
  'at',
  'data',
  'prev_hash',
  'hash',
] as const;

/**
 * SQLite: the text chainHash hashes for a record — its stored prev_hash, a newline, and
 * canonicalJson of the six hashed fields {actor, at, data, eventId, executionId, type} if the row
 * is as the store writes it — built in the database, so the walk reads one string per record
 * instead of seven and hashes it as read: `prev_hash \n {"actor":` json_quote(actor) `,"at":` …
 * `,"data":` data `,…}`. Null when a column is not text (a tampered row: the full path names it).
 * Nothing here is trusted: checkEventText takes the text only if it is exactly that.
 */
export const EVENT_TEXT_SQL =
  "case when typeof(prev_hash) = 'text' and typeof(actor) = 'text' and typeof(at) = 'text' and typeof(data) = 'text'" +
  " and typeof(event_id) = 'text' and typeof(type) = 'text' and (execution_id is null or typeof(execution_id) = 'text')" +
  ` then prev_hash || char(10) || '{"actor":' || json_quote(actor) || ',"at":' || json_quote(at) || ',"data":' ||` +
  ` data || ',"eventId":' || json_quote(event_id) || ',"executionId":' || json_quote(execution_id) ||` +
  ` ',"type":' || json_quote(type) || '}' end`;

/** What the SQLite walk reads of each record: seq, EVENT_TEXT_SQL, hash (a text row). */
export const EVENT_TEXT_COLUMNS = `seq, ${EVENT_TEXT_SQL} as chained, hash`;

/** A record as read with EVENT_TEXT_COLUMNS. */
export type TextRow = readonly unknown[];

/** A record as read for verify: VERIFY_COLUMNS, in that order. */
export type RawRow = readonly unknown[];

/** What verify reports: which guarantee broke, at which record, and why (one sentence). */
export interface WalkProblem {
  readonly check: AuditCheck;
  readonly seq: number;
  readonly reason: string;
}

/** Where a checkpoint was found: a database row, or the copy kept beside the key. */
export type CheckpointSource = 'database' | 'file';

/** The checkpoints admitted at a seq (their seq and hash were signed, or are being checked). */
export interface SignedAt {
  has(seq: number): boolean;
  get(seq: number): readonly { readonly hash: string; readonly source: CheckpointSource }[] | undefined;
}

export type CheckedRow =
  | { readonly ok: true; readonly seq: number; readonly hash: string; readonly event: AuditEvent }
  | { readonly ok: false; readonly problem: WalkProblem };

/** A raw row as the store reads a record; throws when data is not JSON. */
export function recordOfRaw(r: RawRow): AuditRecord {
  return {
    seq: Number(r[0]),
    eventId: r[1] as string,
    executionId: r[2] as string | null,
    type: r[3] as AuditEventType,
    actor: r[4] as string,
    at: r[5] as string,
    data: JSON.parse(r[6] as string) as Record<string, unknown>,
    prevHash: r[7] as string,
    hash: r[8] as string,
    recordedAt: '',
  };
}

/** A record that differs from what an admitted checkpoint signed at its seq, named; undefined when none does. */
export function notAsSigned(signed: SignedAt, seq: number, hash: string): WalkProblem | undefined {
  const at = signed.get(seq);
  if (at === undefined) return undefined;
  const f = at.find((cp) => cp.hash !== hash);
  if (!f) return undefined;
  const where = f.source === 'file' ? 'kept outside the database' : 'in the database';
  return {
    check: 'checkpoint',
    seq,
    reason: `record #${seq} is not the record signed by the checkpoint ${where}: the log was rewritten from here`,
  };
}

/**
 * Checks one record that should be number `expectedSeq` and link to `prevHash`: its place in the
 * chain, its hash, that its data is stored in canonical form, that it is what any admitted
 * checkpoint signed at its seq, and that it fits the audit vocabulary — in that order, so the
 * first problem named is the one a record-by-record walk names.
 */
export function checkRow(row: RawRow, prevHash: string, expectedSeq: number, signed: SignedAt): CheckedRow {
  const seq = Number(row[0]);
  const text = row[6];
  let data: unknown;
  // The hash is over the canonical form; the stored text must be exactly that form, so an
  // export re-verifies byte for byte without re-encoding. When it is, the hash is taken around
  // the stored text (the same bytes chainHash would encode). Anything else — a seq or link out
  // of place, text that is not canonical JSON, a field of the wrong type — takes the full path
  // below, which names what is wrong.
  let intact = false;
  if (typeof text === 'string' && seq === expectedSeq && row[7] === prevHash) {
    try {
      data = JSON.parse(text);
    } catch {
      data = undefined;
    }
  }
  const candidate = {
    eventId: row[1] as string,
    executionId: row[2] as string | null,
    type: row[3] as AuditEventType,
    actor: row[4] as string,
    at: row[5] as string,
    data: data as Record<string, unknown>,
  };
  if (data !== undefined) {
    intact = isCanonicalText(text as string, data) && chainHashOfStored(prevHash, candidate, text as string) === row[8];
  }
  if (!intact) {
    let record: AuditRecord;
    try {
      record = recordOfRaw(row);
    } catch {
      return { ok: false, problem: { check: 'chain', seq, reason: 'data is not valid JSON' } };
    }
    const verdict = verifyChain([record], prevHash, expectedSeq);
    if (!verdict.ok) return { ok: false, problem: { check: 'chain', seq: verdict.seq, reason: verdict.reason } };
    if (row[6] !== canonicalJson(record.data))
      return { ok: false, problem: { check: 'chain', seq, reason: 'data is not stored in canonical form' } };
    candidate.data = record.data;
  }
  const hash = row[8] as string;
  const rewritten = notAsSigned(signed, seq, hash);
  if (rewritten) return { ok: false, problem: rewritten };
  if (fitsAuditVocabulary(candidate)) return { ok: true, seq, hash, event: candidate as AuditEvent };
  // The schema decides, and names what does not fit.
  const read = readAuditEvent({ ...candidate, seq });
  if (!read.ok) return { ok: false, problem: { check: 'schema', seq, reason: read.problem } };
  return { ok: true, seq, hash, event: read.event };
}

/**
 * checkRow's answer for a record read as one text (EVENT_TEXT_COLUMNS), when it is certain: the
 * record in its place and linked to `prevHash`, its stored text canonical JSON of exactly the six
 * hashed fields, its hash that text's, nothing signed at its seq that differs, and fitting the
 * vocabulary for certain — then checkRow would find the same (its prev_hash is `prevHash`, its
 * data column that text's data, stored canonical, and chainHash hashes exactly those bytes).
 * Undefined otherwise, for anything at all: the caller then reads the row's columns and asks
 * checkRow, which decides and names the problem, so the first problem and its sentence are
 * checkRow's, never this shortcut's.
 *
 * Why the text is the columns: it starts with `prevHash` and a newline, and what follows is
 * canonical JSON, which holds no raw newline, so the stored prev_hash is exactly `prevHash`. The
 * database writes the JSON around the data column, and everything it adds after data (the quoted
 * fields and the punctuation) closes whatever data opens only at the very end, so a data column
 * that is not exactly one JSON value would add keys of its own or break the JSON; canonical text
 * has strictly increasing keys, so six keys are the six fields, each once.
 */
export function checkEventText(
  row: TextRow,
  prevHash: string,
  expectedSeq: number,
  signed: SignedAt,
): CheckedRow | undefined {
  const seq = row[0];
  const chained = row[1];
  const hash = row[2];
  if (seq !== expectedSeq || typeof chained !== 'string' || typeof hash !== 'string') return undefined;
  const from = prevHash.length + 1;
  if (chained.charCodeAt(from - 1) !== 0x0a || !chained.startsWith(prevHash)) return undefined;
  if (chainDigest(chained) !== hash || !isSurelyCanonicalText(chained, from)) return undefined;
  const event = JSON.parse(chained.slice(from)) as Record<string, unknown>;
  if (Object.keys(event).length !== 6 || (signed.has(seq) && notAsSigned(signed, seq, hash))) return undefined;
  if (!fitsAuditVocabulary(event)) return undefined;
  return { ok: true, seq, hash, event: event as unknown as AuditEvent };
}
