/**
 * The fast path of src/core/execution-index.ts: a time already normalised (every event the workflow
 * writes) is returned as is and compared as text, without the round trip through Date that is most
 * of rebuilding the index over a million events (`audit verify`). mutants-execution-index-2 checks
 * that the fast path never takes a string it must not; this file checks that it takes every
 * normalised time, at each edge of its range checks: a spy on Date.parse (which the slow path of
 * normalizeIsoTime and of `later` calls first) must see no call.
 *
 * In the whole run these mutants were static as well as covered ("hybrid"): the beforeAll of
 * test/unit/evidence-pack.test.ts appends a run's records to a real SQLite audit log, whose append
 * projects the index (audit-log.ts → projectExecution → normalizeIsoTime, later), and Stryker's
 * vitest setup names the current test only in beforeEach, so calls from a beforeAll count as
 * static. No module calls this code when it loads. Stryker judged them with the tests that cover
 * them, which compare answers only, and those are the same with or without the fast path.
 *
 * Killed (each makes the fast path decline a normalised time):
 * 38:7 `isNormalizedIso(iso)` → false; 52:48 the body emptied; 53:7, 54:7 → true; 53:39, 53:57,
 * 53:76, 54:19, 54:38, 54:57, 54:76 a separator → ""; 57:9 → true, `c <= 48`, `c >= 48`; 57:19
 * `c >= 57`, `c <= 57`; 59:16 `/ 100` (no leap year but those before 100); 62:7 → true,
 * `month <= 1`, `month >= 1`; 62:20 `month >= 12`, `month <= 12`; 62:34 `day <= 1`; 62:45 `>= 23`;
 * 63:7 → true, `>= 59`; 63:34 `>= 59`; 64:16 → false and `&&`; 64:17 → false and `year * 4`; 64:56
 * → false and `year * 400`; 65:10 → false and `<`; 65:18 → false, `month === 2` → true,
 * `month !== 2`; 69:50 the body emptied; 70:11, 70:41 `+ 48`; 70:54 `i - 1`; 74:7 → false.
 *
 * Equivalent, left alive:
 * - 62:7 `month < 1 || month > 12` → false, `month < 1` → false, `&&`; 62:20 `month > 12` → false:
 *   the fast path then reads DAYS_IN_MONTH[month - 1], undefined for a month 00 or 13–99, and
 *   `day <= undefined` is false: the same strings are declined.
 * - 59:16 `twoDigits(iso, 0) * 100 - twoDigits(iso, 2)`: for a year 100a + b the mutant's 100a − b
 *   is divisible by 4 exactly when b is, by 100 exactly when b is 0, and is 100a when b is 0: the
 *   same leap years, so the same answer for every string.
 * - 74:56 `b > a` → `b >= a`: of two equal strings, either is the same string.
 */
import { afterEach, describe, expect, test, vi } from 'vitest';
import { normalizeIsoTime, projectExecution } from '../../src/core/execution-index.ts';
import { executionSummary, runningEvent } from '../helpers/core-samples.ts';

/**
 * Normalised times at the edges of each check: digits 0 and 9, January and December, the 1st and
 * the last day of a month (the 31st of January in a leap year too), the 29th of February of a
 * leap year divisible by 4 and of one divisible by 400, 23:59:59.
 */
const NORMALISED = [
  '2024-02-29T23:59:59.999Z',
  '2000-02-29T00:00:00.000Z',
  '2024-01-31T12:34:56.789Z',
  '2023-12-01T01:02:03.004Z',
  '2026-11-30T09:08:07.060Z',
];

afterEach(() => {
  vi.restoreAllMocks();
});

describe('a normalised time takes the fast path, without Date', () => {
  test.each(NORMALISED)('normalizeIsoTime(%s) is the string itself, and Date.parse is not called', (iso) => {
    const parse = vi.spyOn(Date, 'parse');
    expect(normalizeIsoTime(iso)).toBe(iso);
    expect(parse).not.toHaveBeenCalled();
  });

  test('the same times, with a spy that sees calls: a time that is not normalised goes through Date', () => {
    const parse = vi.spyOn(Date, 'parse');
    expect(normalizeIsoTime('2024-02-29T23:59:59Z')).toBe('2024-02-29T23:59:59.000Z');
    expect(parse).toHaveBeenCalledTimes(1);
  });

  test('updatedAt of two normalised times is the later one, compared as text', () => {
    const running = runningEvent;
    const parse = vi.spyOn(Date, 'parse');
    const stored = executionSummary({ updatedAt: '2024-02-29T23:59:59.999Z' });
    expect(projectExecution(stored, running('2000-02-29T00:00:00.000Z'))?.updatedAt).toBe('2024-02-29T23:59:59.999Z');
    expect(projectExecution(stored, running('2026-11-30T09:08:07.060Z'))?.updatedAt).toBe('2026-11-30T09:08:07.060Z');
    expect(parse).not.toHaveBeenCalled();
  });
});
