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

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** sha256 over the canonical JSON of a value. */
export function digestOf(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}
