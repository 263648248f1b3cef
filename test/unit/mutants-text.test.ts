/**
 * Tests written to kill the mutants Stryker left alive or uncovered in src/core/text.ts
 * (docs/mutation.md): where quoteForMessage cuts a value, for strings and for anything else, and
 * hasRefusedCharacters, which no test called.
 */
import { describe, expect, test } from 'vitest';
import { closestWord, hasRefusedCharacters, quoteForMessage } from '../../src/core/text.ts';

describe('quoteForMessage cuts at max characters, not one before', () => {
  test('a string of exactly max characters is quoted whole; one more is cut', () => {
    expect(quoteForMessage('abcde', 5)).toBe('"abcde"');
    expect(quoteForMessage('abcdef', 5)).toBe('"abcde…"');
  });

  test('a value that is not a string is cut by the length of its JSON', () => {
    const value = { k: 'x'.repeat(100) };
    expect(quoteForMessage(value, 20)).toBe(`${JSON.stringify(value).slice(0, 20)}…`);
    expect(quoteForMessage([1, 2, 3], 7)).toBe('[1,2,3]');
    expect(quoteForMessage([1, 2, 3], 6)).toBe('[1,2,3…');
    expect(quoteForMessage(1234567, 7)).toBe('1234567');
    expect(quoteForMessage(12345678, 7)).toBe('1234567…');
  });
});

describe('hasRefusedCharacters', () => {
  test.each([
    ['plain text', false],
    ['tab\there', true],
    ['bidi \u202e override', true],
    ['zero\u200bwidth', true],
    ['', false],
  ])('%j → %s', (value, expected) => {
    expect(hasRefusedCharacters(value)).toBe(expected);
  });
});

/**
 * closestWord's distance (optimal string alignment) against a definition written the other way:
 * top down, straight from the recurrence. Over every pair of words of up to four letters from three,
 * a word is suggested exactly when the reference puts it within two edits (or it differs only in
 * case), and of two candidates the nearer wins, the first on a tie.
 */
describe('closestWord measures what a person would call a typo', () => {
  const reference = (a: string, b: string): number => {
    const memo = new Map<string, number>();
    const d = (i: number, j: number): number => {
      if (i === 0) return j;
      if (j === 0) return i;
      const key = `${i},${j}`;
      const known = memo.get(key);
      if (known !== undefined) return known;
      let v = Math.min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d(i - 2, j - 2) + 1);
      memo.set(key, v);
      return v;
    };
    return d(a.length, b.length);
  };
  const words: string[] = [''];
  for (let length = 1; length <= 4; length++) {
    for (let n = 0; n < 3 ** length; n++)
      words.push([...n.toString(3).padStart(length, '0')].map((d) => 'abc'[Number(d)]).join(''));
  }

  test('a word is suggested exactly when it is within two edits', () => {
    const wrong: unknown[] = [];
    for (const a of words) {
      for (const b of words) {
        const expected = reference(a, b) <= 2 ? b : undefined;
        if (closestWord(a, [b]) !== expected) wrong.push([a, b, expected]);
      }
    }
    expect(wrong).toEqual([]);
  });

  test('of two candidates, the nearer is suggested', () => {
    const wrong: unknown[] = [];
    for (const a of words) {
      for (let k = 0; k + 1 < words.length; k++) {
        const [b, c] = [words[k]!, words[k + 1]!];
        const [db, dc] = [reference(a, b), reference(a, c)];
        const expected = Math.min(db, dc) > 2 ? undefined : db <= dc ? b : c;
        if (closestWord(a, [b, c]) !== expected) wrong.push([a, b, c, expected]);
      }
    }
    expect(wrong).toEqual([]);
  });

  test('a swap of two letters is one edit, so two swaps are still a suggestion', () => {
    expect(closestWord('tiemuot', ['timeout'])).toBe('timeout');
    expect(closestWord('tmieuot', ['timeout'])).toBe('timeout');
  });

  test('a word that differs only in case is suggested however many letters differ', () => {
    expect(closestWord('TIMEOUTSECONDS', ['timeoutSeconds'])).toBe('timeoutSeconds');
    expect(closestWord('timeoutseconds', ['TIMEOUTSECONDS', 'timeoutsecond'])).toBe('TIMEOUTSECONDS');
  });
});
