/**
 * Opens the database behind the store: SQLite (better-sqlite3) by default, PostgreSQL when a URL
 * is configured. Both dialects get the same schema through in-code Kysely migrations.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import {
  CompiledQuery,
  Kysely,
  Migrator,
  PostgresAdapter,
  PostgresDialect,
  SqliteAdapter,
  SqliteDialect,
  SqliteDriver,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  type MigrationProvider,
  type SqliteDialectConfig,
} from 'kysely';
import pg from 'pg';
import { z } from 'zod';
import { UserError } from '../core/errors.ts';
import { migrations } from './migrations.ts';
import type { Database } from './schema.ts';

export const StoreLocationSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('sqlite'), file: z.string().min(1) }),
  z.strictObject({ kind: z.literal('postgres'), url: z.string().min(1) }),
]);
export type StoreLocation = z.infer<typeof StoreLocationSchema>;

/**
 * How long a SQLite writer waits for another process's write transaction before failing. The
 * worker and the API server share one file; an append holds the lock for milliseconds, so a long
 * wait only happens under real contention and is better than a lost audit event.
 */
export const SQLITE_LOCK_WAIT_MS = 15_000;
/** busy_timeout for everything but taking the write lock: reads in WAL mode rarely wait at all. */
const SQLITE_BUSY_TIMEOUT_MS = 5_000;

export function isSqliteBusy(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Every Kysely transaction on SQLite starts with BEGIN IMMEDIATE, which takes the database's write
 * lock up front. A plain BEGIN is deferred: two processes could both read the chain head and then
 * race to write it, and the loser's upgrade fails with SQLITE_BUSY without waiting. Taking the lock
 * first is what serialises the hash chain across processes (and Kysely's migrator across processes
 * starting at once).
 *
 * The wait for the lock is an async poll rather than SQLite's busy handler: better-sqlite3 is
 * synchronous, and a busy handler would freeze the API server's event loop for as long as the
 * worker keeps the lock. Polling every few milliseconds (with jitter) also gives each process a
 * fair chance at the lock between another's transactions.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    const deadline = Date.now() + SQLITE_LOCK_WAIT_MS;
    await connection.executeQuery(CompiledQuery.raw('pragma busy_timeout = 0'));
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await connection.executeQuery(CompiledQuery.raw('begin immediate'));
          return;
        } catch (e) {
          if (!isSqliteBusy(e) || Date.now() >= deadline) throw e;
          await sleep(Math.min(attempt, 8) * Math.random() + 1);
        }
      }
    } finally {
      await connection.executeQuery(CompiledQuery.raw(`pragma busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`));
    }
  }
}

/**
 * Kysely's SQLite adapter runs migrations outside a transaction and without a lock, so two
 * processes opening a new database at once (`mechanic dev` starts the worker and the server
 * together) both try to create the tables. SQLite does support transactional DDL; saying so makes
 * the migrator run inside a BEGIN IMMEDIATE transaction, which serialises it. (Kysely's caution is
 * for migrations that toggle PRAGMA foreign_keys, which has no effect inside a transaction; ours do
 * not.)
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;
  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}

const PG_INT8_OID = 20;

/**
 * pg returns int8 as strings; audit seq values fit a JS number by many orders of magnitude. Set per
 * pool rather than with the global pg.types so other users of pg in the process are unaffected.
 */
const pgTypes = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === PG_INT8_OID && format !== 'binary') return (v: string) => Number(v);
    return format === 'binary'
      ? (pg.types.getTypeParser(oid, 'binary') as (v: Buffer) => unknown)
      : (pg.types.getTypeParser(oid, 'text') as (v: string) => unknown);
  },
};

/** A database URL fit for an error message: the password is replaced. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable database URL)';
  }
}

function describe(loc: StoreLocation): string {
  return loc.kind === 'sqlite' ? `SQLite database ${loc.file}` : `PostgreSQL database ${redactUrl(loc.url)}`;
}

function createSqlite(file: string): Kysely<Database> {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const sqlite = new BetterSqlite3(file, { timeout: SQLITE_BUSY_TIMEOUT_MS });
  try {
    // WAL lets readers (the reporting UI) run while a writer appends, across processes.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    // FULL: an acknowledged audit event survives power loss, not only a process crash.
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('foreign_keys = ON');
  } catch (e) {
    sqlite.close();
    throw e;
  }
  return new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: sqlite }) });
}

function createPostgres(url: string): Kysely<Database> {
  const pool = new pg.Pool({ connectionString: url, max: 10, types: pgTypes });
  // An idle client losing its connection (server restart, failover) is emitted on the pool; unhandled,
  // it would crash the worker. The pool has already discarded that client and the next query
  // reconnects, so there is nothing to do here; a query in flight still gets its own error.
  pool.on('error', () => undefined);
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve({ ...migrations }),
};

/**
 * Opens the database and brings its schema up to date. Safe to call from several processes at
 * once: migrations run under a write lock (SQLite) or an advisory lock (PostgreSQL).
 */
export async function openDatabase(loc: StoreLocation): Promise<Kysely<Database>> {
  const parsed = StoreLocationSchema.safeParse(loc);
  if (!parsed.success)
    throw new UserError('CONFIG_INVALID', `invalid store location: ${z.prettifyError(parsed.error)}`);
  let db: Kysely<Database>;
  try {
    db = parsed.data.kind === 'sqlite' ? createSqlite(parsed.data.file) : createPostgres(parsed.data.url);
  } catch (e) {
    throw new UserError('CONFIG_INVALID', `cannot open the ${describe(loc)}: ${(e as Error).message}`, { cause: e });
  }
  const { error } = await new Migrator({ db, provider: migrationProvider }).migrateToLatest();
  if (error) {
    await db.destroy().catch(() => undefined); // the migration error is the one worth reporting
    const message = error instanceof Error ? error.message : JSON.stringify(error);
    throw new UserError('CONFIG_INVALID', `cannot prepare the ${describe(loc)}: ${message}`, { cause: error });
  }
  return db;
}

export function isPostgres(db: Kysely<Database>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}
