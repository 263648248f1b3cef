/**
 * The one-pass canonical check `audit verify` asks of every record (isSurelyCanonicalText) may say
 * "not shown" of a canonical text, but never "canonical" of one that is not: true must imply
 * canonicalJson(JSON.parse(text)) === text. And it must say true of what the store writes, or
 * verify would take the slow path for every record. The hash it feeds (chainHashOfText, through
 * crypto.hash) must be the digest the store always wrote.
 */
import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { GENESIS_HASH, chainHash, chainHashOfText } from '../../src/core/audit-chain.ts';
import type { NewAuditEvent } from '../../src/core/audit-events.ts';
import { canonicalJson, isCanonicalText, isSurelyCanonicalText, sha256Hex } from '../../src/core/canonical.ts';
import { isExactlyCanonical } from '../helpers/core-samples.ts';

/** A small deterministic generator, so a failure names a case that comes back. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const STRING_PIECES = [
  'a',
  'plain text',
  'é',
  '😀',
  '"',
  '\\',
  '\n',
  '\t',
  '\b',
  '\f',
  '\r',
  '\u0000',
  '\u001f',
  '\u007f',
  '\u2028',
  '/',
  '</script>',
  '\u202e',
  '10',
  '9',
  '__proto__',
];
const NUMBERS = [0, 1, -1, 7, 42, 123456789012345, -987654321, 1.5, -0.25, 1e21, 1e-7, 2 ** 53, 0.1 + 0.2, 5e-324];

function value(rnd: () => number, depth: number): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const text = () =>
    Array.from({ length: Math.floor(rnd() * 4) }, () => pick(STRING_PIECES)).join('') + (rnd() < 0.5 ? 'x' : '');
  const r = rnd();
  if (depth > 3 || r < 0.35) return text();
  if (r < 0.5) return pick(NUMBERS);
  if (r < 0.55) return pick([true, false, null]);
  if (r < 0.75) return Array.from({ length: Math.floor(rnd() * 4) }, () => value(rnd, depth + 1));
  const out: Record<string, unknown> = {};
  // defineProperty: a key "__proto__" is an own key, as JSON.parse makes it.
  for (let i = Math.floor(rnd() * 5); i > 0; i--)
    Object.defineProperty(out, text(), {
      value: value(rnd, depth + 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return out;
}

/** Ways to write a canonical text otherwise: each must be refused unless it happens to be canonical. */
const REWRITES: readonly ((t: string) => string)[] = [
  (t) => t.replace(':', ': '),
  (t) => t.replace(',', ' ,'),
  (t) => ` ${t}`,
  (t) => `${t}\n`,
  (t) => t.replace(/\\n/, '\\u000a'),
  (t) => t.replace(/\\u001f/, '\\u001F'),
  (t) => t.replace(/\\"/, '\\u0022'),
  (t) => t.replace('/', '\\/'),
  (t) => t.replace('é', '\\u00e9'),
  (t) => t.replace('😀', '\\ud83d\\ude00'),
  (t) => t.replace(/(\d)/, '0$1'),
  (t) => t.replace(/:(\d+)/, ':$1.0'),
  (t) => t.replace(/:(\d+)/, ':$1e0'),
  (t) => t.replace(/:0([,}\]])/, ':-0$1'),
  (t) => t.replace(/\{"([^"]*)":([^,{}[\]]*),"([^"]*)":/, '{"$3":$2,"$1":'),
  (t) => t.replace(/\{"([^"]*)":/, '{"$1":1,"$1":'),
  (t) => t.replace(/true/, 'True'),
  (t) => t.replace(/\]$/, ',]'),
  (t) => t.slice(0, -1),
];

describe('isSurelyCanonicalText', () => {
  test.each([
    ['{"a":1,"b":[true,null,"x"]}', true],
    ['{"b":1,"a":2}', false],
    ['{"a":{"d":1,"c":2}}', false],
    ['{"a": 1}', false],
    ['{"a":1.0}', false],
    ['{"a":1e3}', false],
    ['{"a":1000}', true],
    ['{"a":-0}', false],
    ['{"a":0}', true],
    ['{"a":-5}', true],
    ['{"a":05}', false],
    ['{"a":1.5}', true],
    ['{"a":1e+21}', true],
    ['{"a":9007199254740993}', false],
    ['{"a":"\\u00e9"}', false],
    ['{"a":"é"}', true],
    ['{"a":"\\/"}', false],
    ['{"a":"\\n\\t\\"\\\\\\b\\f\\r\\u0000\\u001f"}', true],
    ['{"a":"\\u000a"}', false],
    ['{"a":"\\u001F"}', false],
    ['{"a":1,"a":1}', false],
    ['{"a":1e999}', false],
    ['{"__proto__":{"x":1},"a":1}', true],
    ['{"10":"a","9":"b"}', true],
    ['{"9":"b","10":"a"}', false],
    ['{"😀":1,"\uffff":2}', true],
    ['{"\uffff":2,"😀":1}', false],
    ['"text"', true],
    ['12', true],
    ['null', true],
    ['[]', true],
    ['{}', true],
    [' {}', false],
    ['{}x', false],
    ['', false],
    ['{"a":"\ud800"}', false],
    ['{"a":"\ud800x"}', false],
    ['{"a":"\ud83d\ude00"}', true],
    ['{"a":"\udc00"}', false],
    ['{"a":"unterminated', false],
  ])('%s: %s', (text, canonical) => {
    expect(isExactlyCanonical(text)).toBe(canonical);
    expect(isSurelyCanonicalText(text)).toBe(canonical);
    expect(isCanonicalText(text, text === '' ? undefined : safeParse(text))).toBe(canonical);
  });

  test('what it does not vouch for is left to the exact check, which decides', () => {
    // Canonical, but this scan does not decide escaped surrogates or keys with escapes.
    for (const text of ['{"a":"\\ud800"}', '{"a\\"b":1}', '{"\\n":1}']) {
      expect(isExactlyCanonical(text)).toBe(true);
      expect(isSurelyCanonicalText(text)).toBe(false);
      expect(isCanonicalText(text, JSON.parse(text))).toBe(true);
    }
    const deep = '['.repeat(150) + ']'.repeat(150);
    expect(isSurelyCanonicalText(deep)).toBe(false);
    expect(isExactlyCanonical(deep)).toBe(true);
  });

  test('never says canonical of a text that is not, over thousands of generated values written other ways', () => {
    const rnd = random(7);
    let vouched = 0;
    let refused = 0;
    for (let i = 0; i < 4000; i++) {
      const v = value(rnd, 0);
      const canonical = canonicalJson(v);
      // What the store writes: vouched for unless it holds an escaped (lone) surrogate or a key
      // written with an escape.
      const expected = !/\\ud[89a-f]/.test(canonical) && !escapedKey(v);
      expect(isSurelyCanonicalText(canonical), canonical).toBe(expected);
      if (expected) vouched++;
      for (const rewrite of REWRITES) {
        const text = rewrite(canonical);
        if (text === canonical) continue;
        const sure = isSurelyCanonicalText(text);
        if (sure) expect(isExactlyCanonical(text), text).toBe(true);
        else refused++;
      }
    }
    expect(vouched).toBeGreaterThan(2500);
    expect(refused).toBeGreaterThan(4000);
  });
});

/** Whether any key in `v` is written with an escape by JSON.stringify. */
function escapedKey(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  if (Array.isArray(v)) return v.some(escapedKey);
  return Object.entries(v).some(([k, x]) => JSON.stringify(k).includes('\\') || escapedKey(x));
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

describe('the digests stay the ones the store always wrote', () => {
  const events: NewAuditEvent[] = [
    {
      eventId: 'e-1',
      executionId: 'mx-1',
      type: 'approval.granted',
      actor: 'bob',
      at: '2026-01-01T00:00:00.000Z',
      data: { planDigest: 'p', comment: 'fine' },
    },
    {
      eventId: 'none:access.denied:1',
      executionId: null,
      type: 'access.denied',
      actor: 'mallory "the" \\ \n\u2028 \ud800 😀 é',
      at: '2026-01-01T00:00:00Z',
      data: { zeta: [1, { b: 2, a: 1 }], alpha: 'é' },
    },
  ];
  /** sha256 as the store wrote it before crypto.hash: a Hash object over the UTF-8 text. */
  const before = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

  test.each(events)('chainHash and chainHashOfText hash the same bytes as before ($eventId)', (event) => {
    const { eventId, executionId, type, actor, at, data } = event;
    const text = canonicalJson({ eventId, executionId, type, actor, at, data });
    for (const prev of [GENESIS_HASH, 'f'.repeat(64)]) {
      expect(chainHash(prev, event)).toBe(before(`${prev}\n${text}`));
      expect(chainHashOfText(prev, text)).toBe(before(`${prev}\n${text}`));
    }
    expect(sha256Hex(text)).toBe(before(text));
  });

  test('a digest recorded before this change', () => {
    // Pinned: the hash of this event after genesis, as every earlier version of the store computed it.
    expect(chainHash(GENESIS_HASH, events[0]!)).toBe(
      before(
        `${GENESIS_HASH}\n{"actor":"bob","at":"2026-01-01T00:00:00.000Z","data":{"comment":"fine","planDigest":"p"},"eventId":"e-1","executionId":"mx-1","type":"approval.granted"}`,
      ),
    );
  });
});
