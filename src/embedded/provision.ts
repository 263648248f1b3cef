import { spawn } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, chmod, mkdir, mkdtemp, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { UserError } from '../core/errors.ts';
import { isAlive } from '../host.ts';

/**
 * The Temporal CLI version mechanic runs its embedded dev server with. v1.5.1 is the newest tag whose go.mod has no
 * `replace` directives, which `go install module@version` refuses.
 */
export const TEMPORAL_CLI_VERSION = '1.5.1';
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';

export interface ProvisionOptions {
  /** Environment to read TEMPORAL_CLI, PATH, HOME and XDG_CACHE_HOME from, and to run Go with. */
  env?: NodeJS.ProcessEnv;
  /** Where built binaries are kept. Default: `$XDG_CACHE_HOME/mechanic`, else `~/.cache/mechanic`. */
  cacheDir?: string;
  /** Receives human-readable progress lines while building or downloading (minutes, the first time). */
  onProgress?: (line: string) => void;
  /** Whether the SDK's download from temporal.download may be tried as the last resort. Default true. */
  allowDownload?: boolean;
}

const EXE = process.platform === 'win32' ? '.exe' : '';
const PROGRESS_EVERY_MS = 15_000;
const LOCK_POLL_MS = 500;
/** A build that holds the lock longer than this is presumed dead even if its pid was reused. */
const LOCK_STALE_MS = 45 * 60_000;
const GO_BUILD_TIMEOUT_MS = 30 * 60_000;

/**
 * Finds the `temporal` CLI binary, building or downloading it if needed, in the order DESIGN.md fixes:
 * `TEMPORAL_CLI` → `temporal` on PATH → the cache → `go install` into the cache → the SDK's own download.
 *
 * A cache hit costs a few `stat` calls. Building is guarded by a lock file so concurrent callers (vitest workers, two
 * terminals) build once: the others wait and then use the result. Binaries are built into a temporary directory and
 * renamed into the cache, so an interrupted build never leaves a half-written binary where the next call would run it.
 */
export async function findTemporalCli(opts: ProvisionOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const progress = opts.onProgress ?? (() => {});

  const fromEnv = env['TEMPORAL_CLI'];
  if (fromEnv !== undefined && fromEnv !== '') {
    if (await isExecutableFile(fromEnv)) return path.resolve(fromEnv);
    throw new UserError(
      'TEMPORAL_CLI_UNAVAILABLE',
      `TEMPORAL_CLI is set to "${fromEnv}", which is not an executable file; point it at a temporal binary or unset it.`,
    );
  }

  const onPath = await findOnPath('temporal', env);
  if (onPath !== undefined) return onPath;

  const cacheDir = opts.cacheDir ?? defaultCacheDir(env);
  const cached = cachedCliPath(cacheDir);
  if (await isExecutableFile(cached)) return cached;

  return withBuildLock(cacheDir, cached, progress, async () => {
    const failures: string[] = [];
    const go = await findOnPath('go', env);
    if (go === undefined) {
      failures.push('Go is not installed (no `go` on PATH)');
    } else {
      const built = await buildWithGo(go, cacheDir, cached, env, progress);
      if (built.ok) return cached;
      failures.push(`the Go build failed (${built.reason})`);
    }
    if (opts.allowDownload ?? true) {
      const downloaded = await downloadWithSdk(cacheDir, cached, progress);
      if (downloaded.ok) return cached;
      failures.push(`the download through the Temporal SDK failed (${downloaded.reason})`);
    } else {
      failures.push('downloading is disabled');
    }
    throw new UserError(
      'TEMPORAL_CLI_UNAVAILABLE',
      `Could not get the temporal CLI v${TEMPORAL_CLI_VERSION}: it is not on PATH or in the cache, ${failures.join(', and ')}; ` +
        `install Go (https://go.dev/dl/) with access to its module proxy, or set TEMPORAL_CLI to a temporal binary.`,
    );
  });
}

/** Where a provisioned CLI lives inside `cacheDir`. */
export function cachedCliPath(cacheDir: string): string {
  return path.join(cacheDir, `temporal-v${TEMPORAL_CLI_VERSION}`, `temporal${EXE}`);
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env['XDG_CACHE_HOME'];
  const base = xdg !== undefined && path.isAbsolute(xdg) ? xdg : path.join(env['HOME'] ?? os.homedir(), '.cache');
  return path.join(base, 'mechanic');
}

async function isExecutableFile(file: string): Promise<boolean> {
  try {
    if (!(await stat(file)).isFile()) return false;
    await access(file, fsConstants.X_OK);
    return true;
  } catch {
    // Missing or not executable both mean "not usable here"; callers fall through to the next source.
    return false;
  }
}

async function findOnPath(name: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  for (const dir of (env['PATH'] ?? '').split(path.delimiter)) {
    // An empty PATH entry means the current directory, which we do not want to execute from.
    if (dir === '' || !path.isAbsolute(dir)) continue;
    const candidate = path.join(dir, name + EXE);
    if (await isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

type Attempt = { ok: true } | { ok: false; reason: string };

/**
 * `go install module@version` with GOBIN set to a fresh temporary directory inside the cache (same filesystem, so
 * the final rename is atomic). Go's own output ("go: downloading …") is forwarded, plus a heartbeat line every 15 s
 * because compiling prints nothing for minutes.
 */
async function buildWithGo(
  go: string,
  cacheDir: string,
  target: string,
  env: NodeJS.ProcessEnv,
  progress: (line: string) => void,
): Promise<Attempt> {
  const spec = `${TEMPORAL_CLI_MODULE}@v${TEMPORAL_CLI_VERSION}`;
  const gobin = await mkdtemp(path.join(cacheDir, `.temporal-v${TEMPORAL_CLI_VERSION}-build-`));
  progress(
    `Building the temporal CLI v${TEMPORAL_CLI_VERSION} with Go (go install ${spec}). ` +
      'This takes a few minutes the first time; the result is cached for later runs.',
  );
  const started = Date.now();
  try {
    const result = await runStreaming(go, ['install', spec], { ...env, GOBIN: gobin }, progress, GO_BUILD_TIMEOUT_MS);
    if (!result.ok) return { ok: false, reason: `${result.reason}${tailForMessage(result.tail)}` };
    const built = path.join(gobin, `temporal${EXE}`);
    if (!(await isExecutableFile(built))) return { ok: false, reason: 'go install finished but produced no binary' };
    await mkdir(path.dirname(target), { recursive: true });
    await rename(built, target);
    progress(`Built the temporal CLI in ${formatElapsed(Date.now() - started)}.`);
    return { ok: true };
  } finally {
    await rm(gobin, { recursive: true, force: true });
  }
}

/**
 * The Temporal SDK's own download (`@temporalio/testing` `cached-download`, done by sdk-core from temporal.download).
 * sdk-core only downloads as part of starting a server, so start one, stop it, and keep the binary it left behind.
 */
async function downloadWithSdk(cacheDir: string, target: string, progress: (line: string) => void): Promise<Attempt> {
  const downloadDir = await mkdtemp(path.join(cacheDir, `.temporal-v${TEMPORAL_CLI_VERSION}-download-`));
  progress(`Downloading the temporal CLI v${TEMPORAL_CLI_VERSION} through the Temporal SDK…`);
  const started = Date.now();
  const ticker = setInterval(() => {
    progress(`  still downloading the temporal CLI (${formatElapsed(Date.now() - started)} elapsed)`);
  }, PROGRESS_EVERY_MS);
  ticker.unref();
  let startError: unknown;
  try {
    // Imported lazily: it loads the native Temporal core, which nothing else here needs.
    const { TestWorkflowEnvironment } = await import('@temporalio/testing');
    try {
      const testEnv = await TestWorkflowEnvironment.createLocal({
        server: { executable: { type: 'cached-download', downloadDir, version: `v${TEMPORAL_CLI_VERSION}` } },
      });
      await testEnv.teardown();
    } catch (error) {
      // The download may have succeeded even if the server then failed its 5 s start deadline; check the file.
      startError = error;
    }
    const downloaded = path.join(downloadDir, `temporal-v${TEMPORAL_CLI_VERSION}${EXE}`);
    if (!(await isExecutableFile(downloaded))) {
      const message = startError instanceof Error ? startError.message : 'no binary was downloaded';
      return { ok: false, reason: firstLine(message) };
    }
    await mkdir(path.dirname(target), { recursive: true });
    await chmod(downloaded, 0o755);
    await rename(downloaded, target);
    progress(`Downloaded the temporal CLI in ${formatElapsed(Date.now() - started)}.`);
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: firstLine(error instanceof Error ? error.message : String(error)) };
  } finally {
    clearInterval(ticker);
    await rm(downloadDir, { recursive: true, force: true });
  }
}

interface LockOwner {
  pid: number;
  host: string;
  startedAt: number;
}

/**
 * Runs `provision` while holding `<cacheDir>/temporal-vX.lock`, unless another process holds it, in which case this
 * waits until that process has put the binary in the cache (or has given up, in which case this one tries).
 * The lock is an optimisation, not what keeps the cache sound: binaries only ever arrive there by atomic rename.
 */
async function withBuildLock(
  cacheDir: string,
  cached: string,
  progress: (line: string) => void,
  provision: () => Promise<string>,
): Promise<string> {
  await mkdir(cacheDir, { recursive: true });
  const lockFile = path.join(cacheDir, `temporal-v${TEMPORAL_CLI_VERSION}.lock`);
  const me: LockOwner = { pid: process.pid, host: os.hostname(), startedAt: Date.now() };
  const waitStarted = Date.now();
  let lastNotice = 0;
  for (;;) {
    if (await isExecutableFile(cached)) return cached;
    try {
      await writeFile(lockFile, JSON.stringify(me), { flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = await readLockOwner(lockFile);
      if (await isStale(lockFile, owner)) {
        await unlink(lockFile).catch(() => {
          // Another waiter removed it first; either way the next pass tries to take it.
        });
        continue;
      }
      if (Date.now() - lastNotice >= PROGRESS_EVERY_MS) {
        lastNotice = Date.now();
        const who = owner === undefined ? 'another process' : `another process (pid ${owner.pid})`;
        progress(
          `Waiting for ${who} that is fetching the temporal CLI (${formatElapsed(Date.now() - waitStarted)} so far)…`,
        );
      }
      await sleep(LOCK_POLL_MS);
      continue;
    }
    try {
      // Someone may have finished between our cache check and taking the lock.
      if (await isExecutableFile(cached)) return cached;
      return await provision();
    } finally {
      const owner = await readLockOwner(lockFile);
      if (owner?.pid === me.pid && owner.startedAt === me.startedAt) {
        await unlink(lockFile).catch(() => {
          // Already gone (judged stale by a waiter); nothing left to release.
        });
      }
    }
  }
}

async function readLockOwner(lockFile: string): Promise<LockOwner | undefined> {
  try {
    const parsed: unknown = JSON.parse(await readFile(lockFile, 'utf8'));
    if (
      typeof parsed === 'object' &&
      parsed !== null &&
      typeof (parsed as LockOwner).pid === 'number' &&
      typeof (parsed as LockOwner).host === 'string' &&
      typeof (parsed as LockOwner).startedAt === 'number'
    ) {
      return parsed as LockOwner;
    }
    return undefined;
  } catch {
    // Missing, or caught between create and write: treated as "unknown owner" by the caller.
    return undefined;
  }
}

async function isStale(lockFile: string, owner: LockOwner | undefined): Promise<boolean> {
  if (owner === undefined) {
    // An unreadable lock is normal for the instant between its creation and its write; only an old one is junk.
    try {
      return Date.now() - (await stat(lockFile)).mtimeMs > 10_000;
    } catch {
      // Gone already: not stale, just released; the caller's next pass sees that.
      return false;
    }
  }
  if (Date.now() - owner.startedAt > LOCK_STALE_MS) return true;
  // A pid can only be checked on its own host; a lock from another host (shared home) waits for the age limit.
  return owner.host === os.hostname() && !isAlive(owner.pid);
}

interface RunResult {
  ok: boolean;
  reason: string;
  tail: string[];
}

function runStreaming(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  progress: (line: string) => void,
  timeoutMs: number,
): Promise<RunResult> {
  return new Promise((resolve) => {
    const started = Date.now();
    const tail: string[] = [];
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const onLine = (line: string): void => {
      if (line.trim() === '') return;
      tail.push(line);
      if (tail.length > 20) tail.shift();
      progress(`  ${line}`);
    };
    createInterface({ input: child.stdout }).on('line', onLine);
    createInterface({ input: child.stderr }).on('line', onLine);
    const ticker = setInterval(() => {
      progress(`  still building the temporal CLI (${formatElapsed(Date.now() - started)} elapsed)`);
    }, PROGRESS_EVERY_MS);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    const finish = (result: RunResult): void => {
      clearInterval(ticker);
      clearTimeout(timer);
      resolve(result);
    };
    child.once('error', (error) => finish({ ok: false, reason: error.message, tail }));
    child.once('close', (code, signal) => {
      if (code === 0) finish({ ok: true, reason: '', tail });
      else if (timedOut) finish({ ok: false, reason: `gave up after ${formatElapsed(timeoutMs)}`, tail });
      else
        finish({ ok: false, reason: signal !== null ? `go was killed by ${signal}` : `go exited with ${code}`, tail });
    });
  });
}

function tailForMessage(tail: string[]): string {
  const last = tail.slice(-3).map((line) => line.trim());
  return last.length === 0 ? '' : `: ${last.join(' | ')}`;
}

function firstLine(text: string): string {
  return (text.split('\n', 1)[0] ?? '').trim();
}

export function formatElapsed(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  return `${Math.floor(seconds / 60)}m ${String(seconds % 60).padStart(2, '0')}s`;
}
