/** Line diffs of runbook versions, for `mechanic runbook diff` and the reporting UI's runbook page. */
import { UserError } from './errors.ts';

/** The longest files a diff compares line by line (its table is lines × lines). */
const MAX_DIFF_LINES = 5000;

/**
 * A line diff (longest common subsequence) of two texts, as unified-diff lines: ' ' kept,
 * '-' only in the first, '+' only in the second. Runbooks are small; the table is fine.
 */
export function lineDiff(a: string, b: string): string[] {
  const x = a.replace(/\n$/, '').split('\n');
  const y = b.replace(/\n$/, '').split('\n');
  if (x.length > MAX_DIFF_LINES || y.length > MAX_DIFF_LINES) {
    throw new UserError(
      'USAGE',
      `these versions are longer than ${MAX_DIFF_LINES} lines; compare them with a diff tool`,
    );
  }
  const n = x.length;
  const m = y.length;
  const table = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      table[i]![j] = x[i] === y[j] ? table[i + 1]![j + 1]! + 1 : Math.max(table[i + 1]![j]!, table[i]![j + 1]!);
    }
  }
  const lines: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) {
      lines.push(` ${x[i++]}`);
      j++;
    } else if (table[i + 1]![j]! >= table[i]![j + 1]!) lines.push(`-${x[i++]}`);
    else lines.push(`+${y[j++]}`);
  }
  while (i < n) lines.push(`-${x[i++]}`);
  while (j < m) lines.push(`+${y[j++]}`);
  return lines;
}
