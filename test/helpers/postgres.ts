/**
 * A throwaway PostgreSQL cluster for integration tests: initdb into a temp dir, start on a free
 * port bound to 127.0.0.1 (unix socket inside the temp dir, so nothing collides with a system
 * server), and stop + delete it afterwards.
 *
 * Binaries are looked up on PATH first, then in Debian/Ubuntu's versioned folders
 * (/usr/lib/postgresql/<major>/bin, newest major first).
 *
 * Running as root: PostgreSQL refuses to run as root. When this process is root, initdb and
 * pg_ctl (and so the server) are started as an unprivileged account — `postgres` if it exists,
 * else `nobody` — through Node's spawn uid/gid options (which also drop supplementary groups), and
 * that account is given ownership of the temp dir. No sudo, runuser or su is needed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, chownSync, constants, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import pg from 'pg';
import { describe, test } from 'vitest';
import type { StoreLocation } from '../../src/store/db.ts';

export interface TestPostgres {
  /** Superuser URL to the `postgres` database; no password (trust auth on loopback only). */
  url: string;
  stop(): Promise<void>;
}

const BINARIES = ['initdb', 'pg_ctl', 'postgres'] as const;
const DEBIAN_PG_ROOT = '/usr/lib/postgresql';

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function hasAll(dir: string): boolean {
  return BINARIES.every((b) => isExecutable(join(dir, b)));
}

/** The folder holding initdb, pg_ctl and postgres, or undefined when PostgreSQL is not installed. */
export function findPostgresBinDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && hasAll(dir)) return dir;
  }
  let majors: string[] = [];
  try {
    majors = readdirSync(DEBIAN_PG_ROOT);
  } catch {
    return undefined; // no Debian-style install either
  }
  majors.sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  for (const major of majors) {
    const dir = join(DEBIAN_PG_ROOT, major, 'bin');
    if (hasAll(dir)) return dir;
  }
  return undefined;
}

/** A human sentence for skip/fail messages. */
export const POSTGRES_MISSING_MESSAGE =
  `PostgreSQL server binaries (${BINARIES.join(', ')}) were not found on PATH or under ${DEBIAN_PG_ROOT}/*/bin; ` +
  'install PostgreSQL (e.g. the postgresql package) to run the PostgreSQL store tests';

interface RunAs {
  uid: number;
  gid: number;
  name: string;
}

/** When root, the unprivileged account to run PostgreSQL as; undefined otherwise. */
function unprivilegedAccount(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const wanted of ['postgres', 'nobody']) {
    // getent rather than reading the passwd file: accounts may come from NSS (LDAP, sssd).
    const found = spawnSync('getent', ['passwd', wanted], { encoding: 'utf8' });
    const fields = found.status === 0 ? found.stdout.trim().split(':') : [];
    if (fields[2] !== undefined && fields[3] !== undefined) {
      return { name: wanted, uid: Number(fields[2]), gid: Number(fields[3]) };
    }
  }
  throw new Error('running as root, and neither a postgres nor a nobody account exists to run PostgreSQL as');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not find a free port'));
      });
    });
  });
}

function childEnv(binDir: string): NodeJS.ProcessEnv {
  // A small, fixed environment: PG* variables from the developer's shell must not leak in.
  return { PATH: `${binDir}${delimiter}${process.env.PATH ?? ''}`, LANG: 'C', LC_ALL: 'C', TZ: 'UTC' };
}

function run(file: string, args: readonly string[], binDir: string, as: RunAs | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: childEnv(binDir),
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(as ? { uid: as.uid, gid: as.gid } : {}),
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`${file} ${args.join(' ')} exited with ${code}:\n${output}`));
    });
  });
}

/**
 * Starts a fresh cluster, or returns undefined when PostgreSQL is not installed (callers decide
 * whether that skips or fails). Throws when PostgreSQL is installed but will not start.
 */
export async function startTestPostgres(): Promise<TestPostgres | undefined> {
  const binDir = findPostgresBinDir();
  if (!binDir) return undefined;
  const as = unprivilegedAccount();

  const root = mkdtempSync(join(tmpdir(), 'mechanic-pg-'));
  if (as) chownSync(root, as.uid, as.gid);
  const dataDir = join(root, 'data');
  const logFile = join(root, 'postgres.log');
  const pgCtl = join(binDir, 'pg_ctl');

  let stopped = false;
  const stopSync = () => {
    if (stopped) return;
    stopped = true;
    spawnSync(pgCtl, ['-D', dataDir, '-m', 'immediate', '-w', 'stop'], {
      env: childEnv(binDir),
      stdio: 'ignore',
      ...(as ? { uid: as.uid, gid: as.gid } : {}),
    });
    rmSync(root, { recursive: true, force: true });
  };
  // If the test process dies without calling stop(), do not leave a server running.
  process.once('exit', stopSync);

  try {
    await run(
      join(binDir, 'initdb'),
      ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
      binDir,
      as,
    );
    const port = await freePort();
    // Durability is pointless for a throwaway cluster; turning it off makes the tests fast.
    const serverOptions = [
      '-c listen_addresses=127.0.0.1',
      `-p ${port}`,
      `-k '${root}'`,
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
      '-c max_connections=100',
    ].join(' ');
    await run(pgCtl, ['-D', dataDir, '-l', logFile, '-o', serverOptions, '-w', '-t', '60', 'start'], binDir, as);
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    return {
      url,
      async stop() {
        if (stopped) return;
        stopped = true;
        process.removeListener('exit', stopSync);
        try {
          await run(pgCtl, ['-D', dataDir, '-m', 'fast', '-w', 'stop'], binDir, as);
        } finally {
          rmSync(root, { recursive: true, force: true });
        }
      },
    };
  } catch (e) {
    let log = '';
    try {
      log = readFileSync(logFile, 'utf8');
    } catch {
      log = '(no server log)';
    }
    stopSync();
    process.removeListener('exit', stopSync);
    throw new Error(`could not start a test PostgreSQL in ${binDir}: ${(e as Error).message}\n${log}`, { cause: e });
  }
}

/** Creates an empty database on the test cluster and returns its URL, so each test starts clean. */
export async function createTestDatabase(adminUrl: string, name: string): Promise<string> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`unsafe database name ${name}`);
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`create database ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Where a store test puts each case's database: a fresh one per case, on one engine. */
export interface StoreBackend {
  readonly name: 'sqlite' | 'postgres';
  setup(): Promise<void>;
  teardown(): Promise<void>;
  fresh(): Promise<StoreLocation>;
}

/** A SQLite file per case under one temp folder; `fileOf` says where in it case `n` lives. */
export function sqliteBackend(tempPrefix: string, fileOf: (dir: string, n: number) => string): StoreBackend {
  let dir = '';
  let n = 0;
  return {
    name: 'sqlite',
    setup: () => {
      dir = mkdtempSync(join(tmpdir(), tempPrefix));
      return Promise.resolve();
    },
    teardown: () => {
      if (dir) rmSync(dir, { recursive: true, force: true });
      return Promise.resolve();
    },
    fresh: () => Promise.resolve({ kind: 'sqlite', file: fileOf(dir, ++n) }),
  };
}

/** A database per case (`<databasePrefix>_<n>`) on one throwaway PostgreSQL cluster. */
export function postgresBackend(databasePrefix: string): StoreBackend {
  let server: TestPostgres | undefined;
  let n = 0;
  return {
    name: 'postgres',
    async setup() {
      server = await startTestPostgres();
      if (!server) throw new Error(POSTGRES_MISSING_MESSAGE);
    },
    async teardown() {
      await server?.stop();
    },
    async fresh() {
      if (!server) throw new Error('PostgreSQL did not start');
      return { kind: 'postgres', url: await createTestDatabase(server.url, `${databasePrefix}_${++n}`) };
    },
  };
}

/**
 * The engines a store test runs each case on: SQLite, and PostgreSQL when its binaries are found.
 * Without them, the PostgreSQL half of `what` fails in CI (a missing database must not turn into a
 * silently green run) and is skipped, and said, elsewhere.
 */
export function storeBackends<B extends StoreBackend>(what: string, sqlite: B, postgres: () => B): B[] {
  if (findPostgresBinDir() !== undefined) return [sqlite, postgres()];
  describe(`${what} on postgres`, () => {
    if (process.env.CI) {
      test('PostgreSQL is installed', () => {
        throw new Error(POSTGRES_MISSING_MESSAGE);
      });
    } else {
      console.warn(`skipping the PostgreSQL ${what} tests: ${POSTGRES_MISSING_MESSAGE}`);
      test.skip(`PostgreSQL ${what} tests (${POSTGRES_MISSING_MESSAGE})`, () => undefined);
    }
  });
  return [sqlite];
}
