/** @jsxImportSource hono/jsx */
/**
 * Small pieces the pages share: stored text shown inert, times, statuses, run tables, and the
 * parsing of the filters a list page reads from its query (a malformed one is a USAGE error, so a
 * 400 page, never a crash or a silently ignored filter).
 */
import { z } from 'zod';
import type { ExecutionStatus, ExecutionSummary } from '../../core/execution-index.ts';
import { EXECUTION_STATUSES } from '../../core/execution.ts';
import { UserError } from '../../core/errors.ts';
import { neutralize } from '../../core/text.ts';
import type { RunFilters } from '../../store/run-queries.ts';

/**
 * Text someone stored, made inert for the page: ANSI escapes dropped, control, bidi and invisible
 * characters shown as <U+XXXX>. JSX then escapes HTML, so `<script>` is shown, never run.
 */
export function inert(text: unknown, multiline = false): string {
  return neutralize(typeof text === 'string' ? text : (JSON.stringify(text) ?? ''), { multiline });
}

/** An ISO time as people read it in a table, in UTC, with the machine form for screen readers and copy. */
export function Time(props: { readonly iso: string | null | undefined }) {
  if (!props.iso) return <span class="muted">—</span>;
  const d = new Date(props.iso);
  if (Number.isNaN(d.getTime())) return <span>{inert(props.iso)}</span>;
  return (
    <time datetime={d.toISOString()}>
      {d
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d{3}Z$/, ' UTC')}
    </time>
  );
}

export const STATUS_LABEL: Readonly<Record<ExecutionStatus, string>> = {
  awaiting_approval: 'awaiting approval',
  running: 'running',
  completed: 'completed',
  failed: 'failed',
  expired: 'expired',
  cancelled: 'cancelled',
  rejected: 'rejected',
};

export function Status(props: { readonly status: ExecutionStatus }) {
  return <span class={`status status-${props.status}`}>{STATUS_LABEL[props.status] ?? inert(props.status)}</span>;
}

/** A table of runs, newest first; each id links to its timeline. */
export function RunTable(props: { readonly runs: readonly ExecutionSummary[]; readonly caption: string }) {
  if (props.runs.length === 0) return <p>No runs match.</p>;
  return (
    <table>
      <caption>{props.caption}</caption>
      <thead>
        <tr>
          <th scope="col">Run</th>
          <th scope="col">Runbook</th>
          <th scope="col">Operator</th>
          <th scope="col">Approved by</th>
          <th scope="col">Instances</th>
          <th scope="col">Status</th>
          <th scope="col">Requested</th>
        </tr>
      </thead>
      <tbody>
        {props.runs.map((r) => (
          <tr>
            <td>
              <a href={`/ui/runs/${encodeURIComponent(r.id)}`} class="mono">
                {r.id}
              </a>
            </td>
            <td>
              <a href={`/ui/runbooks/${encodeURIComponent(r.runbookName)}`}>{inert(r.runbookName)}</a>@
              {r.runbookVersion}
            </td>
            <td>{inert(r.operator)}</td>
            <td>{r.approvals.length > 0 ? inert(r.approvals.join(', ')) : <span class="muted">—</span>}</td>
            <td class="mono">
              {inert(r.targets.slice(0, 5).join(', '))}
              {r.targets.length > 5 ? ` +${r.targets.length - 5}` : ''}
            </td>
            <td>
              <Status status={r.status} />
            </td>
            <td>
              <Time iso={r.createdAt} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** What a name filter may hold: ids, runbook names, instance ids and names, people's ids. */
const Name = z
  .string()
  .max(200, 'is longer than 200 characters')
  .regex(/^[A-Za-z0-9._@:+-]+$/, 'may hold only letters, digits and . _ @ : + -');

/**
 * A time filter: a date (2026-11-30) or a date and time (2026-11-30T14:00, seconds optional), in
 * UTC unless it names its zone. As `to`, a date alone means the end of that day.
 */
export function parseTimeFilter(name: string, value: string, end: boolean): string {
  const m = /^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?)(Z|[+-]\d{2}:\d{2})?)?$/.exec(value);
  const problem = () =>
    new UserError(
      'USAGE',
      `the filter "${name}" must be a date like 2026-11-30 or a time like 2026-11-30T14:00, not ${JSON.stringify(value.slice(0, 40))}`,
    );
  if (!m) throw problem();
  const iso = m[2] === undefined ? `${m[1]}T00:00:00Z` : `${m[1]}T${m[2]}${m[3] ?? 'Z'}`;
  const ms = Date.parse(iso);
  if (Number.isNaN(ms) || !new Date(ms).toISOString().startsWith(m[1]!.slice(0, 4))) throw problem();
  // A date alone as the end of a range includes that whole day.
  return new Date(m[2] === undefined && end ? ms + 86_400_000 : ms).toISOString();
}

const FILTER_KEYS = ['runbook', 'operator', 'approver', 'person', 'instance', 'status', 'from', 'to'] as const;
export type FilterKey = (typeof FILTER_KEYS)[number];

/**
 * The filters of a list page from its query. Empty fields (a form sent with blanks) are absent; a
 * key the page does not know, a repeated key or a malformed value is a USAGE error naming it.
 */
export function parseFilters(
  query: Record<string, string[]>,
  allowed: readonly FilterKey[],
  extra: readonly string[] = ['page'],
): RunFilters & { page?: string } {
  const out: Record<string, string> = {};
  for (const [key, values] of Object.entries(query)) {
    if (!(allowed as readonly string[]).includes(key) && !extra.includes(key)) {
      throw new UserError('USAGE', `this page has no filter "${key.slice(0, 40)}"; use ${allowed.join(', ')}`);
    }
    if (values.length > 1)
      throw new UserError('USAGE', `the filter "${key}" is given ${values.length} times; give it once`);
    const value = values[0] ?? '';
    if (value === '') continue;
    out[key] = value;
  }
  const filters: Record<string, string> = {};
  for (const key of FILTER_KEYS) {
    if (!allowed.includes(key)) continue;
    const value = out[key];
    if (value === undefined) continue;
    if (key === 'from' || key === 'to') {
      filters[key] = parseTimeFilter(key, value, key === 'to');
    } else if (key === 'status') {
      if (!(EXECUTION_STATUSES as readonly string[]).includes(value)) {
        throw new UserError('USAGE', `the filter "status" must be one of ${EXECUTION_STATUSES.join(', ')}`);
      }
      filters[key] = value;
    } else {
      const r = Name.safeParse(value);
      if (!r.success)
        throw new UserError('USAGE', `the filter "${key}" ${r.error.issues[0]?.message ?? 'is malformed'}`);
      filters[key] = value;
    }
  }
  if (filters['from'] !== undefined && filters['to'] !== undefined && filters['from'] >= filters['to']) {
    throw new UserError('USAGE', 'the filter "from" must be before "to"');
  }
  const page = out['page'];
  return { ...(filters as RunFilters), ...(page !== undefined ? { page } : {}) };
}

/** The value to show back in a filter field: what the person typed, or nothing. */
export function typed(query: Record<string, string[]>, key: string): string {
  return query[key]?.[0] ?? '';
}

/** The same query with `page` replaced (or removed): for the pager's links. */
export function withPage(path: string, query: Record<string, string[]>, page: string | undefined): string {
  const params = new URLSearchParams();
  for (const [k, vs] of Object.entries(query)) if (k !== 'page' && vs[0]) params.set(k, vs[0]);
  if (page !== undefined) params.set('page', page);
  const s = params.toString();
  return s ? `${path}?${s}` : path;
}
