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

/**
 * One published runbook version: what was published, by whom, from where. A version never
 * changes once published (append-only, like the audit log).
 */
export interface RunbookVersionsTable {
  name: AppendOnly<string>;
  version: AppendOnly<number>;
  /** sha256 of the validated runbook's canonical JSON: what a plan pins and a review approves. */
  digest: AppendOnly<string>;
  /** canonicalJson(validated runbook): what runs. */
  runbook: AppendOnly<string>;
  /** The YAML as published: what reviewers read and `runbook diff` compares. */
  yaml: AppendOnly<string>;
  author: AppendOnly<string>;
  published_at: AppendOnly<string>;
  /** The file's path as published (relative to the repository root when published from git). */
  source_path: AppendOnly<string>;
  /** `git rev-parse HEAD` of the repository it was published from, or null. */
  git_commit: AppendOnly<string | null>;
  /** 1 when the working tree was clean at publish time, 0 when not, null without git. */
  git_clean: AppendOnly<number | null>;
}

/** One review of one version by one reviewer; append-only. */
export interface RunbookReviewsTable {
  name: AppendOnly<string>;
  version: AppendOnly<number>;
  reviewer: AppendOnly<string>;
  /** The digest the reviewer saw; it must equal the version's. */
  digest: AppendOnly<string>;
  decision: AppendOnly<'approve' | 'reject'>;
  comment: AppendOnly<string>;
  reviewed_at: AppendOnly<string>;
}

/** A version withdrawn from launching; append-only, at most one per version. */
export interface RunbookDeprecationsTable {
  name: AppendOnly<string>;
  version: AppendOnly<number>;
  deprecated_by: AppendOnly<string>;
  reason: AppendOnly<string>;
  deprecated_at: AppendOnly<string>;
}

/** The instances an execution targets, with its creation time: a projection of the index (migration 0004). */
export interface ExecutionTargetsTable {
  instance_id: string;
  created_at: string;
  execution_id: string;
}

/** Who approved an execution (approvals naming its plan), with its creation time: a projection of the index. */
export interface ExecutionApproversTable {
  approver: string;
  created_at: string;
  execution_id: string;
}

export interface Database {
  audit_events: AuditEventsTable;
  executions: ExecutionsTable;
  audit_checkpoints: AuditCheckpointsTable;
  runbook_versions: RunbookVersionsTable;
  runbook_reviews: RunbookReviewsTable;
  runbook_deprecations: RunbookDeprecationsTable;
  execution_targets: ExecutionTargetsTable;
  execution_approvers: ExecutionApproversTable;
}
