/**
 * `node --import tsx test/bench/tui.ts`: how the TUI feels, measured on the real `mechanic` in a
 * pseudo-terminal (node-pty + a headless xterm) against a throwaway embedded stack. Not a test:
 * it reports numbers against the goals of issue 6, it does not fail on them.
 *
 *   first frame     spawn of `mechanic tui --as alice` → the first frame on screen (the screen is
 *                   taken and says "starting", before React and ink load), → the first full frame
 *                   (header with the stream state, footer), and → the catalog listed (the API
 *                   answered). Goal: first frame < 700 ms.
 *   key → frame     one key press (j/k in "My runs") → the frame that shows the cursor moved,
 *                   while 50 runs are launched, approved and run (their events streaming in).
 *                   Goal: < 50 ms.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as pty from 'node-pty';
import xterm from '@xterm/headless';
import { loadConfig } from '../../src/config.ts';
import { startStack, throwawayStackEnv } from '../../src/embedded/stack.ts';
import { connectApi } from '../../cli/api.ts';
import { BIN } from '../helpers/cli.ts';

process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';

const COLS = 100;
const ROWS = 30;
const RUNS = 50;

interface Session {
  screen(): string;
  write(keys: string): void;
  /** Resolves with the time (performance.now) of the output that first made `test` true. */
  when(test: (screen: string) => boolean, timeoutMs?: number): Promise<number>;
  exited: Promise<void>;
  kill(): void;
}

function open(env: NodeJS.ProcessEnv): Session {
  const term = new xterm.Terminal({ cols: COLS, rows: ROWS, allowProposedApi: true });
  const child = pty.spawn(process.execPath, [BIN, 'tui', '--as', 'alice'], {
    name: 'xterm-256color',
    cols: COLS,
    rows: ROWS,
    cwd: process.cwd(),
    env: { ...env, TERM: 'xterm-256color' },
  });
  const screen = () => {
    const b = term.buffer.active;
    return Array.from({ length: ROWS }, (_, y) => b.getLine(b.viewportY + y)?.translateToString(true) ?? '').join('\n');
  };
  const waiters = new Set<{ test: (s: string) => boolean; resolve: (t: number) => void }>();
  child.onData((d) => {
    const arrived = performance.now();
    term.write(d, () => {
      if (!waiters.size) return;
      const s = screen();
      for (const w of waiters)
        if (w.test(s)) {
          waiters.delete(w);
          w.resolve(arrived);
        }
    });
  });
  const exited = new Promise<void>((resolve) => child.onExit(() => resolve()));
  return {
    screen,
    write: (k) => child.write(k),
    when(test, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        if (test(screen())) return resolve(performance.now());
        const w = { test, resolve };
        waiters.add(w);
        setTimeout(() => {
          if (waiters.delete(w)) reject(new Error(`timed out; screen:\n${screen()}`));
        }, timeoutMs);
      });
    },
    exited,
    kill: () => child.kill('SIGKILL'),
  };
}

function stats(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
  return { n: s.length, median: q(0.5), p95: q(0.95), max: s[s.length - 1]! };
}

const ms = (x: number) => `${x.toFixed(0)} ms`;

const dir = await mkdtemp(path.join(tmpdir(), 'mechanic-bench-tui-'));
const env = await throwawayStackEnv(path.join(dir, 'stack'), { minMs: 100, maxMs: 500 });
const config = loadConfig(env);
const stack = await startStack(config, { progress: () => {} }, env);
try {
  // First frame, and catalog listed: a fresh process each time (one warm-up first).
  const first: number[] = [];
  const full: number[] = [];
  const catalog: number[] = [];
  for (let i = 0; i < 6; i++) {
    const t0 = performance.now();
    const s = open(env);
    const tFirst = await s.when((x) => x.includes('mechanic ·'));
    const tFull = await s.when((x) => /[●○✗] (live|connecting|reconnecting|offline)/.test(x));
    const tCatalog = await s.when((x) => x.includes('deploy-web v1'));
    if (i > 0) {
      first.push(tFirst - t0);
      full.push(tFull - t0);
      catalog.push(tCatalog - t0);
    }
    s.write('q');
    await s.exited;
  }

  // Key → frame with 50 runs streaming.
  const alice = await connectApi(config, 'alice');
  const bob = await connectApi(config, 'bob');
  const launched: { executionId: string; planDigest: string }[] = [];
  for (let i = 0; i < RUNS; i++) {
    launched.push(
      await alice.call('launch', { body: { runbook: 'rotate-logs', params: { keep: 3 }, reason: `bench run ${i}` } }),
    );
  }
  const s = open(env);
  await s.when((x) => x.includes('deploy-web v1'));
  s.write('2');
  await s.when((x) => (x.match(/mx-[a-z0-9]{10}/g) ?? []).length >= 10);
  // Approve every run in the background: 50 runs start, run their steps and stream events.
  let approving = true;
  const approvals = (async () => {
    for (const l of launched) {
      await bob.call('vote', {
        params: { id: l.executionId },
        body: { decision: 'approve', planDigest: l.planDigest },
      });
    }
    approving = false;
  })();
  const keys: number[] = [];
  const cursorRow = (x: string) => x.split('\n').findIndex((l) => l.startsWith('›'));
  let events = 0;
  const counter = new AbortController();
  const since = new Date().toISOString();
  void (async () => {
    try {
      for await (const r of alice.events('all', { signal: counter.signal })) if (r.recordedAt >= since) events++;
    } catch {
      // stopped
    }
  })();
  for (let i = 0; i < 60; i++) {
    const before = cursorRow(s.screen());
    const key = i % 10 < 5 ? 'j' : 'k';
    await new Promise((r) => setTimeout(r, 30));
    const t = performance.now();
    s.write(key);
    const shown = await s.when((x) => cursorRow(x) !== before && cursorRow(x) !== -1, 10_000);
    keys.push(shown - t);
  }
  const streamingDuringKeys = approving;
  await approvals;
  counter.abort();
  s.write('q');
  await s.exited;

  const f = stats(first);
  const u = stats(full);
  const c = stats(catalog);
  const k = stats(keys);
  process.stdout.write(
    [
      '| TUI bench | n | median | p95 | max | goal |',
      '|---|---|---|---|---|---|',
      `| start → first frame | ${f.n} | ${ms(f.median)} | ${ms(f.p95)} | ${ms(f.max)} | < 700 ms |`,
      `| start → first full frame (ink: header, footer) | ${u.n} | ${ms(u.median)} | ${ms(u.p95)} | ${ms(u.max)} | — |`,
      `| start → catalog listed | ${c.n} | ${ms(c.median)} | ${ms(c.p95)} | ${ms(c.max)} | — |`,
      `| key → next frame, ${RUNS} runs streaming | ${k.n} | ${ms(k.median)} | ${ms(k.p95)} | ${ms(k.max)} | < 50 ms |`,
      '',
      `(${events} audit events streamed while keys were pressed; approvals still going when the keys ended: ${streamingDuringKeys})`,
      '',
    ].join('\n'),
  );
} finally {
  await stack.stop();
  await rm(dir, { recursive: true, force: true });
}
