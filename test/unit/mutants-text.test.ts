/**
 * Tests written to kill the mutants Stryker left alive or uncovered in src/core/text.ts
 * (docs/mutation.md): where quoteForMessage cuts a value, for strings and for anything else, and
 * hasRefusedCharacters, which no test called.
 */
import { describe, expect, test } from 'vitest';
import { hasRefusedCharacters, quoteForMessage } from '../../src/core/text.ts';

describe('quoteForMessage cuts at max characters, not one before', () => {
  test('a string of exactly max characters is quoted whole; one more is cut', () => {
    expect(quoteForMessage('abcde', 5)).toBe('"abcde"');
    expect(quoteForMessage('abcdef', 5)).toBe('"abcde…"');
  });

  test('a value that is not a string is cut by the length of its JSON', () => {
    const value = { k: 'x'.repeat(100) };
    expect(quoteForMessage(value, 20)).toBe(`${JSON.stringify(value).slice(0, 20)}…`);
    expect(quoteForMessage([1, 2, 3], 7)).toBe('[1,2,3]');
    expect(quoteForMessage([1, 2, 3], 6)).toBe('[1,2,3…');
    expect(quoteForMessage(1234567, 7)).toBe('1234567');
    expect(quoteForMessage(12345678, 7)).toBe('1234567…');
  });
});

describe('hasRefusedCharacters', () => {
  test.each([
    ['plain text', false],
    ['tab\there', true],
    ['bidi \u202e override', true],
    ['zero\u200bwidth', true],
    ['', false],
  ])('%j → %s', (value, expected) => {
    expect(hasRefusedCharacters(value)).toBe(expected);
  });
});
