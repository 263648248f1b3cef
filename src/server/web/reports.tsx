/** @jsxImportSource hono/jsx */
/**
 * /ui/reports: what to automate or fix next (most run, most failing, longest approval waits), how
 * runs spread over the days, and the runs a reviewer should look at. Each chart is drawn on the
 * server (charts.ts) and its numbers are also in a table beside it, for screen readers and print.
 *
 * Reading it takes readAudit, like the audit log it summarises; a refusal is recorded. A range
 * that cannot be read is a 400 page saying what to write.
 */
import type { Hono } from 'hono';
import { EXECUTION_STATUSES, type ExecutionStatus } from '../../core/execution.ts';
import {
  DEFAULT_REPORT_SETTINGS,
  FLAG_KINDS,
  FLAG_TITLES,
  buildReport,
  formatSeconds,
  localDay,
  parseReportRange,
  type Report,
  type ReportFlag,
  type ReportSettings,
  type WorkingHours,
} from '../../core/reports.ts';
import { neutralize } from '../../core/text.ts';
import { loadReportInput } from '../../store/report-queries.ts';
import { requireAction } from './auth.ts';
import { STATUS_COLORS, approvalWaitChart, mostRunChart, runsPerDayChart, type Chart } from './charts.ts';
import type { WebDeps, WebEnv } from './index.ts';
import { Page, html } from './layout.tsx';
import { STATUS_LABEL } from './parts.tsx';

/** The configured working hours and time zone (config.reports); unset, Mon–Fri 08:00–18:00 UTC. */
export interface ReportPageSettings {
  readonly workingHours: WorkingHours;
  readonly timeZone: string;
}

/** How many flags of one kind the page lists; the rest are counted. */
const FLAGS_SHOWN = 100;

const runHref = (id: string) => `/ui/runs/${encodeURIComponent(id)}`;
const percent = (rate: number) => `${Math.round(rate * 100)}%`;
/** A name as stored, shown inert (JSX escapes markup; this takes care of controls and bidi). */
const shown = (s: string) => neutralize(s);

function ChartFigure(props: { readonly chart: Chart; readonly id: string; readonly children?: unknown }) {
  // The SVG is Plot's serialisation: every text in it was set as a text node, so it is escaped.
  return (
    <figure class="chart" aria-labelledby={`${props.id}-caption`}>
      <figcaption id={`${props.id}-caption`}>{props.chart.label}</figcaption>
      <div dangerouslySetInnerHTML={{ __html: props.chart.svg }} />
      {props.children}
    </figure>
  );
}

function Legend(props: { readonly statuses: readonly ExecutionStatus[] }) {
  return (
    <ul
      class="legend"
      aria-label="Colours of the statuses"
      style="display:flex;flex-wrap:wrap;gap:1rem;list-style:none;padding:0"
    >
      {props.statuses.map((s) => (
        <li>
          <span
            class="swatch"
            style={`display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:middle;background:${STATUS_COLORS[s]}`}
            aria-hidden="true"
          ></span>
          {STATUS_LABEL[s]}
        </li>
      ))}
    </ul>
  );
}

function RangeForm(props: { readonly from: string; readonly to: string; readonly timeZone: string }) {
  return (
    <form class="filters" method="get" action="/ui/reports" aria-label="Report range">
      <div class="field">
        <label for="report-from">From</label>
        <input id="report-from" name="from" value={props.from} aria-describedby="range-hint" size={24} />
      </div>
      <div class="field">
        <label for="report-to">To (included)</label>
        <input id="report-to" name="to" value={props.to} aria-describedby="range-hint" size={24} />
      </div>
      <button type="submit">Show report</button>
      <p id="range-hint" class="muted">
        A day (2026-11-30, in {props.timeZone}) or an ISO time (2026-11-30T08:00:00Z); at most 366 days.
      </p>
    </form>
  );
}

function FixNext(props: { readonly report: Report }) {
  const r = props.report;
  return (
    <section aria-labelledby="fix-next">
      <h2 id="fix-next">What to automate or fix next</h2>
      <h3 id="most-run">Most-run runbooks</h3>
      {r.mostRun.length === 0 ? (
        <p>No runs in this range.</p>
      ) : (
        <ChartFigure chart={mostRunChart(r.mostRun)} id="chart-most-run">
          <table aria-labelledby="most-run">
            <caption>Runs per runbook, most first</caption>
            <thead>
              <tr>
                <th scope="col">Runbook</th>
                <th scope="col">Runs</th>
              </tr>
            </thead>
            <tbody>
              {r.mostRun.map((m) => (
                <tr>
                  <th scope="row">{shown(m.runbook)}</th>
                  <td>{m.runs}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </ChartFigure>
      )}
      <h3 id="most-failing">Most-failing runbooks</h3>
      {r.mostFailing.length === 0 ? (
        <p>No run failed in this range.</p>
      ) : (
        <table aria-labelledby="most-failing">
          <caption>Failed runs, and their share of the runs that ran to an end (completed or failed)</caption>
          <thead>
            <tr>
              <th scope="col">Runbook</th>
              <th scope="col">Failed</th>
              <th scope="col">Ran to an end</th>
              <th scope="col">Failure rate</th>
            </tr>
          </thead>
          <tbody>
            {r.mostFailing.map((f) => (
              <tr>
                <th scope="row">{shown(f.runbook)}</th>
                <td>{f.failed}</td>
                <td>{f.ended}</td>
                <td>{percent(f.rate)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h3 id="longest-waits">Longest approval waits</h3>
      {r.approvalWaits.length === 0 ? (
        <p>No run waited for approval in this range.</p>
      ) : (
        <table aria-labelledby="longest-waits">
          <caption>From the request to the approval decision, per runbook (95th percentile by nearest rank)</caption>
          <thead>
            <tr>
              <th scope="col">Runbook</th>
              <th scope="col">Decided</th>
              <th scope="col">Median</th>
              <th scope="col">95th percentile</th>
              <th scope="col">Longest</th>
              <th scope="col">Expired undecided</th>
            </tr>
          </thead>
          <tbody>
            {r.approvalWaits.map((w) => (
              <tr>
                <th scope="row">{shown(w.runbook)}</th>
                <td>{w.decided}</td>
                <td>{w.decided ? formatSeconds(w.medianSeconds) : '—'}</td>
                <td>{w.decided ? formatSeconds(w.p95Seconds) : '—'}</td>
                <td>{w.decided ? formatSeconds(w.maxSeconds) : '—'}</td>
                <td>{w.expired}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function PerDay(props: { readonly report: Report }) {
  const r = props.report;
  // Columns for the statuses that occur, in their usual order: a table of seven empty columns reads badly.
  const statuses = EXECUTION_STATUSES.filter((s) => r.totals.byStatus[s] > 0);
  return (
    <section aria-labelledby="per-day">
      <h2 id="per-day">Runs per day by status</h2>
      {r.totals.runs === 0 ? (
        <p>No runs in this range.</p>
      ) : (
        <ChartFigure chart={runsPerDayChart(r.perDay, statuses)} id="chart-per-day">
          <Legend statuses={statuses} />
          <table aria-labelledby="per-day">
            <caption>Runs started each day ({r.timeZone}), by their status now</caption>
            <thead>
              <tr>
                <th scope="col">Day</th>
                {statuses.map((s) => (
                  <th scope="col">{STATUS_LABEL[s]}</th>
                ))}
                <th scope="col">All</th>
              </tr>
            </thead>
            <tbody>
              {r.perDay.map((d) => (
                <tr>
                  <th scope="row">{d.day}</th>
                  {statuses.map((s) => (
                    <td>{d.counts[s]}</td>
                  ))}
                  <td>{d.total}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </ChartFigure>
      )}
    </section>
  );
}

function Waits(props: { readonly report: Report }) {
  const r = props.report;
  const decided = r.waitDistribution.reduce((n, b) => n + b.runs, 0);
  return (
    <section aria-labelledby="wait">
      <h2 id="wait">Approval wait</h2>
      {decided === 0 ? (
        <p>No approval was decided in this range.</p>
      ) : (
        <ChartFigure chart={approvalWaitChart(r.waitDistribution)} id="chart-wait">
          <table aria-labelledby="wait">
            <caption>Decided runs by how long they waited for the decision</caption>
            <thead>
              <tr>
                <th scope="col">Wait</th>
                <th scope="col">Runs</th>
              </tr>
            </thead>
            <tbody>
              {r.waitDistribution.map((b) => (
                <tr>
                  <th scope="row">{b.label}</th>
                  <td>{b.runs}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </ChartFigure>
      )}
    </section>
  );
}

function FlagList(props: { readonly flags: readonly ReportFlag[] }) {
  const shownFlags = props.flags.slice(0, FLAGS_SHOWN);
  return (
    <>
      <ul class="flags">
        {shownFlags.map((f) => (
          <li>
            {f.why}{' '}
            <span class="runs">
              {f.runs.length === 1 ? 'Run ' : 'Runs '}
              {f.runs.slice(0, 20).map((id, i) => (
                <>
                  {i > 0 ? ', ' : ''}
                  <a href={runHref(id)} class="mono">
                    {shown(id)}
                  </a>
                </>
              ))}
              {f.runs.length > 20 ? ` and ${f.runs.length - 20} more` : ''}
            </span>
          </li>
        ))}
      </ul>
      {props.flags.length > FLAGS_SHOWN ? (
        <p class="muted">And {props.flags.length - FLAGS_SHOWN} more; narrow the range to see them.</p>
      ) : null}
    </>
  );
}

function Flags(props: { readonly report: Report }) {
  const r = props.report;
  return (
    <section aria-labelledby="flags">
      <h2 id="flags">For a reviewer to look at</h2>
      <p class="muted">
        Working hours {r.workingHours} ({r.timeZone}). A flag is a reason to look, not a verdict.
      </p>
      {r.flags.length === 0 ? (
        <p>Nothing to flag in this range.</p>
      ) : (
        FLAG_KINDS.map((kind) => {
          const flags = r.flags.filter((f) => f.kind === kind);
          if (flags.length === 0) return null;
          return (
            <section aria-labelledby={`flags-${kind}`}>
              <h3 id={`flags-${kind}`}>
                {FLAG_TITLES[kind]} ({flags.length})
              </h3>
              <FlagList flags={flags} />
            </section>
          );
        })
      )}
    </section>
  );
}

/** What the range fields show: the days asked for, or the range itself when none was given. */
function rangeFields(
  query: { from?: string | undefined; to?: string | undefined },
  report: Report,
): { from: string; to: string } {
  const lastDay = localDay(new Date(Date.parse(report.range.to) - 1).toISOString(), report.timeZone);
  return {
    from: query.from || localDay(report.range.from, report.timeZone),
    to: query.to || lastDay,
  };
}

/**
 * Registers /ui/reports on the UI's app. `settings` are the configured working hours and time
 * zone; the flag thresholds are the defaults of src/core/reports.ts.
 */
export function reportPages(app: Hono<WebEnv>, deps: WebDeps, settings?: ReportPageSettings): void {
  const reportSettings: ReportSettings = { ...DEFAULT_REPORT_SETTINGS, ...(settings ?? {}) };
  app.get('/ui/reports', async (c) => {
    await requireAction(c, 'readAudit', { kind: 'audit' });
    const query = { from: c.req.query('from'), to: c.req.query('to') };
    // Malformed or too long: a UserError('USAGE'), which the UI answers with a 400 page.
    const range = parseReportRange(query, new Date(), reportSettings.timeZone);
    const report = buildReport(await loadReportInput(deps.db, range), reportSettings);
    const fields = rangeFields(query, report);
    return html(
      c,
      <Page title="Reports" user={c.get('user')} path="/ui/reports">
        <RangeForm from={fields.from} to={fields.to} timeZone={report.timeZone} />
        <p>
          <strong>{report.totals.runs}</strong> {report.totals.runs === 1 ? 'run' : 'runs'} requested from{' '}
          <time datetime={report.range.from}>{report.range.from}</time> to{' '}
          <time datetime={report.range.to}>{report.range.to}</time> (the end excluded).
        </p>
        {report.truncated ? (
          <p class="notice" role="status">
            This range holds more runs than one report reads; the numbers cover its oldest runs only. Narrow the range
            for a complete report.
          </p>
        ) : null}
        <FixNext report={report} />
        <PerDay report={report} />
        <Waits report={report} />
        <Flags report={report} />
      </Page>,
    );
  });
}
