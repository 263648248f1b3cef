/**
 * The audit log's hash chain: what a record's hash covers and how a chain is checked.
 *
 * Pure: no I/O. The store (src/store/audit-log.ts) owns persistence and serialises appends; this
 * module owns how records are linked, so that `mechanic audit verify`, the store and any external
 * auditor re-deriving hashes from an export all agree byte for byte. Not workflow-safe (node:crypto):
 * workflows import the vocabulary (audit-events.ts) only.
 */
import { hash } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from './canonical.ts';
import { checkAuditEvent, type AuditEvent, type NewAuditEvent } from './audit-events.ts';
import { UserError } from './errors.ts';

/** Upper bound on an event's canonical `data`, so one runaway writer cannot bloat every export. */
export const MAX_AUDIT_DATA_CHARS = 1_000_000;

export type AuditRecord = NewAuditEvent & {
  /** Position in the chain, 1-based and gapless. */
  seq: number;
  prevHash: string;
  hash: string;
  /** Store clock at insert; informational only, not covered by the hash. */
  recordedAt: string;
};

export type ChainVerdict = { ok: true; count: number } | { ok: false; seq: number; reason: string };

/** What `audit verify` found about the signed checkpoints (audit-checkpoint.ts). */
export const CheckpointCoverageSchema = z.object({
  /** The newest genuine checkpoint (database or file), or null when there is none yet. */
  latest: z.object({ seq: z.number().int(), at: z.string(), keyId: z.string() }).nullable(),
  /** Where the newest checkpoint was found: the database, or the file beside the key. */
  source: z.enum(['database', 'file']).nullable(),
  /** Records after the newest checkpoint: appended since, signed at the next execution end or period. */
  uncovered: z.number().int(),
  /** Checkpoints whose seq and hash were checked against the log. */
  checked: z.number().int(),
  /**
   * Checkpoint signatures checked: the newest checkpoint's (every row at its seq, and the file's)
   * plus any signed while verify ran, or all of them with allSignatures. Absent from older servers.
   */
  signaturesChecked: z.number().int().optional(),
});
export type CheckpointCoverage = z.infer<typeof CheckpointCoverageSchema>;

/** Which check failed: the hash chain, the vocabulary, the signed checkpoints, or the execution index. */
export const AuditCheckSchema = z.enum(['chain', 'schema', 'checkpoint', 'index']);
export type AuditCheck = z.infer<typeof AuditCheckSchema>;

/**
 * The verdict of `audit verify`. Compatible with ChainVerdict (ok + count, or ok: false + seq +
 * reason); `check` says which guarantee broke, and an intact log says what the checkpoints cover.
 */
export const AuditVerdictSchema = z.discriminatedUnion('ok', [
  z.object({
    ok: z.literal(true),
    count: z.number().int(),
    head: z.object({ seq: z.number().int(), hash: z.string() }).nullable(),
    /** null when the store has no signing key configured: checkpoints were not checked. */
    checkpoints: CheckpointCoverageSchema.nullable(),
    /** Executions in the index, each equal to the one rebuilt from the log. */
    executions: z.number().int(),
  }),
  z.object({ ok: z.literal(false), seq: z.number().int(), reason: z.string(), check: AuditCheckSchema }),
]);
export type AuditVerdict = z.infer<typeof AuditVerdictSchema>;

/** The prevHash of the first record. */
export const GENESIS_HASH = '0'.repeat(64);

/** The hashed part of a record: exactly the NewAuditEvent fields, nothing the store adds. */
export function eventOf(record: NewAuditEvent): NewAuditEvent {
  return {
    eventId: record.eventId,
    executionId: record.executionId,
    type: record.type,
    actor: record.actor,
    at: record.at,
    data: record.data,
  };
}

/**
 * sha256 (hex) over `prevHash + '\n' + canonicalJson(event)`. Only the six event fields are
 * hashed (extra properties such as seq or recordedAt are ignored), so a record can be re-hashed
 * from an export without knowing the store.
 */
export function chainHash(prevHash: string, event: NewAuditEvent): string {
  return chainHashOfText(prevHash, canonicalJson(eventOf(event)));
}

/**
 * chainHash of an event given as its canonical JSON text (canonicalJson of the six hashed fields):
 * what `audit verify` hashes when the store hands it that text whole (verify-rows.ts).
 */
export function chainHashOfText(prevHash: string, eventText: string): string {
  return chainDigest(prevHash + '\n' + eventText);
}

/** sha256 (hex) of the whole hashed text of a record: `prevHash + '\n' + canonical event JSON`. */
export function chainDigest(chained: string): string {
  // crypto.hash: one call, no Hash object per record (twice as fast over a million records).
  return hash('sha256', chained, 'hex');
}

/**
 * chainHash of a stored record whose `data` column is already canonical JSON (isCanonicalText):
 * the same bytes hashed, written around the stored text instead of re-encoding the parsed value.
 * The six fields in canonical key order are actor, at, data, eventId, executionId, type. Returns
 * undefined when a field is not a string (executionId: string or null) — a tampered row — so the
 * caller takes chainHash and its refusal instead.
 */
export function chainHashOfStored(
  prevHash: string,
  event: Omit<NewAuditEvent, 'data'>,
  canonicalData: string,
): string | undefined {
  const { eventId, executionId, type, actor, at } = event as Record<keyof NewAuditEvent, unknown>;
  if (
    typeof eventId !== 'string' ||
    (executionId !== null && typeof executionId !== 'string') ||
    typeof type !== 'string' ||
    typeof actor !== 'string' ||
    typeof at !== 'string'
  ) {
    return undefined;
  }
  const text =
    `${prevHash}\n{"actor":${JSON.stringify(actor)},"at":${JSON.stringify(at)},"data":${canonicalData},` +
    `"eventId":${JSON.stringify(eventId)},"executionId":${executionId === null ? 'null' : JSON.stringify(executionId)},` +
    `"type":${JSON.stringify(type)}}`;
  return hash('sha256', text, 'hex');
}

/**
 * An event the store refuses: it does not fit the audit vocabulary, or could not be stored and
 * re-verified. A bug in its writer, so a retry can never succeed (activities: non-retryable).
 */
export class AuditEventInvalidError extends Error {
  readonly code = 'AUDIT_EVENT_INVALID';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'AuditEventInvalidError';
  }
}

/**
 * Validates an event from a writer against the vocabulary and returns it with `data` normalised to
 * what the store will read back (undefined properties dropped). Throws on anything that could not
 * be stored and re-verified, or that does not fit its type's schema; that is a bug in the writer,
 * not a user mistake.
 */
export function parseNewAuditEvent(input: unknown): AuditEvent {
  // Checked in the form the store will hold: undefined properties dropped, anything JSON would
  // change refused, so what is validated is exactly what gets hashed.
  const raw = (input ?? {}) as { data?: unknown };
  let dataJson: string | undefined;
  try {
    dataJson = raw.data === undefined ? undefined : canonicalJson(raw.data);
  } catch (e) {
    throw new AuditEventInvalidError(`invalid audit event: ${(e as Error).message}`, { cause: e });
  }
  const normalised = dataJson === undefined ? input : { ...raw, data: JSON.parse(dataJson) as unknown };
  const checked = checkAuditEvent(normalised);
  if (!checked.ok) throw new AuditEventInvalidError(`invalid audit event: ${checked.problem}`);
  const event = checked.event;
  if (dataJson !== undefined && dataJson.length > MAX_AUDIT_DATA_CHARS) {
    throw new AuditEventInvalidError(
      `invalid audit event: ${event.eventId} data is ${dataJson.length} chars, over ${MAX_AUDIT_DATA_CHARS}`,
    );
  }
  return event;
}

/**
 * Walks records in chain order and reports the first broken link: a seq that does not follow its
 * predecessor, a prevHash that is not the previous record's hash, or a hash that does not match the
 * record's content. `startPrevHash` and `firstSeq` let a caller verify one page of a longer chain.
 */
export function verifyChain(
  records: readonly AuditRecord[],
  startPrevHash: string = GENESIS_HASH,
  firstSeq?: number,
): ChainVerdict {
  let expectedPrev = startPrevHash;
  let expectedSeq = firstSeq;
  for (const record of records) {
    if (expectedSeq !== undefined && record.seq !== expectedSeq) {
      return {
        ok: false,
        seq: record.seq,
        reason: `expected seq ${expectedSeq} but found ${record.seq}: records are missing or out of order`,
      };
    }
    if (record.prevHash !== expectedPrev) {
      return { ok: false, seq: record.seq, reason: "prevHash does not match the previous record's hash" };
    }
    let actual: string;
    try {
      actual = chainHash(record.prevHash, record);
    } catch (e) {
      return { ok: false, seq: record.seq, reason: `content cannot be hashed: ${(e as Error).message}` };
    }
    if (actual !== record.hash) {
      return { ok: false, seq: record.seq, reason: "hash does not match the record's content" };
    }
    expectedPrev = record.hash;
    expectedSeq = record.seq + 1;
  }
  return { ok: true, count: records.length };
}

/** Turns a failed verification into the error `mechanic audit verify` and the API report. */
export function assertChainIntact(verdict: ChainVerdict): { count: number } {
  if (!verdict.ok) {
    throw new UserError('AUDIT_CHAIN_BROKEN', `audit log chain is broken at seq ${verdict.seq}: ${verdict.reason}`);
  }
  return { count: verdict.count };
}
