/**
 * The audit vocabulary compiled into plain predicates, for `audit verify`'s walk over every record.
 *
 * zod's safeParse builds a parsed copy and an issue list for each event; over a million records
 * that was most of the walk's time. Here each event type's envelope schema (its zod definition,
 * audit-events.ts) is compiled once into a function that allocates nothing and answers only "fits,
 * for sure": true only when the schema accepts the event. False means "not shown to fit here", and
 * the caller asks the schema itself (checkAuditEvent), which decides and names the problem. So the
 * vocabulary stays defined in one place, a predicate can be stricter than its schema but never
 * laxer, and a zod feature this compiler does not know leaves that type uncompiled (the schema
 * answers every time) instead of guessing. test/unit/audit-verify-vocabulary.test.ts pins both on
 * the vocabulary; compileAuditSchema is the compiler itself, which
 * test/unit/mutants-audit-event-check.test.ts pins on synthetic schemas for the features the
 * vocabulary does not use today.
 *
 * Workflow-safe: zod and types only, like the vocabulary.
 */
import {
  AUDIT_CUSTOM_CHECK_SCHEMAS,
  AUDIT_EVENT_TYPES,
  auditEventSchemaOf,
  type AuditEventType,
} from './audit-events.ts';

type Predicate = (value: unknown) => boolean;

/** The part of a zod 4 schema this reads: its definition (zod's documented `_zod.def`). */
interface ZodNode {
  readonly _zod: { readonly def: ZodDef; readonly values?: ReadonlySet<unknown> };
}
interface ZodDef {
  readonly type: string;
  readonly checks?: readonly ZodNode[];
  readonly [key: string]: unknown;
}

/** A schema node or check this compiler does not know: its type is left to zod. */
class Unsupported extends Error {}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** String formats whose zod check is exactly a pattern test (zod's $ZodCheckStringFormat). */
const PATTERN_FORMATS = new Set(['datetime', 'regex']);

function patternOf(def: ZodDef): RegExp {
  const pattern = def['pattern'];
  if (!(pattern instanceof RegExp) || typeof def['format'] !== 'string' || !PATTERN_FORMATS.has(def['format'])) {
    throw new Unsupported(`string format ${String(def['format'])}`);
  }
  return pattern;
}

/** One check of a schema's `checks` (or a format schema's own check). */
function compileCheck(def: ZodDef): Predicate {
  switch (def['check']) {
    case 'min_length': {
      const min = def['minimum'] as number;
      return (v) => (v as { length: number }).length >= min;
    }
    case 'max_length': {
      const max = def['maximum'] as number;
      return (v) => (v as { length: number }).length <= max;
    }
    case 'greater_than': {
      const min = def['value'];
      if (typeof min !== 'number') throw new Unsupported('greater_than on a non-number');
      return def['inclusive'] === true ? (v) => (v as number) >= min : (v) => (v as number) > min;
    }
    case 'less_than': {
      const max = def['value'];
      if (typeof max !== 'number') throw new Unsupported('less_than on a non-number');
      return def['inclusive'] === true ? (v) => (v as number) <= max : (v) => (v as number) < max;
    }
    case 'number_format':
      if (def['format'] !== 'safeint') throw new Unsupported(`number format ${String(def['format'])}`);
      return (v) => Number.isSafeInteger(v);
    case 'string_format': {
      const pattern = patternOf(def);
      return (v) => {
        pattern.lastIndex = 0;
        return pattern.test(v as string);
      };
    }
    default:
      throw new Unsupported(`check ${String(def['check'])}`);
  }
}

function all(base: Predicate, checks: readonly Predicate[]): Predicate {
  if (checks.length === 0) return base;
  return (v) => {
    if (!base(v)) return false;
    for (const check of checks) if (!check(v)) return false;
    return true;
  };
}

function compileObject(def: ZodDef): Predicate {
  const shape = def['shape'] as Record<string, ZodNode>;
  const keys = Object.keys(shape);
  if (Object.getOwnPropertySymbols(shape).length > 0 || keys.includes('__proto__')) {
    throw new Unsupported('an object shape with symbol or __proto__ keys');
  }
  const fields = keys.map((key) => ({
    key,
    check: compile(shape[key]!),
    // zod: an optional key may be absent; a value read as undefined is what absence looks like here.
    optional: shape[key]!._zod.def.type === 'optional',
  }));
  const catchall = (def['catchall'] as ZodNode | undefined)?._zod.def.type;
  // No catchall is zod's "strip" (unknown keys allowed and dropped); 'unknown' is a loose object.
  const strict = catchall === 'never';
  if (catchall !== undefined && catchall !== 'never' && catchall !== 'unknown') throw new Unsupported('a catchall');
  const known = new Set(keys);
  return (v) => {
    if (!isObject(v)) return false;
    for (const f of fields) {
      const value = v[f.key];
      if (f.optional && value === undefined) continue;
      if (!f.check(value)) return false;
    }
    for (const key in v) {
      if (known.has(key)) continue;
      // Stricter than zod, which skips an undeclared __proto__ in a loose object: zod decides those.
      if (strict || key === '__proto__') return false;
    }
    return true;
  };
}

function compileBase(node: ZodNode): Predicate {
  const def = node._zod.def;
  switch (def.type) {
    case 'string':
      return def['check'] === 'string_format'
        ? all((v) => typeof v === 'string', [compileCheck(def)])
        : (v) => typeof v === 'string';
    case 'number':
      return def['check'] === 'number_format'
        ? all((v) => typeof v === 'number' && Number.isFinite(v), [compileCheck(def)])
        : (v) => typeof v === 'number' && Number.isFinite(v);
    case 'boolean':
      return (v) => typeof v === 'boolean';
    case 'unknown':
    case 'any':
      return () => true;
    case 'never':
      return () => false;
    case 'null':
      return (v) => v === null;
    case 'enum':
    case 'literal': {
      // The values zod itself compares against (an enum's, without a numeric enum's reverse keys).
      const values = node._zod.values;
      if (!(values instanceof Set)) throw new Unsupported(`a ${def.type} without values`);
      return (v) => values.has(v);
    }
    case 'array': {
      const element = compile(def['element'] as ZodNode);
      return (v) => {
        if (!Array.isArray(v)) return false;
        for (const item of v) if (!element(item)) return false;
        return true;
      };
    }
    case 'optional': {
      const inner = compile(def['innerType'] as ZodNode);
      return (v) => v === undefined || inner(v);
    }
    case 'nullable': {
      const inner = compile(def['innerType'] as ZodNode);
      return (v) => v === null || inner(v);
    }
    case 'readonly':
      return compile(def['innerType'] as ZodNode);
    case 'union': {
      if (def['inclusive'] === false) throw new Unsupported('an exclusive union');
      const options = (def['options'] as readonly ZodNode[]).map(compile);
      return (v) => {
        for (const option of options) if (option(v)) return true;
        return false;
      };
    }
    case 'record': {
      const keyDef = (def['keyType'] as ZodNode)._zod.def;
      if (keyDef.type !== 'string' || (keyDef.checks?.length ?? 0) > 0 || keyDef['check'] !== undefined) {
        throw new Unsupported('a record whose keys are not plain strings');
      }
      const value = compile(def['valueType'] as ZodNode);
      return (v) => {
        if (!isObject(v) || Object.getPrototypeOf(v) !== Object.prototype) return false;
        for (const key of Object.keys(v)) {
          if (key === '__proto__' || !value(v[key])) return false;
        }
        return true;
      };
    }
    case 'object':
      return compileObject(def);
    case 'custom': {
      const fn = def['fn'] as (v: unknown) => unknown;
      // A check that is a schema's safeParse (the plan's shape): compiled like any schema.
      const schema = AUDIT_CUSTOM_CHECK_SCHEMAS.get(fn);
      if (schema) return compile(schema as unknown as ZodNode);
      return (v) => {
        const r = fn(v);
        return !(r instanceof Promise) && Boolean(r);
      };
    }
    default:
      throw new Unsupported(`a ${def.type} schema`);
  }
}

/** Types whose own test runs before their checks and guarantees what the checks read. */
const CHECKED_TYPES = new Set(['string', 'number', 'array']);

function compile(node: ZodNode): Predicate {
  const def = node._zod.def;
  // zod skips a length check on undefined or null (its `when`); here it would read their length.
  if (def.checks?.length && !CHECKED_TYPES.has(def.type)) throw new Unsupported(`checks on a ${def.type}`);
  const checks = (def.checks ?? []).map((c) => compileCheck(c._zod.def));
  return all(compileBase(node), checks);
}

/**
 * A zod 4 schema compiled into a predicate that is true only when the schema accepts the value, or
 * undefined when the schema uses something this compiler does not know (zod must decide).
 */
export function compileAuditSchema(schema: unknown): Predicate | undefined {
  try {
    return compile(schema as ZodNode);
  } catch (e) {
    if (e instanceof Unsupported) return undefined;
    throw e;
  }
}

const COMPILED = new Map<string, Predicate>();
/** Event types whose schema uses something this compiler does not know: zod checks them every time. */
export const UNCOMPILED_AUDIT_EVENT_TYPES: readonly AuditEventType[] = AUDIT_EVENT_TYPES.filter((type) => {
  const check = compileAuditSchema(auditEventSchemaOf(type));
  if (check) COMPILED.set(type, check);
  return check === undefined;
});

/**
 * True only when `event` (the six hashed fields of a record, as read back) fits its type's schema
 * for certain. False is "not shown here": ask checkAuditEvent/readAuditEvent, which decides and
 * names the problem.
 */
export function fitsAuditVocabulary(event: unknown): boolean {
  const type = (event as { type?: unknown } | null)?.type;
  if (typeof type !== 'string') return false;
  const check = COMPILED.get(type);
  return check !== undefined && check(event);
}
