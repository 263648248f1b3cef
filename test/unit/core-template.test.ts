import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { parseParams } from '../../src/core/params.ts';
import { parseRunbook } from '../../src/core/runbook.ts';
import { renderScript, shellQuote } from '../../src/core/template.ts';

function caught(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a throw, but nothing was thrown');
}

// The rendered scripts run in an empty-PATH bash inside a scratch directory, so that if quoting ever
// broke, `rm`, `id` and friends would not be found and nothing outside the directory could be touched.
// The directory holds one file so that an unquoted `*` would visibly expand.
const BASH = execFileSync('bash', ['-c', 'command -v bash'], { encoding: 'utf8' }).trim();
const sandbox = mkdtempSync(join(tmpdir(), 'mechanic-template-'));
writeFileSync(join(sandbox, 'glob-bait'), '');
afterAll(() => rmSync(sandbox, { recursive: true, force: true }));

function bash(script: string): string {
  return execFileSync(BASH, ['-c', script], {
    cwd: sandbox,
    env: { PATH: '', HOME: 'EXPANDED-HOME', IFS: ' \t\n', LC_ALL: 'C.UTF-8' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Values an operator could type to try to break out of the script. Each must reach bash as one literal word. */
const hostile: readonly string[] = [
  '; rm -rf /',
  '$(id)',
  '`id`',
  "' ; echo pwned ; '",
  '"quoted"',
  '$HOME',
  '*',
  'a b  c',
  '--help',
  '-rf',
  '\\',
  '${IFS}',
  'ünïcødé 日本 🚀',
  '',
  "'\\''",
  "'",
  "''",
  "it's",
  '!!',
  '!$',
  '~',
  '~root',
  '$((6*7))',
  '{a,b}',
  '[a-z]*',
  '<(id)',
  '> out',
  '| cat',
  '&& echo pwned',
  '# comment',
  '%s %s %n',
  '\\x41\\n',
  "$'\\x41'",
  'x'.repeat(4096),
];

describe('shell quoting: a value is one literal word', () => {
  test.each(hostile.map((v) => [JSON.stringify(v).slice(0, 60), v] as const))('%s', (_shown, value) => {
    // `--` before the format: a value starting with "-" is refused where a command could take it for an option.
    const script = renderScript("printf -- '%s\\n' {{ v }}", { v: value });
    expect(bash(script)).toBe(`${value}\n`);
  });

  test.each(hostile.map((v) => [JSON.stringify(v).slice(0, 60), v] as const))(
    '%s, glued to other text',
    (_shown, value) => {
      const script = renderScript("printf '%s\\n' pre-{{ v }}-post", { v: value });
      expect(bash(script)).toBe(`pre-${value}-post\n`);
    },
  );

  test.each(['\u202eevil', 'a\u2066b'])(
    'a direction override (%j) is refused: it makes a script read differently than it runs',
    (value) => {
      expect(() => shellQuote(value)).toThrow(expect.objectContaining({ code: 'TEMPLATE_UNSAFE' }));
    },
  );

  test('two placeholders side by side make one word', () => {
    expect(bash(renderScript("printf '<%s>\\n' {{ a }}{{ b }}", { a: 'x y', b: '$(id)' }))).toBe('<x y$(id)>\n');
  });

  // Regression (security): a string assigned to a variable once reached bash arithmetic through it
  // (`x={{ v }}; echo $((x))` with a[$(id)] ran id). Assignments now take integers only, as bare digits.
  test('a string assigned to a variable is refused', () => {
    const error = caught(() => renderScript('x={{ v }}; echo $((x))', { v: 'a[$(id)]' }));
    expect(error).toMatchObject({ code: 'TEMPLATE_UNSAFE' });
    expect(error.message).toMatchInlineSnapshot(
      `"{{ v }} at line 1 stands in arithmetic or an assignment, where only an integer may go, but got "a[$(id)]"; pass a whole number"`,
    );
  });

  test('an integer value still works in shell arithmetic through a variable', () => {
    expect(bash(renderScript("keep={{ keep }}; printf '%s\\n' $((keep + 1))", { keep: 5 }))).toBe('6\n');
  });

  test.each([
    [5, "'5'"],
    [-1, "'-1'"],
    [true, "'true'"],
    [false, "'false'"],
    ['', "''"],
    ["it's", "'it'\\''s'"],
  ])('shellQuote(%j) is %s', (value, quoted) => {
    expect(shellQuote(value)).toBe(quoted);
  });

  test('a value that went through parseParams renders the same way', () => {
    const runbook = parseRunbook({
      name: 'echo-note',
      version: 1,
      description: 'Echo a note.',
      roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
      parameters: { note: { type: 'string' } },
      targets: { tags: { Role: 'web' } },
      steps: [{ name: 'echo', script: "printf '%s\\n' {{ note }}" }],
    });
    const note = "' ; echo pwned ; '$(id)`id`";
    const script = renderScript(runbook.steps[0]!.script, parseParams(runbook, { note }));
    expect(bash(script)).toBe(`${note}\n`);
  });
});

describe('values with control characters are refused', () => {
  const unsafe = [
    ['newline', 'a\nb'],
    ['trailing newline', 'a\n'],
    ['carriage return', 'a\rb'],
    ['NUL', 'a\u0000b'],
    ['tab', 'a\tb'],
    ['escape', '\u001b[2J'],
    ['DEL', '\u007f'],
    ['U+2028', 'a\u2028b'],
    ['U+2029', 'a\u2029b'],
  ] as const;

  test.each(unsafe)('shellQuote refuses a %s', (_name, value) => {
    const error = caught(() => shellQuote(value));
    expect(error).toMatchObject({ code: 'TEMPLATE_UNSAFE' });
    expect(error.message).toMatchInlineSnapshot(
      `"a parameter value contains a control character, which is never allowed"`,
    );
  });

  test.each(unsafe)('renderScript refuses a %s', (_name, value) => {
    expect(caught(() => renderScript('echo {{ v }}', { v: value }))).toMatchObject({ code: 'TEMPLATE_UNSAFE' });
  });

  test.each(unsafe)('parseParams refuses a %s', (_name, value) => {
    const runbook = parseRunbook({
      name: 'echo-note',
      version: 1,
      description: 'Echo a note.',
      roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
      parameters: { note: { type: 'string' } },
      targets: { tags: { Role: 'web' } },
      steps: [{ name: 'echo', script: 'echo {{ note }}' }],
    });
    expect(caught(() => parseParams(runbook, { note: value }))).toMatchObject({ code: 'PARAMS_INVALID' });
  });
});

describe('renderScript', () => {
  test.each(['{{v}}', '{{ v }}', '{{   v   }}'])('the placeholder %s renders', (placeholder) => {
    expect(renderScript(`echo ${placeholder}`, { v: 'x' })).toBe("echo 'x'");
  });

  test('every occurrence is replaced', () => {
    expect(renderScript('echo a={{ v }} b={{ v }}', { v: 'x' })).toBe("echo a='x' b='x'");
  });

  test('text outside placeholders is kept byte for byte', () => {
    const script = 'set -euo pipefail\n# {not a placeholder} {{ }}\necho "$HOME" {{ v }}\n';
    expect(renderScript(script, { v: 'x' })).toBe(
      'set -euo pipefail\n# {not a placeholder} {{ }}\necho "$HOME" \'x\'\n',
    );
  });

  test.each([
    ['mechanic_execution_id', 'exec-01J9Z'],
    ['mechanic_step', 'restart'],
  ])('the built-in {{ %s }} renders', (name, value) => {
    expect(bash(renderScript(`printf '%s\\n' {{ ${name} }}`, { [name]: value }))).toBe(`${value}\n`);
  });

  test('a placeholder without a value is refused, naming it', () => {
    const error = caught(() => renderScript('echo {{ v }} {{ w }}', { v: 'x' }));
    expect(error).toMatchObject({ code: 'TEMPLATE_UNSAFE' });
    expect(error.message).toMatchInlineSnapshot(`"the script uses {{ w }}, but no value was given for it"`);
  });
});

describe('placeholders inside quotes (known injection)', () => {
  // Regression (security): a value is one single-quoted word, which is literal only where bash reads a
  // plain word. Inside double quotes, single quotes or an unquoted heredoc the quotes are data, and
  // `$(…)` and backticks in the value once ran. Placeholders there are now refused (shell-placement.ts).
  const contexts = [
    ['double quotes', 'printf \'%s\\n\' "v={{ v }}"', 'v=$(printf pwned)`printf pwned`'],
    ['single quotes', "printf '%s\\n' 'v={{ v }}'", 'v=$(printf pwned)`printf pwned`'],
    [
      'an unquoted heredoc',
      'while read -r l; do printf \'%s\\n\' "$l"; done <<EOF\nv={{ v }}\nEOF',
      'v=$(printf pwned)`printf pwned`',
    ],
  ] as const;

  test.each(contexts)('a value in %s is refused or stays literal', (_context, script, literal) => {
    let outcome: string;
    try {
      outcome = bash(renderScript(script, { v: '$(printf pwned)`printf pwned`' }));
    } catch (e) {
      outcome = (e as { code?: string }).code === 'TEMPLATE_UNSAFE' ? 'refused' : String(e);
    }
    expect(['refused', `${literal}\n`]).toContain(outcome);
  });
});
