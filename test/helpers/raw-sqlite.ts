/**
 * Reaching a SQLite audit log behind the store's back, as its owner (or an attacker with the file)
 * could: for tests that edit the log and expect verify to notice.
 */
import SQLite from 'better-sqlite3';

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
