/**
 * The line diff of two runbook versions (issue 12, mutation round four): no unit test reached it.
 * Its lines rebuild both texts, keep a longest common subsequence, list a removal before an
 * insertion where either could come first, and longer texts than 5,000 lines are refused.
 */
import { describe, expect, test } from 'vitest';
import { lineDiff } from '../../src/core/line-diff.ts';

/** The texts a diff's lines stand for: kept and removed lines, kept and added lines. */
function sides(lines: string[]): [string, string] {
  const a = lines.filter((l) => l[0] !== '+').map((l) => l.slice(1));
  const b = lines.filter((l) => l[0] !== '-').map((l) => l.slice(1));
  return [a.join('\n'), b.join('\n')];
}

/** Length of a longest common subsequence, by plain recursion with a memo (small inputs only). */
function lcs(x: string[], y: string[]): number {
  const memo = new Map<string, number>();
  const go = (i: number, j: number): number => {
    if (i === x.length || j === y.length) return 0;
    const key = `${i},${j}`;
    let v = memo.get(key);
    if (v === undefined) {
      v = x[i] === y[j] ? go(i + 1, j + 1) + 1 : Math.max(go(i + 1, j), go(i, j + 1));
      memo.set(key, v);
    }
    return v;
  };
  return go(0, 0);
}

describe('lineDiff', () => {
  test('a changed line is removed, then added, between the kept ones', () => {
    expect(lineDiff('name: a\nversion: 1\nsteps: []\n', 'name: a\nversion: 2\nsteps: []\n')).toEqual([
      ' name: a',
      '-version: 1',
      '+version: 2',
      ' steps: []',
    ]);
  });

  test('where a removal and an insertion could come in either order, the removal comes first', () => {
    expect(lineDiff('a', 'b')).toEqual(['-a', '+b']);
    expect(lineDiff('x\na', 'x\nb')).toEqual([' x', '-a', '+b']);
  });

  test('lines added at the end, and lines removed at the end, are listed', () => {
    expect(lineDiff('a\n', 'a\nb\nc\n')).toEqual([' a', '+b', '+c']);
    expect(lineDiff('a\nb\nc', 'a')).toEqual([' a', '-b', '-c']);
  });

  test('only one final newline is dropped: inner and doubled newlines are lines', () => {
    expect(lineDiff('a\nb\n', 'a\nb')).toEqual([' a', ' b']);
    expect(lineDiff('a\n\n', 'a\n')).toEqual([' a', '-']);
    expect(lineDiff('a\nb', 'ab')).toEqual(['-a', '-b', '+ab']);
  });

  test('on many texts, the lines rebuild both sides and keep a longest common subsequence', () => {
    let seed = 7;
    // A 32-bit linear congruential generator: the same texts on every run, and varied ones.
    const next = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) >>> 16;
    let differ = 0;
    for (let n = 0; n < 60; n++) {
      const text = () => Array.from({ length: 1 + (next() % 8) }, () => 'abcd'[next() % 4]!);
      const x = text();
      const y = text();
      const lines = lineDiff(x.join('\n'), y.join('\n'));
      expect(sides(lines)).toEqual([x.join('\n'), y.join('\n')]);
      expect(lines.filter((l) => l[0] === ' ').length).toBe(lcs(x, y));
      if (x.join() !== y.join()) differ++;
    }
    expect(differ).toBeGreaterThan(50);
  });

  test('5,000 lines on either side are compared; one more is refused with a sentence naming the limit', () => {
    const max = Array.from({ length: 5000 }, (_, i) => `l${i}`).join('\n');
    const over = `${max}\nlast`;
    expect(lineDiff(max, 'l0')).toHaveLength(5000);
    expect(lineDiff('l0', max)).toHaveLength(5000);
    for (const [a, b] of [
      [over, 'l0'],
      ['l0', over],
    ]) {
      expect(() => lineDiff(a!, b!)).toThrow(
        expect.objectContaining({
          code: 'USAGE',
          message: 'these versions are longer than 5000 lines; compare them with a diff tool',
        }),
      );
    }
  });
});
