/**
 * `mechanic audit report [--since day|ISO] [--until day|ISO] [--as user] [--json]`: the report of
 * the reporting UI (GET /api/audit/report) in the terminal — what is run most, fails most and waits
 * longest for approval, runs per day, and the runs a reviewer should look at, each with why.
 * --since/--until take a day (in the server's report time zone; an --until day is included) or an
 * ISO time; without them, the last 30 days.
 */
import type { z } from 'zod';
import type { ReportSchema } from '../../src/api/report-schema.ts';
import { loadConfig } from '../../src/config.ts';
import { UserError } from '../../src/core/errors.ts';
import { EXECUTION_STATUSES } from '../../src/core/execution.ts';
import { FLAG_TITLES, formatSeconds } from '../../src/core/reports.ts';
import { neutralize } from '../../src/core/text.ts';
import { connectApi } from '../api.ts';
import { parse } from '../args.ts';
import { out } from '../output.ts';

export const REPORT_USAGE = 'mechanic audit report [--since day|ISO] [--until day|ISO] [--as user] [--json]';

type Report = z.infer<typeof ReportSchema>;

/** How many flags the text lists, and how many runs of one flag; the rest are counted (--json has all). */
const FLAGS_SHOWN = 100;
const RUNS_SHOWN = 20;

/** The report as text: a few lines per section, names shown inert. */
export function formatReport(r: Report): string {
  const name = (s: string) => neutralize(s);
  const lines: string[] = [
    `${r.totals.runs} run(s) requested from ${r.range.from} to ${r.range.to} (end excluded); days and working hours (${r.workingHours}) in ${r.timeZone}`,
  ];
  if (r.truncated)
    lines.push('this range holds more runs than one report reads: the numbers cover its oldest runs only');
  const section = (title: string, rows: string[], empty: string) => {
    lines.push('', title);
    lines.push(...(rows.length > 0 ? rows.map((row) => `  ${row}`) : [`  ${empty}`]));
  };
  section(
    'Most run',
    r.mostRun.map((m) => `${name(m.runbook)}: ${m.runs}`),
    'no runs',
  );
  section(
    'Most failing',
    r.mostFailing.map(
      (f) => `${name(f.runbook)}: ${f.failed} failed of ${f.ended} that ran to an end (${Math.round(f.rate * 100)}%)`,
    ),
    'no run failed',
  );
  section(
    'Longest approval waits (median, 95th percentile, longest)',
    r.approvalWaits.map(
      (w) =>
        `${name(w.runbook)}: ${w.decided > 0 ? `${formatSeconds(w.medianSeconds)}, ${formatSeconds(w.p95Seconds)}, ${formatSeconds(w.maxSeconds)} over ${w.decided} decided` : 'none decided'}${w.expired > 0 ? `; ${w.expired} expired undecided` : ''}`,
    ),
    'no run waited for approval',
  );
  section(
    'Runs per day',
    r.perDay
      .filter((d) => d.total > 0)
      .map(
        (d) =>
          `${d.day}: ${d.total} (${EXECUTION_STATUSES.filter((s) => (d.counts[s] ?? 0) > 0)
            .map((s) => `${s} ${d.counts[s]}`)
            .join(', ')})`,
      ),
    'no runs',
  );
  section(
    'Approval wait',
    r.waitDistribution.map((b) => `${b.label}: ${b.runs}`),
    'no decisions',
  );
  // Bounded as the web page is: a long range must not print one line per run, or a line of thousands.
  const runs = (ids: readonly string[]) =>
    ids.slice(0, RUNS_SHOWN).map(name).join(', ') +
    (ids.length > RUNS_SHOWN ? ` and ${ids.length - RUNS_SHOWN} more` : '');
  section(
    `For a reviewer to look at (${r.flags.length})`,
    r.flags.slice(0, FLAGS_SHOWN).map((f) => `[${FLAG_TITLES[f.kind]}] ${f.why} (${runs(f.runs)})`),
    'nothing to flag',
  );
  if (r.flags.length > FLAGS_SHOWN)
    lines.push(`  and ${r.flags.length - FLAGS_SHOWN} more; --json lists every flag and run, or narrow the range`);
  return lines.join('\n');
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      since: { type: 'string' },
      until: { type: 'string' },
      as: { type: 'string' },
      json: { type: 'boolean' },
    },
    REPORT_USAGE,
  );
  if (positionals.length !== 1) throw new UserError('USAGE', `usage: ${REPORT_USAGE}`);
  const api = await connectApi(loadConfig(), values.as);
  const { report } = await api.call('auditReport', {
    query: {
      ...(values.since !== undefined ? { from: values.since } : {}),
      ...(values.until !== undefined ? { to: values.until } : {}),
    },
  });
  if (values.json) out.json(report);
  else out.line(formatReport(report));
  return 0;
}
