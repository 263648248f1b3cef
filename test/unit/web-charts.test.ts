/**
 * The server-drawn charts: standalone, labelled SVG with one bar (segment) per non-zero number and
 * the right axis labels; stored names are shown inert.
 */
import { DOMParser } from 'linkedom';
import { describe, expect, test } from 'vitest';
import { EXECUTION_STATUSES, type ExecutionStatus } from '../../src/core/execution.ts';
import type { DayCounts, WaitBucket } from '../../src/core/reports.ts';
import { STATUS_COLORS, approvalWaitChart, mostRunChart, runsPerDayChart } from '../../src/server/web/charts.ts';

/** The little of linkedom's DOM the checks read (the project compiles without the DOM library). */
interface Node {
  readonly tagName: string;
  readonly textContent: string | null;
  getAttribute(name: string): string | null;
  querySelector(selector: string): Node | null;
  querySelectorAll(selector: string): Iterable<Node>;
}

function parse(svg: string) {
  const doc = new DOMParser().parseFromString(svg, 'image/svg+xml') as unknown as { documentElement: Node };
  const root = doc.documentElement;
  return {
    root,
    bars: [...root.querySelectorAll('g[aria-label="bar"] rect')],
    texts: (axis: string) =>
      [...root.querySelectorAll(`g[aria-label="${axis}-axis tick label"] text`)].map((t) => t.textContent),
  };
}

function day(dayName: string, counts: Partial<Record<ExecutionStatus, number>>): DayCounts {
  const all = Object.fromEntries(EXECUTION_STATUSES.map((s) => [s, counts[s] ?? 0])) as Record<ExecutionStatus, number>;
  return { day: dayName, counts: all, total: Object.values(all).reduce((a, b) => a + b, 0) };
}

describe('charts', () => {
  test('runs per day: a standalone, labelled SVG with one segment per day and status with runs', () => {
    const chart = runsPerDayChart(
      [day('2026-11-02', { completed: 3, failed: 1 }), day('2026-11-03', {}), day('2026-11-04', { rejected: 2 })],
      EXECUTION_STATUSES,
    );
    expect(chart.svg.startsWith('<svg')).toBe(true);
    const { root, bars, texts } = parse(chart.svg);
    expect(root.tagName.toLowerCase()).toBe('svg');
    expect(root.getAttribute('xmlns')).toBe('http://www.w3.org/2000/svg');
    expect(root.getAttribute('role')).toBe('img');
    expect(root.getAttribute('aria-label')).toBe('Runs per day by status: 6 runs over 3 days');
    expect(root.querySelector('title')?.textContent).toBe('Runs per day by status: 6 runs over 3 days');
    expect(bars).toHaveLength(3);
    expect(bars.map((b) => b.getAttribute('fill'))).toEqual([
      STATUS_COLORS.completed,
      STATUS_COLORS.failed,
      STATUS_COLORS.rejected,
    ]);
    expect(bars.map((b) => b.querySelector('title')?.textContent)).toEqual([
      '2026-11-02: 3 completed',
      '2026-11-02: 1 failed',
      '2026-11-04: 2 rejected',
    ]);
    // Every day on the axis, the empty one too.
    expect(texts('x')).toEqual(['11-02', '11-03', '11-04']);
  });

  test('runs per day over a long range labels at most a dozen days', () => {
    const days = Array.from({ length: 90 }, (_, i) =>
      day(new Date(Date.UTC(2026, 0, 1 + i)).toISOString().slice(0, 10), { completed: 1 }),
    );
    const { bars, texts } = parse(runsPerDayChart(days, EXECUTION_STATUSES).svg);
    expect(bars).toHaveLength(90);
    expect(texts('x').length).toBeLessThanOrEqual(12);
    expect(texts('x')[0]).toBe('01-01');
  });

  test('approval wait: one bar per non-empty bucket, every bucket on the axis', () => {
    const buckets: WaitBucket[] = [
      { label: 'under 1 min', fromSeconds: 0, toSeconds: 60, runs: 4 },
      { label: '1–5 min', fromSeconds: 60, toSeconds: 300, runs: 0 },
      { label: '1 day or more', fromSeconds: 86_400, toSeconds: null, runs: 1 },
    ];
    const chart = approvalWaitChart(buckets);
    const { root, bars, texts } = parse(chart.svg);
    expect(root.getAttribute('aria-label')).toBe('Approval wait: 5 decided runs by how long they waited');
    expect(bars).toHaveLength(2);
    expect(texts('x')).toEqual(['under 1 min', '1–5 min', '1 day or more']);
  });

  test('most-run runbooks: one bar each, names as labels, shown inert', () => {
    const chart = mostRunChart([
      { runbook: 'rotate-logs', runs: 7 },
      { runbook: '<script>alert(1)</script>', runs: 2 },
      { runbook: 'evil\u202Eexe', runs: 1 },
    ]);
    expect(chart.svg).not.toContain('<script>');
    expect(chart.svg).not.toContain('\u202E');
    const { bars, texts } = parse(chart.svg);
    expect(bars).toHaveLength(3);
    expect(texts('y')).toEqual(['rotate-logs', '<script>alert(1)</script>', 'evil<U+202E>exe']);
  });
});

test('count axes have whole-number ticks only', () => {
  const few = parse(mostRunChart([{ runbook: 'a', runs: 3 }]).svg).texts('x');
  expect(few).toEqual(['0', '1', '2', '3']);
  const many = parse(mostRunChart([{ runbook: 'a', runs: 250 }]).svg).texts('x');
  expect(many.every((t) => /^\d+$/.test(t ?? ''))).toBe(true);
  expect(many.length).toBeLessThanOrEqual(9);
});
