/**
 * Signed checkpoints of the audit chain's head. The hash chain alone cannot see its own end: rows
 * deleted from the tail, or a row appended with a correctly recomputed hash, leave a valid chain.
 * A checkpoint is the head (seq and hash) at a moment, signed with an Ed25519 key kept outside the
 * database; whoever can change the database but not read the key can neither forge one nor move
 * one. Pure (node:crypto only): the store decides when to sign and where to keep them.
 */
import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from './canonical.ts';

export const CheckpointSchema = z.strictObject({
  /** The covered head: every record up to and including this seq. */
  seq: z.number().int().positive(),
  /** That record's hash; through the chain it fixes every record before it. */
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  /** When it was signed (the signer's clock). */
  at: z.iso.datetime(),
  /** Which key signed it (keyIdOf its public key). */
  keyId: z.string().min(1),
  /** Ed25519 signature (base64) over checkpointMessage. */
  signature: z.string().min(1),
});
export type Checkpoint = z.infer<typeof CheckpointSchema>;

/** Domain-separated, so a checkpoint signature can never be replayed as anything else's. */
const DOMAIN = 'mechanic audit checkpoint v1\n';

/** The exact bytes signed: the domain line, then the canonical JSON of the four signed fields. */
export function checkpointMessage(cp: Pick<Checkpoint, 'seq' | 'hash' | 'at' | 'keyId'>): Buffer {
  return Buffer.from(DOMAIN + canonicalJson({ seq: cp.seq, hash: cp.hash, at: cp.at, keyId: cp.keyId }), 'utf8');
}

/** A short, stable name for a public key: sha256 of its SPKI DER, first 16 hex digits. */
export function keyIdOf(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

export interface CheckpointSigner {
  readonly keyId: string;
  readonly publicKey: KeyObject;
  /** Signs the head `{seq, hash}` as of `at`. */
  sign(head: { readonly seq: number; readonly hash: string }, at: Date): Checkpoint;
}

/** A signer over an Ed25519 private key. Throws when the key is not Ed25519. */
export function checkpointSigner(privateKey: KeyObject): CheckpointSigner {
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') {
    throw new Error('the audit signing key must be an Ed25519 private key');
  }
  const publicKey = createPublicKey(privateKey);
  const keyId = keyIdOf(publicKey);
  return {
    keyId,
    publicKey,
    sign(head, at) {
      const unsigned = { seq: head.seq, hash: head.hash, at: at.toISOString(), keyId };
      return { ...unsigned, signature: sign(null, checkpointMessage(unsigned), privateKey).toString('base64') };
    },
  };
}

/**
 * Why a checkpoint cannot be trusted (malformed, signed by a key not in `trusted`, or a signature
 * that does not match its fields), or undefined when it is genuine.
 */
export function checkpointProblem(cp: unknown, trusted: ReadonlyMap<string, KeyObject>): string | undefined {
  const parsed = CheckpointSchema.safeParse(cp);
  if (!parsed.success) return `is malformed: ${z.prettifyError(parsed.error)}`;
  const key = trusted.get(parsed.data.keyId);
  if (!key) return `is signed by key ${parsed.data.keyId}, which is not a trusted audit key`;
  let valid = false;
  try {
    valid = verify(null, checkpointMessage(parsed.data), key, Buffer.from(parsed.data.signature, 'base64'));
  } catch {
    valid = false;
  }
  return valid ? undefined : 'has a signature that does not match its seq, hash and time';
}

/**
 * checkpointProblem with a memory: a checkpoint already found genuine (or signed here) is not
 * checked again. The signer checks the checkpoint it builds on before every signature; with this,
 * one process pays one Ed25519 verification per checkpoint another process wrote, not one per
 * append. Remembered by the checkpoint's whole canonical JSON, so any changed byte is checked anew.
 */
export interface CheckpointCache {
  problem(cp: unknown): string | undefined;
  /** A checkpoint known genuine without checking (this process just signed it). */
  remember(cp: Checkpoint): void;
}

export function checkpointCache(trusted: ReadonlyMap<string, KeyObject>, size = 8): CheckpointCache {
  const known: string[] = [];
  const identity = (cp: unknown): string | undefined => {
    try {
      return canonicalJson(cp);
    } catch {
      return undefined;
    }
  };
  const remember = (id: string) => {
    if (known.includes(id)) return;
    known.push(id);
    if (known.length > size) known.shift();
  };
  return {
    problem(cp) {
      const id = identity(cp);
      if (id !== undefined && known.includes(id)) return undefined;
      const problem = checkpointProblem(cp, trusted);
      if (problem === undefined && id !== undefined) remember(id);
      return problem;
    },
    remember(cp) {
      const id = identity(cp);
      if (id !== undefined) remember(id);
    },
  };
}

/** The public key as PEM (SPKI), for auditors to pin and verify exports with. */
export function publicKeyPem(publicKey: KeyObject): string {
  return publicKey.export({ type: 'spki', format: 'pem' }).toString();
}
