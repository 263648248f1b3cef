/**
 * Tests for the mutants Stryker found alive in src/core/params.ts and src/core/pattern.ts
 * (docs/mutation.md). Runbooks are parsed inside each test, never when the file loads: a mutant
 * that breaks parsing must fail a test, not the loading of the file, which Stryker does not count
 * as a kill.
 */
import { describe, expect, test } from 'vitest';
import { checkParamValue, parseParams } from '../../src/core/params.ts';
import { matchesPattern, patternProblem } from '../../src/core/pattern.ts';
import type { Parameter } from '../../src/core/runbook.ts';
import { runbookWith } from '../helpers/core-samples.ts';

function problemOf(parameters: Record<string, unknown>, raw: Record<string, unknown>): string {
  try {
    parseParams(runbookWith(parameters), raw);
  } catch (e) {
    expect(e).toMatchObject({ code: 'PARAMS_INVALID' });
    return (e as Error).message;
  }
  throw new Error('expected PARAMS_INVALID, but the parameters were accepted');
}

describe('parseParams: what a missing required parameter expects', () => {
  test.each([
    [{ type: 'string' }, 'a string'],
    [{ type: 'string', pattern: '^v\\d+$' }, 'a string matching ^v\\d+$'],
    [{ type: 'integer' }, 'an integer'],
    [{ type: 'integer', min: 1 }, 'an integer of at least 1'],
    [{ type: 'integer', max: 9 }, 'an integer of at most 9'],
    [{ type: 'integer', min: 1, max: 9 }, 'an integer from 1 to 9'],
    [{ type: 'boolean' }, 'true or false'],
    [{ type: 'enum', values: ['fast', 'slow'] }, 'one of fast, slow'],
  ])('%j: %s', (spec, expects) => {
    expect(problemOf({ x: spec }, {})).toBe(`parameter "x" is required: ${expects}`);
  });
});

describe('parseParams: values', () => {
  test('JSON booleans keep their value, and so do the strings "true" and "false"', () => {
    const rb = runbookWith({ on: { type: 'boolean' } });
    expect(parseParams(rb, { on: true })).toEqual({ on: true });
    expect(parseParams(rb, { on: false })).toEqual({ on: false });
    expect(parseParams(rb, { on: 'true' })).toEqual({ on: true });
    expect(parseParams(rb, { on: 'false' })).toEqual({ on: false });
  });

  test('an integer typed as a string becomes a number; a number stays one', () => {
    const rb = runbookWith({ n: { type: 'integer', min: -5, max: 5 } });
    expect(parseParams(rb, { n: '3' })).toEqual({ n: 3 });
    expect(parseParams(rb, { n: '-5' })).toEqual({ n: -5 });
    expect(parseParams(rb, { n: 5 })).toEqual({ n: 5 });
    // A JSON array would read as its only element if anything but a string went through the regex.
    expect(problemOf({ n: { type: 'integer' } }, { n: [3] })).toBe('parameter "n" must be an integer; got [3]');
    expect(problemOf({ n: { type: 'integer', min: -5, max: 5 } }, { n: '6' })).toBe(
      'parameter "n" must be an integer from -5 to 5; got "6"',
    );
  });

  test('an enum value given as a string is accepted, and only as a string', () => {
    const spec = { type: 'enum', values: ['fast', 'slow'] };
    expect(parseParams(runbookWith({ speed: spec }), { speed: 'slow' })).toEqual({ speed: 'slow' });
    expect(problemOf({ speed: spec }, { speed: 1 })).toBe('parameter "speed" must be one of fast, slow; got 1');
  });

  test('checkParamValue accepts a valid value of each type', () => {
    const specs: [Parameter, unknown][] = [
      [{ type: 'string', maxLength: 4 }, 'abcd'],
      [{ type: 'integer', min: 0, max: 0 }, 0],
      [{ type: 'boolean' }, false],
      [{ type: 'enum', values: ['a'] }, 'a'],
    ];
    for (const [spec, value] of specs) expect(checkParamValue('p', spec, value)).toBeUndefined();
  });
});

describe('patternProblem', () => {
  test('a pattern exactly at the cost limit is accepted, one character of maxLength more is refused', () => {
    // "ab" compiles to an RE2 program of 4 instructions: 4 × 250,000 is the limit, 1,000,000.
    expect(patternProblem('p', 'ab', 250_000)).toBeUndefined();
    expect(patternProblem('p', 'ab', 250_001)).toBe(
      'parameter "p" has a pattern too large to check quickly against values of up to 250001 characters ' +
        '(RE2 program size 4); simplify the pattern or lower maxLength',
    );
  });

  test.each([
    ['^(a)\\1$', 'a backreference (\\1)'],
    ['a\\g1', 'a backreference (\\g)'],
    ['(?P<n>a)(?P=n)', 'a backreference ((?P)'],
  ])('%s is refused as a backreference', (pattern, said) => {
    expect(patternProblem('p', pattern, 10)).toBe(
      `parameter "p" has a pattern with ${said}, which RE2 cannot match in linear time; rewrite the pattern without it`,
    );
  });

  test('an invalid escape that is not a backreference is named as what it is', () => {
    expect(patternProblem('p', 'a\\q', 10)).toBe(
      'parameter "p" has a pattern that is not a valid RE2 regular expression (invalid escape sequence: \\q); fix the pattern',
    );
  });

  test('other syntax errors are named with the part RE2 refused, or nothing when it names none', () => {
    expect(patternProblem('p', 'a{1001}', 10)).toBe(
      'parameter "p" has a pattern that is not a valid RE2 regular expression (invalid repeat count: {1001}); fix the pattern',
    );
    expect(patternProblem('p', `${'('.repeat(2000)}${')'.repeat(2000)}`, 10)).toBe(
      'parameter "p" has a pattern that is not a valid RE2 regular expression (expression nests too deeply: ); fix the pattern',
    );
  });

  test('a compiled pattern is reused and still matches what it matched the first time', () => {
    expect(matchesPattern('^x+$', 'xxx')).toBe(true);
    expect(matchesPattern('^x+$', 'xxy')).toBe(false);
    expect(matchesPattern('^x+$', 'x')).toBe(true);
  });
});
