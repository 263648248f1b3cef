import { describe, expect, test } from 'vitest';
import { hasControlCharacters, parseParams } from '../../src/core/params.ts';
import { parseRunbook, type Runbook } from '../../src/core/runbook.ts';

function caught(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a throw, but nothing was thrown');
}

/** One parameter of each type, with and without defaults. */
const runbook: Runbook = parseRunbook({
  name: 'deploy-api',
  version: 1,
  description: 'Deploy the API.',
  roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
  parameters: {
    release: { type: 'string', pattern: '^v\\d+\\.\\d+\\.\\d+$' },
    note: { type: 'string', default: '', maxLength: 10 },
    workers: { type: 'integer', min: 1, max: 16, default: 4 },
    offset: { type: 'integer' },
    dryRun: { type: 'boolean', default: false },
    mode: { type: 'enum', values: ['rolling', 'all-at-once'], default: 'rolling' },
  },
  targets: { tags: { Role: 'api' } },
  steps: [
    { name: 'deploy', script: 'echo {{ release }} {{ note }} {{ workers }} {{ offset }} {{ dryRun }} {{ mode }}' },
  ],
});

/** The required parameters with valid values; each test adds or replaces one. */
const required = { release: 'v1.2.3', offset: 0 };

function problemsOf(raw: Record<string, unknown>): string {
  const error = caught(() => parseParams(runbook, raw));
  expect(error).toMatchObject({ code: 'PARAMS_INVALID' });
  return error.message;
}

describe('values', () => {
  test('defaults are filled for what was not given', () => {
    expect(parseParams(runbook, required)).toEqual({
      release: 'v1.2.3',
      note: '',
      workers: 4,
      offset: 0,
      dryRun: false,
      mode: 'rolling',
    });
  });

  test('a given value replaces the default', () => {
    expect(parseParams(runbook, { ...required, workers: 8, mode: 'all-at-once' })).toMatchObject({
      workers: 8,
      mode: 'all-at-once',
    });
  });

  test.each([
    ['workers', '8', 8],
    ['offset', '-3', -3],
    ['offset', '007', 7],
    ['dryRun', 'true', true],
    ['dryRun', 'false', false],
  ])('the CLI string %s=%j is coerced to %j', (name, given, expected) => {
    expect(parseParams(runbook, { ...required, [name]: given })[name]).toBe(expected);
  });

  test('a runbook without parameters takes an empty object', () => {
    const bare = parseRunbook({ ...runbook, parameters: {}, steps: [{ name: 'deploy', script: 'true' }] });
    expect(parseParams(bare, {})).toEqual({});
  });
});

describe('problems', () => {
  test('every problem is reported at once, one line each', () => {
    expect(problemsOf({ release: 'latest', workers: 99, dryRun: 'yes', colour: 'red' })).toMatchInlineSnapshot(`
      "- "colour" is not a parameter of deploy-api (its parameters are: release, note, workers, offset, dryRun, mode)
      - parameter "release" must match ^v\\d+\\.\\d+\\.\\d+$; got "latest"
      - parameter "workers" must be an integer from 1 to 16; got 99
      - parameter "offset" is required: an integer
      - parameter "dryRun" must be true or false; got "yes""
    `);
  });

  test('an unknown parameter lists the known ones', () => {
    expect(problemsOf({ ...required, relase: 'v1.2.3' })).toMatchInlineSnapshot(
      `""relase" is not a parameter of deploy-api (its parameters are: release, note, workers, offset, dryRun, mode)"`,
    );
  });

  test('an unknown parameter of a runbook without parameters says it takes none', () => {
    const bare = parseRunbook({ ...runbook, parameters: {}, steps: [{ name: 'deploy', script: 'true' }] });
    expect(caught(() => parseParams(bare, { x: '1' })).message).toMatchInlineSnapshot(
      `""x" is not a parameter of deploy-api (it takes none)"`,
    );
  });

  test('a required parameter that is missing says what it expects', () => {
    expect(problemsOf({ offset: 0 })).toMatchInlineSnapshot(
      `"parameter "release" is required: a string matching ^v\\d+\\.\\d+\\.\\d+$"`,
    );
  });

  test.each([
    ['below min', 0],
    ['above max', 17],
    ['below min, from the CLI', '0'],
    ['above max, from the CLI', '17'],
  ])('an integer %s is refused', (_rule, workers) => {
    expect(problemsOf({ ...required, workers })).toContain('parameter "workers" must be an integer from 1 to 16');
  });

  test.each([1, 16])('the integer bound %i itself is accepted', (workers) => {
    expect(parseParams(runbook, { ...required, workers }).workers).toBe(workers);
  });

  test.each([
    ['a fraction', 1.5],
    ['a fraction from the CLI', '1.5'],
    ['a word', 'four'],
    ['a leading plus', '+4'],
    ['a space', ' 4'],
    ['an exponent', '4e0'],
    ['a boolean', true],
    ['beyond a safe integer', 2 ** 53],
    ['16 digits', '1234567890123456'],
  ])('an integer given as %s is refused', (_rule, offset) => {
    expect(problemsOf({ ...required, offset })).toContain('parameter "offset" must be an integer');
  });

  test.each(['yes', '1', 'TRUE', 1, ''])('the boolean %j is refused', (dryRun) => {
    expect(problemsOf({ ...required, dryRun })).toContain('parameter "dryRun" must be true or false');
  });

  test.each(['Rolling', 'canary', '', 1])('the enum value %j is refused', (mode) => {
    expect(problemsOf({ ...required, mode })).toContain('parameter "mode" must be one of rolling, all-at-once');
  });

  test('a string given as a number is refused', () => {
    expect(problemsOf({ ...required, note: 42 })).toMatchInlineSnapshot(`"parameter "note" must be a string; got 42"`);
  });

  test('a string longer than maxLength is refused', () => {
    expect(problemsOf({ ...required, note: 'x'.repeat(11) })).toMatchInlineSnapshot(
      `"parameter "note" is longer than 10 characters"`,
    );
  });

  test('a string of exactly maxLength is accepted', () => {
    expect(parseParams(runbook, { ...required, note: 'x'.repeat(10) }).note).toBe('x'.repeat(10));
  });

  test.each([
    ['newline', 'a\nb', 'a line break (U+000A)'],
    ['carriage return', 'a\rb', 'a carriage return (U+000D)'],
    ['NUL', 'a\u0000b', 'a control character (U+0000)'],
    ['tab', 'a\tb', 'a tab (U+0009)'],
    ['escape', '\u001b[31m', 'an escape character (U+001B)'],
    ['DEL', 'a\u007fb', 'a delete character (U+007F)'],
    ['C1 next line', 'a\u0085b', 'a control character (U+0085)'],
    ['line separator', 'a\u2028b', 'a line separator (U+2028)'],
    ['paragraph separator', 'a\u2029b', 'a paragraph separator (U+2029)'],
  ])('a string with a %s is refused, naming the character', (_name, note, described) => {
    expect(problemsOf({ ...required, note })).toBe(
      `parameter "note" contains ${described}; control, direction-changing and invisible characters are never allowed, so remove it`,
    );
  });

  // Regression: the filter once listed only C0/C1 controls, the separators and the bidi embeddings,
  // overrides and isolates, so these passed and could make a plan read differently than it runs.
  test.each([
    ['right-to-left mark', 'v1\u200f', 'a right-to-left mark (U+200F)'],
    ['left-to-right mark', '\u200ev1', 'a left-to-right mark (U+200E)'],
    ['Arabic letter mark', 'a\u061cb', 'an Arabic letter mark (U+061C)'],
    ['zero-width joiner', 'a\u200db', 'a zero-width joiner (U+200D)'],
    ['zero-width non-joiner', 'a\u200cb', 'a zero-width non-joiner (U+200C)'],
    ['zero-width space', 'a\u200bb', 'a zero-width space (U+200B)'],
    ['soft hyphen', 'we\u00adb', 'a soft hyphen (U+00AD)'],
    ['byte order mark', '\ufeffweb', 'a byte order mark (U+FEFF)'],
    ['word joiner', 'a\u2060b', 'a word joiner (U+2060)'],
    ['tag character', 'a\u{e0041}', 'an invisible format character (U+E0041)'],
    ['unpaired surrogate', 'a\ud800', 'an unpaired surrogate (U+D800)'],
    ['right-to-left override', '\u202eabc', 'a right-to-left override (U+202E)'],
    ['right-to-left isolate', '\u2067abc', 'a right-to-left isolate (U+2067)'],
  ])('a string with a %s is refused', (_name, note, described) => {
    expect(problemsOf({ ...required, note })).toBe(
      `parameter "note" contains ${described}; control, direction-changing and invisible characters are never allowed, so remove it`,
    );
  });

  test('a value in a message is cut short and shows invisible characters', () => {
    expect(problemsOf({ release: `v1\u2060${'x'.repeat(100)}`, offset: 0 })).toBe(
      'parameter "release" contains a word joiner (U+2060); control, direction-changing and invisible characters are never allowed, so remove it',
    );
    expect(problemsOf({ release: 'x'.repeat(100), offset: 0 })).toBe(
      `parameter "release" must match ^v\\d+\\.\\d+\\.\\d+$; got "${'x'.repeat(60)}…"`,
    );
  });

  // Regression: the unknown-name check once used `name in runbook.parameters`, which also finds
  // Object.prototype's members, so these names were silently ignored. (JSON from the API can carry
  // "__proto__" as an own key.)
  test.each(['toString', 'constructor', '__proto__'])('the unknown parameter %j is refused', (name) => {
    const raw = JSON.parse(`{"release": "v1.2.3", "offset": 0, ${JSON.stringify(name)}: "x"}`) as Record<
      string,
      unknown
    >;
    expect(problemsOf(raw)).toContain(`"${name}" is not a parameter of deploy-api`);
  });
});

describe('hasControlCharacters', () => {
  test.each(['plain', 'ünïcødé 日本 🚀', ' spaces  ', 'quote \' and " and \\', ''])('%j has none', (value) => {
    expect(hasControlCharacters(value)).toBe(false);
  });

  test.each([
    '\n',
    '\r',
    '\t',
    '\u0000',
    '\u001b',
    '\u007f',
    '\u009f',
    '\u2028',
    '\u2029',
    '\u200f',
    '\u061c',
    '\u200d',
    '\u00ad',
    '\ufeff',
  ])('%j is one', (value) => {
    expect(hasControlCharacters(value)).toBe(true);
  });
});

describe('patterns are matched with RE2', () => {
  const catastrophic = parseRunbook({
    name: 'check-name',
    version: 1,
    description: 'Check a name.',
    roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
    parameters: { name: { type: 'string', pattern: '^(a+)+$', maxLength: 4096 } },
    targets: { tags: { Role: 'api' } },
    steps: [{ name: 'check', script: 'echo {{ name }}' }],
  });

  // Regression: with JavaScript's backtracking RegExp, `^(a+)+$` against 4 KiB of "a" and one "!"
  // held the API for seconds per request (and far longer than any test timeout). RE2 answers in
  // time linear in the value, so this returns at once; the assertion is on the result, not the clock.
  test('^(a+)+$ against a 4 KiB value that almost matches is refused, not hung on', () => {
    expect(caught(() => parseParams(catastrophic, { name: `${'a'.repeat(4095)}!` })).message).toBe(
      `parameter "name" must match ^(a+)+$; got "${'a'.repeat(60)}…"`,
    );
  });

  test('^(a+)+$ against a 4 KiB value that matches is accepted', () => {
    expect(parseParams(catastrophic, { name: 'a'.repeat(4096) })).toEqual({ name: 'a'.repeat(4096) });
  });

  test('a pattern is searched for, as RegExp.test did: anchors are up to the author', () => {
    const unanchored = parseRunbook({
      ...catastrophic,
      parameters: { name: { type: 'string', pattern: 'web' } },
    });
    expect(parseParams(unanchored, { name: 'the-web-1' })).toEqual({ name: 'the-web-1' });
    expect(caught(() => parseParams(unanchored, { name: 'db-1' })).message).toBe(
      'parameter "name" must match web; got "db-1"',
    );
  });

  test('patterns see code points, as the u flag did', () => {
    const oneChar = parseRunbook({ ...catastrophic, parameters: { name: { type: 'string', pattern: '^.$' } } });
    expect(parseParams(oneChar, { name: '🚀' })).toEqual({ name: '🚀' });
  });
});
