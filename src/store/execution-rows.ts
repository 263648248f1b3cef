/**
 * The executions index's rows and the summaries the domain reads from them, shared by the store
 * (audit-log.ts) and verify's worker threads (verify-worker.ts), which compare the summaries they
 * rebuild from the log with the rows the store wrote.
 */
import type { Selectable } from 'kysely';
import { canonicalJson } from '../core/canonical.ts';
import type { ExecutionStatus, ExecutionSummary } from '../core/execution-index.ts';
import type { ExecutionsTable } from './schema.ts';

export type ExecutionRow = Selectable<ExecutionsTable>;

/** One row of the executions index as the domain reads it (also the reporting UI's queries). */
export function toSummary(row: ExecutionRow): ExecutionSummary {
  return {
    id: row.id,
    runbookName: row.runbook_name,
    runbookVersion: Number(row.runbook_version),
    operator: row.operator,
    reason: row.reason,
    status: row.status as ExecutionStatus,
    planDigest: row.plan_digest,
    params: JSON.parse(row.params) as Record<string, unknown>,
    targets: JSON.parse(row.targets) as string[],
    approvals: JSON.parse(row.approvals) as string[],
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    finishedAt: row.finished_at,
  };
}

export function toExecutionRow(s: ExecutionSummary): ExecutionRow {
  return {
    id: s.id,
    runbook_name: s.runbookName,
    runbook_version: s.runbookVersion,
    operator: s.operator,
    reason: s.reason,
    status: s.status,
    plan_digest: s.planDigest,
    params: canonicalJson(s.params),
    targets: canonicalJson(s.targets),
    approvals: canonicalJson(s.approvals),
    created_at: s.createdAt,
    updated_at: s.updatedAt,
    finished_at: s.finishedAt,
  };
}

/**
 * Whether an index row holds exactly `s`, column by column as the store writes it: then
 * diffSummaries finds nothing (a canonical JSON column reads back to the same canonical JSON), and
 * verify skips it. Anything else — including a row that differs only in how it is written — is
 * left to diffSummaries.
 */
export function sameAsRow(row: ExecutionRow, s: ExecutionSummary): boolean {
  const want = toExecutionRow(s);
  for (const key of Object.keys(want) as (keyof ExecutionRow)[]) if (row[key] !== want[key]) return false;
  return true;
}
