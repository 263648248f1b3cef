/**
 * MECHANIC_WORKER_HEAP_MB reaches both heaps of the worker the embedded stack starts, its main thread
 * (activities) and its workflow thread (every run the worker keeps): the stack starts it with the node
 * flag. Read back from the worker's command line and from the limits the worker measured and logged at
 * start (a thread started then gets what the SDK's workflow thread got). A run then completes on that
 * worker, with the bundle whose audit vocabulary is shared by all runs (worker-memory-bundle.test.ts).
 * A `mechanic worker` started by hand without the flag still bounds its workflow thread: it sets the
 * flag in its own process before the SDK starts that thread.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ExecutionView } from '../../src/core/execution.ts';
import { processIdentity, readProcessTable } from '../../src/embedded/processes.ts';
import { runCli, startDevStack, type DevStack } from '../helpers/cli.ts';

const HEAP_MB = 300;
/**
 * The young generation comes on top of the old-space limit: three semi-spaces of 8 MiB (24 MiB; at
 * V8's default of 16 MiB it would be 48).
 */
const YOUNG_MAX_MIB = 32;

interface StartLine {
  heapLimitMiB: { main: number; workflows: number };
}

describe('MECHANIC_WORKER_HEAP_MB on the embedded stack', () => {
  let stack: DevStack;
  const cli = (...args: string[]) => runCli(args, stack.env);

  beforeAll(async () => {
    stack = await startDevStack({ MECHANIC_WORKER_HEAP_MB: String(HEAP_MB) });
  }, 180_000);

  afterAll(async () => {
    const code = await stack?.stop();
    expect(code).toBe(0);
  });

  test('the worker starts with the heap limit, and both of its heaps have it', async () => {
    const pid = (await readProcessTable(stack.home))?.children['worker']?.pid;
    expect(pid).toBeTypeOf('number');
    const argv = processIdentity(pid!)?.argv ?? [];
    expect(argv.at(-1)).toBe('worker');
    expect(argv).toContain(`--max-old-space-size=${HEAP_MB}`);
    expect(argv).toContain('--max-semi-space-size=8');

    const log = await readFile(path.join(stack.home, 'logs', 'worker.log'), 'utf8');
    const started = log
      .split('\n')
      .filter((l) => l.includes('"worker started"'))
      .map((l) => JSON.parse(l) as StartLine)
      .at(-1);
    expect(started).toBeDefined();
    for (const limit of [started!.heapLimitMiB.main, started!.heapLimitMiB.workflows]) {
      expect(limit).toBeGreaterThanOrEqual(HEAP_MB);
      expect(limit).toBeLessThanOrEqual(HEAP_MB + YOUNG_MAX_MIB);
    }
  });

  test('a run completes on that worker', async () => {
    const launched = await cli(
      'launch',
      'deploy-web',
      '--param',
      'release=v2.0.2',
      '--reason',
      'worker memory test',
      '--as',
      'alice',
      '--json',
    );
    expect(launched.stderr).toBe('');
    const { executionId } = JSON.parse(launched.stdout) as { executionId: string };
    expect((await cli('approve', executionId, '--yes', '--as', 'bob')).code).toBe(0);
    const status = await cli('status', executionId, '--wait', '--as', 'alice', '--json');
    expect((JSON.parse(status.stdout) as ExecutionView).status).toBe('completed');
  }, 120_000);

  test('a worker started by hand, without node flags, bounds its workflow thread itself', async () => {
    const heapMb = 200;
    const env: NodeJS.ProcessEnv = {
      ...stack.env,
      MECHANIC_CODEC_KEYS: (await readFile(path.join(stack.home, 'codec-keys'), 'utf8')).trim(),
      MECHANIC_WORKER_HEAP_MB: String(heapMb),
    };
    // Only the worker's own setting may bound it here.
    delete env['NODE_OPTIONS'];
    const child = spawn(process.execPath, [path.resolve('bin/mechanic.js'), 'worker'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = once(child, 'exit');
    try {
      let output = '';
      const started = await new Promise<StartLine>((resolve, reject) => {
        createInterface({ input: child.stdout }).on('line', (line) => {
          output += `${line}\n`;
          if (line.includes('"worker started"')) resolve(JSON.parse(line) as StartLine);
        });
        child.stderr.on('data', (d: Buffer) => (output += d.toString()));
        void exited.then(() => reject(new Error(`the worker exited before it started:\n${output}`)));
      });
      expect(processIdentity(child.pid!)?.argv.join(' ')).not.toContain('space-size');
      expect(started.heapLimitMiB.workflows).toBeGreaterThanOrEqual(heapMb);
      expect(started.heapLimitMiB.workflows).toBeLessThanOrEqual(heapMb + YOUNG_MAX_MIB);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  }, 120_000);
});
