/**
 * The report's charts, drawn on the server as standalone SVG with Observable Plot over a linkedom
 * document: no script in the browser, nothing to fetch, the same picture on screen and on paper.
 * Each chart carries role="img", an aria-label and a <title> saying what it shows; the page puts
 * the same numbers in a table beside it, which is what a screen reader and a printout read.
 *
 * Colours come from a fixed palette rather than Plot's scheme, so the HTML legend next to a
 * chart names the same colours the bars have.
 */
import * as Plot from '@observablehq/plot';
import { parseHTML } from 'linkedom';
import type { ExecutionStatus } from '../../core/execution.ts';
import type { DayCounts, RunbookCount, WaitBucket } from '../../core/reports.ts';
import { neutralize } from '../../core/text.ts';

/** One colour per status (distinct for common colour-vision deficiencies, and in greyscale print). */
export const STATUS_COLORS: Readonly<Record<ExecutionStatus, string>> = {
  completed: '#1b7837',
  failed: '#b2182b',
  rejected: '#762a83',
  expired: '#e08214',
  cancelled: '#878787',
  running: '#2166ac',
  awaiting_approval: '#92c5de',
};
const BAR_COLOR = '#0b4f9c';

export interface Chart {
  /** The standalone SVG document: xmlns, role, aria-label, <title>. */
  readonly svg: string;
  /** What the chart shows, in one sentence (its title and aria-label). */
  readonly label: string;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * The little of the DOM this module touches. The project compiles without the DOM library (it is
 * a server), so linkedom's and Plot's DOM types do not resolve; these describe what they return.
 */
interface SvgElement {
  setAttribute(name: string, value: string): void;
  readonly children: Iterable<{ setAttribute(name: string, value: string): void }>;
  insertBefore(node: unknown, before: unknown): unknown;
  readonly firstChild: unknown;
  readonly outerHTML: string;
}
interface ServerDocument {
  createElementNS(ns: string, name: string): { textContent: string | null };
}

function freshDocument(): ServerDocument {
  const window = parseHTML('<!DOCTYPE html><html><head></head><body></body></html>') as unknown as {
    readonly document: ServerDocument;
  };
  return window.document;
}

/** Plot's SVG made standalone and labelled: the namespace, role="img", an aria-label and a title. */
function finish(el: SvgElement, document: ServerDocument, label: string): Chart {
  // The chart is one image to assistive technology: its parts are hidden (Plot labels its groups
  // with aria-label, which is not allowed on an element without a role), and the table beside it
  // carries the numbers.
  for (const child of el.children) child.setAttribute('aria-hidden', 'true');
  el.setAttribute('xmlns', SVG_NS);
  el.setAttribute('role', 'img');
  el.setAttribute('aria-label', label);
  const title = document.createElementNS(SVG_NS, 'title');
  title.textContent = label;
  el.insertBefore(title, el.firstChild);
  return { svg: el.outerHTML, label };
}

/** Whole-number ticks from 0 to at least `max`, at most about eight of them: counts have no halves. */
function countAxis(max: number): { domain: [number, number]; ticks: number[]; tickFormat: (n: number) => string } {
  const step = Math.max(1, Math.ceil(Math.max(1, max) / 8));
  const top = Math.ceil(Math.max(1, max) / step) * step;
  return {
    domain: [0, top],
    ticks: Array.from({ length: top / step + 1 }, (_, i) => i * step),
    tickFormat: (n: number) => String(n),
  };
}

/** At most ~12 day labels on the axis, whatever the range. */
function dayTicks(days: readonly string[]): string[] {
  const step = Math.max(1, Math.ceil(days.length / 12));
  return days.filter((_, i) => i % step === 0);
}

/** Runs per day, stacked by status: one bar segment per day and status with runs. */
export function runsPerDayChart(perDay: readonly DayCounts[], statuses: readonly ExecutionStatus[]): Chart {
  const document = freshDocument();
  const days = perDay.map((d) => d.day);
  const cells = perDay.flatMap((d) =>
    statuses.filter((s) => d.counts[s] > 0).map((status) => ({ day: d.day, status, runs: d.counts[status] })),
  );
  const el = Plot.plot({
    document,
    width: 720,
    height: 320,
    marginLeft: 48,
    marginBottom: 40,
    x: { type: 'band', domain: days, label: 'Day', ticks: dayTicks(days), tickFormat: (d: string) => d.slice(5) },
    y: { label: 'Runs', grid: true, ...countAxis(Math.max(0, ...perDay.map((d) => d.total))) },
    color: { domain: [...statuses], range: statuses.map((s) => STATUS_COLORS[s]) },
    marks: [
      Plot.barY(cells, {
        x: 'day',
        y: 'runs',
        fill: 'status',
        order: [...statuses],
        title: (c: { day: string; status: string; runs: number }) => `${c.day}: ${c.runs} ${c.status}`,
      }),
      Plot.ruleY([0]),
    ],
  }) as unknown as SvgElement;
  const total = perDay.reduce((n, d) => n + d.total, 0);
  return finish(el, document, `Runs per day by status: ${total} runs over ${perDay.length} days`);
}

/** How long runs waited for their approval decision, as counts per wait bucket. */
export function approvalWaitChart(buckets: readonly WaitBucket[]): Chart {
  const document = freshDocument();
  const labels = buckets.map((b) => b.label);
  const el = Plot.plot({
    document,
    width: 720,
    height: 280,
    marginLeft: 48,
    x: { type: 'band', domain: labels, label: 'Wait for approval' },
    y: { label: 'Runs', grid: true, ...countAxis(Math.max(0, ...buckets.map((b) => b.runs))) },
    marks: [
      Plot.barY(
        buckets.filter((b) => b.runs > 0),
        { x: 'label', y: 'runs', fill: BAR_COLOR, title: (b: WaitBucket) => `${b.label}: ${b.runs} runs` },
      ),
      Plot.ruleY([0]),
    ],
  }) as unknown as SvgElement;
  const decided = buckets.reduce((n, b) => n + b.runs, 0);
  return finish(el, document, `Approval wait: ${decided} decided runs by how long they waited`);
}

/** The most-run runbooks, one horizontal bar each, most first. */
export function mostRunChart(mostRun: readonly RunbookCount[]): Chart {
  const document = freshDocument();
  // Names are shown inert, like every stored text (the SVG serialiser escapes markup).
  const rows = mostRun.map((r) => ({ runbook: neutralize(r.runbook), runs: r.runs }));
  const names = rows.map((r) => r.runbook);
  const longest = Math.max(8, ...names.map((n) => n.length));
  const el = Plot.plot({
    document,
    width: 720,
    height: 40 + 28 * Math.max(1, names.length),
    // Room for the runbook names (about 7 px a character at the default size), within reason.
    marginLeft: Math.min(260, 16 + longest * 7),
    x: { label: 'Runs', grid: true, ...countAxis(Math.max(0, ...rows.map((r) => r.runs))) },
    y: { type: 'band', domain: names, label: null },
    marks: [
      Plot.barX(rows, {
        y: 'runbook',
        x: 'runs',
        fill: BAR_COLOR,
        title: (r: RunbookCount) => `${r.runbook}: ${r.runs} runs`,
      }),
      Plot.ruleX([0]),
    ],
  }) as unknown as SvgElement;
  return finish(el, document, `Most-run runbooks: the top ${names.length} by number of runs`);
}
