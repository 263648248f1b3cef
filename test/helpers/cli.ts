import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import type { StackInfo } from '../../src/embedded/stack-file.ts';

export const BIN = fileURLToPath(new URL('../../bin/mechanic.js', import.meta.url));

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real `mechanic` command line in a child process. */
export function runCli(args: readonly string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env, timeout: 120_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export interface DevStack {
  readonly home: string;
  readonly env: NodeJS.ProcessEnv;
  readonly info: StackInfo;
  readonly process: ChildProcess;
  output(): string;
  stop(): Promise<number | null>;
}

/**
 * `mechanic dev --no-tui` in a temporary MECHANIC_HOME on free ports, as a person would run it
 * in one terminal; tests then use the CLI as from a second terminal.
 */
export async function startDevStack(extraEnv: NodeJS.ProcessEnv = {}): Promise<DevStack> {
  const home = extraEnv['MECHANIC_HOME'] ?? (await mkdtemp(path.join(tmpdir(), 'mechanic-test-')));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_CLI: inject('temporalCli'),
    MECHANIC_HOME: home,
    // Port 0: the stack picks the Temporal ports and picks again if one is taken before the server binds it.
    TEMPORAL_ADDRESS: '127.0.0.1:0',
    TEMPORAL_UI_PORT: '0',
    MECHANIC_API_PORT: '0',
    MECHANIC_DEVFLEET_PORT: '0',
    MECHANIC_POLL_MIN_MS: '100',
    MECHANIC_POLL_MAX_MS: '500',
    LOG_LEVEL: 'info',
    ...extraEnv,
  };
  delete env['MECHANIC_API_URL'];
  delete env['MECHANIC_TOKEN'];
  const child = spawn(process.execPath, [BIN, 'dev', '--no-tui'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (output.includes('mechanic is running.')) {
        clearInterval(timer);
        resolve();
      }
    }, 100);
    void exited.then((code) => {
      clearInterval(timer);
      reject(new Error(`mechanic dev exited (${code}) before it was ready:\n${output}`));
    });
  });
  const info = JSON.parse(await readFile(path.join(home, 'stack.json'), 'utf8')) as StackInfo;
  // What a second terminal needs to reach this stack's Temporal server directly (e.g. `mechanic server`).
  env['TEMPORAL_ADDRESS'] = info.temporalAddress;
  return {
    home,
    env,
    info,
    process: child,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const code = await exited;
      if (process.env['MECHANIC_KEEP_TEST_HOME'] === '1') process.stderr.write(`kept ${home}\n`);
      else await rm(home, { recursive: true, force: true });
      return code;
    },
  };
}
