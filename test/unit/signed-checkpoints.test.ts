/**
 * The admitted checkpoints `audit verify` compares records with (src/store/signed-checkpoints.ts):
 * database checkpoints held as two columns, others one by one, asked by seq in any order, and cut
 * into the ranges the walk's threads take.
 */
import { describe, expect, test } from 'vitest';
import { SignedCheckpoints } from '../../src/store/signed-checkpoints.ts';

const h = (c: string) => c.repeat(64);
/** Database checkpoints at 3, 5, 5 (two keys), 9 and 20; the file's copy at 20; one caught up at 25. */
function sample(): SignedCheckpoints {
  const s = new SignedCheckpoints();
  s.addDatabaseColumns(Float64Array.from([3, 5, 5, 9, 20]), [h('a'), h('b'), h('c'), h('d'), h('e')].join(''));
  s.add(20, { hash: h('f'), source: 'file' });
  s.add(25, { hash: h('g'), source: 'database', keyId: 'k2' });
  return s;
}

describe('SignedCheckpoints', () => {
  test('answers for every seq, asked ascending, descending, repeated or at random, as a map would', () => {
    const s = sample();
    const expected = new Map<number, { hash: string; source: string; keyId?: string }[]>([
      [3, [{ hash: h('a'), source: 'database' }]],
      [
        5,
        [
          { hash: h('b'), source: 'database' },
          { hash: h('c'), source: 'database' },
        ],
      ],
      [9, [{ hash: h('d'), source: 'database' }]],
      [
        20,
        [
          { hash: h('e'), source: 'database' },
          { hash: h('f'), source: 'file' },
        ],
      ],
      [25, [{ hash: h('g'), source: 'database', keyId: 'k2' }]],
    ]);
    const seqs = Array.from({ length: 30 }, (_, i) => i);
    const orders = [seqs, [...seqs].reverse(), seqs.flatMap((q) => [q, q]), [9, 3, 20, 0, 5, 25, 4, 21, 5, 2, 29, 3]];
    for (const order of orders) {
      const fresh = sample();
      for (const seq of order) {
        expect([seq, fresh.has(seq)]).toEqual([seq, expected.has(seq)]);
        expect([seq, fresh.get(seq)]).toEqual([seq, expected.get(seq)]);
      }
    }
    expect(s.size).toBe(7);
  });

  test('asks far apart, forward and back, find the checkpoint or none', () => {
    const s = new SignedCheckpoints();
    const seqs = Float64Array.from({ length: 100 }, (_, i) => 10 * (i + 1));
    s.addDatabaseColumns(seqs, Array.from(seqs, (q) => String(q).padStart(64, '0')).join(''));
    expect(s.get(10)).toEqual([{ hash: '10'.padStart(64, '0'), source: 'database' }]);
    expect(s.has(11)).toBe(false);
    expect(s.get(990)).toEqual([{ hash: '990'.padStart(64, '0'), source: 'database' }]);
    expect(s.has(995)).toBe(false);
    expect(s.get(20)).toEqual([{ hash: '20'.padStart(64, '0'), source: 'database' }]);
    expect(s.has(1000)).toBe(true);
    expect(s.has(1001)).toBe(false);
  });

  test('a range’s slice holds exactly the checkpoints above its start and up to its end, and answers as the whole', () => {
    const s = sample();
    const slice = s.slice(3, 20);
    expect(Array.from(slice.seqs)).toEqual([5, 5, 9, 20]);
    expect(slice.hashes).toBe([h('b'), h('c'), h('d'), h('e')].join(''));
    expect(slice.others).toEqual([[20, h('f'), 'file']]);
    const part = SignedCheckpoints.of(slice);
    for (let seq = 0; seq < 30; seq++) {
      const inRange = seq > 3 && seq <= 20;
      expect([seq, part.get(seq)]).toEqual([
        seq,
        inRange ? s.get(seq)?.map(({ hash, source }) => ({ hash, source })) : undefined,
      ]);
    }
    expect(Array.from(s.slice(null, 4).seqs)).toEqual([3]);
    expect(s.slice(20, 30).others).toEqual([[25, h('g'), 'database']]);
    expect(s.slice(20, 30).seqs).toHaveLength(0);
  });

  test('columns that are not one 64-character hash per ascending seq, or that come after others, are refused', () => {
    expect(() => new SignedCheckpoints().addDatabaseColumns(Float64Array.from([1, 2]), h('a'))).toThrow(
      'one hash of 64 characters per seq',
    );
    expect(() => new SignedCheckpoints().addDatabaseColumns(Float64Array.from([2, 1]), h('a') + h('b'))).toThrow(
      'seqs must ascend',
    );
    const s = new SignedCheckpoints();
    s.add(1, { hash: h('a'), source: 'file' });
    expect(() => s.addDatabaseColumns(Float64Array.from([2]), h('b'))).toThrow(
      'database columns are admitted first, once',
    );
  });
});
