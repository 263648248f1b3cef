/**
 * `exportTime` reads a time without an offset as UTC (src/core/audit-export.ts, line 33): the two
 * mutants that drop the appended `Z` read it as the machine's local time, which only a zone other
 * than UTC shows (issue 12, mutation round six). test/unit/audit-export.test.ts proves the rule in
 * a child `node`, which a mutant switched on in this process never reaches; this file proves it in
 * this process.
 *
 * Node applies a `TZ` set at run time only on the main thread. `npm test` runs each file in a
 * child process (`pool: 'forks'`), so the zone set below applies and the test checks that it
 * does. Stryker's runner runs tests in a worker thread, where only a process started in another
 * zone is outside UTC: run Stryker with `TZ=America/New_York` in its environment to judge line 33
 * (docs/mutation.md).
 */
import { isMainThread } from 'node:worker_threads';
import { describe, expect, test } from 'vitest';
import { exportRange, exportTime } from '../../src/core/audit-export.ts';

/** Whether this thread reads local times in a zone other than UTC (New York is 5 hours behind in March). */
const localIsUtc = () => new Date(Date.UTC(2026, 2, 1, 12, 30)).getHours() === 12;

/** Runs `fn` with the process in New York, and puts the zone back however `fn` ends. */
function inNewYork(fn: () => void): void {
  const before = process.env['TZ'];
  process.env['TZ'] = 'America/New_York';
  try {
    // On the main thread the zone must apply, or this test proves nothing: say so.
    if (isMainThread) expect(localIsUtc(), 'TZ set at run time did not apply').toBe(false);
    fn();
  } finally {
    if (before === undefined) delete process.env['TZ'];
    else process.env['TZ'] = before;
  }
}

describe('a time without an offset is UTC, in a process whose zone is New York', () => {
  test.each([
    ['2026-03-01T12:30', Date.UTC(2026, 2, 1, 12, 30)],
    ['2026-03-01T12:30:15', Date.UTC(2026, 2, 1, 12, 30, 15)],
    ['2026-03-01T12:30:15.250', Date.UTC(2026, 2, 1, 12, 30, 15, 250)],
    ['2026-12-31T23:59:59.999999999', Date.UTC(2026, 11, 31, 23, 59, 59, 999)],
  ])('%s is that time in UTC, not in New York', (value, utc) => {
    inNewYork(() => {
      expect(exportTime(value, 'since')).toBe(utc);
      expect(exportTime(value, 'until')).toBe(utc);
    });
  });

  test('a date alone is UTC midnight, and a time with an offset or Z is its own', () => {
    inNewYork(() => {
      expect(exportTime('2026-03-01', 'since')).toBe(Date.UTC(2026, 2, 1));
      expect(exportTime('2026-03-01T12:30Z', 'since')).toBe(Date.UTC(2026, 2, 1, 12, 30));
      expect(exportTime('2026-03-01T12:30-05:00', 'since')).toBe(Date.UTC(2026, 2, 1, 17, 30));
    });
  });

  test('a range of local-looking times is a range in UTC: one minute is one minute, whatever the zone', () => {
    inNewYork(() => {
      expect(exportRange({ since: '2026-03-08T06:59', until: '2026-03-08T07:00' })).toEqual({
        since: Date.UTC(2026, 2, 8, 6, 59),
        until: Date.UTC(2026, 2, 8, 7, 0),
      });
    });
  });

  test('the zone is put back afterwards', () => {
    const before = process.env['TZ'];
    inNewYork(() => undefined);
    expect(process.env['TZ']).toBe(before);
  });
});
