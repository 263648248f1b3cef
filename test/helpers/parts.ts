import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DevStack } from './cli.ts';

/** The pid of a part `mechanic dev` started (worker, server, devfleet, or the temporal server). */
export function partPid(stack: DevStack, part: string): number {
  const ps = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(stack.process.pid)], { encoding: 'utf8' });
  const line = ps
    .split('\n')
    .find((l) =>
      part === 'temporal' ? l.includes('temporal server start-dev') : l.trim().endsWith(`mechanic.js ${part}`),
    );
  if (!line) throw new Error(`no ${part} process under mechanic dev:\n${ps}`);
  return Number(line.trim().split(/\s+/)[0]);
}

/**
 * Polls `fn` until it yields a value (errors count as not yet). It waits for that state, not for a
 * fixed time: the test's own timeout bounds it, unless the caller gives `timeoutMs`.
 */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = Infinity): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}
