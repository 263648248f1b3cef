import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { getFreePort } from '../../src/embedded/ports.ts';
import { isAlive } from '../../src/host.ts';
import { createApiClient } from '../../src/api/client.ts';
import { runCli, startDevStack, type DevStack } from '../helpers/cli.ts';
import { KEYS, spawnTui, type TuiSession } from '../helpers/pty.ts';

let stack: DevStack;
let tui: TuiSession | undefined;

beforeAll(async () => {
  stack = await startDevStack();
});

afterAll(async () => {
  await tui?.stop();
  await stack?.stop();
});

/** A person reads a new screen before typing: its key handlers are in place by then. */
const settle = () => new Promise((r) => setTimeout(r, 200));

async function tokenOf(user: string): Promise<string> {
  const file = JSON.parse(await readFile(path.join(stack.home, 'users.json'), 'utf8')) as {
    users: { id: string; token: string }[];
  };
  return file.users.find((u) => u.id === user)!.token;
}

test('the TUI launches a run, follows it through another user’s approval to its end, and its summary matches mechanic status', async () => {
  tui = spawnTui(['--as', 'alice'], stack.env, { cols: 100, rows: 32 });
  const s = tui;
  // Catalog → form.
  await s.waitFor('deploy-web v1', 'the catalog', 30_000);
  expect(s.bufferType()).toBe('alternate');
  expect(s.screen()).toContain('alice (operator');
  await s.waitFor('● live', 'the live stream');
  await s.press(KEYS.enter, 'Launch deploy-web v1', 'the launch form');
  await settle();
  // An invalid value never leaves the form.
  await s.type('latest');
  await s.waitFor('must match', 'the field error');
  for (let i = 0; i < 6; i++) s.write('\u007f');
  await s.type('v1.4.2');
  await s.waitFor(/\[x\] web-1.*\[x\] web-2/, 'the resolved targets');
  s.write(KEYS.down); // note
  s.write(KEYS.down); // targets
  s.write(KEYS.down); // reason
  await s.waitFor(/› reason/, 'the reason field');
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
  screen = await s.waitFor('4 of 4 steps succeeded', 'the summary', 120_000);
  for (const step of ['preflight', 'install', 'switch', 'verify']) {
    expect(screen).toMatch(new RegExp(`✓ ${step} +\\[█+\\] 2/2 succeeded`));
  }
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
  await s.waitFor('Enter launch', 'the catalog again');
  await s.press(KEYS.enter, 'Launch deploy-web v1', 'the form again');
  await settle();
  await s.type('v9');
  s.write(KEYS.ctrlC);
  const exit = await s.exited;
  expect(exit.exitCode).toBe(0);
  await s.flush();
  expect(s.bufferType()).toBe('normal');
}, 300_000);

test('mechanic dev (npm start) opens the TUI on the stack it started, after a sign-in picker; quitting stops the stack', async () => {
  const home = await mkdtemp(path.join(tmpdir(), 'mechanic-tui-dev-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_CLI: inject('temporalCli'),
    MECHANIC_HOME: home,
    TEMPORAL_ADDRESS: `127.0.0.1:${await getFreePort()}`,
    TEMPORAL_UI_PORT: String(await getFreePort()),
    MECHANIC_API_PORT: '0',
    MECHANIC_DEVFLEET_PORT: '0',
  };
  delete env['MECHANIC_API_URL'];
  delete env['MECHANIC_TOKEN'];
  const dev = spawnTui(['dev'], env, { cols: 80, rows: 24 });
  try {
    await dev.waitFor('Sign in to mechanic as a demo user', 'the picker', 180_000);
    await settle();
    dev.write(KEYS.down); // bob
    dev.write(KEYS.enter);
    const screen = await dev.waitFor('deploy-web v1', 'the catalog');
    expect(screen).toContain('bob (approver)');
    // The stack's notices go to a file, not over the screen.
    expect(screen).not.toContain('starting worker');
    const table = JSON.parse(await readFile(path.join(home, 'processes.json'), 'utf8')) as {
      children: Record<string, { pid: number }>;
    };
    const children = Object.values(table.children).map((c) => c.pid);
    expect(children.length).toBeGreaterThanOrEqual(4); // Temporal, devfleet, worker, server
    await settle();
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
