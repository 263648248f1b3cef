/**
 * Tests for the mutants Stryker found alive in src/core/template.ts (docs/mutation.md).
 */
import { describe, expect, test } from 'vitest';
import { renderScript } from '../../src/core/template.ts';

function caught(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a throw, but nothing was thrown');
}

describe('renderScript', () => {
  test('a script bash cannot parse is refused with where it stops, before any value is placed', () => {
    const e = caught(() => renderScript('echo "open', { x: 'v' }));
    expect(e.code).toBe('TEMPLATE_UNSAFE');
    expect(e.message).toBe(
      "the script cannot run as written: at line 1, column 6, bash's grammar cannot read the script here; fix it before it can run",
    );
  });

  test('a value in a comment is placed as one quoted word', () => {
    expect(renderScript('echo hi # {{ x }}', { x: "it's" })).toBe("echo hi # 'it'\\''s'");
  });

  test('a value that could be read as an option is refused with the template code', () => {
    const e = caught(() => renderScript('find . {{ x }}', { x: '-delete' }));
    expect(e.code).toBe('TEMPLATE_UNSAFE');
    expect(e.message).toBe(
      '{{ x }} at line 1 would start with "-" where the command could read it as an option; ' +
        'pass a value that does not start with "-", or put -- before it in the script',
    );
  });
});
