import { hash } from 'node:crypto';

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

/**
 * Whether `text` (from index `from` on) is canonical JSON for certain: exactly
 * canonicalJson(JSON.parse(text)), checked
 * on the text alone in one pass, without parsing it into values or writing it again. True only
 * then; false is "not shown here" — text that is not canonical, and also canonical text this scan
 * does not vouch for (an escaped surrogate, a key with an escape, a number other than a short
 * integer that does not read back as written, nesting deeper than 100) — for isCanonicalText to
 * decide. `audit verify` asks this of every record, so it allocates nothing in the usual case.
 */
export function isSurelyCanonicalText(text: string, from = 0): boolean {
  return scanValue(text, from, 0) === text.length;
}

/** Nesting deeper than this is left to the exact check. */
const SCAN_MAX_DEPTH = 100;

/** The end of the canonical value at `i`, or -1 when it is not one for certain. */
function scanValue(t: string, i: number, depth: number): number {
  const c = t.charCodeAt(i);
  if (c === 0x22) return scanString(t, i, false);
  if (c === 0x7b) return depth < SCAN_MAX_DEPTH ? scanObject(t, i, depth + 1) : -1;
  if (c === 0x5b) return depth < SCAN_MAX_DEPTH ? scanArray(t, i, depth + 1) : -1;
  if (c === 0x74) return t.startsWith('true', i) ? i + 4 : -1;
  if (c === 0x66) return t.startsWith('false', i) ? i + 5 : -1;
  if (c === 0x6e) return t.startsWith('null', i) ? i + 4 : -1;
  if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return scanNumber(t, i);
  return -1;
}

/**
 * The end of the string at `i` (its opening quote) if JSON.stringify writes it so: only the
 * escapes it writes (\" \\ \b \f \n \r \t, and \u00xx in lowercase for the other control
 * characters), everything else as itself, surrogates only in pairs. `plain`: no escape at all.
 */
function scanString(t: string, i: number, plain: boolean): number {
  let j = i + 1;
  for (;;) {
    const c = t.charCodeAt(j);
    if (c === 0x22) return j + 1;
    if (c >= 0x20 && c !== 0x5c && (c < 0xd800 || c > 0xdfff)) {
      j++;
      continue;
    }
    if (c === 0x5c && !plain) {
      const e = t.charCodeAt(j + 1);
      if (e === 0x22 || e === 0x5c || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        j += 2;
        continue;
      }
      // \u00xx for a control character that has no short escape; anything else is not canonical here.
      if (e !== 0x75 || !t.startsWith('00', j + 2)) return -1;
      const hi = t.charCodeAt(j + 4);
      const lo = t.charCodeAt(j + 5);
      const h = hi === 0x30 ? 0 : hi === 0x31 ? 16 : -1;
      const l = lo >= 0x30 && lo <= 0x39 ? lo - 0x30 : lo >= 0x61 && lo <= 0x66 ? lo - 0x57 : -1;
      if (h < 0 || l < 0) return -1;
      const code = h + l;
      if (code === 8 || code === 9 || code === 10 || code === 12 || code === 13) return -1;
      j += 6;
      continue;
    }
    // A high surrogate followed by a low one is a pair, written as itself.
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = t.charCodeAt(j + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        j += 2;
        continue;
      }
    }
    // The end of the text (NaN), a raw control character, a lone surrogate, or an escape in a key.
    return -1;
  }
}

/** Whether t[a0, a1) sorts strictly before t[b0, b1) by UTF-16 code unit, as canonicalJson sorts keys. */
function rangeBefore(t: string, a0: number, a1: number, b0: number, b1: number): boolean {
  const n = Math.min(a1 - a0, b1 - b0);
  for (let k = 0; k < n; k++) {
    const x = t.charCodeAt(a0 + k);
    const y = t.charCodeAt(b0 + k);
    if (x !== y) return x < y;
  }
  return a1 - a0 < b1 - b0;
}

function scanObject(t: string, i: number, depth: number): number {
  let j = i + 1;
  if (t.charCodeAt(j) === 0x7d) return j + 1;
  let prevStart = -1;
  let prevEnd = -1;
  for (;;) {
    // Keys without escapes: their text between the quotes is their value, so its order is the
    // keys' order (with the quotes, "a" would sort after "a!": `"` is above `!` and space).
    // Strictly increasing also rules out a key written twice (JSON.parse keeps the last).
    if (t.charCodeAt(j) !== 0x22) return -1;
    const keyEnd = scanString(t, j, true);
    if (keyEnd < 0 || (prevStart >= 0 && !rangeBefore(t, prevStart, prevEnd, j + 1, keyEnd - 1))) return -1;
    prevStart = j + 1;
    prevEnd = keyEnd - 1;
    if (t.charCodeAt(keyEnd) !== 0x3a) return -1;
    j = scanValue(t, keyEnd + 1, depth);
    if (j < 0) return -1;
    const c = t.charCodeAt(j);
    if (c === 0x7d) return j + 1;
    if (c !== 0x2c) return -1;
    j++;
  }
}

function scanArray(t: string, i: number, depth: number): number {
  let j = i + 1;
  if (t.charCodeAt(j) === 0x5d) return j + 1;
  for (;;) {
    j = scanValue(t, j, depth);
    if (j < 0) return -1;
    const c = t.charCodeAt(j);
    if (c === 0x5d) return j + 1;
    if (c !== 0x2c) return -1;
    j++;
  }
}

/** A number as JSON.stringify writes it: a short integer at once, anything else if it reads back as written. */
function scanNumber(t: string, i: number): number {
  let j = i;
  let digitsOnly = true;
  for (;;) {
    const c = t.charCodeAt(j);
    if (c >= 0x30 && c <= 0x39) j++;
    else if (c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45) {
      if (j > i) digitsOnly = false;
      j++;
    } else break;
  }
  const first = t.charCodeAt(i) === 0x2d ? i + 1 : i;
  const digits = j - first;
  // 0, or up to 15 digits without a leading zero (exact in a double, written back the same); not -0.
  if (digitsOnly && digits >= 1 && digits <= 15) {
    const lead = t.charCodeAt(first);
    if (lead !== 0x30) return j;
    if (digits === 1 && first === i) return j;
  }
  const lexeme = t.slice(i, j);
  const n = Number(lexeme);
  return Number.isFinite(n) && String(n) === lexeme ? j : -1;
}

export function sha256Hex(text: string): string {
  return hash('sha256', text, 'hex');
}

/** sha256 over the canonical JSON of a value. */
export function digestOf(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}
