/**
 * Reports that lead somewhere: from the runs of a time range and the approval events of those runs,
 * what is run most, what fails most and what waits longest for approval (the list of what to
 * automate or fix next), how runs spread over the days, and the runs a reviewer should look at —
 * each flag naming its runs and saying in one sentence why.
 *
 * Pure and deterministic: the clock, the time zone and the working hours are parameters, and every
 * list has a total order (ties broken by name or id), so the same record gives the same report.
 */
import { z } from 'zod';
import { UserError } from './errors.ts';
import { EXECUTION_STATUSES, type ExecutionStatus } from './execution.ts';
import { neutralize, quoteForMessage } from './text.ts';

// ---------------------------------------------------------------------------------------------
// Inputs

/** One run of the range, as the execution index holds it. */
export interface ReportRun {
  readonly id: string;
  readonly runbook: string;
  readonly version: number;
  readonly operator: string;
  readonly status: ExecutionStatus;
  /** ISO time of the request. */
  readonly createdAt: string;
  readonly targets: readonly string[];
}

/** The events of a run that reports read: the votes, and the decision that ended the wait. */
export const REPORT_EVENT_TYPES = [
  'approval.granted',
  'approval.rejected',
  'execution.running',
  'execution.rejected',
] as const;
export type ReportEventType = (typeof REPORT_EVENT_TYPES)[number];

export interface ReportEvent {
  readonly executionId: string;
  readonly type: ReportEventType;
  readonly actor: string;
  readonly at: string;
}

export interface ReportInput {
  /** From (inclusive) and to (exclusive), ISO times. */
  readonly range: ReportRange;
  readonly runs: readonly ReportRun[];
  readonly events: readonly ReportEvent[];
  /** What the operators of the range did before it: what makes a run a first. */
  readonly before: {
    readonly runbooks: readonly { readonly operator: string; readonly runbook: string }[];
    readonly hosts: readonly { readonly operator: string; readonly host: string }[];
  };
  /** The store stopped at its bound: the report covers only part of the range. */
  readonly truncated?: boolean;
}

export interface ReportRange {
  readonly from: string;
  readonly to: string;
}

// ---------------------------------------------------------------------------------------------
// Settings

const DAY_NAMES = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const LONG_DAY_NAMES = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'] as const;

/** Working days (0 = Sunday) and hours, in minutes after local midnight; end is exclusive. */
export interface WorkingHours {
  readonly days: readonly number[];
  readonly startMinute: number;
  readonly endMinute: number;
}

export const DEFAULT_WORKING_HOURS_TEXT = 'Mon-Fri 08:00-18:00';
export const DEFAULT_REPORT_TIME_ZONE = 'UTC';

const WORKING_HOURS_HELP =
  'write working days and hours like "Mon-Fri 08:00-18:00" or "Mon,Wed,Sat 09:30-17:00" (start before end)';

function dayIndex(name: string): number | undefined {
  const i = DAY_NAMES.findIndex((d) => d.toLowerCase() === name.toLowerCase());
  return i < 0 ? undefined : i;
}

/**
 * Parses working hours such as "Mon-Fri 08:00-18:00" (a day range may wrap, "Fri-Mon"; days may be
 * listed, "Mon,Wed"). Hours are local to the report's time zone; 24:00 ends at midnight.
 */
export function parseWorkingHours(text: string, label = 'working hours'): WorkingHours {
  const m = /^\s*([A-Za-z,-]+)\s+(\d{2}):(\d{2})\s*-\s*(\d{2}):(\d{2})\s*$/.exec(text);
  const fail = (): never => {
    throw new UserError('CONFIG_INVALID', `could not read ${label} ${quoteForMessage(text)}; ${WORKING_HOURS_HELP}`);
  };
  if (!m) return fail();
  const days = new Set<number>();
  for (const part of m[1]!.split(',')) {
    const [a, b, ...rest] = part.split('-');
    const first = dayIndex(a ?? '');
    const last = b === undefined ? first : dayIndex(b);
    if (first === undefined || last === undefined || rest.length > 0) return fail();
    for (let d = first; ; d = (d + 1) % 7) {
      days.add(d);
      if (d === last) break;
    }
  }
  const minute = (h: string, mm: string) => Number(h) * 60 + Number(mm);
  const startMinute = minute(m[2]!, m[3]!);
  const endMinute = minute(m[4]!, m[5]!);
  if (Number(m[3]) > 59 || Number(m[5]) > 59 || startMinute >= endMinute || endMinute > 24 * 60) return fail();
  return { days: [...days].sort((x, y) => x - y), startMinute, endMinute };
}

/** Working hours written back in the form parseWorkingHours reads. */
export function formatWorkingHours(w: WorkingHours): string {
  const hhmm = (m: number) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
  // Consecutive days as ranges: Mon-Fri rather than Mon,Tue,Wed,Thu,Fri.
  const parts: string[] = [];
  const days = w.days;
  for (let i = 0; i < days.length;) {
    let j = i;
    while (j + 1 < days.length && days[j + 1] === days[j]! + 1) j++;
    parts.push(j > i ? `${DAY_NAMES[days[i]!]}-${DAY_NAMES[days[j]!]}` : DAY_NAMES[days[i]!]!);
    i = j + 1;
  }
  return `${parts.join(',')} ${hhmm(w.startMinute)}-${hhmm(w.endMinute)}`;
}

/** True when `tz` is an IANA time zone this runtime knows (or UTC). */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export interface ReportSettings {
  readonly workingHours: WorkingHours;
  readonly timeZone: string;
  /** An approver who approves one requester this fast (seconds after the request)… */
  readonly quickApprovalSeconds: number;
  /** …every time, at least this many times, is flagged. */
  readonly quickApprovalMinTimes: number;
  /** A requester with at least this many approved runs… */
  readonly pairMinRuns: number;
  /** …whose runs one approver approved in more than this share (0–1) is flagged. */
  readonly pairShare: number;
  /** How many runbooks the top lists show. */
  readonly top: number;
}

export const DEFAULT_REPORT_SETTINGS: ReportSettings = {
  workingHours: parseWorkingHours(DEFAULT_WORKING_HOURS_TEXT),
  timeZone: DEFAULT_REPORT_TIME_ZONE,
  quickApprovalSeconds: 60,
  quickApprovalMinTimes: 5,
  pairMinRuns: 5,
  pairShare: 0.8,
  top: 10,
};

// ---------------------------------------------------------------------------------------------
// Time in a zone

interface ZonedParts {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly weekday: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function zonedByIntl(ms: number, timeZone: string): ZonedParts {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, f);
  }
  const p: Record<string, string> = {};
  for (const part of f.formatToParts(new Date(ms))) p[part.type] = part.value;
  return {
    year: Number(p['year']),
    month: Number(p['month']),
    day: Number(p['day']),
    weekday: dayIndex(p['weekday'] ?? '') ?? 0,
    hour: Number(p['hour']),
    minute: Number(p['minute']),
    second: Number(p['second']),
  };
}

/** The zone's offset from UTC at `ms`, in milliseconds. */
function offsetAt(ms: number, timeZone: string): number {
  const p = zonedByIntl(ms, timeZone);
  const whole = ms - (((ms % 1000) + 1000) % 1000);
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - whole;
}

const QUARTER_HOUR_MS = 900_000;
/** Offsets by zone and quarter hour: Intl is slow, and a report reads the local time of every run. */
const offsets = new Map<string, number>();

function utcParts(ms: number): ZonedParts {
  const d = new Date(ms);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    weekday: d.getUTCDay(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
  };
}

/**
 * The local date and time of an instant in the zone. Offsets are multiples of a quarter hour and
 * change only on quarter hours (UTC), so one offset per quarter hour is exact for today's zones.
 */
function zoned(ms: number, timeZone: string): ZonedParts {
  if (timeZone === 'UTC') return utcParts(ms);
  const quarter = Math.floor(ms / QUARTER_HOUR_MS);
  const key = `${timeZone} ${quarter}`;
  let offset = offsets.get(key);
  if (offset === undefined) {
    if (offsets.size >= 100_000) offsets.clear();
    offset = offsetAt(quarter * QUARTER_HOUR_MS, timeZone);
    offsets.set(key, offset);
  }
  return utcParts(ms + offset);
}

/** The instant the local day y-m-d begins in the zone. */
function zonedMidnight(year: number, month: number, day: number, timeZone: string): number {
  const guess = Date.UTC(year, month - 1, day);
  const first = guess - offsetAt(guess, timeZone);
  return guess - offsetAt(first, timeZone);
}

const pad2 = (n: number) => String(n).padStart(2, '0');
const dayKey = (p: { year: number; month: number; day: number }) => `${p.year}-${pad2(p.month)}-${pad2(p.day)}`;

/** The local calendar day (YYYY-MM-DD) of an instant in the zone. */
export function localDay(iso: string, timeZone: string): string {
  return dayKey(zoned(Date.parse(iso), timeZone));
}

// ---------------------------------------------------------------------------------------------
// The range a report covers

/** The longest range a report covers: a year and a day, so a leap year fits. */
export const MAX_REPORT_DAYS = 366;
export const DEFAULT_REPORT_DAYS = 30;
const DAY_MS = 86_400_000;
const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const IsoTimeSchema = z.iso.datetime({ offset: true });

function rangeBound(name: 'from' | 'to', value: string, timeZone: string): number {
  const d = DATE_ONLY.exec(value);
  if (d) {
    const [year, month, day] = [Number(d[1]), Number(d[2]), Number(d[3])];
    const check = new Date(Date.UTC(year, month - 1, day));
    if (check.getUTCFullYear() === year && check.getUTCMonth() === month - 1 && check.getUTCDate() === day) {
      // A day named as `to` is included: the range ends when the next day begins.
      return name === 'to' ? zonedMidnight(year, month, day + 1, timeZone) : zonedMidnight(year, month, day, timeZone);
    }
  } else if (IsoTimeSchema.safeParse(value).success) {
    return Date.parse(value);
  }
  throw new UserError(
    'USAGE',
    `${name} ${quoteForMessage(value, 40)} is not a date; write a day (2026-11-30) or an ISO time (2026-11-30T08:00:00Z)`,
  );
}

/**
 * The range of a report from its optional bounds: a day (YYYY-MM-DD, in the report's time zone;
 * a day given as `to` is included) or an ISO time. Without `to`, up to now; without `from`, the
 * 30 days before `to`. An empty or longer-than-a-year range is refused with what to ask instead.
 */
export function parseReportRange(
  query: { readonly from?: string | undefined; readonly to?: string | undefined },
  now: Date,
  timeZone: string,
): ReportRange {
  const to = query.to !== undefined && query.to !== '' ? rangeBound('to', query.to, timeZone) : now.getTime();
  const from =
    query.from !== undefined && query.from !== ''
      ? rangeBound('from', query.from, timeZone)
      : to - DEFAULT_REPORT_DAYS * DAY_MS;
  if (from >= to) {
    throw new UserError(
      'USAGE',
      `the report range is empty: from (${new Date(from).toISOString()}) must be before to (${new Date(to).toISOString()})`,
    );
  }
  if (to - from > MAX_REPORT_DAYS * DAY_MS) {
    throw new UserError(
      'USAGE',
      `the report range covers ${Math.ceil((to - from) / DAY_MS)} days; ask for at most ${MAX_REPORT_DAYS} days at a time`,
    );
  }
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString() };
}

// ---------------------------------------------------------------------------------------------
// The report

export interface RunbookCount {
  readonly runbook: string;
  readonly runs: number;
}

export interface RunbookFailures {
  readonly runbook: string;
  readonly failed: number;
  /** Runs that ran to an end: completed or failed. */
  readonly ended: number;
  /** failed ÷ ended. */
  readonly rate: number;
}

export interface RunbookWaits {
  readonly runbook: string;
  /** Runs whose approval was decided (approved or rejected). */
  readonly decided: number;
  readonly medianSeconds: number;
  /** Nearest-rank 95th percentile. */
  readonly p95Seconds: number;
  readonly maxSeconds: number;
  /** Runs that waited until their approval expired. */
  readonly expired: number;
}

export interface WaitBucket {
  readonly label: string;
  readonly fromSeconds: number;
  /** Exclusive; null for the last, open bucket. */
  readonly toSeconds: number | null;
  readonly runs: number;
}

export interface DayCounts {
  /** Local day, YYYY-MM-DD. */
  readonly day: string;
  readonly counts: Readonly<Record<ExecutionStatus, number>>;
  readonly total: number;
}

export const FLAG_KINDS = ['off-hours', 'first-runbook', 'first-host', 'quick-approver', 'frequent-pair'] as const;
export type FlagKind = (typeof FLAG_KINDS)[number];

export const FLAG_TITLES: Readonly<Record<FlagKind, string>> = {
  'off-hours': 'Started off-hours',
  'first-runbook': 'First run of a runbook by its operator',
  'first-host': 'First time an operator touches a host',
  'quick-approver': 'Approvals within seconds, every time',
  'frequent-pair': 'The same requester and approver again and again',
};

export interface ReportFlag {
  readonly kind: FlagKind;
  /** The runs it concerns, oldest first. */
  readonly runs: readonly string[];
  /** One sentence: why a reviewer should look. */
  readonly why: string;
}

export interface Report {
  readonly range: ReportRange;
  readonly timeZone: string;
  readonly workingHours: string;
  readonly truncated: boolean;
  readonly totals: { readonly runs: number; readonly byStatus: Readonly<Record<ExecutionStatus, number>> };
  readonly mostRun: readonly RunbookCount[];
  readonly mostFailing: readonly RunbookFailures[];
  readonly approvalWaits: readonly RunbookWaits[];
  readonly waitDistribution: readonly WaitBucket[];
  readonly perDay: readonly DayCounts[];
  readonly flags: readonly ReportFlag[];
}

const WAIT_BUCKETS: readonly { label: string; from: number; to: number | null }[] = [
  { label: 'under 1 min', from: 0, to: 60 },
  { label: '1–5 min', from: 60, to: 300 },
  { label: '5–15 min', from: 300, to: 900 },
  { label: '15–60 min', from: 900, to: 3600 },
  { label: '1–4 h', from: 3600, to: 14_400 },
  { label: '4–24 h', from: 14_400, to: 86_400 },
  { label: '1 day or more', from: 86_400, to: null },
];

const emptyCounts = (): Record<ExecutionStatus, number> =>
  Object.fromEntries(EXECUTION_STATUSES.map((s) => [s, 0])) as Record<ExecutionStatus, number>;

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The median: the middle value, or the mean of the two middle values. */
export function median(sorted: readonly number[]): number {
  if (sorted.length === 0) return 0;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The nearest-rank percentile (p in 0–100) of ascending values: always one of the values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

/** A duration for a sentence: 42 s, 3 min 5 s, 2 h 10 min. */
export function formatSeconds(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  if (s < 86_400)
    return `${Math.floor(s / 3600)} h${Math.floor((s % 3600) / 60) ? ` ${Math.floor((s % 3600) / 60)} min` : ''}`;
  return `${Math.floor(s / 86_400)} d${Math.floor((s % 86_400) / 3600) ? ` ${Math.floor((s % 86_400) / 3600)} h` : ''}`;
}

/** Names people chose, shown inert in a sentence. */
const name = (s: string) => neutralize(s);

function chronological(a: ReportRun, b: ReportRun): number {
  return Date.parse(a.createdAt) - Date.parse(b.createdAt) || byName(a.id, b.id);
}

function isOffHours(ms: number, s: ReportSettings): ZonedParts | undefined {
  const p = zoned(ms, s.timeZone);
  const minute = p.hour * 60 + p.minute;
  const inside =
    s.workingHours.days.includes(p.weekday) &&
    minute >= s.workingHours.startMinute &&
    minute < s.workingHours.endMinute;
  return inside ? undefined : p;
}

/**
 * The report of a range. Runs outside the range and events of other runs are ignored, so callers
 * may pass a superset.
 */
export function buildReport(input: ReportInput, settings: ReportSettings = DEFAULT_REPORT_SETTINGS): Report {
  const fromMs = Date.parse(input.range.from);
  const toMs = Date.parse(input.range.to);
  const runs = input.runs
    .filter((r) => {
      const t = Date.parse(r.createdAt);
      return t >= fromMs && t < toMs;
    })
    .sort(chronological);
  const runById = new Map(runs.map((r) => [r.id, r]));
  const eventsOf = new Map<string, ReportEvent[]>();
  for (const e of input.events) {
    if (!runById.has(e.executionId)) continue;
    const list = eventsOf.get(e.executionId) ?? [];
    list.push(e);
    eventsOf.set(e.executionId, list);
  }
  for (const list of eventsOf.values()) list.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));

  // Totals and the top lists.
  const byStatus = emptyCounts();
  const perRunbook = new Map<
    string,
    { runs: number; failed: number; completed: number; expired: number; waits: number[] }
  >();
  const waits: number[] = [];
  for (const r of runs) {
    byStatus[r.status]++;
    const rb = perRunbook.get(r.runbook) ?? { runs: 0, failed: 0, completed: 0, expired: 0, waits: [] };
    rb.runs++;
    if (r.status === 'failed') rb.failed++;
    if (r.status === 'completed') rb.completed++;
    if (r.status === 'expired') rb.expired++;
    const decision = (eventsOf.get(r.id) ?? []).find(
      (e) => e.type === 'execution.running' || e.type === 'execution.rejected',
    );
    if (decision) {
      const wait = Math.max(0, (Date.parse(decision.at) - Date.parse(r.createdAt)) / 1000);
      rb.waits.push(wait);
      waits.push(wait);
    }
    perRunbook.set(r.runbook, rb);
  }
  const names = [...perRunbook.keys()].sort(byName);
  const mostRun = names
    .map((runbook) => ({ runbook, runs: perRunbook.get(runbook)!.runs }))
    .sort((a, b) => b.runs - a.runs || byName(a.runbook, b.runbook))
    .slice(0, settings.top);
  const mostFailing = names
    .map((runbook) => {
      const rb = perRunbook.get(runbook)!;
      const ended = rb.failed + rb.completed;
      return { runbook, failed: rb.failed, ended, rate: ended === 0 ? 0 : rb.failed / ended };
    })
    .filter((f) => f.failed > 0)
    .sort((a, b) => b.failed - a.failed || b.rate - a.rate || byName(a.runbook, b.runbook))
    .slice(0, settings.top);
  const approvalWaits = names
    .flatMap((runbook) => {
      const rb = perRunbook.get(runbook)!;
      const sorted = [...rb.waits].sort((a, b) => a - b);
      if (sorted.length === 0 && rb.expired === 0) return [];
      return [
        {
          runbook,
          decided: sorted.length,
          medianSeconds: median(sorted),
          p95Seconds: percentile(sorted, 95),
          maxSeconds: sorted.at(-1) ?? 0,
          expired: rb.expired,
        },
      ];
    })
    .sort((a, b) => b.p95Seconds - a.p95Seconds || b.expired - a.expired || byName(a.runbook, b.runbook))
    .slice(0, settings.top);
  const waitDistribution = WAIT_BUCKETS.map((b) => ({
    label: b.label,
    fromSeconds: b.from,
    toSeconds: b.to,
    runs: waits.filter((w) => w >= b.from && (b.to === null || w < b.to)).length,
  }));

  return {
    range: input.range,
    timeZone: settings.timeZone,
    workingHours: formatWorkingHours(settings.workingHours),
    truncated: input.truncated === true,
    totals: { runs: runs.length, byStatus },
    mostRun,
    mostFailing,
    approvalWaits,
    waitDistribution,
    perDay: perDay(runs, fromMs, toMs, settings.timeZone),
    flags: flags(runs, eventsOf, input.before, settings),
  };
}

/** Every local day the range touches, with its runs by status; days without runs count zero. */
function perDay(runs: readonly ReportRun[], fromMs: number, toMs: number, timeZone: string): DayCounts[] {
  const days = new Map<string, Record<ExecutionStatus, number>>();
  const first = zoned(fromMs, timeZone);
  const lastKey = dayKey(zoned(toMs - 1, timeZone));
  // Calendar arithmetic on UTC dates: one entry per local day, whatever the zone's DST does.
  for (let i = 0; i <= MAX_REPORT_DAYS + 1; i++) {
    const d = new Date(Date.UTC(first.year, first.month - 1, first.day + i));
    const key = dayKey({ year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() });
    days.set(key, emptyCounts());
    if (key === lastKey) break;
  }
  for (const r of runs) {
    const counts = days.get(localDay(r.createdAt, timeZone));
    if (counts) counts[r.status]++;
  }
  return [...days].map(([day, counts]) => ({
    day,
    counts,
    total: Object.values(counts).reduce((a, b) => a + b, 0),
  }));
}

function flags(
  runs: readonly ReportRun[],
  eventsOf: ReadonlyMap<string, readonly ReportEvent[]>,
  before: ReportInput['before'],
  s: ReportSettings,
): ReportFlag[] {
  const out: ReportFlag[] = [];
  const hours = formatWorkingHours(s.workingHours);
  // A key no name can forge: JSON of the pair.
  const key = (...parts: string[]) => JSON.stringify(parts);
  const seenRunbook = new Set(before.runbooks.map((p) => key(p.operator, p.runbook)));
  const seenHost = new Set(before.hosts.map((p) => key(p.operator, p.host)));

  for (const r of runs) {
    const who = name(r.operator);
    const off = isOffHours(Date.parse(r.createdAt), s);
    if (off) {
      out.push({
        kind: 'off-hours',
        runs: [r.id],
        why: `${who} started ${name(r.runbook)} on ${LONG_DAY_NAMES[off.weekday]} ${dayKey(off)} at ${pad2(off.hour)}:${pad2(off.minute)} ${s.timeZone}, outside working hours (${hours}).`,
      });
    }
    const rk = key(r.operator, r.runbook);
    if (!seenRunbook.has(rk)) {
      seenRunbook.add(rk);
      out.push({
        kind: 'first-runbook',
        runs: [r.id],
        why: `${who} ran ${name(r.runbook)} for the first time.`,
      });
    }
    const newHosts = [...new Set(r.targets)].filter((h) => !seenHost.has(key(r.operator, h))).sort(byName);
    for (const h of newHosts) seenHost.add(key(r.operator, h));
    if (newHosts.length > 0) {
      const shown = newHosts.slice(0, 5).map(name).join(', ');
      const more = newHosts.length > 5 ? ` and ${newHosts.length - 5} more` : '';
      out.push({
        kind: 'first-host',
        runs: [r.id],
        why: `${who} touched ${newHosts.length === 1 ? 'host' : 'hosts'} ${shown}${more} for the first time, with ${name(r.runbook)}.`,
      });
    }
  }

  // Per requester–approver pair: how fast each approval came, and how many of the requester's runs.
  const pairs = new Map<string, { requester: string; approver: string; runs: string[]; waits: number[] }>();
  const approvedRuns = new Map<string, string[]>();
  for (const r of runs) {
    const granted = (eventsOf.get(r.id) ?? []).filter((e) => e.type === 'approval.granted');
    if (granted.length > 0) approvedRuns.set(r.operator, [...(approvedRuns.get(r.operator) ?? []), r.id]);
    const counted = new Set<string>();
    for (const g of granted) {
      if (counted.has(g.actor)) continue;
      counted.add(g.actor);
      const k = key(r.operator, g.actor);
      const p = pairs.get(k) ?? { requester: r.operator, approver: g.actor, runs: [], waits: [] };
      p.runs.push(r.id);
      p.waits.push(Math.max(0, (Date.parse(g.at) - Date.parse(r.createdAt)) / 1000));
      pairs.set(k, p);
    }
  }
  const orderedPairs = [...pairs.values()].sort(
    (a, b) => byName(a.approver, b.approver) || byName(a.requester, b.requester),
  );
  for (const p of orderedPairs) {
    const slowest = Math.max(...p.waits);
    if (p.runs.length >= s.quickApprovalMinTimes && slowest <= s.quickApprovalSeconds) {
      out.push({
        kind: 'quick-approver',
        runs: p.runs,
        why: `${name(p.approver)} approved all ${p.runs.length} of ${name(p.requester)}'s requests within ${formatSeconds(s.quickApprovalSeconds)} (the slowest after ${formatSeconds(slowest)}): approvals this fast may not read the plan.`,
      });
    }
  }
  for (const p of orderedPairs) {
    const approved = approvedRuns.get(p.requester) ?? [];
    const share = approved.length === 0 ? 0 : p.runs.length / approved.length;
    if (approved.length >= s.pairMinRuns && share > s.pairShare) {
      out.push({
        kind: 'frequent-pair',
        runs: p.runs,
        why: `${name(p.approver)} approved ${p.runs.length} of ${name(p.requester)}'s ${approved.length} approved runs (${Math.round(share * 100)}%): the same pair again and again weakens the second pair of eyes.`,
      });
    }
  }

  const firstRun = new Map(runs.map((r, i) => [r.id, i]));
  const kindOrder = (k: FlagKind) => FLAG_KINDS.indexOf(k);
  return out.sort(
    (a, b) =>
      kindOrder(a.kind) - kindOrder(b.kind) ||
      (firstRun.get(a.runs[0]!) ?? 0) - (firstRun.get(b.runs[0]!) ?? 0) ||
      byName(a.why, b.why),
  );
}
