/**
 * Reports, for the mutants core-reports left alive (issue 12, mutation round five): what working
 * hours read and refuse, durations in sentences, empty bounds, the longest range, a year before 100,
 * the run at the range's start, decisions and waits read in time order whatever the input order,
 * totals by status, the `top` limit, ties in the failing list, runbooks that only expired, the open
 * last bucket, truncation, a year of days, hosts in a sentence, runs without approvals in the
 * pair share, and flags of one kind ordered by their first run.
 */
import { describe, expect, test } from 'vitest';
import {
  DEFAULT_REPORT_SETTINGS,
  buildReport,
  formatSeconds,
  formatWorkingHours,
  isTimeZone,
  median,
  parseReportRange,
  parseWorkingHours,
  type ReportEvent,
  type ReportInput,
  type ReportRun,
} from '../../src/core/reports.ts';

const MON = '2026-11-02';
const range = { from: '2026-11-01T00:00:00.000Z', to: '2026-11-15T00:00:00.000Z' };
const plus = (iso: string, s: number) => new Date(Date.parse(iso) + s * 1000).toISOString();

function run(id: string, at: string, over: Partial<ReportRun> = {}): ReportRun {
  return {
    id,
    runbook: 'rotate',
    version: 1,
    operator: 'alice',
    status: 'completed',
    createdAt: at,
    targets: ['i-01'],
    ...over,
  };
}
const ev = (executionId: string, type: ReportEvent['type'], actor: string, at: string): ReportEvent => ({
  executionId,
  type,
  actor,
  at,
});
/** Everyone has done everything before, unless `before` says otherwise. */
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

describe('working hours', () => {
  test.each([
    [' Mon-Fri  08:00 - 18:00 ', 'Mon-Fri 08:00-18:00'],
    ['Mon-Fri 08:59-18:59', 'Mon-Fri 08:59-18:59'],
    ['Mon-Fri 08:00-08:01', 'Mon-Fri 08:00-08:01'],
  ])('%j is read', (text, back) => {
    expect(formatWorkingHours(parseWorkingHours(text))).toBe(back);
  });

  test.each([
    '!Mon-Fri 08:00-18:00',
    'Mon-Fri 08:00-18:00!',
    'Mon-Fri 08:60-18:00',
    'Mon-Fri 08:00-18:60',
    'Mon-Fri 08:00-08:00',
    'Mon-Xyz 08:00-18:00',
    'Xyz-Mon 08:00-18:00',
  ])('%j is refused as a configuration error', (text) => {
    expect(() => parseWorkingHours(text, 'reports.workingHours')).toThrow(
      expect.objectContaining({
        code: 'CONFIG_INVALID',
        message: expect.stringMatching(/^could not read reports\.workingHours "/),
      }),
    );
  });

  test('days written back as ranges where they follow each other', () => {
    expect(formatWorkingHours({ days: [1, 2, 3, 5], startMinute: 0, endMinute: 60 })).toBe('Mon-Wed,Fri 00:00-01:00');
    expect(formatWorkingHours({ days: [0, 6], startMinute: 90, endMinute: 1440 })).toBe('Sun,Sat 01:30-24:00');
  });

  test('a zone this runtime does not know is false, not merely falsy', () => {
    expect(isTimeZone('Nowhere/Atlantis')).toBe(false);
    expect(isTimeZone('Europe/Berlin')).toBe(true);
  });
});

describe('durations and the median', () => {
  test.each([
    [42, '42 s'],
    [59.6, '1 min'],
    [61, '1 min 1 s'],
    [3_599, '59 min 59 s'],
    [3_600, '1 h'],
    [3_660, '1 h 1 min'],
    [3_630, '1 h'],
    [88_200, '1 d'],
    [86_399, '23 h 59 min'],
    [86_400, '1 d'],
    [90_000, '1 d 1 h'],
    [200_000, '2 d 7 h'],
  ])('%d seconds read as %j', (seconds, text) => {
    expect(formatSeconds(seconds)).toBe(text);
  });
  test('the median of nothing is 0', () => {
    expect(median([])).toBe(0);
  });
});

describe('range', () => {
  const now = new Date('2026-11-30T12:00:00.000Z');
  test('empty bounds are no bounds', () => {
    expect(parseReportRange({ from: '', to: '' }, now, 'UTC')).toEqual(parseReportRange({}, now, 'UTC'));
  });
  test('exactly 366 days is allowed', () => {
    expect(parseReportRange({ from: '2025-11-30', to: '2026-11-30' }, now, 'UTC')).toEqual({
      from: '2025-11-30T00:00:00.000Z',
      to: '2026-12-01T00:00:00.000Z',
    });
  });
  test.each(['0099-01-01', '2026-13-01'])('%j is not a date', (day) => {
    expect(() => parseReportRange({ from: day }, now, 'UTC')).toThrow(`from "${day}" is not a date`);
  });
});

describe('the report', () => {
  test('a run at the very start of the range is in it', () => {
    expect(buildReport(input([run('r0', range.from)])).totals.runs).toBe(1);
  });

  test('totals by status', () => {
    const runs = [
      run('a', `${MON}T09:00:00.000Z`),
      run('b', `${MON}T09:01:00.000Z`, { status: 'failed' }),
      run('c', `${MON}T09:02:00.000Z`, { status: 'failed' }),
    ];
    expect(buildReport(input(runs)).totals.byStatus).toMatchObject({ completed: 1, failed: 2, rejected: 0 });
  });

  test('the wait is to the earliest decision, whatever order the events come in; votes are not decisions', () => {
    const r = run('w', `${MON}T09:00:00.000Z`);
    const events = [
      ev('w', 'execution.running', 'mechanic', plus(r.createdAt, 600)),
      ev('w', 'approval.granted', 'bob', plus(r.createdAt, 10)),
      ev('w', 'execution.running', 'mechanic', plus(r.createdAt, 60)),
    ];
    expect(buildReport(input([r], events)).approvalWaits).toEqual([
      { runbook: 'rotate', decided: 1, medianSeconds: 60, p95Seconds: 60, maxSeconds: 60, expired: 0 },
    ]);
  });

  test('waits given out of order are sorted before the median, p95 and max are taken', () => {
    const runs = [600, 60, 120].map((_, i) => run(`u${i}`, `${MON}T1${i}:00:00.000Z`));
    const events = [600, 60, 120].map((s, i) =>
      ev(`u${i}`, 'execution.running', 'mechanic', plus(runs[i]!.createdAt, s)),
    );
    expect(buildReport(input(runs, events)).approvalWaits[0]).toEqual({
      runbook: 'rotate',
      decided: 3,
      medianSeconds: 120,
      p95Seconds: 600,
      maxSeconds: 600,
      expired: 0,
    });
  });

  test('a runbook that never waited is not in the waits; one whose runs only expired is, with no decisions', () => {
    const runs = [
      run('n', `${MON}T09:00:00.000Z`, { runbook: 'never' }),
      run('x', `${MON}T09:01:00.000Z`, { runbook: 'lapsed', status: 'expired' }),
    ];
    expect(buildReport(input(runs)).approvalWaits).toEqual([
      { runbook: 'lapsed', decided: 0, medianSeconds: 0, p95Seconds: 0, maxSeconds: 0, expired: 1 },
    ]);
  });

  test('equal p95: the runbook with more expired runs first, whatever the names', () => {
    const runs = [
      run('e1', `${MON}T09:00:00.000Z`, { runbook: 'a-once', status: 'expired' }),
      run('e2', `${MON}T09:01:00.000Z`, { runbook: 'z-twice', status: 'expired' }),
      run('e3', `${MON}T09:02:00.000Z`, { runbook: 'z-twice', status: 'expired' }),
    ];
    expect(buildReport(input(runs)).approvalWaits.map((w) => w.runbook)).toEqual(['z-twice', 'a-once']);
  });

  test('a year that gains an hour of summer time touches 368 local days, the last included', () => {
    // 23:30 in Berlin before the change of 29 March 2026, to 366 days later: 00:30 on 30 March 2027.
    const settings = { ...DEFAULT_REPORT_SETTINGS, timeZone: 'Europe/Berlin' };
    const from = '2026-03-28T22:30:00.000Z';
    const to = new Date(Date.parse(from) + 366 * 86_400_000).toISOString();
    const report = buildReport({ ...input([]), range: { from, to } }, settings);
    expect(report.perDay).toHaveLength(368);
    expect([report.perDay[0]!.day, report.perDay.at(-1)!.day]).toEqual(['2026-03-28', '2027-03-30']);
  });

  test('a wait of two days lands in the open last bucket', () => {
    const r = run('long', `${MON}T09:00:00.000Z`);
    const report = buildReport(
      input([r], [ev('long', 'execution.running', 'mechanic', plus(r.createdAt, 2 * 86_400))]),
    );
    expect(report.waitDistribution.at(-1)).toEqual({
      label: '1 day or more',
      fromSeconds: 86_400,
      toSeconds: null,
      runs: 1,
    });
  });

  test('the top lists stop at `top`', () => {
    const runs = ['a', 'b', 'c'].map((rb, i) =>
      run(`t${i}`, `${MON}T09:0${i}:00.000Z`, { runbook: rb, status: 'failed' }),
    );
    const events = runs.map((r) => ev(r.id, 'execution.running', 'mechanic', plus(r.createdAt, 5)));
    const report = buildReport(input(runs, events), { ...DEFAULT_REPORT_SETTINGS, top: 1 });
    expect([report.mostRun.length, report.mostFailing.length, report.approvalWaits.length]).toEqual([1, 1, 1]);
  });

  test('equally many failures: the higher rate first, whatever the names', () => {
    const runs = [
      run('f1', `${MON}T09:00:00.000Z`, { runbook: 'a-mixed', status: 'failed' }),
      run('f2', `${MON}T09:01:00.000Z`, { runbook: 'a-mixed' }),
      run('f3', `${MON}T09:02:00.000Z`, { runbook: 'z-always', status: 'failed' }),
    ];
    expect(buildReport(input(runs)).mostFailing.map((f) => f.runbook)).toEqual(['z-always', 'a-mixed']);
  });

  test('truncated only when the store says so', () => {
    expect(buildReport({ ...input([]), truncated: true }).truncated).toBe(true);
    expect(buildReport(input([])).truncated).toBe(false);
  });

  test('a range of 366 days that starts at noon touches 367 local days, the last included', () => {
    const report = buildReport({
      ...input([]),
      range: { from: '2025-11-30T12:00:00.000Z', to: '2026-12-01T12:00:00.000Z' },
    });
    expect(report.perDay).toHaveLength(367);
    expect(report.perDay.at(-1)!.day).toBe('2026-12-01');
  });
});

describe('flags', () => {
  test('first hosts: named in order, five at most and how many more; one host or several', () => {
    const many = run('h', `${MON}T09:00:00.000Z`, {
      targets: ['i-7', 'i-6', 'i-5', 'i-4', 'i-3', 'i-2', 'i-1', 'i-1'],
    });
    const two = run('k', `${MON}T10:00:00.000Z`, { operator: 'bob', targets: ['i-9', 'i-8'] });
    const one = run('o', `${MON}T11:00:00.000Z`, { operator: 'carol', targets: ['i-9'] });
    const five = run('f', `${MON}T12:00:00.000Z`, { operator: 'dave', targets: ['i-1', 'i-2', 'i-3', 'i-4', 'i-5'] });
    const runbooks = [many, two, one, five].map((r) => ({ operator: r.operator, runbook: r.runbook }));
    const why = buildReport(input([many, two, one, five], [], { runbooks, hosts: [] }))
      .flags.filter((f) => f.kind === 'first-host')
      .map((f) => f.why);
    expect(why).toEqual([
      'alice touched hosts i-1, i-2, i-3, i-4, i-5 and 2 more for the first time, with rotate.',
      'bob touched hosts i-8, i-9 for the first time, with rotate.',
      'carol touched host i-9 for the first time, with rotate.',
      'dave touched hosts i-1, i-2, i-3, i-4, i-5 for the first time, with rotate.',
    ]);
  });

  test("a requester's runs nobody approved count in the share a pair is judged by", () => {
    // Five runs approved by bob and two never approved: bob approved 5 of 5 approved runs (100 %).
    const runs = Array.from({ length: 7 }, (_, i) => run(`p${i}`, `${MON}T1${i}:00:00.000Z`));
    const events = runs.slice(0, 5).map((r) => ev(r.id, 'approval.granted', 'bob', plus(r.createdAt, 3600)));
    const pair = buildReport(input(runs, events)).flags.filter((f) => f.kind === 'frequent-pair');
    expect(pair.map((f) => f.why)).toEqual([
      "bob approved 5 of alice's 5 approved runs (100%): the same pair again and again weakens the second pair of eyes.",
    ]);
  });

  test('flags of one kind come in the order of their first run, not of their names', () => {
    // amy approves bob's later runs, zed approves carol's earlier ones: zed's flag comes first.
    const carol = Array.from({ length: 5 }, (_, i) => run(`c${i}`, `${MON}T0${i}:00:00.000Z`, { operator: 'carol' }));
    const bob = Array.from({ length: 5 }, (_, i) => run(`b${i}`, `${MON}T1${i}:00:00.000Z`, { operator: 'bob' }));
    const events = [
      ...carol.map((r) => ev(r.id, 'approval.granted', 'zed', plus(r.createdAt, 5))),
      ...bob.map((r) => ev(r.id, 'approval.granted', 'amy', plus(r.createdAt, 5))),
    ];
    const quick = buildReport(input([...bob, ...carol], events)).flags.filter((f) => f.kind === 'quick-approver');
    expect(quick.map((f) => f.runs[0])).toEqual(['c0', 'b0']);
  });
});
