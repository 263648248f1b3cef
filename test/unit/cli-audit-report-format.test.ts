/**
 * `mechanic audit report` in text is bounded as the web page is: at most 100 flags and 20 runs per
 * flag are printed, the rest counted, so a long range never prints thousands of lines or one line
 * of thousands of run ids; --json keeps everything.
 */
import { describe, expect, test } from 'vitest';
import type { z } from 'zod';
import { formatReport } from '../../cli/commands/audit-report.ts';
import type { ReportSchema } from '../../src/api/report-schema.ts';

type Report = z.infer<typeof ReportSchema>;

function report(flags: Report['flags']): Report {
  const byStatus = {} as Report['totals']['byStatus'];
  return {
    range: { from: '2026-11-01T00:00:00.000Z', to: '2026-12-01T00:00:00.000Z' },
    timeZone: 'UTC',
    workingHours: 'Mon–Fri 08:00–18:00',
    truncated: false,
    totals: { runs: 0, byStatus },
    mostRun: [],
    mostFailing: [],
    approvalWaits: [],
    waitDistribution: [],
    perDay: [],
    flags,
  };
}

const ids = (n: number, prefix = 'mx-r') =>
  Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(5, '0')}`);

describe('the audit report as text', () => {
  test('a flag names at most 20 runs and counts the rest', () => {
    const text = formatReport(report([{ kind: 'frequent-pair', runs: ids(1000), why: 'bob approves alice often' }]));
    const line = text.split('\n').find((l) => l.includes('bob approves alice often'))!;
    expect(line).toContain('mx-r00019 and 980 more)');
    expect(line).not.toContain('mx-r00020');
  });

  test('at most 100 flags are printed, then how many more and where to find them', () => {
    const flags = ids(250, 'op').map((op) => ({
      kind: 'off-hours' as const,
      runs: [`mx-${op}`],
      why: `${op} ran off-hours`,
    }));
    const text = formatReport(report(flags));
    expect(text).toContain('For a reviewer to look at (250)');
    expect(text).toContain('op00099 ran off-hours');
    expect(text).not.toContain('op00100 ran off-hours');
    expect(text).toContain('and 150 more; --json lists every flag and run, or narrow the range');
    expect(text.split('\n').length).toBeLessThan(130);
  });

  test('a short report is printed whole, with no count line', () => {
    const text = formatReport(report([{ kind: 'first-host', runs: ids(3), why: 'first time on i-1' }]));
    expect(text).toContain('(mx-r00000, mx-r00001, mx-r00002)');
    expect(text).not.toContain('more');
  });
});
