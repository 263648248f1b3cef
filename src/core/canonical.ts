import { createHash } from 'node:crypto';

export class NonJsonValueError extends Error {
  constructor(path: string, what: string) {
    super(`value at ${path} is not JSON-safe: ${what}`);
    this.name = 'NonJsonValueError';
  }
}

/**
 * Deterministic JSON: object keys sorted by UTF-16 code unit, no whitespace, numbers and strings as
 * JSON.stringify writes them. Hashes are taken over this text, so anything that JSON would silently
 * change (NaN → null, Date → string, undefined in an array → null, a class instance → its fields)
 * is refused instead: a value must survive the round trip through the database unchanged or the
 * chain would not re-verify. Object properties whose value is undefined are omitted, as in JSON.
 */
export function canonicalJson(value: unknown): string {
  return encode(value, '$', []);
}

function encode(value: unknown, path: string, ancestors: object[]): string {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new NonJsonValueError(path, String(value));
      return JSON.stringify(value);
    case 'object': {
      if (value === null) return 'null';
      if (ancestors.includes(value)) throw new NonJsonValueError(path, 'circular reference');
      const inner = [...ancestors, value];
      if (Array.isArray(value)) {
        const parts: string[] = [];
        for (let i = 0; i < value.length; i++) {
          // Holes and undefined would become null in JSON: refuse rather than change the value.
          if (!(i in value) || value[i] === undefined) throw new NonJsonValueError(`${path}[${i}]`, 'undefined');
          parts.push(encode(value[i], `${path}[${i}]`, inner));
        }
        return `[${parts.join(',')}]`;
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new NonJsonValueError(path, `instance of ${value.constructor?.name ?? 'a class'}`);
      }
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record).sort();
      const parts: string[] = [];
      for (const key of keys) {
        const v = record[key];
        if (v === undefined) continue;
        parts.push(`${JSON.stringify(key)}:${encode(v, `${path}.${key}`, inner)}`);
      }
      return `{${parts.join(',')}}`;
    }
    default:
      // undefined, function, symbol, bigint
      throw new NonJsonValueError(path, typeof value);
  }
}

/**
 * Whether `text` is exactly canonicalJson(`parsed`), where `parsed` is JSON.parse(`text`): the
 * question `audit verify` asks of every stored record. Cheap in the usual case — the native
 * JSON.stringify writes the same text (same escapes, numbers, no whitespace, no duplicate keys)
 * and every object's keys are already in canonical order, which together mean canonicalJson
 * would write it too — and otherwise exactly canonicalJson's answer (false when it refuses).
 */
export function isCanonicalText(text: string, parsed: unknown): boolean {
  // JSON.stringify writes keys in the objects' own order, which is the text's order, except that
  // V8 lists integer-like keys first: a canonical text with such keys fails the fast check and
  // takes the exact path below, never the other way round.
  if (keysInOrder(parsed) && JSON.stringify(parsed) === text) return true;
  try {
    return canonicalJson(parsed) === text;
  } catch {
    return false;
  }
}

/** Every object's own keys (at any depth) already sorted by UTF-16 code unit, as canonicalJson sorts. */
function keysInOrder(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return true;
  if (Array.isArray(value)) {
    for (const item of value) if (!keysInOrder(item)) return false;
    return true;
  }
  const record = value as Record<string, unknown>;
  let previous: string | undefined;
  for (const key in record) {
    if (previous !== undefined && !(previous < key)) return false;
    if (!keysInOrder(record[key])) return false;
    previous = key;
  }
  return true;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** sha256 over the canonical JSON of a value. */
export function digestOf(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}
