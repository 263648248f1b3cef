import { describe, expect, test } from 'vitest';
import { canonicalJson, digestOf, sha256Hex } from '../../src/core/canonical.ts';

describe('canonicalJson', () => {
  test('key order does not matter', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, 2], c: 'x' } })).toBe(canonicalJson({ a: { c: 'x', d: [1, 2] }, b: 1 }));
  });

  test('keys are sorted at every depth, with no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: 'x' } })).toBe(
      '{"a":{"c":"x","d":[{"y":2,"z":1}]},"b":1}',
    );
  });

  test('keys sort by UTF-16 code unit, capitals first', () => {
    expect(canonicalJson({ b: 1, B: 2, a: 3, _: 4, '10': 5, '9': 6 })).toBe('{"10":5,"9":6,"B":2,"_":4,"a":3,"b":1}');
  });

  test('array order is kept', () => {
    expect(canonicalJson([3, 1, 2])).toBe('[3,1,2]');
  });

  test('a property whose value is undefined is left out, as in JSON', () => {
    expect(canonicalJson({ a: 1, b: undefined })).toBe('{"a":1}');
  });

  test.each([
    [null, 'null'],
    [true, 'true'],
    [false, 'false'],
    [0, '0'],
    [-0, '0'],
    [1.5, '1.5'],
    [1e21, '1e+21'],
    ['', '""'],
    ['a"b\\c\n', '"a\\"b\\\\c\\n"'],
    ['ünï 🚀', '"ünï 🚀"'],
    [[], '[]'],
    [{}, '{}'],
  ])('%j is written as JSON writes it', (value, json) => {
    expect(canonicalJson(value)).toBe(json);
    expect(canonicalJson(value)).toBe(JSON.stringify(value));
  });

  test('an object without a prototype is a plain object', () => {
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { b: 2, a: 1 });
    expect(canonicalJson(bare)).toBe('{"a":1,"b":2}');
  });

  class Point {
    constructor(
      readonly x: number,
      readonly y: number,
    ) {}
  }
  const circular: Record<string, unknown> = { a: 1 };
  circular['self'] = circular;

  test.each<[string, unknown]>([
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['-Infinity in an object', { a: -Infinity }],
    ['undefined at the top', undefined],
    ['undefined in an array', [1, undefined, 3]],

    ['a hole in an array', [1, , 3]],
    ['a function', { f: () => 1 }],
    ['a symbol', { s: Symbol('x') }],
    ['a bigint', { n: 1n }],
    ['a Date', { at: new Date(0) }],
    ['a Map', new Map([['a', 1]])],
    ['a class instance', new Point(1, 2)],
    ['a circular reference', circular],
  ])('refuses %s', (_what, value) => {
    expect(() => canonicalJson(value)).toThrow(/not JSON-safe/);
  });

  test('the refusal says where the bad value is', () => {
    expect(() => canonicalJson({ plan: { steps: [{ timeout: NaN }] } })).toThrowErrorMatchingInlineSnapshot(
      `[NonJsonValueError: value at $.plan.steps[0].timeout is not JSON-safe: NaN]`,
    );
  });
});

describe('digests', () => {
  test('sha256Hex matches the standard test vector', () => {
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  test('digestOf is the sha256 of the canonical JSON', () => {
    expect(digestOf({ b: 1, a: 2 })).toBe(sha256Hex('{"a":2,"b":1}'));
  });

  test('digestOf does not depend on key order', () => {
    expect(digestOf({ b: 1, a: 2 })).toBe(digestOf({ a: 2, b: 1 }));
  });

  test('digestOf changes with any value', () => {
    expect(digestOf({ a: 1, b: [1, 2] })).not.toBe(digestOf({ a: 1, b: [2, 1] }));
  });
});
