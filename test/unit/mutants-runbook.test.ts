/**
 * Tests for the mutants Stryker found alive in src/core/runbook.ts (docs/mutation.md): the rules
 * across a runbook that no unit test reached. Each runbook is parsed inside its test.
 */
import { describe, expect, test } from 'vitest';
import { parseRunbook } from '../../src/core/runbook.ts';

function refusal(overrides: Record<string, unknown>): string {
  try {
    parseRunbook({
      name: 'tune',
      version: 1,
      description: 'Tune the service.',
      roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
      targets: { tags: { Role: 'api' } },
      steps: [{ name: 's', script: 'echo hi' }],
      ...overrides,
    });
  } catch (e) {
    expect(e).toMatchObject({ code: 'RUNBOOK_INVALID' });
    return (e as Error).message;
  }
  return 'accepted';
}

const refused = (line: string) => `runbook is not a valid runbook:\n✖ ${line}`;

describe('parameters', () => {
  test('an integer whose min is greater than its max is refused; equal bounds are accepted', () => {
    expect(refusal({ parameters: { n: { type: 'integer', min: 2, max: 1 } } })).toBe(
      refused('parameter "n" has min greater than max'),
    );
    expect(refusal({ parameters: { n: { type: 'integer', min: 2, max: 2 } } })).toBe('accepted');
    expect(refusal({ parameters: { n: { type: 'integer', min: 2 } } })).toBe('accepted');
    expect(refusal({ parameters: { n: { type: 'integer', max: -2 } } })).toBe('accepted');
  });

  test('an enum that lists a value twice is refused', () => {
    expect(refusal({ parameters: { m: { type: 'enum', values: ['a', 'a'] } } })).toBe(
      refused('parameter "m" lists a value twice'),
    );
    expect(refusal({ parameters: { m: { type: 'enum', values: ['a', 'b'] } } })).toBe('accepted');
  });
});

describe('step scripts', () => {
  test('a "{{" that is not a placeholder is refused', () => {
    expect(refusal({ steps: [{ name: 's', script: 'echo {{ x' }] })).toBe(
      refused('step "s" has a "{{" that is not a placeholder like {{ name }}\n  → at steps'),
    );
  });

  test('a script bash cannot parse is refused once, with where it stops', () => {
    expect(
      refusal({ parameters: { x: { type: 'string' } }, steps: [{ name: 's', script: 'echo "open {{ x }}' }] }),
    ).toBe(
      refused(
        `step "s", line 1, column 6: bash's grammar cannot read the script here, so where its placeholders go cannot be proven safe; fix the syntax (rule unparsable-script)\n  → at steps`,
      ),
    );
  });

  test('a string in arithmetic is refused; an integer there is accepted', () => {
    expect(
      refusal({ parameters: { n: { type: 'string' } }, steps: [{ name: 's', script: 'x=$(( {{ n }} + 1 ))' }] }),
    ).toBe(
      refused(
        'step "s", line 1: {{ n }} stands in arithmetic or an assignment, where bash evaluates a value such as a[$(cmd)] as code (rule integer-only); only an integer parameter may stand there, so declare it type: integer or pass it as a plain argument\n  → at steps',
      ),
    );
    expect(
      refusal({ parameters: { n: { type: 'integer' } }, steps: [{ name: 's', script: 'x=$(( {{ n }} + 1 ))' }] }),
    ).toBe('accepted');
  });

  test('a placeholder where bash runs it as code is refused, naming the rule', () => {
    expect(refusal({ parameters: { n: { type: 'string' } }, steps: [{ name: 's', script: 'eval {{ n }}' }] })).toBe(
      refused(
        'step "s", line 1: {{ n }} stands as an argument of eval, which runs its arguments as shell code (rule evaluating-command); put it where a plain argument goes, e.g. echo {{ n }}\n  → at steps',
      ),
    );
  });

  test('a placeholder in a comment or as an argument is accepted', () => {
    const parameters = { n: { type: 'string' } };
    expect(refusal({ parameters, steps: [{ name: 's', script: 'echo hi # {{ n }}' }] })).toBe('accepted');
    expect(refusal({ parameters, steps: [{ name: 's', script: 'echo {{ n }}' }] })).toBe('accepted');
  });
});
