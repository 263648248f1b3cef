/**
 * Tests written to kill the mutants of src/core/reports.ts that survived the whole Stryker run
 * (docs/mutation-survivors.md): the order of two flags that read alike (two approvers whose names
 * show the same, one hiding an ANSI sequence), which only the pairs' sort by name and the last
 * tie-break decide (415:43, 644:24, 645:5, 645:15); a zone's offset in the far future, where
 * `ms * 1000` no longer fits a double exactly (214:25); and a range longer than the days a
 * report lists (573:9).
 *
 * Equivalent, left alive:
 * - 102:33 `a ?? ''`: split always returns at least one part, so `a` is never undefined.
 * - 125:12 `j + 1 < days.length` → `true`, `<=`, `j - 1`: past the end `days[j + 1]` is undefined,
 *   which is never `days[j] + 1`.
 * - 184:7 `!f` → `true`, 240:7 and 240:20 (UTC by Intl instead of by Date), 244:7 and the four at
 *   245:9 (the offset cache's bound): caches and shortcuts, the same answer at another cost.
 * - 204:14, 204:23, 204:25, 204:39: zonedByIntl's weekday is never read (offsetAt uses the date and
 *   time only; zoned takes the weekday from Date).
 * - 214:17 `ms + …`, 214:24 `- 1000`: offsetAt is only given whole seconds (quarter hours, UTC
 *   midnights, and those minus a whole-second offset), so `ms % 1000` is 0 and both give `ms`.
 * - 282:44 and 282:81 (a date's month or day check → `true`): a month out of range moves the year,
 *   a day out of range moves the month, so the other checks refuse the same dates.
 * - 415:56 `a > b` → `true`, `false`, `>=`, `<=`: V8's sort reads a comparator only as `< 0` or not,
 *   and the names compared are distinct, except in the pairs' sort, where 0 lets the requester
 *   decide; pairs of two requesters never share a first run, so the flags' own order hides it.
 * - 474:9 (events of runs out of range kept): they are only looked up by the ids of runs in range.
 * - 475:49, 487:27, 495:45, 631:44, 658:55 (`[]` → `["Stryker was here"]`): a string has no `type`
 *   and no `at`, so no find or filter takes it and no wait counts it (the sort reads it as first).
 * - 505:17 (the names unsorted): every list made from them is sorted again, ending on the name.
 * - 514:57 `ended === 0` → `false`, 659:19 `approved.length === 0` → `false`: a runbook with a
 *   failure has ended runs, and a pair's requester has at least that pair's approved runs.
 */
import { describe, expect, test } from 'vitest';
import { buildReport, parseReportRange, type ReportEvent, type ReportRun } from '../../src/core/reports.ts';

const run = (id: string, createdAt: string): ReportRun => ({
  id,
  runbook: 'rotate',
  version: 1,
  operator: 'alice',
  status: 'completed',
  createdAt,
  targets: ['i-01'],
});
const everythingBefore = (runs: readonly ReportRun[]) => ({
  runbooks: runs.map((r) => ({ operator: r.operator, runbook: r.runbook })),
  hosts: runs.flatMap((r) => r.targets.map((host) => ({ operator: r.operator, host }))),
});

describe('flags that read alike', () => {
  test('come in the order of their approvers by name, whatever order they voted in', () => {
    // Both show as "bob". The plain bob votes first on the first run; each approves five of six runs.
    const hidden = '\u001b[0mbob';
    const runs = Array.from({ length: 6 }, (_, i) => run(`r${i + 1}`, `2026-11-02T1${i}:00:00.000Z`));
    const at = (r: ReportRun) => new Date(Date.parse(r.createdAt) + 30_000).toISOString();
    const vote = (r: ReportRun, actor: string): ReportEvent => ({
      executionId: r.id,
      type: 'approval.granted',
      actor,
      at: at(r),
    });
    const events = runs.flatMap((r, i) => [
      ...(i !== 4 ? [vote(r, 'bob')] : []),
      ...(i !== 5 ? [vote(r, hidden)] : []),
    ]);
    const report = buildReport({
      range: { from: '2026-11-01T00:00:00.000Z', to: '2026-11-15T00:00:00.000Z' },
      runs,
      events,
      before: everythingBefore(runs),
    });
    const byHidden = ['r1', 'r2', 'r3', 'r4', 'r5'];
    const byBob = ['r1', 'r2', 'r3', 'r4', 'r6'];
    const quick =
      "bob approved all 5 of alice's requests within 1 min (the slowest after 30 s): approvals this fast may not read the plan.";
    const pair =
      "bob approved 5 of alice's 6 approved runs (83%): the same pair again and again weakens the second pair of eyes.";
    expect(report.flags).toEqual([
      { kind: 'quick-approver', runs: byHidden, why: quick },
      { kind: 'quick-approver', runs: byBob, why: quick },
      { kind: 'frequent-pair', runs: byHidden, why: pair },
      { kind: 'frequent-pair', runs: byBob, why: pair },
    ]);
  });
});

describe('time far from now', () => {
  test('a day in year 9999 begins at its local midnight, to the millisecond', () => {
    // Paris in June is UTC+2 (its last rule holds for ever).
    expect(parseReportRange({ from: '9999-06-01', to: '9999-06-01' }, new Date(0), 'Europe/Paris')).toEqual({
      from: '9999-05-31T22:00:00.000Z',
      to: '9999-06-01T22:00:00.000Z',
    });
  });

  test('a range longer than a report lists counts its runs past the last listed day in the totals only', () => {
    const late = { ...run('late', '2027-02-15T10:00:00.000Z'), status: 'failed' as const };
    const report = buildReport({
      range: { from: '2026-01-01T00:00:00.000Z', to: '2027-03-01T00:00:00.000Z' },
      runs: [late],
      events: [],
      before: everythingBefore([late]),
    });
    expect(report.totals.runs).toBe(1);
    expect(report.perDay).toHaveLength(368);
    expect(report.perDay.at(-1)!.day).toBe('2027-01-03');
    expect(report.perDay.reduce((sum, d) => sum + d.total, 0)).toBe(0);
  });
});
