import { execFileSync, spawn } from 'node:child_process';
import { chmod, lstat, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { isSameProcess, processIdentity, type ProcessIdentity } from '../../src/embedded/processes.ts';
import { BIN, startDevStack, type DevStack } from '../helpers/cli.ts';

/** Every process `mechanic dev` started (its children: watchdog, Temporal, parts), as they are now. */
function childrenOf(pid: number): ProcessIdentity[] {
  let ps: string;
  try {
    ps = execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' });
  } catch {
    return []; // ps exits 1 when it lists nothing
  }
  return ps
    .split('\n')
    .map((line) => processIdentity(Number(line.trim())))
    .filter((identity): identity is ProcessIdentity => identity !== undefined);
}

const describeProcess = (p: ProcessIdentity) => `${p.pid} ${p.argv.join(' ').slice(0, 100)}`;

/** Waits until none of `processes` runs any more; fails naming those still there. */
async function untilAllGone(processes: readonly ProcessIdentity[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const alive = processes.filter(isSameProcess);
    if (alive.length === 0) return;
    if (Date.now() > deadline) throw new Error(`still running:\n${alive.map(describeProcess).join('\n')}`);
    await sleep(200);
  }
}

async function untilFound<T>(what: string, find: () => T | undefined, timeoutMs = 180_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Every file and folder under `dir` (not following links), with its permission bits. */
async function modesUnder(dir: string): Promise<{ file: string; mode: number }[]> {
  const found: { file: string; mode: number }[] = [];
  for (const entry of await readdir(dir)) {
    const file = path.join(dir, entry);
    // SQLite's journal files come and go while the stack runs.
    const info = await lstat(file).catch(() => undefined);
    if (info === undefined || info.isSymbolicLink()) continue;
    found.push({ file, mode: info.mode & 0o777 });
    if (info.isDirectory()) found.push(...(await modesUnder(file)));
  }
  return found;
}

/**
 * No child outlives `mechanic dev`, however it dies, and a start clears what a killed stack left behind — only
 * what it can prove is its own. One home throughout, as a person restarting in the same folder would have.
 */
describe('the embedded stack’s supervisor', () => {
  let home: string;
  let stack: DevStack | undefined;
  const strangers: { kill(): void }[] = [];
  const start = async (extraEnv: NodeJS.ProcessEnv = {}) => {
    stack = await startDevStack({ MECHANIC_HOME: home, ...extraEnv });
    return stack;
  };

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'mechanic-supervisor-'));
  });
  afterAll(async () => {
    for (const s of strangers) s.kill();
    if (stack) await stack.stop(); // removes the home too
    await rm(home, { recursive: true, force: true });
  });

  test('a stack SIGKILLed while starting leaves nothing running', async () => {
    const env = {
      ...process.env,
      TEMPORAL_CLI: inject('temporalCli'),
      MECHANIC_HOME: home,
      TEMPORAL_ADDRESS: '127.0.0.1:0',
      TEMPORAL_UI_PORT: '0',
      MECHANIC_API_PORT: '0',
      MECHANIC_DEVFLEET_PORT: '0',
    };
    const dev = spawn(process.execPath, [BIN, 'dev', '--no-tui'], { env, stdio: 'ignore' });
    const exited = new Promise((resolve) => dev.once('exit', resolve));
    // The worker is among the last to start: by then Temporal and devfleet run, and the worker is mid-start-up.
    const children = await untilFound('mechanic dev to start its worker', () => {
      const now = childrenOf(dev.pid!);
      return now.some((p) => p.argv.at(-1) === 'worker') ? now : undefined;
    });
    expect(children.some((p) => p.argv.includes('start-dev'))).toBe(true);
    dev.kill('SIGKILL');
    await exited;
    await untilAllGone(children);
  }, 240_000);

  test('a stale process table naming strangers neither blocks a start nor costs them; the open home is made private', async () => {
    // A process that reuses a recorded pid: same pid, but not the command line that was recorded.
    const stranger = spawn('sleep', ['600'], { stdio: 'ignore' });
    strangers.push({ kill: () => stranger.kill('SIGKILL') });
    const real = processIdentity(stranger.pid!)!;
    const reused = { ...real, argv: [process.execPath, BIN, 'dev', '--no-tui'] };
    await writeFile(
      path.join(home, 'processes.json'),
      JSON.stringify({ supervisor: reused, children: { temporal: { ...real, argv: ['temporal', 'server'] } } }),
    );
    await chmod(home, 0o755);

    const s = await start();
    expect(isSameProcess(real)).toBe(true);
    expect(s.output()).toMatch(/could be read by other users \(mode 0755\).*now owner-only \(0700\)/);
    expect((await stat(home)).mode & 0o777).toBe(0o700);
    const open = (await modesUnder(home)).filter(({ mode }) => (mode & 0o077) !== 0);
    expect(open.map(({ file, mode }) => `${path.relative(home, file)} ${mode.toString(8)}`)).toEqual([]);
    expect((await modesUnder(home)).map(({ file }) => path.basename(file))).toEqual(
      expect.arrayContaining(['audit.db', 'temporal.db', 'stack.json', 'processes.json', 'worker.log']),
    );
  }, 180_000);

  test('a running stack SIGKILLed takes every child with it', async () => {
    const s = stack!;
    const children = childrenOf(s.process.pid!);
    expect(children.map((p) => p.argv.at(-1))).toEqual(expect.arrayContaining(['devfleet', 'idp', 'worker', 'server']));
    expect(children.some((p) => p.argv.includes('start-dev'))).toBe(true);
    s.process.kill('SIGKILL');
    await untilAllGone(children);
    stack = undefined;
  });

  test('with its watchdog killed too, the next start stops the leftovers and takes their port', async () => {
    const first = await start();
    const children = childrenOf(first.process.pid!);
    const watchdog = children.find((p) => p.argv.some((a) => a.endsWith('watchdog.ts')));
    const temporal = children.find((p) => p.argv.includes('start-dev'));
    expect(watchdog).toBeDefined();
    expect(temporal).toBeDefined();
    // All frozen first, so none can act on the supervisor's death: this is what a start finds after a machine-wide
    // kill that spared the children (e.g. an OOM kill of the supervisor and its watchdog).
    for (const p of children) process.kill(p.pid, 'SIGSTOP');
    first.process.kill('SIGKILL');
    process.kill(watchdog!.pid, 'SIGKILL');
    await untilAllGone([watchdog!]);
    expect(children.filter(isSameProcess)).toHaveLength(children.length - 1);

    const second = await start({ TEMPORAL_ADDRESS: first.info.temporalAddress });
    expect(second.output()).toMatch(
      /stopped what an earlier mechanic stack .* left running: .*Temporal dev server \(pid \d+\)/,
    );
    expect(second.info.temporalAddress).toBe(first.info.temporalAddress);
    expect(children.filter(isSameProcess)).toEqual([]);
    const started = childrenOf(second.process.pid!);
    const code = await second.stop();
    stack = undefined;
    expect(code).toBe(0);
    await untilAllGone(started);
  }, 300_000);
});
