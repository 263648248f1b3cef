/**
 * What the reports (src/core/reports.ts) read from the store, in a few bounded queries that run the
 * same on SQLite and PostgreSQL: the runs of a range from the execution index, the votes and
 * decisions of those runs from the audit log (never their data column, which holds whole plans and
 * outputs), and what the range's operators did before it (which runbooks, which hosts), which is
 * what makes a run a first.
 */
import { sql, type Kysely } from 'kysely';
import { EXECUTION_STATUSES, type ExecutionStatus } from '../core/execution.ts';
import {
  REPORT_EVENT_TYPES,
  type ReportEvent,
  type ReportEventType,
  type ReportInput,
  type ReportRange,
  type ReportRun,
} from '../core/reports.ts';
import { isPostgres } from './db.ts';
import type { Database } from './schema.ts';

/** At most this many runs per report: a range with more is reported on its oldest runs, marked truncated. */
export const REPORT_MAX_RUNS = 20_000;
/** At most this many votes and decisions (several per run). */
const REPORT_MAX_EVENTS = REPORT_MAX_RUNS * 10;
/** At most this many distinct earlier (operator, runbook, targets) rows. */
const REPORT_MAX_PAIRS = 200_000;

export interface ReportQueryOptions {
  /** Lower bounds for tests; the defaults above otherwise. */
  readonly maxRuns?: number;
  readonly maxEvents?: number;
  readonly maxPairs?: number;
}

const STATUSES: ReadonlySet<string> = new Set(EXECUTION_STATUSES);
const TYPES: ReadonlySet<string> = new Set(REPORT_EVENT_TYPES);

function targetsOf(json: string): string[] {
  const parsed: unknown = JSON.parse(json);
  return Array.isArray(parsed) ? parsed.filter((t): t is string => typeof t === 'string') : [];
}

/**
 * Reads everything a report of `range` needs. The range's bounds are ISO times; the index stores
 * times normalised to milliseconds (toISOString), so they compare as text in both dialects.
 */
export async function loadReportInput(
  db: Kysely<Database>,
  range: ReportRange,
  options: ReportQueryOptions = {},
): Promise<ReportInput> {
  const maxRuns = options.maxRuns ?? REPORT_MAX_RUNS;
  const maxEvents = options.maxEvents ?? REPORT_MAX_EVENTS;
  const maxPairs = options.maxPairs ?? REPORT_MAX_PAIRS;
  const from = new Date(range.from).toISOString();
  const to = new Date(range.to).toISOString();

  // The runs of the range, oldest first (so a truncated report is about a contiguous start).
  const inRange = (limit: number) =>
    db
      .selectFrom('executions')
      .where('created_at', '>=', from)
      .where('created_at', '<', to)
      .orderBy('created_at', 'asc')
      .orderBy('id', 'asc')
      .limit(limit);
  // One more than the bound: whether there were more is what `truncated` says.
  const rows = await inRange(maxRuns + 1)
    .select(['id', 'runbook_name', 'runbook_version', 'operator', 'status', 'targets', 'created_at'])
    .execute();
  let truncated = rows.length > maxRuns;
  const runs: ReportRun[] = rows.slice(0, maxRuns).map((r) => ({
    id: r.id,
    runbook: r.runbook_name,
    version: Number(r.runbook_version),
    operator: r.operator,
    // The index only ever holds these; anything else would be a row verify reports.
    status: (STATUSES.has(r.status) ? r.status : 'failed') as ExecutionStatus,
    createdAt: r.created_at,
    targets: targetsOf(r.targets),
  }));
  if (runs.length === 0) return { range, runs, events: [], before: { runbooks: [], hosts: [] }, truncated };

  // Votes and decisions of exactly those runs: the (execution_id, seq) index finds them.
  const eventRows = await db
    .selectFrom('audit_events')
    .select(['execution_id', 'type', 'actor', 'at'])
    .where('type', 'in', [...REPORT_EVENT_TYPES])
    .where('execution_id', 'in', inRange(maxRuns).select('id'))
    .orderBy('seq', 'asc')
    .limit(maxEvents + 1)
    .execute();
  if (eventRows.length > maxEvents) truncated = true;
  const events: ReportEvent[] = eventRows
    .slice(0, maxEvents)
    .flatMap((e) =>
      e.execution_id !== null && TYPES.has(e.type)
        ? [{ executionId: e.execution_id, type: e.type as ReportEventType, actor: e.actor, at: e.at }]
        : [],
    );

  // What the range's operators ran, and where, before it began: one pass over the earlier runs,
  // each distinct (operator, runbook, targets) once. On SQLite a plain scan beats the operator
  // index here (the index would fetch every earlier row of those operators one by one).
  const history = await sql<{ operator: string; runbook: string; targets: string }>`
      select distinct e.operator as operator, e.runbook_name as runbook, e.targets as targets
      from executions e ${sql.raw(isPostgres(db) ? '' : 'not indexed')}
      where e.created_at < ${from}
        and e.operator in (select operator from executions where created_at >= ${from} and created_at < ${to})
      limit ${maxPairs + 1}`
    .execute(db)
    .then((r) => r.rows);
  // A truncated history could make an old habit look like a first: say the report is partial.
  if (history.length > maxPairs) truncated = true;
  const pairs = (list: [string, string][]) =>
    [...new Map(list.map((p) => [JSON.stringify(p), p])).values()].sort(([a1, b1], [a2, b2]) =>
      a1 < a2 ? -1 : a1 > a2 ? 1 : b1 < b2 ? -1 : b1 > b2 ? 1 : 0,
    );
  const kept = history.slice(0, maxPairs);
  const before = {
    runbooks: pairs(kept.map((h) => [h.operator, h.runbook])).map(([operator, runbook]) => ({ operator, runbook })),
    hosts: pairs(kept.flatMap((h) => targetsOf(h.targets).map((t): [string, string] => [h.operator, t]))).map(
      ([operator, host]) => ({ operator, host }),
    ),
  };

  return {
    range,
    runs,
    events,
    before,
    truncated,
  };
}
