/**
 * The audit signing key and the copy of the latest checkpoint kept beside it, outside the database.
 *
 * What each defends:
 * - the checkpoint rows in the database (audit_checkpoints): someone who can write the database
 *   but not read the key cannot sign, so a deleted tail (the newest checkpoint then points past the
 *   log's end) or a row forged after an execution's end (no checkpoint covers it, though the writer
 *   signs at every end) shows up in `audit verify`;
 * - the checkpoint file: the same person can also delete the newest checkpoint rows along with the
 *   tail, leaving an older checkpoint that still matches. The file is on the application host, not
 *   in the database, so that deletion is caught too: the file's checkpoint is missing from the log.
 * Neither defends against someone who holds the key (the application host's owner account): for
 * that, auditors keep checkpoints of their own (from `audit verify --json`) and compare.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  checkpointProblem,
  checkpointSigner,
  type CheckpointCache,
  keyIdOf,
  type Checkpoint,
  type CheckpointSigner,
} from '../core/audit-checkpoint.ts';
import { UserError } from '../core/errors.ts';
import { writePrivateFile } from '../host.ts';
import type { StoreLocation } from './db.ts';

export interface AuditSigning {
  readonly signer: CheckpointSigner;
  /** Keys whose checkpoints verify, by key id: the signer's own, plus any given (rotation, other hosts). */
  readonly trusted: ReadonlyMap<string, KeyObject>;
  /** Where the latest checkpoint is also kept, outside the database; undefined keeps no copy. */
  readonly headFile: string | undefined;
}

/**
 * The checkpoint file of one log, beside the key that signs it: named after the key and the
 * database, so pointing the same key at another database (SQLite → PostgreSQL) never compares that
 * log with this one's checkpoint.
 */
export function headFileFor(keyFile: string, store: StoreLocation): string {
  const identity =
    store.kind === 'sqlite' ? `sqlite:${path.resolve(store.file)}` : `postgres:${logIdentity(store.url)}`;
  const tag = createHash('sha256').update(identity).digest('hex').slice(0, 12);
  return path.join(path.dirname(keyFile), `${path.basename(keyFile).replace(/\.pem$/, '')}.checkpoint-${tag}.json`);
}

/** host, port and database of a PostgreSQL URL: not the user or password, which may change. */
function logIdentity(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return url;
  }
}

async function ownerOnly(file: string, what: string): Promise<void> {
  const { mode } = await stat(file);
  if ((mode & 0o077) !== 0) {
    throw new UserError(
      'CONFIG_INVALID',
      `the ${what} ${file} can be read by other users (mode ${(mode & 0o777).toString(8)}); make it owner-only (chmod 600)`,
    );
  }
}

/**
 * Reads the Ed25519 signing key (PKCS#8 PEM), or with `create` makes one the first time, owner-only.
 * Creation is exclusive, so a worker and an API server starting together end up with one key.
 */
export async function loadSigningKey(keyFile: string, options: { create: boolean }): Promise<KeyObject> {
  let pem: string;
  try {
    pem = await readFile(keyFile, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    if (!options.create) {
      throw new UserError('CONFIG_INVALID', `there is no audit signing key at ${keyFile} (MECHANIC_AUDIT_KEY_FILE)`);
    }
    const { privateKey } = generateKeyPairSync('ed25519');
    const fresh = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await mkdir(path.dirname(keyFile), { recursive: true, mode: 0o700 });
    try {
      await writeFile(keyFile, fresh, { mode: 0o600, flag: 'wx' });
      pem = fresh;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      pem = await readFile(keyFile, 'utf8'); // another process made it first: use theirs
    }
  }
  await ownerOnly(keyFile, 'audit signing key');
  try {
    return createPrivateKey(pem);
  } catch (e) {
    throw new UserError('CONFIG_INVALID', `the audit signing key ${keyFile} is not a PEM private key`, { cause: e });
  }
}

/**
 * Signing for the store at `store`: the key (made the first time with `create`), its own public key
 * trusted, and that log's checkpoint file beside the key.
 */
export async function loadAuditSigning(
  keyFile: string,
  options: { create: boolean; store: StoreLocation; trustedPublicKeys?: readonly string[] },
): Promise<AuditSigning> {
  let signer: CheckpointSigner;
  const key = await loadSigningKey(keyFile, options);
  try {
    signer = checkpointSigner(key);
  } catch (e) {
    throw new UserError('CONFIG_INVALID', `the audit signing key ${keyFile}: ${(e as Error).message}`, { cause: e });
  }
  return signingWith(
    signer,
    headFileFor(keyFile, options.store),
    (options.trustedPublicKeys ?? []).map((p) => createPublicKey(p)),
  );
}

/** Signing from a signer already in hand (tests, or a key from a secret store). */
export function signingWith(
  signer: CheckpointSigner,
  headFile: string | undefined,
  extraTrusted: readonly KeyObject[] = [],
): AuditSigning {
  const trusted = new Map<string, KeyObject>([[signer.keyId, signer.publicKey]]);
  for (const k of extraTrusted) trusted.set(keyIdOf(k), k);
  return { signer, trusted, headFile };
}

/**
 * What the checkpoint file holds, checked: the checkpoint, a problem with it, or nothing yet. With
 * `cache`, a checkpoint already found genuine is not verified again (the signer reads the file
 * before every signature).
 */
export async function readHeadFile(
  file: string,
  trusted: ReadonlyMap<string, KeyObject>,
  cache?: CheckpointCache,
): Promise<{ kind: 'none' } | { kind: 'ok'; checkpoint: Checkpoint } | { kind: 'bad'; problem: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
    return { kind: 'bad', problem: `cannot be read: ${(e as Error).message}` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'bad', problem: 'is not JSON' };
  }
  const problem = cache ? cache.problem(value) : checkpointProblem(value, trusted);
  return problem ? { kind: 'bad', problem } : { kind: 'ok', checkpoint: value as Checkpoint };
}

/**
 * Keeps the newest checkpoint in the file. Only moves forward: a slower writer (another process
 * that signed an older head) never replaces a newer checkpoint. Writes in one process are queued,
 * so they never share a temp file.
 */
export function headFileWriter(
  file: string,
  trusted: ReadonlyMap<string, KeyObject>,
): (cp: Checkpoint) => Promise<void> {
  let queue: Promise<void> = Promise.resolve();
  return (cp) => {
    const write = async () => {
      const current = await readHeadFile(file, trusted);
      if (current.kind === 'ok' && current.checkpoint.seq >= cp.seq) return;
      await writePrivateFile(file, `${JSON.stringify(cp)}\n`);
    };
    const next = queue.then(write, write);
    queue = next.catch(() => undefined);
    return next;
  };
}
