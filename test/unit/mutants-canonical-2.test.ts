/**
 * Kills the survivors of the whole mutation run in src/core/canonical.ts (docs/mutation-survivors.md)
 * that let isSurelyCanonicalText vouch for a text that is not canonical, or refuse one it must
 * vouch for: the literals read on their first letter alone, the nesting limit, raw control
 * characters and lone surrogates, escapes (every `\x` and `\u00xx` form: bad hex digits, the five
 * characters that have a short escape, uppercase), surrogate pairs at their bounds, a key without
 * its quote or colon, a separator that is not a comma, and a refusal (-1) turned into position 1,
 * which the scan then reads on from, shown behind a prefix that makes that position a comma. And
 * the message of a circular reference.
 *
 * Equivalent, so not killed:
 * - the ancestors list starting `["Stryker was here"]` (line 18): a string is never an object found there;
 * - the hole-or-undefined guard of arrays (line 37, 3 mutants): encoding `undefined` throws the same
 *   NonJsonValueError at the same path, so the guard only says it first;
 * - isCanonicalText's fast path and all of keysInOrder (lines 73–95, 16 mutants): each mutant only
 *   makes it answer false (never true of keys out of order: own keys are unique, so `<=` is `<`;
 *   for-in over null lists nothing), and the exact path then gives the same answer;
 * - line 123 (4 mutants): a value starting with any other character goes to scanNumber, whose
 *   lexeme is then empty or starts with `+ . e E`, never how String writes a number;
 * - `lo >= 0x30` → true (line 152): a character below `0` gives a negative digit, refused anyway;
 * - rangeBefore (lines 174–180, 7 mutants): measured while its ranges included the quotes; to be
 *   judged again now that they do not (the next whole run);
 * - prevStart/prevEnd starting at +1, `keyEnd < 0` → false or `<= 0`, `prevStart >= 0` → true or
 *   `> 0`, `j < 0` → false or `<= 0` (lines 186–211): a first key compares as before an empty or
 *   negative range, a key never starts at 0, and a refused key or value is read as NaN next, which
 *   is neither `:`, `,` nor a closing bracket;
 * - scanNumber's short-integer shortcut (lines 222–237, 9 mutants) and `c === 0x45` → false: the
 *   shortcut only skips `String(Number(lexeme)) === lexeme`, which says the same of those integers;
 *   a number cut before an `E` is followed by the `E`, which no container takes;
 * - -1 → +1 in scanString (lines 148, 153, 155): position 1 is then read by the enclosing container;
 *   at `from` 0 (or after the hash prefix verify-rows passes) it is a value's first character, and
 *   behind any prefix the scan reaches the string's content outside a string, where its backslash
 *   is refused, or reads the same string again.
 *
 * Found on the way, not a mutant, and fixed: rangeBefore was given the keys with their quotes, so a
 * key sorted after a longer one that starts with it and goes on with a space or `!` (`"a"` > `"a!"`
 * since `"` > `!`): isSurelyCanonicalText('{"a!":1,"a":2}') was true, though canonicalJson writes
 * "a" first. Pinned by "a key before the longer keys that start with it".
 */
import { describe, expect, test } from 'vitest';
import { canonicalJson, isSurelyCanonicalText } from '../../src/core/canonical.ts';
import { isExactlyCanonical } from '../helpers/core-samples.ts';

/** Texts the scan decides itself (no escaped surrogate, no key with an escape): it must say exactly `exact`. */
function disagreements(texts: readonly string[]): string[] {
  return texts.filter((t) => isSurelyCanonicalText(t) !== isExactlyCanonical(t)).map((t) => JSON.stringify(t));
}

const unit = (c: number) => String.fromCharCode(c);

describe('isSurelyCanonicalText answers exactly, on what it decides', () => {
  test('a string or key of one or two raw code units: control characters, surrogates alone and in pairs', () => {
    const singles = [...Array.from({ length: 0x80 }, (_, c) => c), 0xd7ff, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xe000];
    const pieces: string[] = singles.map(unit);
    for (const a of [0x01, 0x1f, 0x61, 0xd7ff, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xe000])
      for (const b of [0x61, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xe000, 0xffff]) pieces.push(unit(a) + unit(b));
    const texts = pieces.flatMap((p) => [`"${p}"`, `{"${p}":0}`, `["${p}x"]`]);
    expect(disagreements(texts)).toEqual([]);
    // Vouched for: the pairs at the bounds of both halves, and DEL, written as itself.
    for (const p of ['\ud800\udc00', '\udbff\udfff', '\ud800\udfff', '\udbff\udc00', '\u007f'])
      expect(isSurelyCanonicalText(`"${p}"`), p).toBe(true);
  });

  test('every escape: one character after the backslash, and \\u00 with any two characters', () => {
    const escapes: string[] = [];
    for (let c = 0x20; c < 0x7f; c++) escapes.push(`\\${unit(c)}`);
    const hex = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFG`_/:@~';
    for (const hi of '0123a') for (const lo of hex) escapes.push(`\\u00${hi}${lo}`);
    escapes.push('\\u0100', '\\u1000', '\\u0', '\\u00');
    // Another letter where the u goes, before what would be a good \u00xx.
    for (const e of 'xUv0 ') escapes.push(`\\${e}001f`, `\\${e}0000`);
    const texts = escapes.flatMap((e) => [`"${e}"`, `"a${e}b"`, `["${e}",1]`]);
    expect(disagreements(texts)).toEqual([]);
    // The escapes canonical JSON writes are all vouched for: the short ones, \u00xx for the rest.
    for (let c = 0; c < 0x20; c++) expect(isSurelyCanonicalText(JSON.stringify(unit(c))), String(c)).toBe(true);
  });

  test('literals, separators and keys, right and wrong', () => {
    const texts = [
      ...['t', 'f', 'n', 'tru', 'fals', 'nul', 'txyz', 'fxxxx', 'nxxx', 'true', 'false', 'null'],
      ...['[t]', '[f]', '[n]', '[tru]', '[txyz]', '[true,false,null]', '{"a":txyz}', '{"a":nxxx}'],
      ...['{a":1}', '{"a"x1}', '{"a",1}', '{"a"1}', '{"a":1}', '{"a":1,"b":2}', '{"a":1x"b":2}', '{"a":1"b":2}'],
      ...['[1,2]', '[1x2]', '[1 2]', '[1"2"]', '["a"x"b"]', '[[1]x[2]]', '[{}x{}]'],
    ];
    expect(disagreements(texts)).toEqual([]);
  });

  test('nesting up to 100 deep is vouched for, deeper is left to the exact check', () => {
    const arrays = (d: number) => '['.repeat(d) + ']'.repeat(d);
    const objects = (d: number) => '{"a":'.repeat(d - 1) + '{}' + '}'.repeat(d - 1);
    const mixed = (d: number) => {
      let text = '0';
      for (let k = 0; k < d; k++) text = k % 2 ? `{"a":${text}}` : `[${text}]`;
      return text;
    };
    for (const nest of [arrays, objects, mixed]) {
      expect([99, 100, 101, 102, 150].map((d) => isSurelyCanonicalText(nest(d)))).toEqual([
        true,
        true,
        false,
        false,
        false,
      ]);
      expect(isExactlyCanonical(nest(150))).toBe(true);
    }
  });
});

describe('isSurelyCanonicalText never vouches for a text that is not canonical, from any offset', () => {
  // `x,"` before the value: if a refusal in it came back as position 1 instead of -1, the
  // enclosing array would read a comma there and a string from 2 to the quote after the value,
  // then the brackets that follow it, and so reach the end of the text.
  const behind = (value: string, closing: string) => `x,"${value}"${closing}`;
  test.each([
    ['an object nested 101 deep', behind('['.repeat(100) + '{}' + ']'.repeat(100), ']'.repeat(100))],
    ['an array nested 101 deep', behind('['.repeat(101) + ']'.repeat(101), ']'.repeat(100))],
    ['keys out of order', behind('[{",1,":1,",0,":2}]', ']')],
    ['a key without its colon', behind('[{",1,"x}]', ']')],
    ['a value that is none', behind('[{",1,":x}]', ']')],
    ['an object member followed by neither comma nor brace', behind('[{",1,":1x}]', ']')],
    ['an array element followed by neither comma nor bracket', behind('[[1x]]', ']')],
    ['a literal cut short', behind('[tru]', ']')],
  ])('%s', (_what, text) => {
    for (let from = 0; from <= 4; from++) {
      if (isSurelyCanonicalText(text, from))
        expect(isExactlyCanonical(text.slice(from)), `${from}: ${text}`).toBe(true);
    }
    expect(isSurelyCanonicalText(text, 3)).toBe(false);
  });
});

test('a circular reference is named where it closes the circle', () => {
  const circular: Record<string, unknown> = { a: { b: 1 } };
  (circular['a'] as Record<string, unknown>)['back'] = circular;
  expect(() => canonicalJson(circular)).toThrow('value at $.a.back is not JSON-safe: circular reference');
});

test('a key before the longer keys that start with it, whatever character follows', () => {
  const wrong: string[] = [];
  for (let c = 0x20; c < 0x80; c++) {
    if (c === 0x22 || c === 0x5c) continue;
    const longer = `a${String.fromCharCode(c)}`;
    for (const text of [`{"a":1,${JSON.stringify(longer)}:2}`, `{${JSON.stringify(longer)}:1,"a":2}`]) {
      if (isSurelyCanonicalText(text) !== isExactlyCanonical(text)) wrong.push(text);
    }
  }
  expect(wrong).toEqual([]);
  expect(isSurelyCanonicalText('{"a!":1,"a":2}')).toBe(false);
  expect(isSurelyCanonicalText('{"a":2,"a!":1}')).toBe(true);
});
