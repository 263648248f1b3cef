/**
 * Tests written to kill the mutants of src/core/audit-checkpoint.ts that survived the whole
 * Stryker run (docs/mutation-survivors.md): checkpointCache, whose only tests were in
 * test/integration/audit-verify-signatures.test.ts, which the mutation run does not include, and
 * which only checked that the answers stay right, never what the cache remembers. Here what it
 * remembers is read directly: once the signing key is no longer trusted, a checkpoint the cache
 * remembers is still answered genuine, and any other is signed by an untrusted key.
 *
 * Equivalent, left alive: 31:106 `'utf8'` → `""` (Buffer.from takes an empty encoding as utf8, and
 * the signed fields are ASCII anyway); 73:15 `let valid = false` → `true` (verify either assigns it
 * or throws into the catch, which sets it false); 76:11 the catch block emptied (valid is still
 * its initial false); 99:13 identity's catch block emptied (the function then returns undefined
 * all the same); 111:11 `id !== undefined` → `true` (`known` holds only the ids remember was
 * given, never undefined, so `known.includes(undefined)` is false).
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { checkpointCache, checkpointSigner, type Checkpoint } from '../../src/core/audit-checkpoint.ts';

const signer = checkpointSigner(generateKeyPairSync('ed25519').privateKey);
const at = new Date('2026-01-01T00:00:00.000Z');
const cps = [1, 2, 3, 4].map((seq) => signer.sign({ seq, hash: 'a'.repeat(64) }, at));
const cp = (seq: number) => cps[seq - 1]!;

/** A genuine checkpoint that canonicalJson refuses (a class instance), so the cache cannot name it. */
class Unnamable {
  constructor(source: Checkpoint) {
    Object.assign(this, source);
  }
}

type Op = readonly ['check' | 'remember', Checkpoint];

/** Runs `ops` on a cache of `size`, then says which of cps it answers for without the key. */
function remembered(size: number | undefined, ops: readonly Op[]): number[] {
  const trusted = new Map([[signer.keyId, signer.publicKey]]);
  const cache = checkpointCache(trusted, size);
  for (const [op, c] of ops) {
    if (op === 'remember') cache.remember(c);
    else expect(cache.problem(c)).toBeUndefined();
  }
  trusted.clear();
  return cps.filter((c) => cache.problem(c) === undefined).map((c) => c.seq);
}

describe('what checkpointCache remembers', () => {
  test.each<[string, number | undefined, Op[], number[]]>([
    ['nothing before it is asked', undefined, [], []],
    ['a checkpoint it found genuine', undefined, [['check', cp(1)]], [1]],
    ['a checkpoint it is told to remember', undefined, [['remember', cp(2)]], [2]],
    [
      'as many as its size',
      2,
      [
        ['check', cp(1)],
        ['check', cp(2)],
      ],
      [1, 2],
    ],
    [
      'past its size, the oldest is forgotten',
      2,
      [
        ['check', cp(1)],
        ['check', cp(2)],
        ['check', cp(3)],
      ],
      [2, 3],
    ],
    [
      'with size 0, nothing',
      0,
      [
        ['check', cp(1)],
        ['remember', cp(2)],
      ],
      [],
    ],
    [
      'one remembered again keeps its place: it is not counted twice',
      2,
      [
        ['remember', cp(1)],
        ['remember', cp(2)],
        ['remember', cp(1)],
        ['remember', cp(3)],
      ],
      [2, 3],
    ],
    [
      'a genuine checkpoint it cannot name takes no place',
      1,
      [
        ['check', cp(1)],
        ['check', new Unnamable(cp(4)) as Checkpoint],
        ['remember', new Unnamable(cp(4)) as Checkpoint],
      ],
      [1],
    ],
  ])('%s', (_, size, ops, expected) => {
    expect(remembered(size, ops)).toEqual(expected);
  });

  test('a forged checkpoint is never remembered: asked again, it is checked again', () => {
    const cache = checkpointCache(new Map([[signer.keyId, signer.publicKey]]));
    const forged = { ...cp(1), signature: Buffer.alloc(64, 7).toString('base64') };
    const problem = 'has a signature that does not match its seq, hash and time';
    expect([cache.problem(forged), cache.problem(forged)]).toEqual([problem, problem]);
  });
});
