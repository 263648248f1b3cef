/**
 * Helpers for the claim tests (test/integration/claims-*.test.ts): files a stack is started with,
 * a look inside the Temporal dev server's SQLite file, and waiting for a state instead of a time.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import type { Role, UsersFile } from '../../src/authz/users.ts';

/** Writes a file only its owner can read, as mechanic's own secrets are. */
export async function writeOwnerOnly(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, text, { mode: 0o600 });
  await chmod(file, 0o600);
}

/** A users file (MECHANIC_USERS_FILE) with fresh random tokens for the given people. */
export function usersFile(people: Readonly<Record<string, readonly Role[]>>): UsersFile {
  return {
    users: Object.entries(people).map(([id, roles]) => ({
      id,
      displayName: `${id} (${roles.join(', ')})`,
      roles: [...roles],
      token: `mk_${randomBytes(24).toString('base64url')}`,
    })),
  };
}

export interface SqliteHit {
  readonly table: string;
  readonly column: string;
}

/**
 * Where each needle occurs in a SQLite database: every column of every row of every table,
 * text and blobs alike. Read through SQLite (read-only) rather than by grepping the file, so a
 * value split across overflow pages or still in the WAL is found too.
 */
export function findInSqlite(file: string, needles: readonly string[]): Map<string, SqliteHit[]> {
  const found = new Map<string, SqliteHit[]>(needles.map((n) => [n, []]));
  const db = new Database(file, { readonly: true, fileMustExist: true, timeout: 10_000 });
  try {
    const tables = db.prepare("select name from sqlite_master where type = 'table'").pluck().all() as string[];
    for (const table of tables) {
      const quoted = `"${table.replaceAll('"', '""')}"`;
      for (const row of db.prepare(`select * from ${quoted}`).iterate() as Iterable<Record<string, unknown>>) {
        for (const [column, value] of Object.entries(row)) {
          const bytes =
            value instanceof Uint8Array
              ? Buffer.from(value)
              : typeof value === 'string'
                ? Buffer.from(value)
                : undefined;
          if (!bytes) continue;
          for (const needle of needles) {
            if (bytes.includes(needle)) {
              const hits = found.get(needle)!;
              if (!hits.some((h) => h.table === table && h.column === column)) hits.push({ table, column });
            }
          }
        }
      }
    }
  } finally {
    db.close();
  }
  return found;
}

/**
 * Polls `probe` until it returns a value other than undefined. There is no deadline of its own:
 * the test's timeout bounds the wait, so a slow machine waits longer instead of failing.
 */
export async function waitFor<T>(probe: () => Promise<T | undefined>, everyMs = 200): Promise<T> {
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(everyMs);
  }
}
