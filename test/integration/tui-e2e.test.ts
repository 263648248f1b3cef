import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { chmod, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { buildTuiCache, tuiCacheDir } from '../../cli/tui/bundle-cache.ts';
import { getFreePort } from '../../src/embedded/ports.ts';
import { isAlive } from '../../src/host.ts';
import { createApiClient } from '../../src/api/client.ts';
import { runCli, startDevStack, type DevStack } from '../helpers/cli.ts';
import { KEYS, spawnTui, type TuiSession } from '../helpers/pty.ts';

let stack: DevStack;
let tui: TuiSession | undefined;
/** The TUI's compiled cache lives here, not in the user's cache directory. */
let cacheHome: string;
/** The stack's environment with that cache: what the TUI tests run `mechanic` with. */
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  stack = await startDevStack();
  cacheHome = await mkdtemp(path.join(tmpdir(), 'mechanic-tui-cache-'));
  env = { ...stack.env, XDG_CACHE_HOME: cacheHome };
  // The end-to-end run drives what users start: the compiled TUI.
  await buildTuiCache(tuiCacheDir(env));
});

afterAll(async () => {
  await tui?.stop();
  await stack?.stop();
  if (cacheHome) await rm(cacheHome, { recursive: true, force: true });
});

async function tokenOf(user: string): Promise<string> {
  const file = JSON.parse(await readFile(path.join(stack.home, 'users.json'), 'utf8')) as {
    users: { id: string; token: string }[];
  };
  return file.users.find((u) => u.id === user)!.token;
}

test('the TUI launches a run, follows it through another user’s approval to its end, and its summary matches mechanic status', async () => {
  tui = spawnTui(['--as', 'alice'], env, { cols: 100, rows: 32 });
  const s = tui;
  // Catalog → form.
  await s.waitFor('deploy-web v1', 'the catalog', 30_000);
  expect(s.bufferType()).toBe('alternate');
  expect(s.screen()).toContain('alice (operator');
  await s.waitFor('● live', 'the live stream');
  await s.type('/deploy-web');
  s.write(KEYS.enter); // ends the filter
  await s.waitFor(/› deploy-web v1/, 'deploy-web selected');
  await s.press(KEYS.enter, 'Launch deploy-web v1', 'the launch form');
  /** Moves the form's focus down to `field`, one key at a time, each move seen on screen. */
  const focus = async (field: string) => {
    const focused = () => /^› (\S+)/m.exec(s.screen())?.[1];
    for (let moves = 0; focused() !== field; moves++) {
      if (moves > 8) throw new Error(`no field "${field}" in the form:\n${s.screen()}`);
      const before = focused();
      s.write(KEYS.down);
      await s.waitFor(() => focused() !== before, `the focus leaving ${before}`);
    }
  };
  await focus('release');
  // An invalid value never leaves the form.
  await s.type('latest');
  await s.waitFor('must match', 'the field error');
  for (let i = 0; i < 6; i++) s.write('\u007f');
  await s.type('v1.4.2');
  await s.waitFor(/\[x\] web-1.*\[x\] web-2/, 'the resolved targets');
  await focus('reason');
  await s.type('ship the login fix');
  s.write(KEYS.down);
  await s.waitFor('ready: Enter plans it', 'a valid form');
  // Form → plan → submit.
  let screen = await s.press(KEYS.enter, 'Plan review', 'the plan review');
  expect(screen).toContain('runs as      arn:aws:iam::123456789012:role/mechanic-runner');
  expect(screen).toMatch(/targets {6}2: web-1 \(i-\w+\), web-2 \(i-\w+\)/);
  await s.press(KEYS.enter, 'Submit this plan for approval?', 'the confirmation');
  screen = await s.press('y', 'Waiting for approval', 'the live run');
  expect(screen).toContain('you requested this run; someone else must approve it');
  const id = /\b(mx-[a-z0-9]{10})\b/.exec(screen)![1]!;

  // Another user approves through the API.
  const bob = createApiClient({ url: stack.info.apiUrl, token: await tokenOf('bob'), channel: 'api' });
  const { execution } = await bob.call('getExecution', { params: { id } });
  await bob.call('vote', {
    params: { id },
    body: { decision: 'approve', planDigest: execution.planDigest, comment: 'ok' },
  });

  // The live view shows each step reach its end, then the summary.
  const stepDone = (step: string) => new RegExp(`✓ ${step} +\\[█+\\] 2/2 succeeded`);
  const steps = ['preflight', 'install', 'switch', 'verify'];
  screen = await s.waitFor(
    (x) => x.includes('4 of 4 steps succeeded') && steps.every((step) => stepDone(step).test(x)),
    'the summary and every step at its end',
    120_000,
  );
  expect(screen).toMatch(/✓ completed · 4 of 4 steps succeeded · approved by bob/);

  const status = await runCli(['status', id, '--json', '--as', 'alice'], stack.env);
  expect(status.code).toBe(0);
  const view = JSON.parse(status.stdout) as {
    status: string;
    approval: { approvedBy: string[] };
    steps: { name: string; status: string; phase: string }[];
  };
  expect(view.status).toBe('completed');
  expect(view.approval.approvedBy).toEqual(['bob']);
  for (const step of view.steps.filter((x) => x.phase === 'main')) {
    expect(screen).toMatch(new RegExp(`✓ ${step.name} +\\[█+\\] 2/2 ${step.status}`));
  }

  // Resized to 80×24, the run still fits: its summary and the key map are on screen, no row wraps.
  s.resize(80, 24);
  screen = await s.waitFor((x) => x.includes('4 of 4 steps succeeded') && /q\/Esc back/.test(x), 'the run at 80×24');
  expect(screen.split('\n')).toHaveLength(24);
  expect(screen.split('\n')[0]).toMatch(/^mechanic · alice/);

  // The output of one instance, then back out and quit: the terminal is restored.
  s.write(KEYS.down);
  s.write(KEYS.enter);
  screen = await s.waitFor('Output of preflight', 'the output pane');
  expect(screen).toMatch(/host web-\d ready for v1\.4\.2/);
  // One q closes the pane and only the pane: the run is in front again, then the next q backs out.
  s.write('q');
  await s.waitFor((x) => x.includes('4 of 4 steps succeeded') && !x.includes('Output of'), 'the run again');
  expect(s.screen()).not.toContain('runs you requested');
  s.write('q');
  await s.waitFor((x) => x.includes('runs you requested') && x.includes(id), 'my runs, with this run');
  // Ctrl-C quits from anywhere, even while typing in a field, and restores the terminal.
  s.write('1');
  await s.type('/deploy-web');
  s.write(KEYS.enter);
  await s.waitFor(/› deploy-web v1/, 'the catalog again, filtered');
  await s.press(KEYS.enter, 'Launch deploy-web v1', 'the form again');
  await s.type('v9');
  await s.waitFor('v9', 'the typed value');
  s.write(KEYS.ctrlC);
  const exit = await s.exited;
  expect(exit.exitCode).toBe(0);
  await s.flush();
  expect(s.bufferType()).toBe('normal');
}, 300_000);

test('mechanic dev (npm start) opens the TUI on the stack it started, after a sign-in picker; quitting stops the stack', async () => {
  const home = await mkdtemp(path.join(tmpdir(), 'mechanic-tui-dev-'));
  const devEnv: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_CLI: inject('temporalCli'),
    MECHANIC_HOME: home,
    TEMPORAL_ADDRESS: `127.0.0.1:${await getFreePort()}`,
    TEMPORAL_UI_PORT: String(await getFreePort()),
    MECHANIC_API_PORT: '0',
    MECHANIC_DEVFLEET_PORT: '0',
    // The TUI it opens rebuilds its compiled cache here, not in the user's cache directory.
    XDG_CACHE_HOME: home,
  };
  delete devEnv['MECHANIC_API_URL'];
  delete devEnv['MECHANIC_TOKEN'];
  const dev = spawnTui(['dev'], devEnv, { cols: 80, rows: 24 });
  try {
    await dev.waitFor('Sign in to mechanic as a demo user', 'the picker', 180_000);
    dev.write(KEYS.down); // bob
    dev.write(KEYS.enter);
    const screen = await dev.waitFor('deploy-web v1', 'the catalog');
    expect(screen).toContain('bob (approver, author)');
    // The stack's notices go to a file, not over the screen.
    expect(screen).not.toContain('starting worker');
    const table = JSON.parse(await readFile(path.join(home, 'processes.json'), 'utf8')) as {
      children: Record<string, { pid: number }>;
    };
    const children = Object.values(table.children).map((c) => c.pid);
    expect(children.length).toBeGreaterThanOrEqual(4); // Temporal, devfleet, worker, server
    dev.write('q');
    const exit = await dev.exited;
    expect(exit.exitCode).toBe(0);
    expect(dev.screen()).toContain('stopping the stack');
    // Every part it started is gone (a zombie not yet reaped by init counts as gone).
    const running = children.filter((pid) => isAlive(pid) && !isZombie(pid));
    expect(running.map((pid) => `${pid}: ${describeProcess(pid)}`)).toEqual([]);
    await expect(readFile(path.join(home, 'logs', 'server.log'), 'utf8')).resolves.toContain('ready');
  } finally {
    await dev.stop();
    await rm(home, { recursive: true, force: true });
  }
}, 300_000);

test('mechanic starts the compiled TUI only from a fresh cache of its own; otherwise from the sources, which rebuild it', async () => {
  const home = await mkdtemp(path.join(tmpdir(), 'mechanic-tui-cold-'));
  const cold: NodeJS.ProcessEnv = { ...stack.env, XDG_CACHE_HOME: home };
  const dir = tuiCacheDir(cold);
  /** Starts the TUI, reads where it says it runs from (the help overlay), and quits. */
  const startedFrom = async (whileOpen?: () => Promise<void>): Promise<'compiled' | 'sources'> => {
    const s = spawnTui(['--as', 'alice'], cold, { cols: 100, rows: 32 });
    try {
      await s.waitFor('● live', 'the TUI');
      const screen = await s.press('?', /Running (the compiled TUI|from the sources)/, 'the help');
      s.write(KEYS.esc);
      await s.waitFor((x) => !x.includes('Help —'), 'the help closed');
      await whileOpen?.();
      s.write('q');
      expect((await s.exited).exitCode).toBe(0);
      return screen.includes('Running the compiled TUI') ? 'compiled' : 'sources';
    } finally {
      await s.stop();
    }
  };
  try {
    // No cache: the sources run, and build the cache in the background for the next start.
    const manifest = path.join(dir, 'manifest.json');
    const built = async () => {
      for (let i = 0; !(await readFile(manifest, 'utf8').catch(() => '')); i++) {
        if (i > 1200) throw new Error('the TUI never wrote its compiled cache');
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    expect(await startedFrom(built)).toBe('sources');
    expect(await startedFrom()).toBe('compiled');
    // A cache others may write is never loaded (it is code this user would run).
    await chmod(dir, 0o770);
    expect(await startedFrom()).toBe('sources');
    await chmod(dir, 0o700);
    expect(await startedFrom()).toBe('compiled');
    // A cache whose key no longer matches its inputs is stale: the sources run.
    const m = JSON.parse(await readFile(manifest, 'utf8')) as { digest: string };
    await writeFile(manifest, JSON.stringify({ ...m, digest: '0'.repeat(64) }), { mode: 0o600 });
    expect(await startedFrom()).toBe('sources');
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}, 300_000);

function isZombie(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function describeProcess(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '(gone)';
  }
}
