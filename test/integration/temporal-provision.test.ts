// Resolution order of findTemporalCli, with fake executables in temp dirs: no network, no real Go build.
// PATH in these tests holds only temp dirs, so a real `go` or `temporal` on the machine is never found.
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import {
  TEMPORAL_CLI_MODULE,
  TEMPORAL_CLI_VERSION,
  cachedCliPath,
  defaultCacheDir,
  findTemporalCli,
} from '../../src/embedded/provision.ts';

let root: string;
let cacheDir: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'mechanic-provision-'));
  cacheDir = path.join(root, 'cache');
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function fakeExecutable(file: string, body = '#!/bin/sh\nexit 0\n'): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, body);
  await chmod(file, 0o755);
  return file;
}

/**
 * A stand-in for `go` written in Node (so it needs nothing on PATH): logs its call, prints a line like Go does,
 * and after a delay writes `$GOBIN/temporal`, or a half-written one and exit 1 when FAKE_GO_FAIL is set.
 */
async function fakeGo(dir: string): Promise<{ dir: string; log: string }> {
  const log = path.join(root, 'go-calls.jsonl');
  const script = `#!${process.execPath}
const fs = require('node:fs');
const path = require('node:path');
fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify({ args: process.argv.slice(2), gobin: process.env.GOBIN }) + '\\n');
console.error('go: downloading github.com/temporalio/cli v${TEMPORAL_CLI_VERSION}');
setTimeout(() => {
  const out = path.join(process.env.GOBIN, 'temporal');
  if (process.env.FAKE_GO_FAIL) {
    fs.writeFileSync(out, 'half a binary', { mode: 0o755 });
    console.error('compile: out of disk space');
    process.exit(1);
  }
  fs.writeFileSync(out, '#!/bin/sh\\necho built\\n', { mode: 0o755 });
}, Number(process.env.FAKE_GO_DELAY_MS || 200));
`;
  await fakeExecutable(path.join(dir, 'go'), script);
  return { dir, log };
}

async function goCalls(log: string): Promise<{ args: string[]; gobin: string }[]> {
  const text = await readFile(log, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as { args: string[]; gobin: string });
}

describe('resolution order', () => {
  test('TEMPORAL_CLI wins over PATH and the cache', async () => {
    const explicit = await fakeExecutable(path.join(root, 'explicit', 'temporal'));
    const onPath = path.join(root, 'bin');
    await fakeExecutable(path.join(onPath, 'temporal'));
    await fakeExecutable(cachedCliPath(cacheDir));
    const found = await findTemporalCli({ cacheDir, env: { TEMPORAL_CLI: explicit, PATH: onPath } });
    expect(found).toBe(explicit);
  });

  test.each([
    ['a missing file', async () => path.join(root, 'nope', 'temporal')],
    [
      'a file that is not executable',
      async () => {
        const file = path.join(root, 'plain', 'temporal');
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(file, 'not a program');
        return file;
      },
    ],
    [
      'a directory',
      async () => {
        const dir = path.join(root, 'dir', 'temporal');
        await mkdir(dir, { recursive: true });
        return dir;
      },
    ],
  ])('TEMPORAL_CLI pointing at %s is a clear error, not a silent fallback', async (_what, make) => {
    const target = await make();
    await fakeExecutable(cachedCliPath(cacheDir));
    const error = await findTemporalCli({ cacheDir, env: { TEMPORAL_CLI: target, PATH: '' } }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TEMPORAL_CLI_UNAVAILABLE' });
    expect((error as Error).message).toContain(`TEMPORAL_CLI is set to "${target}", which is not an executable file`);
  });

  test('PATH wins over the cache, skipping entries that are not executable files or not absolute', async () => {
    const notExecutable = path.join(root, 'a');
    await mkdir(notExecutable, { recursive: true });
    await writeFile(path.join(notExecutable, 'temporal'), 'data');
    const isDirectory = path.join(root, 'b');
    await mkdir(path.join(isDirectory, 'temporal'), { recursive: true });
    const good = path.join(root, 'c');
    await fakeExecutable(path.join(good, 'temporal'));
    await fakeExecutable(cachedCliPath(cacheDir));
    const PATH = ['relative/bin', notExecutable, isDirectory, good].join(path.delimiter);
    expect(await findTemporalCli({ cacheDir, env: { PATH } })).toBe(path.join(good, 'temporal'));
  });

  test('an empty TEMPORAL_CLI counts as unset', async () => {
    const cached = await fakeExecutable(cachedCliPath(cacheDir));
    expect(await findTemporalCli({ cacheDir, env: { TEMPORAL_CLI: '', PATH: '' } })).toBe(cached);
  });

  test('the cache is used before Go: a cache hit never runs a build', async () => {
    const go = await fakeGo(path.join(root, 'go-bin'));
    const cached = await fakeExecutable(cachedCliPath(cacheDir));
    expect(await findTemporalCli({ cacheDir, env: { PATH: go.dir } })).toBe(cached);
    // What makes a hit fast is that Go is never called, which is checked, not the clock.
    expect(await goCalls(go.log)).toEqual([]);
  });

  test('the default cache is under XDG_CACHE_HOME, else ~/.cache', () => {
    expect(defaultCacheDir({ XDG_CACHE_HOME: path.join(root, 'xdg'), HOME: root })).toBe(
      path.join(root, 'xdg', 'mechanic'),
    );
    expect(defaultCacheDir({ HOME: root })).toBe(path.join(root, '.cache', 'mechanic'));
    // A relative XDG_CACHE_HOME is invalid per the XDG spec and ignored.
    expect(defaultCacheDir({ XDG_CACHE_HOME: 'rel', HOME: root })).toBe(path.join(root, '.cache', 'mechanic'));
  });
});

describe('building with Go', () => {
  test('builds into a temporary GOBIN, moves the binary into the cache, and reports progress', async () => {
    const go = await fakeGo(path.join(root, 'go-bin'));
    const lines: string[] = [];
    const found = await findTemporalCli({
      cacheDir,
      env: { PATH: go.dir },
      allowDownload: false,
      onProgress: (line) => lines.push(line),
    });
    expect(found).toBe(cachedCliPath(cacheDir));
    expect(await readFile(found, 'utf8')).toContain('echo built');

    const calls = await goCalls(go.log);
    expect(calls.map((c) => c.args)).toEqual([['install', `${TEMPORAL_CLI_MODULE}@v${TEMPORAL_CLI_VERSION}`]]);
    // Never straight into the cache, so an interrupted build cannot leave a half-written binary there.
    expect(path.dirname(calls[0]?.gobin ?? '')).toBe(cacheDir);
    expect(calls[0]?.gobin).not.toBe(path.dirname(found));

    expect(lines[0]).toMatch(/takes a few minutes the first time/);
    expect(lines).toContain(`  go: downloading github.com/temporalio/cli v${TEMPORAL_CLI_VERSION}`);
    expect(lines.at(-1)).toMatch(/^Built the temporal CLI in \d+s\.$/);
    // Temp dirs and the lock are gone.
    expect((await readdir(cacheDir)).sort()).toEqual([`temporal-v${TEMPORAL_CLI_VERSION}`]);

    // Second call: a cache hit, no second build.
    expect(await findTemporalCli({ cacheDir, env: { PATH: go.dir } })).toBe(found);
    expect(await goCalls(go.log)).toHaveLength(1);
  });

  test('concurrent callers build once; the others wait for the result', async () => {
    const go = await fakeGo(path.join(root, 'go-bin'));
    const env = { PATH: go.dir, FAKE_GO_DELAY_MS: '1500' };
    const results = await Promise.all([
      findTemporalCli({ cacheDir, env, allowDownload: false }),
      findTemporalCli({ cacheDir, env, allowDownload: false }),
      findTemporalCli({ cacheDir, env, allowDownload: false }),
    ]);
    expect(new Set(results)).toEqual(new Set([cachedCliPath(cacheDir)]));
    expect(await goCalls(go.log)).toHaveLength(1);
  });

  test('a lock left by a dead process does not block the build', async () => {
    const go = await fakeGo(path.join(root, 'go-bin'));
    await mkdir(cacheDir, { recursive: true });
    // A pid far above any default pid_max (4194304 on Linux) cannot be alive.
    await writeFile(
      path.join(cacheDir, `temporal-v${TEMPORAL_CLI_VERSION}.lock`),
      JSON.stringify({ pid: 99_999_999, host: (await import('node:os')).hostname(), startedAt: Date.now() }),
    );
    expect(await findTemporalCli({ cacheDir, env: { PATH: go.dir }, allowDownload: false })).toBe(
      cachedCliPath(cacheDir),
    );
  });

  test('a failed build caches nothing and says why', async () => {
    const go = await fakeGo(path.join(root, 'go-bin'));
    const error = await findTemporalCli({
      cacheDir,
      env: { PATH: go.dir, FAKE_GO_FAIL: '1' },
      allowDownload: false,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TEMPORAL_CLI_UNAVAILABLE' });
    expect((error as Error).message).toMatch(/the Go build failed \(go exited with 1: .*compile: out of disk space\)/);
    expect((error as Error).message).toMatch(/set TEMPORAL_CLI to a temporal binary\.$/);
    // Neither the half-written binary nor the lock or temp dirs remain.
    expect(await readdir(cacheDir)).toEqual([]);
  });

  test('without Go and without downloads, the error says what to install', async () => {
    const error = await findTemporalCli({
      cacheDir,
      env: { PATH: path.join(root, 'empty') },
      allowDownload: false,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TEMPORAL_CLI_UNAVAILABLE' });
    expect((error as Error).message).toMatchInlineSnapshot(
      `"Could not get the temporal CLI v1.5.1: it is not on PATH or in the cache, Go is not installed (no \`go\` on PATH), and downloading is disabled; install Go (https://go.dev/dl/) with access to its module proxy, or set TEMPORAL_CLI to a temporal binary."`,
    );
  });
});
