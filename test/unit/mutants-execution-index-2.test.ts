/**
 * Kills the survivors of the whole mutation run in src/core/execution-index.ts
 * (docs/mutation-survivors.md) that make `isNormalizedIso` take a string it must not: a time of the
 * right length but a wrong separator at 4, 7, 13, 16, 19 or 23, a longer string, or a character
 * that is not a digit where a digit goes (the milliseconds, which no range check catches) would be
 * returned as is, where the round trip through Date refuses it or writes it otherwise. And `later`:
 * a time stored before times were normalised is compared by time, not as text, and of two
 * normalised times the later one is kept either way round.
 *
 * Not killed, because they only make the fast path decline (the round trip then writes the same
 * string, and `later` compares normalised times by Date as it compares them as text): the body
 * emptied (line 52), the condition → true and the literal → "" mutants of lines 53–54 and 57,
 * `c <= 48`, `c >= 48`, `c >= 57`, `c <= 57`, every mutant of lines 62–65 and 69–70,
 * `isNormalizedIso(iso)` → false (line 38) and `… && …` → false (line 74). The month range checks
 * of line 62 are redundant with `DAYS_IN_MONTH[month - 1]`, undefined out of range; the year's
 * `- twoDigits(iso, 2)` and `/ 100` (line 59) give the same leap years or none. And `b > a` →
 * `b >= a` (line 74): of two equal strings, either is the same string.
 */
import { describe, expect, test } from 'vitest';
import { normalizeIsoTime, projectExecution } from '../../src/core/execution-index.ts';
import { executionSummary, runningEvent } from '../helpers/core-samples.ts';

/** The answer without the fast path: the round trip through Date. */
function roundTrip(s: string): string {
  const ms = Date.parse(s);
  return Number.isNaN(ms) ? 'refused' : new Date(ms).toISOString();
}

function normalized(s: string): string {
  try {
    return normalizeIsoTime(s);
  } catch (e) {
    expect((e as Error).message).toBe(`not an ISO time: ${s}`);
    return 'refused';
  }
}

describe('normalizeIsoTime takes as already normalised only what the round trip writes back unchanged', () => {
  test('every character of a normalised time replaced, and characters added after it', () => {
    const bases = ['2024-02-29T23:59:59.999Z', '2026-10-17T10:20:30.405Z', '0001-12-31T00:00:00.000Z'];
    const replacements = ['0', '1', '9', '-', ':', '.', 'T', 't', 'Z', 'z', '/', ' ', '+', 'a', '~'];
    const cases: string[] = [];
    for (const base of bases) {
      cases.push(base);
      for (let i = 0; i < base.length; i++)
        for (const r of replacements) cases.push(base.slice(0, i) + r + base.slice(i + 1));
      for (const tail of ['x', 'Z', '0', ' ', '+00:00']) cases.push(base + tail);
    }
    const mismatches = cases.filter((c) => normalized(c) !== roundTrip(c));
    expect(mismatches).toEqual([]);
    // The cases reach every check: a wrong character at each separator, a letter in the milliseconds.
    for (const odd of [
      '2026-10-17T10:20:30.405Zx',
      '2026/10-17T10:20:30.405Z',
      '2026-10/17T10:20:30.405Z',
      '2026-10-17T10/20:30.405Z',
      '2026-10-17T10:20/30.405Z',
      '2026-10-17T10:20:30/405Z',
      '2026-10-17T10:20:30.405z',
      '2026-10-17T10:20:30.40aZ',
      '2026-10-17T10:20:30.40/Z',
    ])
      expect(cases).toContain(odd);
  });
});

describe('updatedAt is the later of the two times', () => {
  const running = runningEvent;

  test.each([
    // Both normalised: compared as text, the earlier event does not move it back.
    ['2025-01-01T10:05:00.000Z', '2025-01-01T10:00:00.000Z', '2025-01-01T10:05:00.000Z'],
    ['2025-01-01T10:05:00.000Z', '2025-01-01T10:06:00.000Z', '2025-01-01T10:06:00.000Z'],
    // Stored before times were normalised: as text `…00Z` sorts after `…00.500Z`, in time it is before.
    ['2025-01-01T10:05:00Z', '2025-01-01T10:05:00.500Z', '2025-01-01T10:05:00.500Z'],
    ['2025-01-01T10:05:00Z', '2025-01-01T10:06:00Z', '2025-01-01T10:06:00.000Z'],
    ['2025-01-01T10:05:00Z', '2025-01-01T10:04:00.000Z', '2025-01-01T10:05:00Z'],
  ])('stored %s, event at %s: %s', (stored, at, expected) => {
    expect(projectExecution(executionSummary({ approvals: [], updatedAt: stored }), running(at))?.updatedAt).toBe(
      expected,
    );
  });
});
