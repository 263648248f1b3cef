import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { buildPlan } from '../../src/core/plan.ts';
import { parseRunbook } from '../../src/core/runbook.ts';
import { closestWord, humanTextProblem, neutralize, quoteForMessage } from '../../src/core/text.ts';

function caught(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a throw, but nothing was thrown');
}

const ESC = '\u001b';

describe('humanTextProblem', () => {
  test.each([
    'INC-42: workers stuck',
    'ünïcødé 日本語 العربية עברית',
    'emoji 🚀 ❤️ 👍🏽',
    'quote \' and " and \\ and $(id)',
    '',
  ])('%j is accepted', (value) => {
    expect(humanTextProblem('the reason', value)).toBeUndefined();
  });

  // Unicode category Cf holds every direction and invisible format character, so a new one is
  // refused without a list to update; these are the ones that have been used to deceive.
  test.each([
    ['\u0000', 'a control character (U+0000)'],
    ['\u0007', 'a control character (U+0007)'],
    ['\u0085', 'a control character (U+0085)'],
    ['\u009b', 'a control character (U+009B)'],
    ['\u00ad', 'a soft hyphen (U+00AD)'],
    ['\u061c', 'an Arabic letter mark (U+061C)'],
    ['\u180e', 'an invisible format character (U+180E)'],
    ['\u200b', 'a zero-width space (U+200B)'],
    ['\u200c', 'a zero-width non-joiner (U+200C)'],
    ['\u200d', 'a zero-width joiner (U+200D)'],
    ['\u200e', 'a left-to-right mark (U+200E)'],
    ['\u200f', 'a right-to-left mark (U+200F)'],
    ['\u2028', 'a line separator (U+2028)'],
    ['\u2029', 'a paragraph separator (U+2029)'],
    ['\u202a', 'a left-to-right embedding (U+202A)'],
    ['\u202b', 'a right-to-left embedding (U+202B)'],
    ['\u202c', 'a pop directional formatting character (U+202C)'],
    ['\u202d', 'a left-to-right override (U+202D)'],
    ['\u202e', 'a right-to-left override (U+202E)'],
    ['\u2060', 'a word joiner (U+2060)'],
    ['\u2066', 'a left-to-right isolate (U+2066)'],
    ['\u2067', 'a right-to-left isolate (U+2067)'],
    ['\u2068', 'a first strong isolate (U+2068)'],
    ['\u2069', 'a pop directional isolate (U+2069)'],
    ['\ufeff', 'a byte order mark (U+FEFF)'],
    ['\ufff9', 'an invisible format character (U+FFF9)'],
    ['\u{e0001}', 'an invisible format character (U+E0001)'],
    ['\udc00', 'an unpaired surrogate (U+DC00)'],
  ])('%j is refused as %s', (ch, said) => {
    expect(humanTextProblem('the reason', `ok ${ch} ok`)).toBe(
      `the reason contains ${said}; control, direction-changing and invisible characters are never allowed, so remove it`,
    );
  });

  test('the first refused character is the one named', () => {
    expect(humanTextProblem('the comment', 'a\u202eb\nc')).toMatch(/^the comment contains a right-to-left override/);
  });
});

describe('the launch reason', () => {
  const runbook = parseRunbook({
    name: 'restart-web',
    version: 1,
    description: 'Restart the web service.',
    roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
    targets: { tags: { Role: 'web' } },
    steps: [{ name: 'restart', script: 'true' }],
  });
  const plan = (reason: string) =>
    buildPlan({
      executionId: 'exec-0001',
      runbook,
      runbookDigest: 'rb-digest-1',
      rawParams: {},
      targets: [{ instanceId: 'i-0aaaaaaaaaaaaaaa1' }],
      requester: 'alice@example.com',
      reason,
      region: 'eu-west-1',
      now: new Date('2025-01-01T10:00:00.000Z'),
    });

  // Regression: the reason filter missed RLM, ALM, zero-width characters, soft hyphens and BOMs.
  test.each([
    ['a right-to-left mark', 'INC-42\u200f fix', 'a right-to-left mark (U+200F)'],
    ['an Arabic letter mark', 'INC-42\u061c fix', 'an Arabic letter mark (U+061C)'],
    ['a zero-width joiner', 'INC\u200d-42 fix', 'a zero-width joiner (U+200D)'],
    ['a soft hyphen', 'INC-42 fi\u00adx', 'a soft hyphen (U+00AD)'],
    ['a byte order mark', 'INC-42 \ufefffix', 'a byte order mark (U+FEFF)'],
    ['a newline', 'INC-42\nplan deadbeef', 'a line break (U+000A)'],
  ])('a reason with %s is refused, naming it', (_what, reason, said) => {
    const error = caught(() => plan(reason));
    expect(error).toMatchObject({ code: 'USAGE' });
    expect(error.message).toBe(
      `the reason contains ${said}; control, direction-changing and invisible characters are never allowed, so remove it`,
    );
  });

  test('a reason in any script is accepted', () => {
    expect(plan('إعادة تشغيل — 再起動 🚀').plan.reason).toBe('إعادة تشغيل — 再起動 🚀');
  });
});

describe('neutralize', () => {
  test('plain text, any script, is unchanged', () => {
    const text = 'deploy v1.4.2 — 再起動 العربية 🚀 ❤️ "quoted" \\ $(id)';
    expect(neutralize(text)).toBe(text);
  });

  test.each([
    ['a colour', `${ESC}[31mred${ESC}[0m`, 'red'],
    ['a screen clear and cursor home', `${ESC}[2J${ESC}[Hclean`, 'clean'],
    ['a private mode', `${ESC}[?1049hx`, 'x'],
    ['a window title (OSC, BEL)', `${ESC}]0;pwned\u0007after`, 'after'],
    ['a hyperlink (OSC 8, ST)', `${ESC}]8;;https://evil.example${ESC}\\click${ESC}]8;;${ESC}\\`, 'click'],
    ['a device control string', `${ESC}Pq#0;2;0;0;0${ESC}\\x`, 'x'],
    ['a two-character escape (reset)', `${ESC}cx`, 'x'],
    ['a character set switch', `${ESC}(Bx`, 'x'],
  ])('removes %s', (_what, text, shown) => {
    expect(neutralize(text)).toBe(shown);
  });

  test.each([
    ['a lone escape', `a${ESC}`, 'a<U+001B>'],
    ['a bell', 'a\u0007b', 'a<U+0007>b'],
    ['a backspace that would hide a character', 'rm -rf x\bsafe', 'rm -rf x<U+0008>safe'],
    ['an 8-bit CSI', '\u009b31mred', '<U+009B>31mred'],
    ['a right-to-left override', 'evil\u202egnp.exe', 'evil<U+202E>gnp.exe'],
    ['an isolate', 'a\u2066b\u2069c', 'a<U+2066>b<U+2069>c'],
    ['a zero-width joiner', 'a\u200db', 'a<U+200D>b'],
    ['a byte order mark', '\ufeffa', '<U+FEFF>a'],
    ['a tag character', 'a\u{e0041}', 'a<U+E0041>'],
    ['an unpaired surrogate', 'a\ud800', 'a<U+D800>'],
    ['a newline in one-line text', 'ok\nplan deadbeef', 'ok<U+000A>plan deadbeef'],
    ['a carriage return in one-line text', 'bad\rgood', 'bad<U+000D>good'],
    ['a tab in one-line text', 'a\tb', 'a<U+0009>b'],
    ['a line separator', 'a\u2028b', 'a<U+2028>b'],
  ])('shows %s as a marker', (_what, text, shown) => {
    expect(neutralize(text)).toBe(shown);
  });

  test('multi-line text keeps its newlines and tabs, and a carriage return cannot overwrite a line', () => {
    expect(neutralize('line 1\r\nline\t2\nfake ok\rREAL\n', { multiline: true })).toBe(
      'line 1\nline\t2\nfake ok\nREAL\n',
    );
  });

  test('multi-line text still loses escapes and shows format characters', () => {
    expect(neutralize(`${ESC}[1A${ESC}[2Kdone\n\u202eevil\n`, { multiline: true })).toBe('done\n<U+202E>evil\n');
  });

  test('an unterminated control sequence loses its escape, and what follows is shown', () => {
    expect(neutralize(`a${ESC}[31`)).toBe('a31');
    expect(neutralize(`a${ESC}]0;title`)).toBe('a0;title');
  });

  test('it is linear: a long run of unterminated sequences is handled at once', () => {
    const text = `${ESC}]`.repeat(50_000);
    expect(neutralize(text)).toBe('');
  });
});

describe('quoteForMessage', () => {
  test.each([
    ['a short string', 'web', '"web"'],
    ['control characters, JSON-escaped', 'a\nb\u001b', '"a\\nb\\u001b"'],
    ['format characters, as markers', 'a\u202eb', '"a<U+202E>b"'],
    ['a number', 5, '5'],
    ['an object', { a: 1 }, '{"a":1}'],
  ])('quotes %s', (_what, value, quoted) => {
    expect(quoteForMessage(value)).toBe(quoted);
  });

  test('a long value is cut at 60 characters, never inside a surrogate pair', () => {
    expect(quoteForMessage('🚀'.repeat(100))).toBe(`"${'🚀'.repeat(60)}…"`);
  });
});

describe('sandbox safety', () => {
  // checkVote runs in the workflow's update validator, inside Temporal's deterministic sandbox:
  // text.ts and approval.ts must not import Node built-ins or anything that does.
  test.each(['text.ts', 'approval.ts'])('src/core/%s imports only sandbox-safe core modules', (file) => {
    const source = readFileSync(new URL(`../../src/core/${file}`, import.meta.url), 'utf8');
    const imports = [...source.matchAll(/^import .* from '([^']+)';$/gm)].map((m) => m[1]);
    expect(imports.filter((i) => i !== './errors.ts' && i !== './text.ts')).toEqual([]);
  });
});

describe('closestWord', () => {
  test('finds a typo within two edits, a swap counting as one, and case alone', () => {
    expect(closestWord('deploy-wbe', ['rotate-logs', 'deploy-web'])).toBe('deploy-web');
    expect(closestWord('Steps', ['steps', 'stepz'])).toBe('steps');
    expect(closestWord('paramters', ['parameters', 'targets'])).toBe('parameters');
  });
  test('offers nothing for a word three edits away', () => {
    expect(closestWord('nope', ['hello'])).toBeUndefined();
    expect(closestWord('abc', ['xyzabc'])).toBeUndefined();
  });
});
