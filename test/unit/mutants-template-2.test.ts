/**
 * Survivors of the whole Stryker run in src/core/template.ts (docs/mutation-survivors.md, lines of
 * 912442c): the code of a refused secret name (42), a secret in a comment (87), a secret first used
 * in option position (89), the newlines between and after the reads (98), a secret that is not a
 * text (123–126), a secret in a refused place and in arithmetic (131–134), the list-placement
 * sentence (166), a list in a comment (183), and a list in arithmetic (152:20 → `true`, 153:11 →
 * `false`): docs/mutation.md called those two equivalent, but `['12']` prints as `12`.
 *
 * Left as equivalent:
 * - 88:30 `kind === 'argument'` → `true`: only an argument gets there (a comment is skipped a line
 *   up; a refused or arithmetic secret has already thrown in renderSecret).
 * - 101:12 `eol === -1` → `false`, 101:20 `-1` → `+1`, 101:25 `${out}\n${prelude}` → `''`: a script
 *   starting with `#!` and without a newline is one comment, so it reads no secret and returns
 *   before; with a read, `eol` is the first newline, never -1 nor 1 (`#!` takes 0 and 1).
 * - 152:20 `&&` → `||` and `typeof value === 'number'` → `true`: a number that is not a safe
 *   integer prints as `1.5`, `NaN`, `1e+21` or 16 digits, which INTEGER refuses with the same
 *   sentence; and `Number.isSafeInteger` is false for anything but a number.
 */
import { describe, expect, test } from 'vitest';
import { renderScript, secretFetchLine } from '../../src/core/template.ts';
import type { ParamValue } from '../../src/core/params.ts';

const SECRET = { secrets: new Set(['s', 't']) };
const read = (name: string, param = 's') =>
  `__mechanic_secret_${param}=$(aws ssm get-parameter --name '${name}' --with-decryption --query Parameter.Value --output text) || ` +
  `{ echo 'mechanic: cannot read the SSM parameter ${name} with this instance'\\''s role; see the error above' >&2; exit 1; }`;
const optionCheck = (name: string) =>
  `case "\${__mechanic_secret_s}" in -*) echo 'mechanic: the SSM parameter ${name} starts with "-", where a command could read it as an option; put -- before it in the script' >&2; exit 1 ;; esac`;
const refusal = (name: string, why: string, rule: string) =>
  `{{ ${name} }} at line 1 stands ${why} (rule ${rule}); move it to a plain argument word`;

/** What a call gives: its text, or `code: message` of what it throws. */
function outcome(fn: () => string): string {
  try {
    return fn();
  } catch (e) {
    return `${(e as { code?: string }).code}: ${(e as Error).message}`;
  }
}

describe('renderScript and secretFetchLine: the survivors of the whole run', () => {
  test('each script renders, or is refused, exactly as written here', () => {
    const cases: [string, string, Record<string, ParamValue>, boolean, string][] = [
      // 42: a secret's parameter name AWS would refuse is a template refusal.
      [
        'a bad parameter name',
        'echo {{ s }}',
        { s: 'bad name!' },
        true,
        'TEMPLATE_UNSAFE: the secret parameter "s" must be an SSM Parameter Store name (letters, digits and _.-/, at most 2048 characters) like /prod/db/password',
      ],
      // 87: a secret only in a comment is never run, so it is not read either.
      ['a secret only in a comment', 'echo hi # {{ s }}', { s: '/a/b' }, true, "echo hi # '/a/b'"],
      // 89, 98: a use in option position, then a plain one: the option check stays; the reads end with a newline.
      [
        'option position first',
        'find . {{ s }}\necho -- {{ s }}',
        { s: '/a/b' },
        true,
        `${read('/a/b')}\n${optionCheck('/a/b')}\nfind . "\${__mechanic_secret_s}"\necho -- "\${__mechanic_secret_s}"`,
      ],
      ['a plain use only', 'echo -- {{ s }}', { s: '/a' }, true, `${read('/a')}\necho -- "\${__mechanic_secret_s}"`],
      [
        'two secrets, one read a line',
        'echo -- {{ s }} {{ t }}',
        { s: '/a', t: '/b' },
        true,
        `${read('/a')}\n${read('/b', 't')}\necho -- "\${__mechanic_secret_s}" "\${__mechanic_secret_t}"`,
      ],
      [
        'after a #! line',
        '#!/bin/bash\necho -- {{ s }}',
        { s: '/a' },
        true,
        `#!/bin/bash\n${read('/a')}\necho -- "\${__mechanic_secret_s}"`,
      ],
      // 123–126: a secret's value must be a parameter name (5 would pass as a name).
      [
        'a number as a secret',
        'echo {{ s }}',
        { s: 5 },
        true,
        'TEMPLATE_UNSAFE: {{ s }} is a secret reference, but its value is not a parameter name',
      ],
      // 131: a refused place gives its own rule, not the secret's.
      [
        'a secret after eval',
        'eval {{ s }}',
        { s: '/a' },
        true,
        `TEMPLATE_UNSAFE: ${refusal('s', 'as an argument of eval, which runs its arguments as shell code', 'evaluating-command')}`,
      ],
      // 133–134: a secret in arithmetic.
      [
        'a secret in arithmetic',
        'echo $(( {{ s }} + 1 ))',
        { s: '/a' },
        true,
        `TEMPLATE_UNSAFE: ${refusal('s', 'in arithmetic or an assignment, where a secret may not go', 'secret-placement')}`,
      ],
      // 152–153: a list of one integer is no integer, though it prints as one.
      [
        'a list in arithmetic',
        'echo $(( {{ n }} + 1 ))',
        { n: ['12'] },
        false,
        'TEMPLATE_UNSAFE: {{ n }} at line 1 stands in arithmetic or an assignment, where only an integer may go, but got ["12"]; pass a whole number',
      ],
      [
        'a list of a number in arithmetic',
        'echo $(( {{ n }} + 1 ))',
        { n: [12] },
        false,
        'TEMPLATE_UNSAFE: {{ n }} at line 1 stands in arithmetic or an assignment, where only an integer may go, but got [12]; pass a whole number',
      ],
      ['an integer in arithmetic', 'echo $(( {{ n }} + 1 ))', { n: 12 }, false, 'echo $(( 12 + 1 ))'],
      // 166: a list glued to text.
      [
        'a glued list',
        'echo x{{ l }}',
        { l: ['a', 'b'] },
        false,
        `TEMPLATE_UNSAFE: ${refusal('l', 'glued to other text or inside [ … ], where a list, which becomes several words, would change what the command reads', 'list-placement')}`,
      ],
      // 183: a list in a comment is its items, one quoted word each.
      ['a list in a comment', 'echo hi # {{ l }}', { l: ['a', "b'c"] }, false, "echo hi # 'a' 'b'\\''c'"],
    ];
    const wrong = cases
      .map(([what, script, values, secret, want]) => ({
        what,
        got: outcome(() => renderScript(script, values, secret ? SECRET : {})),
        want,
      }))
      .filter((c) => c.got !== c.want);
    expect(wrong).toEqual([]);
  });

  test('secretFetchLine refuses a bad name with the template code', () => {
    expect(outcome(() => secretFetchLine('p', '/a//b'))).toBe(
      'TEMPLATE_UNSAFE: the secret parameter "p" must not have an empty level (a "/" at the end or "//")',
    );
  });
});
