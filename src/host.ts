import { chmod, lstat, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UserError } from './core/errors.ts';

/** Whether a process with this pid exists on this host (EPERM: it does, owned by someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Writes a file only its owner can read, through a temp file and a rename, so a crash never
 * leaves a half-written secret (key, token, credentials) behind.
 */
export async function writePrivateFile(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}

/** The trimmed content of a private file, made with `make()` the first time. */
export async function readOrCreatePrivateFile(file: string, make: () => string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    const value = make();
    await writePrivateFile(file, `${value}\n`);
    return value;
  }
}

/**
 * Makes `dir` (MECHANIC_HOME) a folder only its owner can enter, creating it if need be. A folder that others could
 * read or enter is tightened, together with everything in it (symbolic links are not followed), and its old mode is
 * returned so the caller can say so; undefined when there was nothing to tighten.
 */
export async function ensurePrivateDir(dir: string): Promise<number | undefined> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const mode = (await lstat(dir)).mode & 0o7777;
  if ((mode & 0o077) === 0) return undefined;
  // A shared folder (/tmp), the filesystem root or a user's home is nobody's state folder: tightening it, and all in
  // it, would break everything else that uses it.
  const resolved = path.resolve(dir);
  if ((mode & 0o002) !== 0 || resolved === path.parse(resolved).root || resolved === path.resolve(os.homedir())) {
    throw new UserError(
      'CONFIG_INVALID',
      `MECHANIC_HOME is ${resolved}, a folder others use too; point it at a folder of mechanic's own (default .mechanic)`,
    );
  }
  await tighten(dir);
  return mode & 0o777;
}

async function tighten(file: string): Promise<void> {
  const info = await lstat(file);
  if (info.isSymbolicLink()) return;
  if ((info.mode & 0o077) !== 0) await chmod(file, info.mode & 0o7700);
  if (info.isDirectory()) for (const entry of await readdir(file)) await tighten(path.join(file, entry));
}
