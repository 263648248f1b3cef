/**
 * Reports from hand-built runs and events: each list and each flag, with a case that raises the
 * flag and a near miss that does not.
 */
import { describe, expect, test } from 'vitest';
import {
  DEFAULT_REPORT_SETTINGS,
  buildReport,
  formatWorkingHours,
  median,
  parseReportRange,
  parseWorkingHours,
  percentile,
  type FlagKind,
  type ReportEvent,
  type ReportInput,
  type ReportRun,
  type ReportSettings,
} from '../../src/core/reports.ts';

// 2026-11-02 is a Monday.
const MON = '2026-11-02';
const range = { from: '2026-11-01T00:00:00.000Z', to: '2026-11-15T00:00:00.000Z' };

function run(id: string, at: string, over: Partial<ReportRun> = {}): ReportRun {
  return {
    id,
    runbook: 'rotate-logs',
    version: 1,
    operator: 'alice',
    status: 'completed',
    createdAt: at,
    targets: ['i-01'],
    ...over,
  };
}
const plusSeconds = (iso: string, s: number) => new Date(Date.parse(iso) + s * 1000).toISOString();
const ev = (executionId: string, type: ReportEvent['type'], actor: string, at: string): ReportEvent => ({
  executionId,
  type,
  actor,
  at,
});
/** A run approved by `approver` after `seconds`, then running. */
function approved(r: ReportRun, approver: string, seconds: number): ReportEvent[] {
  const at = plusSeconds(r.createdAt, seconds);
  return [ev(r.id, 'approval.granted', approver, at), ev(r.id, 'execution.running', 'mechanic', at)];
}
/** Everyone has done everything before: no first-time flags unless a test wants them. */
function input(runs: ReportRun[], events: ReportEvent[] = [], before?: ReportInput['before']): ReportInput {
  return {
    range,
    runs,
    events,
    before: before ?? {
      runbooks: runs.map((r) => ({ operator: r.operator, runbook: r.runbook })),
      hosts: runs.flatMap((r) => r.targets.map((host) => ({ operator: r.operator, host }))),
    },
  };
}
const kinds = (input: ReportInput, settings?: ReportSettings): FlagKind[] =>
  buildReport(input, settings).flags.map((f) => f.kind);
const flagsOf = (i: ReportInput, kind: FlagKind, settings?: ReportSettings) =>
  buildReport(i, settings).flags.filter((f) => f.kind === kind);

describe('lists', () => {
  test('most-run runbooks: by count, ties by name; runs outside the range are left out', () => {
    const runs = [
      run('a1', `${MON}T09:00:00.000Z`, { runbook: 'b-book' }),
      run('a2', `${MON}T10:00:00.000Z`, { runbook: 'a-book' }),
      run('a3', `${MON}T11:00:00.000Z`, { runbook: 'c-book' }),
      run('a4', `${MON}T12:00:00.000Z`, { runbook: 'c-book' }),
      run('out', '2026-10-31T23:59:59.999Z', { runbook: 'z-book' }),
      run('out2', range.to, { runbook: 'z-book' }),
    ];
    const report = buildReport(input(runs));
    expect(report.mostRun).toEqual([
      { runbook: 'c-book', runs: 2 },
      { runbook: 'a-book', runs: 1 },
      { runbook: 'b-book', runs: 1 },
    ]);
    expect(report.totals.runs).toBe(4);
  });

  test('most-failing: count and rate over the runs that ran to an end', () => {
    const runs = [
      run('f1', `${MON}T09:00:00.000Z`, { runbook: 'deploy', status: 'failed' }),
      run('f2', `${MON}T09:10:00.000Z`, { runbook: 'deploy', status: 'completed' }),
      run('f3', `${MON}T09:20:00.000Z`, { runbook: 'deploy', status: 'rejected' }),
      run('f4', `${MON}T09:30:00.000Z`, { runbook: 'restart', status: 'failed' }),
      run('f5', `${MON}T09:40:00.000Z`, { runbook: 'restart', status: 'failed' }),
      run('f6', `${MON}T09:50:00.000Z`, { runbook: 'fine', status: 'completed' }),
    ];
    expect(buildReport(input(runs)).mostFailing).toEqual([
      { runbook: 'restart', failed: 2, ended: 2, rate: 1 },
      { runbook: 'deploy', failed: 1, ended: 2, rate: 0.5 },
    ]);
  });

  test('approval waits: request to decision, median and nearest-rank p95 per runbook, expired counted', () => {
    const runs = [10, 20, 30, 40].map((m, i) => run(`w${i}`, `${MON}T09:${m}:00.000Z`, { runbook: 'slow' }));
    const events = [
      ...approved(runs[0]!, 'bob', 60),
      ...approved(runs[1]!, 'bob', 120),
      ...approved(runs[2]!, 'bob', 600),
      // A rejection decides too.
      ev('w3', 'approval.rejected', 'bob', plusSeconds(runs[3]!.createdAt, 3600)),
      ev('w3', 'execution.rejected', 'bob', plusSeconds(runs[3]!.createdAt, 3600)),
    ];
    const expired = run('x1', `${MON}T10:00:00.000Z`, { runbook: 'quick', status: 'expired' });
    const fast = run('q1', `${MON}T10:05:00.000Z`, { runbook: 'quick' });
    const report = buildReport(input([...runs, expired, fast], [...events, ...approved(fast, 'bob', 5)]));
    expect(report.approvalWaits).toEqual([
      { runbook: 'slow', decided: 4, medianSeconds: 360, p95Seconds: 3600, maxSeconds: 3600, expired: 0 },
      { runbook: 'quick', decided: 1, medianSeconds: 5, p95Seconds: 5, maxSeconds: 5, expired: 1 },
    ]);
    expect(report.waitDistribution.map((b) => [b.label, b.runs])).toEqual([
      ['under 1 min', 1],
      ['1–5 min', 2],
      ['5–15 min', 1],
      ['15–60 min', 0],
      ['1–4 h', 1],
      ['4–24 h', 0],
      ['1 day or more', 0],
    ]);
  });

  test('median and percentile', () => {
    expect(median([1, 2, 3])).toBe(2);
    expect(median([1, 2, 3, 10])).toBe(2.5);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95)).toBe(10);
    expect(
      percentile(
        Array.from({ length: 20 }, (_, i) => i + 1),
        95,
      ),
    ).toBe(19);
    expect(percentile([], 95)).toBe(0);
  });

  test('runs per day by status: every day of the range, empty days included', () => {
    const runs = [
      run('d1', `${MON}T09:00:00.000Z`),
      run('d2', `${MON}T23:59:59.999Z`, { status: 'failed' }),
      run('d3', '2026-11-04T00:00:00.000Z', { status: 'rejected' }),
    ];
    const report = buildReport({
      ...input(runs),
      range: { from: `${MON}T00:00:00.000Z`, to: '2026-11-05T00:00:00.000Z' },
    });
    expect(report.perDay.map((d) => [d.day, d.total, d.counts.completed, d.counts.failed, d.counts.rejected])).toEqual([
      ['2026-11-02', 2, 1, 1, 0],
      ['2026-11-03', 0, 0, 0, 0],
      ['2026-11-04', 1, 0, 0, 1],
    ]);
  });

  test('days are local to the report time zone', () => {
    // 23:30 UTC on Monday is already Tuesday in Berlin.
    const runs = [run('tz', `${MON}T23:30:00.000Z`)];
    const settings = { ...DEFAULT_REPORT_SETTINGS, timeZone: 'Europe/Berlin' };
    const r = buildReport(
      { ...input(runs), range: { from: '2026-11-01T23:00:00.000Z', to: '2026-11-03T23:00:00.000Z' } },
      settings,
    );
    expect(r.perDay.map((d) => [d.day, d.total])).toEqual([
      ['2026-11-02', 0],
      ['2026-11-03', 1],
    ]);
  });
});

describe('flags', () => {
  test('off-hours: a Saturday run and a run at 18:00 are flagged, 17:59 on Friday is not', () => {
    const runs = [
      run('sat', '2026-11-07T10:00:00.000Z'),
      run('fri-late', '2026-11-06T18:00:00.000Z'),
      run('fri-ok', '2026-11-06T17:59:00.000Z'),
      run('mon-early', `${MON}T07:59:00.000Z`),
      run('mon-ok', `${MON}T08:00:00.000Z`),
    ];
    const found = flagsOf(input(runs), 'off-hours');
    expect(found.map((f) => f.runs)).toEqual([['mon-early'], ['fri-late'], ['sat']]);
    expect(found[2]!.why).toBe(
      'alice started rotate-logs on Saturday 2026-11-07 at 10:00 UTC, outside working hours (Mon-Fri 08:00-18:00).',
    );
  });

  test('off-hours follows the configured hours and zone', () => {
    const settings = {
      ...DEFAULT_REPORT_SETTINGS,
      workingHours: parseWorkingHours('Sat-Sun 09:00-17:00'),
      timeZone: 'America/New_York',
    };
    // 14:00 UTC on Saturday is 09:00 in New York (EST, UTC-5): inside. 13:59 UTC is 08:59: outside.
    const runs = [run('in', '2026-11-07T14:00:00.000Z'), run('out', '2026-11-07T13:59:00.000Z')];
    const found = flagsOf(input(runs), 'off-hours', settings);
    expect(found.map((f) => f.runs)).toEqual([['out']]);
    expect(found[0]!.why).toContain('08:59 America/New_York');
  });

  test('off-hours across a change of summer time: local hours before and after the jump', () => {
    // New York springs forward on 8 March 2026: 06:59Z is 01:59 EST, 07:00Z is 03:00 EDT.
    const settings = {
      ...DEFAULT_REPORT_SETTINGS,
      workingHours: parseWorkingHours('Sun 01:00-03:00'),
      timeZone: 'America/New_York',
    };
    const runs = [run('before', '2026-03-08T06:59:00.000Z'), run('after', '2026-03-08T07:00:00.000Z')];
    const i = { ...input(runs), range: { from: '2026-03-01T00:00:00.000Z', to: '2026-03-15T00:00:00.000Z' } };
    const found = flagsOf(i, 'off-hours', settings);
    expect(found.map((f) => f.runs)).toEqual([['after']]);
    expect(found[0]!.why).toContain('on Sunday 2026-03-08 at 03:00 America/New_York');
  });

  test('first run of a runbook by an operator: only the first, and not when done before the range', () => {
    const runs = [
      run('r1', `${MON}T09:00:00.000Z`, { operator: 'dave', runbook: 'deploy' }),
      run('r2', `${MON}T10:00:00.000Z`, { operator: 'dave', runbook: 'deploy' }),
      run('r3', `${MON}T11:00:00.000Z`, { operator: 'erin', runbook: 'deploy' }),
    ];
    const before = { runbooks: [{ operator: 'erin', runbook: 'deploy' }], hosts: [] };
    const found = flagsOf(
      input(runs, [], { ...before, hosts: runs.map((r) => ({ operator: r.operator, host: 'i-01' })) }),
      'first-runbook',
    );
    expect(found).toEqual([{ kind: 'first-runbook', runs: ['r1'], why: 'dave ran deploy for the first time.' }]);
  });

  test('first host: new hosts of an operator are flagged once, known ones never', () => {
    const runs = [
      run('h1', `${MON}T09:00:00.000Z`, { targets: ['i-01', 'i-02'] }),
      run('h2', `${MON}T10:00:00.000Z`, { targets: ['i-02', 'i-03'] }),
      run('h3', `${MON}T11:00:00.000Z`, { targets: ['i-01', 'i-03'] }),
    ];
    const before = {
      runbooks: [{ operator: 'alice', runbook: 'rotate-logs' }],
      hosts: [{ operator: 'alice', host: 'i-01' }],
    };
    const found = flagsOf(input(runs, [], before), 'first-host');
    expect(found.map((f) => [f.runs, f.why])).toEqual([
      [['h1'], 'alice touched host i-02 for the first time, with rotate-logs.'],
      [['h2'], 'alice touched host i-03 for the first time, with rotate-logs.'],
    ]);
  });

  const fiveRuns = (operator: string, prefix: string) =>
    [0, 1, 2, 3, 4].map((i) => run(`${prefix}${i}`, `${MON}T1${i}:00:00.000Z`, { operator }));

  test('quick approver: one requester approved within the limit every time, at least K times', () => {
    const runs = fiveRuns('carol', 'q');
    const events = runs.flatMap((r, i) => approved(r, 'bob', 10 + i * 10));
    const found = flagsOf(input(runs, events), 'quick-approver');
    expect(found).toEqual([
      {
        kind: 'quick-approver',
        runs: ['q0', 'q1', 'q2', 'q3', 'q4'],
        why: "bob approved all 5 of carol's requests within 1 min (the slowest after 50 s): approvals this fast may not read the plan.",
      },
    ]);
  });

  test('quick approver near misses: one slow approval, or fewer than K approvals', () => {
    const runs = fiveRuns('carol', 'q');
    const oneSlow = runs.flatMap((r, i) => approved(r, 'bob', i === 3 ? 61 : 5));
    expect(kinds(input(runs, oneSlow))).not.toContain('quick-approver');
    const fourFast = runs.slice(0, 4).flatMap((r) => approved(r, 'bob', 5));
    expect(kinds(input(runs.slice(0, 4), fourFast))).not.toContain('quick-approver');
    // Exactly the limit still counts as within it.
    const atLimit = runs.flatMap((r) => approved(r, 'bob', 60));
    expect(kinds(input(runs, atLimit))).toContain('quick-approver');
  });

  test('frequent pair: one approver approves more than the share of a requester’s approved runs', () => {
    const runs = fiveRuns('carol', 'p');
    const events = runs.flatMap((r) => approved(r, 'bob', 3600));
    const found = flagsOf(input(runs, events), 'frequent-pair');
    expect(found).toEqual([
      {
        kind: 'frequent-pair',
        runs: ['p0', 'p1', 'p2', 'p3', 'p4'],
        why: "bob approved 5 of carol's 5 approved runs (100%): the same pair again and again weakens the second pair of eyes.",
      },
    ]);
  });

  test('frequent pair near misses: share at the threshold, or too few runs', () => {
    const runs = fiveRuns('carol', 'p');
    // 4 of 5 is 80%: not above the 80% threshold.
    const fourOfFive = runs.flatMap((r, i) => approved(r, i === 4 ? 'dan' : 'bob', 3600));
    expect(kinds(input(runs, fourOfFive))).not.toContain('frequent-pair');
    const four = runs.slice(0, 4);
    expect(
      kinds(
        input(
          four,
          four.flatMap((r) => approved(r, 'bob', 3600)),
        ),
      ),
    ).not.toContain('frequent-pair');
  });

  test('a second approval by the same approver on one run counts once', () => {
    const runs = fiveRuns('carol', 'p');
    const events = runs.flatMap((r) => [
      ...approved(r, 'bob', 5),
      ev(r.id, 'approval.granted', 'bob', plusSeconds(r.createdAt, 500)),
    ]);
    expect(flagsOf(input(runs, events), 'quick-approver')).toHaveLength(1);
  });

  test('names are shown inert in the sentences', () => {
    const runs = [run('x', '2026-11-07T10:00:00.000Z', { operator: 'eve\u202Egnp.exe', runbook: 'a\u001b[31mred' })];
    const [flag] = flagsOf(input(runs), 'off-hours');
    expect(flag!.why).not.toMatch(/[\u202E\u001b]/);
    expect(flag!.why).toContain('eve<U+202E>gnp.exe');
  });

  test('flags come in a fixed order: by kind, then by the first run', () => {
    const runs = [run('b', '2026-11-07T11:00:00.000Z', { operator: 'zed' }), run('a', '2026-11-07T10:00:00.000Z')];
    expect(buildReport(input(runs, [], { runbooks: [], hosts: [] })).flags.map((f) => [f.kind, f.runs[0]])).toEqual([
      ['off-hours', 'a'],
      ['off-hours', 'b'],
      ['first-runbook', 'a'],
      ['first-runbook', 'b'],
      ['first-host', 'a'],
      ['first-host', 'b'],
    ]);
  });
});

describe('working hours', () => {
  test.each([
    ['Mon-Fri 08:00-18:00', [1, 2, 3, 4, 5], 480, 1080, 'Mon-Fri 08:00-18:00'],
    ['Fri-Mon 00:00-24:00', [0, 1, 5, 6], 0, 1440, 'Sun-Mon,Fri-Sat 00:00-24:00'],
    ['mon,wed,sat 09:30-17:00', [1, 3, 6], 570, 1020, 'Mon,Wed,Sat 09:30-17:00'],
  ])('%s', (text, days, start, end, back) => {
    const w = parseWorkingHours(text);
    expect(w).toEqual({ days, startMinute: start, endMinute: end });
    expect(formatWorkingHours(w)).toBe(back);
  });

  test.each([
    'Mon-Fri',
    'Mon-Fri 18:00-08:00',
    'Xyz 08:00-18:00',
    'Mon-Fri 08:00-25:00',
    'Mon-Fri 08:61-09:00',
    'Mon-Tue-Wed 08:00-09:00',
  ])('refuses %s with what to write', (text) => {
    expect(() => parseWorkingHours(text)).toThrow(
      /^could not read working hours ".*"; write working days and hours like "Mon-Fri 08:00-18:00"/,
    );
  });
});

describe('range', () => {
  const now = new Date('2026-11-30T12:00:00.000Z');
  test('defaults to the 30 days up to now', () => {
    expect(parseReportRange({}, now, 'UTC')).toEqual({ from: '2026-10-31T12:00:00.000Z', to: now.toISOString() });
  });
  test('days are local and a `to` day is included', () => {
    expect(parseReportRange({ from: '2026-11-01', to: '2026-11-01' }, now, 'Europe/Berlin')).toEqual({
      from: '2026-10-31T23:00:00.000Z',
      to: '2026-11-01T23:00:00.000Z',
    });
    // Across the end of summer time: the day is 25 hours long.
    expect(parseReportRange({ from: '2026-10-25', to: '2026-10-25' }, now, 'Europe/Berlin')).toEqual({
      from: '2026-10-24T22:00:00.000Z',
      to: '2026-10-25T23:00:00.000Z',
    });
  });
  test('ISO times are taken as they are', () => {
    expect(parseReportRange({ from: '2026-11-01T08:00:00+01:00', to: '2026-11-02T00:00:00Z' }, now, 'UTC')).toEqual({
      from: '2026-11-01T07:00:00.000Z',
      to: '2026-11-02T00:00:00.000Z',
    });
  });
  test.each([
    [
      { from: 'yesterday' },
      'from "yesterday" is not a date; write a day (2026-11-30) or an ISO time (2026-11-30T08:00:00Z)',
    ],
    [
      { to: '2026-02-30' },
      'to "2026-02-30" is not a date; write a day (2026-11-30) or an ISO time (2026-11-30T08:00:00Z)',
    ],
    [
      { from: '2026-11-02', to: '2026-11-01' },
      'the report range is empty: from (2026-11-02T00:00:00.000Z) must be before to (2026-11-02T00:00:00.000Z)',
    ],
    [{ from: '2025-01-01', to: '2026-11-01' }, 'the report range covers 670 days; ask for at most 366 days at a time'],
  ])('refuses %j', (query, message) => {
    expect(() => parseReportRange(query, now, 'UTC')).toThrow(message);
    try {
      parseReportRange(query, now, 'UTC');
    } catch (e) {
      expect(e).toMatchObject({ code: 'USAGE' });
    }
  });
});
