/**
 * Reaching a SQLite audit log behind the store's back, as its owner (or an attacker with the file)
 * could: for tests that edit the log and expect verify to notice.
 */
import { generateKeyPairSync } from 'node:crypto';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll } from 'vitest';
import { checkpointSigner } from '../../src/core/audit-checkpoint.ts';
import { fillAuditLog } from '../bench/audit-fill.ts';

/** Runs `f` on its own connection to `file`, closed afterwards. */
export function raw<T>(file: string, f: (db: SQLite.Database) => T): T {
  const db = new SQLite(file);
  try {
    return f(db);
  } finally {
    db.close();
  }
}

/** Drops the append-only guards, as the database's owner could. */
export const unguard = (db: SQLite.Database) =>
  db.exec(['audit_events_no_update', 'audit_events_no_delete'].map((t) => `drop trigger if exists ${t}`).join(';\n'));

/**
 * A signed audit log of `size` events (the bench's filler), made once before the file's tests, and
 * copies of it for a test to change; removed after them.
 */
export function filledLog(tempPrefix: string, size: number) {
  const signer = checkpointSigner(generateKeyPairSync('ed25519').privateKey);
  let dir = '';
  let n = 0;
  const log = { signer, base: '', events: 0, copy };
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), tempPrefix));
    log.base = path.join(dir, 'base.db');
    ({ events: log.events } = await fillAuditLog(log.base, { events: size, signer }));
  }, 120_000);
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  /** A copy of the filled log to change. */
  async function copy(): Promise<string> {
    const file = path.join(dir, `case-${++n}.db`);
    await copyFile(log.base, file);
    return file;
  }
  return log;
}
