/**
 * `audit verify`'s check of the side tables the UI filters by (execution_targets,
 * execution_approvers) over a SQLite log, asked inside the database: one pass of primary-key
 * lookups in SQLite instead of reading every row of three tables into JavaScript (over a million
 * events, most of verify's time after the walk).
 *
 * It only ever vouches: true when each side table holds exactly the rows the executions index
 * implies — every target (approver) of every index row, with the row's id and creation time, and
 * nothing else. By then verify has found every index row equal to the one rebuilt from the log (or
 * rechecked it under the chain lock), so these are the rows checkFilterTables expects; and that
 * check reports a difference only if the side table also differs from the index row under the
 * lock. So true means checkFilterTables would find nothing. False — a difference, or anything the
 * database refuses to read (a malformed JSON column) — means "not shown": the caller then runs
 * checkFilterTables, which decides and names the problem.
 */
import type BetterSqlite3 from 'better-sqlite3';

const SIDE_TABLES = [
  { table: 'execution_targets', value: 'instance_id', column: 'targets' },
  { table: 'execution_approvers', value: 'approver', column: 'approvals' },
] as const;

export function sideTablesSurelyMatchIndex(conn: BetterSqlite3.Database): boolean {
  try {
    for (const { table, value, column } of SIDE_TABLES) {
      const missing = conn
        .prepare(
          `select 1 from executions e, json_each(e.${column}) j where not exists (select 1 from ${table} t` +
            ` where t.${value} = j.value and t.created_at = e.created_at and t.execution_id = e.id) limit 1`,
        )
        .get();
      if (missing !== undefined) return false;
      // No row beyond those: every (run, text value) pair of the index has a row (above), so the
      // table holds no other exactly when it has as many rows as there are such pairs. Counted,
      // not looked up per row: a run on 10,000 instances would scan its list once per row. Only a
      // JSON string stands for a side row (json_each gives an array or object in the index's array
      // as its JSON text, which a side row could equal where checkFilterTables sees a difference),
      // so an index holding anything else is left to checkFilterTables.
      const exact = conn
        .prepare(
          `select (select count(*) from ${table}) = (select count(*) from (select distinct e.id, j.value` +
            ` from executions e, json_each(e.${column}) j where j.type = 'text'))` +
            ` and not exists (select 1 from executions e, json_each(e.${column}) j where j.type <> 'text') as ok`,
        )
        .get() as { ok: number };
      if (exact.ok !== 1) return false;
    }
    return true;
  } catch {
    return false;
  }
}
