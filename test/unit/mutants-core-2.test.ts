/**
 * The whole run's survivors (docs/mutation-survivors.md, lines of 56f4ca8) in the small core files
 * and in src/core/runbook.ts.
 *
 * Killed: pattern.ts 28:9 `cache.size >= CACHE_LIMIT` → false and → `>`: the compile cache holds at
 * most 1,000 patterns, then starts over (mutants-params-2 had called these equivalent as too slow to
 * reach; 2,000 tiny compiles take about 0.1 s).
 *
 * Equivalent:
 * - runbook.ts: the superRefine runs only on a runbook the schema parsed whole (a bad parameter
 *   type stops it), so a declared parameter exists (316:58 `?.`), its type and a list's item type
 *   are always set (486:42, 487:66, 490:63, 490:95: the `??` fallbacks are never reached), and
 *   `placeholdersOf`'s group 1 always matches (522:63). 316:90 `'string'` → `''`: placementProblem
 *   only tells list, secret and integer apart. 340:11–340:58 (7), 382:7–382:62 (7), 442:49
 *   `!== undefined` → true and the type tests → true: only an integer has min/max and a comparison
 *   with undefined is false. 346:11, 356:11, 394:7 type test → true: only a string has a pattern and
 *   only a secret a prefix. 397:30 the `^` of the replace: patternProblem's sentence always starts
 *   with `parameter "name" has a pattern`, and a name has no quote. 411:9 → true: only an argument
 *   has wholeArgument. 424:10, 425:5, 425:10: a kind that matches no case returns undefined too.
 *   487:8 `type === 'list'` → true: only a list has an item type. 501:11 → true: a string
 *   maxErrors always ends in `%`, which compares false with a number.
 * - text.ts 159:67 `j === 0` → true: it only changes the first value of cells the loop writes before
 *   reading. 165:11, 165:20 (6): with i or j at most 1, `a[i - 2]` or `b[j - 2]` is undefined, so the
 *   swap test is false anyway.
 * - line-diff.ts 24:18 `m - 1` → `m + 1`: the extra columns m + 1 (outside the Uint32Array, so the
 *   write is dropped) and m (NaN, stored as the 0 it already held) change nothing.
 * - params.ts 150:10, 151:10, 162:14, 200:10, 200:24: as mutants-params-2 says (a comparison with
 *   undefined is false; an enum's values are strings; both arms of describeItem give spec.type).
 * - template.ts 88:30 → true: only an argument reaches it (the others throw first or are comments)
 *   and only an argument has optionPosition. 101:12, 101:20, 101:25: a secret fetched needs a use
 *   outside a comment, so after a `#!` line, whose newline is still in the output: eol is never -1.
 *   152:20 (2): a number that is no safe integer written with String is never up to 15 digits.
 * - step-condition.ts 91:60: `op` is an operator the condition sets, so `c[op]` is never undefined.
 * - ssm-output.ts 49:5: an empty default case also returns undefined.
 */
import { randomUUID } from 'node:crypto';
import { expect, test, vi } from 'vitest';
import { RE2JS } from 're2js';
import { patternProblem } from '../../src/core/pattern.ts';

test('the compiled patterns are kept up to 1,000; the next one starts the cache over', () => {
  const compile = vi.spyOn(RE2JS, 'compile');
  const tag = randomUUID();
  const sentinel = `^${tag}-s$`;
  let k = 0;
  const fresh = () => patternProblem('p', `^${tag}-${k++}$`, 256);
  const compiles = () => compile.mock.calls.filter(([p]) => p === sentinel).length;
  let afterClear = -1;
  try {
    patternProblem('p', sentinel, 256);
    // Whatever the cache held before, it starts over within 1,000 new patterns: the sentinel is
    // compiled again, and the cache then holds the last new pattern and the sentinel.
    while (compiles() === 1 && k <= 1001) {
      fresh();
      patternProblem('p', sentinel, 256);
    }
    const cleared = compiles() === 2;
    // From two patterns, 998 more fill it; the 999th starts it over.
    let n = 0;
    while (cleared && compiles() === 2 && n <= 1001) {
      fresh();
      n++;
      patternProblem('p', sentinel, 256);
    }
    afterClear = cleared ? n : -1;
  } finally {
    compile.mockRestore();
  }
  expect(afterClear).toBe(999);
});
