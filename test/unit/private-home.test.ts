import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { ensurePrivateDir } from '../../src/host.ts';

const made: string[] = [];
afterEach(async () => {
  for (const dir of made.splice(0)) await rm(dir, { recursive: true, force: true });
});
const tempDir = async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'mechanic-home-'));
  made.push(dir);
  return dir;
};
const mode = async (file: string) => (await stat(file)).mode & 0o777;

test('a new home is created owner-only and nothing is reported', async () => {
  const home = path.join(await tempDir(), 'home');
  expect(await ensurePrivateDir(home)).toBeUndefined();
  expect(await mode(home)).toBe(0o700);
});

test('an open home is tightened with everything in it, and its old mode is reported', async () => {
  const home = await tempDir();
  await mkdir(path.join(home, 'logs'), { mode: 0o755 });
  await writeFile(path.join(home, 'logs', 'worker.log'), '', { mode: 0o644 });
  await writeFile(path.join(home, 'audit.db'), '', { mode: 0o644 });
  await chmod(home, 0o755);
  await chmod(path.join(home, 'logs'), 0o755);
  await chmod(path.join(home, 'audit.db'), 0o644);
  await chmod(path.join(home, 'logs', 'worker.log'), 0o644);

  expect(await ensurePrivateDir(home)).toBe(0o755);
  expect(await mode(home)).toBe(0o700);
  expect(await mode(path.join(home, 'logs'))).toBe(0o700);
  expect(await mode(path.join(home, 'audit.db'))).toBe(0o600);
  expect(await mode(path.join(home, 'logs', 'worker.log'))).toBe(0o600);
});

test('a folder everyone may write to is refused rather than taken over', async () => {
  const shared = await tempDir();
  await chmod(shared, 0o1777);
  await expect(ensurePrivateDir(shared)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  expect((await stat(shared)).mode & 0o7777).toBe(0o1777);
});
