/**
 * Kills the survivors of src/core/audit-event-check.ts in the whole mutation run of 56f4ca8
 * (docs/mutation.md). The audit vocabulary reaches only part of the schema compiler at module load,
 * so 69 mutants had no coverage: less_than, any/never/null, number formats, exclusive unions,
 * records keyed by anything but plain strings, custom checks that are not a schema, unknown checks,
 * formats and schema types, and the catch that turns an unknown feature into "leave it to zod".
 * compileAuditSchema (the compiler itself) is judged here against synthetic zod 4 schemas: for
 * every value, true only when zod accepts; for the features it knows, true whenever zod accepts
 * (except an own `__proto__` key, which it leaves to zod, and a record
 * object without a prototype, which JSON never makes); undefined for what it does not know.
 *
 * Killed: 44:113 BlockStatement; 59:21 EqualityOperator (a string exactly at its maximum);
 * 66:5, 66:23, 67:23, 68:11 (×3), 68:26, 69:14 (×3), 69:18, 69:35, 69:42, 69:49 (×4), 69:72,
 * 69:79 (×4) (less_than, at and around the bound, and on a non-number); 81:5 (an unknown check);
 * 98:85 (a shape with a symbol key); 116:11 (an absent optional field whose schema has checks is
 * refused by compile now, see below, so this one is equivalent — listed there); 122:21, 122:29 and
 * 190:15, 190:23 (an own __proto__ key is left to zod: zod's parsed copy, not the raw object, is
 * what audit verify hands on); 133:22 (an array holding a datetime string); 137:15, 137:22 (false,
 * !==), 137:35, 137:67 (z.int()); 142:5, 143:14, 143:20, 144:5, 145:14, 145:20, 147:14,
 * 147:21 (×3); 138:18 || (it would take NaN); 165:21 (undefined in an array of optionals); 183:106; 188:29 (a Date or a class
 * instance as a record); 202:21, 204:16 (×4) (a custom check); 207:5 (an unknown type nested in
 * an array); 223:15, 224:9 (×2), 224:42 (the catch, now in compileAuditSchema: an unknown feature
 * is undefined, a malformed schema still throws).
 *
 * Equivalent: every Unsupported message (45:27, 45:55, 63:58, 68:58, 72:62, 72:90, 82:29, 82:49,
 * 99:27, 110:103, 152:59, 174:61, 184:31, 208:29) — compileAuditSchema catches it and answers
 * undefined, the text is never read; 137:22 (→ true, ||) and 138:18 (typeof → true) —
 * Number.isFinite is already false for anything that is not a number (and 137's safe-integer check
 * implies both); 146:5 (case 'null' emptied) — z.null() carries values {null}, so the enum/literal
 * case it falls into answers the same;
 * 116:11 (→ false) — an optional field's predicate is `v === undefined || …` since compile refuses
 * checks on an optional, so skipping it is only a shortcut; 236:7 (→ false) — COMPILED's keys are
 * strings and Map.get never matches a non-string, so the answer is false either way.
 *
 * Exporting compileAuditSchema brought mutants into reach that were load-time only before; a
 * Stryker run over the file after these tests (2 December 2026) left, besides the lines above
 * (shifted by three), these, by the current line numbers, all equivalent: 47:7 (→ false, &&) and
 * 47:39 (→ false) — every format of PATTERN_FORMATS carries its RegExp in zod 4, and a string
 * without a format is refused by the third test (`has(undefined)` is false); 90:7 (→ false) —
 * `all` with no checks answers what its base answers; 108:15 (→ false) and 108:45 — an absent
 * optional field then goes to its own compiled optional schema, which accepts undefined;
 * 155:11 (→ false) — zod 4's enums and literals always carry their `values` Set; 204:11 (→ false)
 * — the plan's custom check then runs its own safeParse, the same answer; 221:81 — an Unsupported
 * message, never read.
 */
import { describe, expect, test } from 'vitest';
import { z } from 'zod';
import { compileAuditSchema, fitsAuditVocabulary } from '../../src/core/audit-event-check.ts';

class Thing {
  a = 'x';
}

/** Values of every JSON kind and some that JSON never makes. */
const VALUES: unknown[] = [
  undefined,
  null,
  true,
  false,
  0,
  1,
  2,
  2.5,
  3,
  3.5,
  4,
  -1,
  2 ** 53,
  NaN,
  Infinity,
  '',
  'a',
  'ab',
  'abc',
  'abcd',
  '2026-01-01T00:00:00Z',
  'x2026-01-01T00:00:00Z',
  [],
  ['a'],
  ['2026-01-01T00:00:00Z'],
  [undefined],
  [null],
  [1, 2],
  ['a', 1],
  {},
  { a: 'x' },
  { a: 'x', b: 1 },
  { a: 1 },
  { a: undefined },
  { b: 'y' },
  Object.assign(Object.create(null) as object, { a: 'x' }),
  new Date(0),
  new Thing(),
];

/** Schemas built only of what the compiler knows: it must answer exactly as zod does. */
const KNOWN: [string, z.ZodType][] = [
  ['string', z.string()],
  ['string max 3', z.string().max(3)],
  ['string min 2', z.string().min(2)],
  ['datetime', z.iso.datetime()],
  ['string regex', z.string().regex(/^a+$/)],
  ['number', z.number()],
  ['int', z.int()],
  ['number > 2', z.number().gt(2)],
  ['number >= 2', z.number().gte(2)],
  ['number < 3', z.number().lt(3)],
  ['number <= 3', z.number().lte(3)],
  ['boolean', z.boolean()],
  ['unknown', z.unknown()],
  ['any', z.any()],
  ['never', z.never()],
  ['null', z.null()],
  ['enum', z.enum(['a', 'ab'])],
  ['literal', z.literal(3)],
  ['array', z.array(z.string())],
  ['array max 1', z.array(z.unknown()).max(1)],
  ['array of optionals', z.array(z.string().optional())],
  ['optional', z.string().optional()],
  ['nullable', z.number().nullable()],
  ['readonly', z.string().readonly()],
  ['union', z.union([z.string().max(1), z.number().lt(3)])],
  ['record', z.record(z.string(), z.string())],
  ['object', z.object({ a: z.string() })],
  ['object, optional field', z.object({ a: z.string().optional() })],
  ['strict object', z.strictObject({ a: z.string() })],
  ['loose object', z.looseObject({ a: z.string() })],
  ['custom', z.custom((v) => v === 'a' || v === 3)],
];

/** Schemas using something the compiler does not know: left to zod. */
const UNKNOWN: [string, z.ZodType][] = [
  ['email format', z.email()],
  ['string with an email check', z.string().check(z.email())],
  ['bigint', z.bigint()],
  ['array of an unknown type', z.array(z.date())],
  ['multiple_of', z.number().multipleOf(2)],
  ['less_than a bigint', z.number().check(z.lt(3n))],
  ['greater_than a bigint', z.number().check(z.gt(3n))],
  ['exclusive union', z.xor([z.string(), z.number()])],
  ['record keyed by an enum', z.record(z.enum(['a']), z.string())],
  ['record keyed by a checked string', z.record(z.string().max(2), z.string())],
  ['shape with a symbol key', z.object({ [Symbol('s')]: z.string() })],
  ['catchall', z.object({ a: z.string() }).catchall(z.string())],
  ['refine', z.string().refine((v) => v.length > 1)],
  [
    'checks on an optional',
    z
      .string()
      .optional()
      .check(z.maxLength(2) as unknown as z.core.$ZodCheck<string | undefined>),
  ],
  ['default', z.string().default('a')],
  ['int32 format', z.int32()],
  ['record keyed by a format', z.record(z.email(), z.string())],
  ['shape with a __proto__ key', z.object(JSON.parse('{"__proto__":1}') as z.ZodRawShape)],
];

const show = (v: unknown) =>
  v instanceof Date || v instanceof Thing
    ? String(v.constructor.name)
    : `${typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === null ? 'null-prototype ' : ''}${JSON.stringify(v) ?? String(v)}`;

describe('compileAuditSchema', () => {
  test('answers as zod does for every value, on every schema of the features it knows', () => {
    const laxer: string[] = [];
    const stricter: string[] = [];
    for (const [name, schema] of KNOWN) {
      const fits = compileAuditSchema(schema);
      expect({ name, compiled: typeof fits }).toEqual({ name, compiled: 'function' });
      for (const value of VALUES) {
        const zod = schema.safeParse(value).success;
        if (fits!(value) !== zod) (zod ? stricter : laxer).push(`${name}: ${show(value)}`);
      }
    }
    expect(laxer).toEqual([]);
    // Stricter only where JSON.parse never goes: a record without Object.prototype, which zod takes.
    expect(stricter).toEqual(['record: null-prototype {"a":"x"}']);
  });

  test('the bounds: a string at its maximum, numbers at and around less_than and greater_than', () => {
    expect(compileAuditSchema(z.string().max(3))!('abc')).toBe(true);
    const lt = compileAuditSchema(z.number().lt(3))!;
    const lte = compileAuditSchema(z.number().lte(3))!;
    expect([2.9, 3, 3.1].map(lt)).toEqual([true, false, false]);
    expect([2.9, 3, 3.1].map(lte)).toEqual([true, true, false]);
    expect([0, 1, 2, 2.5].map(compileAuditSchema(z.int())!)).toEqual([true, true, true, false]);
    expect(compileAuditSchema(z.int())!('1')).toBe(false);
  });

  test('the features it does not know are left to zod', () => {
    for (const [name, schema] of UNKNOWN) {
      expect({ name, compiled: compileAuditSchema(schema) }).toEqual({ name, compiled: undefined });
    }
  });

  test('a custom check: true only for a truthy answer that is not a promise', () => {
    const fits = compileAuditSchema(z.custom((v) => v === 'a'))!;
    expect([fits('a'), fits('b')]).toEqual([true, false]);
    const later = compileAuditSchema(z.custom(() => Promise.resolve(true)))!;
    expect(later('a')).toBe(false);
  });

  test('an own __proto__ key (what JSON.parse makes) is left to zod, which accepts and copies it its own way', () => {
    const cases: [z.ZodType, string][] = [
      [z.looseObject({ a: z.string() }), '{"a":"x","__proto__":{"b":1}}'],
      [z.object({ a: z.string() }), '{"a":"x","__proto__":"y"}'],
      [z.record(z.string(), z.string()), '{"__proto__":"y"}'],
    ];
    for (const [schema, text] of cases) {
      const value: unknown = JSON.parse(text);
      expect(schema.safeParse(value).success).toBe(true);
      expect(compileAuditSchema(schema)!(value)).toBe(false);
    }
  });

  test('a malformed schema is a bug, not an unknown feature: it throws', () => {
    expect(() => compileAuditSchema({ _zod: { def: { type: 'object', shape: null } } })).toThrow(TypeError);
  });
});

describe('fitsAuditVocabulary', () => {
  test('a datetime field holding an array of one datetime string does not fit', () => {
    const at = '2026-01-01T00:00:00.000Z';
    const event = { eventId: 'e', executionId: null, type: 'execution.expired', actor: 'a', at, data: {} };
    expect(fitsAuditVocabulary({ ...event, executionId: 'mx-1' })).toBe(true);
    expect(fitsAuditVocabulary({ ...event, executionId: 'mx-1', at: [at] })).toBe(false);
  });
});
