/**
 * The whole run's survivors in src/core/canonical.ts (docs/mutation-survivors.md, lines of 56f4ca8)
 * that this file kills, and why the rest are equivalent.
 *
 * Killed:
 * - 123:7 → true, 123:22 `c >= 0x30` → true and `&&` → `||`, 123:35 `c <= 0x39` → true: a value
 *   starting with `e`, `E`, `+` or `.` went to scanNumber, which reads a sign or exponent letter in
 *   the first place without clearing its digits-only flag, so its short-integer shortcut vouched
 *   for `e5`, `E5`, `+1` or `.5` (mutants-canonical-2 had called these four equivalent, missing the
 *   shortcut). Pinned by "a value that starts like no JSON value".
 * - 148:60, 153:34, 155:89 `-1` → `+1` (a refused escape answered as position 1): behind a prefix
 *   `X,` and a copy of the refused string, the enclosing array reads the comma at 1 and the string
 *   at 2 again, for ever. The mutant never answers true (the refused backslash cannot be passed in
 *   any alignment: outside a string a backslash is refused, and inside one it starts the same
 *   escape), so what kills it is the hang, which Stryker reports as a Timeout; that timeout is an
 *   endless loop, not a slow machine.
 *
 * Equivalent (checked by reasoning and by a fuzz of about 5.5 million texts at offsets 0–4 against
 * a copy of the scan with each mutant switched in):
 * - 18:29 the ancestors list starting as `["Stryker was here"]`: only objects are looked up in it.
 * - 37:15 (2) and 37:32, the hole-or-undefined guard of arrays: encoding `undefined` throws the
 *   same NonJsonValueError at the same path, so the guard only says it first (only a Proxy or a
 *   getter that answers differently on each read could tell them apart).
 * - 73:7 and keysInOrder (82:47, 83:36, 83:59, 84:7, 84:29, 85:35, 86:12, 91:9 ×4, 91:37 ×2, 92:9,
 *   95:10): keysInOrder is private and only gates isCanonicalText's fast path; each mutant only
 *   makes it say false more often (own keys are unique, so `<=` is `<`; an array walked as an
 *   object checks the same items; for-in over null lists nothing), and the exact path then gives
 *   the same answer.
 * - 152:17 `lo >= 0x30` → true: a character below `0` gives a negative digit, refused the same.
 * - 178:25 `x < y` → `x <= y`: it runs only when x !== y.
 * - 186:19, 187:17 prevStart / prevEnd starting at +1: prevEnd is read only once prevStart >= 0,
 *   and a first range from 1 to -1 is negative, so rangeBefore says "before" as the skip did.
 * - 194:9 `keyEnd < 0` → false or `<= 0`, 194:24 `prevStart >= 0` → `> 0`, 199:9 and 212:9 `j < 0`
 *   → false or `<= 0`: a key's end or start is never 0, and a refusal read on as position -1 meets
 *   NaN, which is neither `:`, `,` nor a closing bracket (or, as a key's end, a negative range).
 * - scanNumber's short-integer shortcut (223:20, 228:11 ×2, 235:7, 235:21, 235:36, 235:50, 237:9,
 *   238:9): it only skips `String(Number(lexeme)) === lexeme`, which says the same of up to 15
 *   digits without a leading zero, of `0`, and of `-0` (refused both ways).
 * - 227:70 `c === 0x45` → false: a number cut before an `E` is followed by the `E`, which no
 *   container takes and which is not the end of the text; with it the lexeme never reads back.
 */
import { describe, expect, test } from 'vitest';
import { isSurelyCanonicalText } from '../../src/core/canonical.ts';
import { isExactlyCanonical } from '../helpers/core-samples.ts';

describe('isSurelyCanonicalText', () => {
  test('a value that starts like no JSON value: an exponent letter, a plus sign or a point', () => {
    const values = ['e5', 'E5', 'e', '+1', '+0', '.5', '+', '.', 'x1', ':1', '/1', 'A1'];
    const texts = values.flatMap((v) => [v, `[${v}]`, `[1,${v}]`, `{"a":${v}}`]);
    expect(texts.filter((t) => isExactlyCanonical(t))).toEqual([]);
    expect(texts.filter((t) => isSurelyCanonicalText(t))).toEqual([]);
    // Behind a prefix, from the offset the caller gives.
    expect(isSurelyCanonicalText('1e5', 1)).toBe(false);
    expect(isSurelyCanonicalText('[0,+1]', 3)).toBe(false);
    // The numbers it starts: a digit or a minus sign.
    expect(['5', '-5', '0', '[1,-2]', '{"a":9}'].map((t) => isSurelyCanonicalText(t))).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
  });

  test('a refused escape is refused for good, even where the text before the offset would lead back to it', () => {
    // `X,` then the refused string again: a refusal read as position 1 would meet the comma there
    // and read the string at 2, the same refusal, without end.
    for (const escape of ['\\q', '\\u00zz', '\\u0008', '\\u0100']) {
      const text = `X,"${escape}"["${escape}"]`;
      const from = text.indexOf('[');
      expect(isSurelyCanonicalText(text, from), text).toBe(false);
      expect(isExactlyCanonical(text.slice(from)), text).toBe(false);
    }
  });
});
