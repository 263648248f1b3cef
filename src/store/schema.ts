/**
 * Table shapes for Kysely. Column names are snake_case as stored; the store maps them to the
 * camelCase domain types of src/core.
 */
import type { ColumnType } from 'kysely';

/** Insertable once, never updatable: the type system has no UPDATE for the audit log. */
type AppendOnly<T> = ColumnType<T, T, never>;

export interface AuditEventsTable {
  seq: AppendOnly<number>;
  event_id: AppendOnly<string>;
  execution_id: AppendOnly<string | null>;
  type: AppendOnly<string>;
  actor: AppendOnly<string>;
  at: AppendOnly<string>;
  /** canonicalJson(data): kept as text in both dialects so the hash re-verifies byte for byte. */
  data: AppendOnly<string>;
  prev_hash: AppendOnly<string>;
  hash: AppendOnly<string>;
  recorded_at: AppendOnly<string>;
}

/** The execution index: a projection of audit_events, rewritten in the same transaction as each append. */
export interface ExecutionsTable {
  id: string;
  runbook_name: string;
  runbook_version: number;
  operator: string;
  reason: string;
  status: string;
  plan_digest: string;
  /** JSON text */
  params: string;
  /** JSON text: string[] */
  targets: string;
  /** JSON text: string[] */
  approvals: string;
  /** ISO times normalised to milliseconds, so they sort as text. */
  created_at: string;
  updated_at: string;
  finished_at: string | null;
}

/** Signed checkpoints of the chain head; append-only like the log. */
export interface AuditCheckpointsTable {
  seq: AppendOnly<number>;
  key_id: AppendOnly<string>;
  hash: AppendOnly<string>;
  at: AppendOnly<string>;
  /** base64 Ed25519 signature over checkpointMessage({seq, hash, at, keyId}). */
  signature: AppendOnly<string>;
  recorded_at: AppendOnly<string>;
}

export interface Database {
  audit_events: AuditEventsTable;
  executions: ExecutionsTable;
  audit_checkpoints: AuditCheckpointsTable;
}
