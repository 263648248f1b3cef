/**
 * Survivors of the whole Stryker run in src/core/params.ts and src/core/pattern.ts
 * (docs/mutation-survivors.md, lines of 912442c). params.ts: the 15-level limit of an SSM name
 * (30), a secret holding a control character (86–87), the minItems/maxItems sentences (113–120),
 * a list of enum items given no list (200), a missing secret (218–219), planParamText's default
 * (227). pattern.ts, through a spy on RE2JS.compile: the compile cache (26:7 → true; 28:9 → true,
 * → `<`), an error that is no syntax error (56–57), and the backreference and lookaround tests
 * (62, 69) against syntax errors made by hand: docs/mutation.md called 62 and 69 equivalent for
 * the errors re2js 2.10 throws; these pin the refusal for any error it may report. Two lookaround
 * errors make the file kill line 69's other mutants on its own (the whole run killed them already).
 *
 * Left as equivalent:
 * - params 17:28 (5 regex mutants): a module-level constant, static (ignored by the run's config).
 * - params 150:10, 151:10 `spec.min/max !== undefined` → `true`: a comparison with undefined is false.
 * - params 162:14 `typeof given === 'string'` → `true`: an enum's values are strings (the schema),
 *   so `includes` finds no value of another type.
 * - params 200:10 `spec.type === 'enum'` → `false`, 200:24 `'enum'` → `''`: both arms give spec.type.
 * - pattern 28:9 `cache.size >= CACHE_LIMIT` → `false`, → `>`: they differ only once 1,000 patterns
 *   are cached (memory, not matching), and reaching that takes over 1,000 compiles, seconds a run.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, test, vi } from 'vitest';
import { RE2JS, RE2JSSyntaxException } from 're2js';
import { checkParamValue, parseParams, planParamText, ssmParameterNameProblem } from '../../src/core/params.ts';
import { matchesPattern, patternProblem } from '../../src/core/pattern.ts';
import type { Parameter } from '../../src/core/runbook.ts';
import { runbookWith } from '../helpers/core-samples.ts';

function outcome(fn: () => unknown): string {
  try {
    return String(fn());
  } catch (e) {
    return `${(e as { code?: string }).code}: ${(e as Error).message}`;
  }
}

describe('params.ts: the survivors of the whole run', () => {
  test('each check gives exactly the sentence written here', () => {
    const rb = runbookWith({
      s: { type: 'secret' },
      two: { type: 'list', items: { type: 'enum', values: ['a', 'b'] }, minItems: 2, maxItems: 3 },
      one: { type: 'list', items: { type: 'string' }, maxItems: 1 },
    });
    const spec = (name: string): Parameter => rb.parameters[name]!;
    const cases: [string, () => unknown, string][] = [
      ['15 levels', () => ssmParameterNameProblem('/a'.repeat(15)), 'undefined'],
      ['14 levels', () => ssmParameterNameProblem('/a'.repeat(14)), 'undefined'],
      ['16 levels', () => ssmParameterNameProblem('/a'.repeat(16)), 'must not have more than 15 levels'],
      [
        'a secret with a control character',
        () => checkParamValue('s', spec('s'), '/a\u0007'),
        'parameter "s" contains a control character (U+0007); control, direction-changing and invisible characters are never allowed, so remove it',
      ],
      ['exactly minItems', () => checkParamValue('two', spec('two'), ['a', 'b']), 'undefined'],
      [
        'one under minItems 2',
        () => checkParamValue('two', spec('two'), ['a']),
        'parameter "two" must list at least 2 items; got 1',
      ],
      [
        'one under minItems 1',
        () => checkParamValue('one', spec('one'), []),
        'parameter "one" must list at least 1 item; got 0',
      ],
      [
        'one over maxItems 1',
        () => checkParamValue('one', spec('one'), ['x', 'y']),
        'parameter "one" must list at most 1 item; got 2',
      ],
      [
        'one over maxItems 3',
        () => checkParamValue('two', spec('two'), ['a', 'b', 'a', 'b']),
        'parameter "two" must list at most 3 items; got 4',
      ],
      [
        'no list for enum items',
        () => checkParamValue('two', spec('two'), 5),
        'parameter "two" must be a list of enum values; got 5',
      ],
      [
        'a missing secret',
        () => parseParams(rb, { two: ['a', 'b'], one: ['x'] }),
        'PARAMS_INVALID: parameter "s" is required: the name of an SSM Parameter Store parameter, like /prod/db/password',
      ],
      ['no secret named by default', () => planParamText('Stryker was here', 'x'), 'Stryker was here="x"'],
    ];
    const wrong = cases.map(([what, fn, want]) => ({ what, got: outcome(fn), want })).filter((c) => c.got !== c.want);
    expect(wrong).toEqual([]);
  });
});

describe('pattern.ts: the compile cache and errors re2js does not give today', () => {
  test('a pattern is compiled once, and a second one does not evict the first', () => {
    const compile = vi.spyOn(RE2JS, 'compile');
    const a = `^${randomUUID()}$`;
    const b = `^${randomUUID()}$`;
    let found: boolean[];
    let compiled: unknown[];
    try {
      found = [matchesPattern(a, 'x'), matchesPattern(a, 'x'), matchesPattern(b, 'x'), matchesPattern(a, 'x')];
      compiled = compile.mock.calls.map(([p]) => p);
    } finally {
      compile.mockRestore();
    }
    expect({ found, compiled }).toEqual({
      found: [false, false, false, false],
      compiled: [a, b],
    });
  });

  test('each error is refused with its own sentence', () => {
    const fail = (e: unknown) =>
      vi.spyOn(RE2JS, 'compile').mockImplementation(() => {
        throw e;
      });
    const cases: [unknown, string][] = [
      [new RangeError('too deep'), 'parameter "p" has a pattern RE2 cannot compile (too deep); simplify the pattern'],
      ['a text', 'parameter "p" has a pattern RE2 cannot compile (a text); simplify the pattern'],
      [
        new RE2JSSyntaxException('invalid named capture', '(?P=n)'),
        'parameter "p" has a pattern with a backreference ((?P=n)), which RE2 cannot match in linear time; rewrite the pattern without it',
      ],
      [
        new RE2JSSyntaxException('missing closing )', '\\1x'),
        'parameter "p" has a pattern that is not a valid RE2 regular expression (missing closing ): \\1x); fix the pattern',
      ],
      [
        new RE2JSSyntaxException('invalid escape sequence', 'x\\1'),
        'parameter "p" has a pattern that is not a valid RE2 regular expression (invalid escape sequence: x\\1); fix the pattern',
      ],
      [
        new RE2JSSyntaxException('invalid or unsupported Perl syntax', '(?<=ab'),
        'parameter "p" has a pattern with a lookahead or lookbehind ((?<=), which RE2 cannot match in linear time; rewrite the pattern without it',
      ],
      [
        new RE2JSSyntaxException('invalid or unsupported Perl syntax', '(?!'),
        'parameter "p" has a pattern with a lookahead or lookbehind ((?!), which RE2 cannot match in linear time; rewrite the pattern without it',
      ],
      [
        new RE2JSSyntaxException('missing argument to repetition operator', 'a(?='),
        'parameter "p" has a pattern that is not a valid RE2 regular expression (missing argument to repetition operator: a(?=); fix the pattern',
      ],
    ];
    const wrong = cases
      .map(([error, want], i) => {
        const spy = fail(error);
        try {
          // A pattern never compiled before, so the spy is reached rather than the cache.
          const got = patternProblem('p', `^${randomUUID()}-${i}$`, 10);
          return { error: String(error), got, want };
        } finally {
          // Restored whatever happens: the mutation run's files share one module registry.
          spy.mockRestore();
        }
      })
      .filter((c) => c.got !== c.want);
    expect(wrong).toEqual([]);
  });
});
