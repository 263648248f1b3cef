import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config.ts';
import { UserError } from '../core/errors.ts';
import { ensureDemoUsers } from '../authz/users.ts';
import { defaultFleetConfig } from '../devfleet/config.ts';
import { findTemporalCli } from './provision.ts';
import { startDevServer, type DevServer } from './dev-server.ts';
import { getFreePort } from './ports.ts';
import { isAlive, readOrCreatePrivateFile } from '../host.ts';
import { readStack, stackFile, type StackInfo } from './stack-file.ts';

const BIN = fileURLToPath(new URL('../../bin/mechanic.js', import.meta.url));
const READY_TIMEOUT_MS = 120_000;

export type PartName = 'devfleet' | 'worker' | 'server';

export interface StackEvents {
  progress(line: string): void;
  /** A part exited on its own; it is restarted after `delayMs` unless the stack is stopping. */
  partExited?(name: PartName | 'temporal', code: number | null, signal: NodeJS.Signals | null, delayMs: number): void;
}

export interface Stack {
  readonly info: StackInfo;
  readonly home: string;
  stop(): Promise<void>;
}

/**
 * The embedded stack's secrets, made once and kept owner-only under MECHANIC_HOME: the payload
 * encryption key, devfleet's root credentials and the demo users' tokens.
 */
async function ensureSecrets(config: Config) {
  const home = config.home;
  const codecKeys = await readOrCreatePrivateFile(
    path.join(home, 'codec-keys'),
    () => `dev1:${randomBytes(32).toString('base64')}`,
  );
  const root = JSON.parse(
    await readOrCreatePrivateFile(path.join(home, 'devfleet', 'root.json'), () =>
      JSON.stringify({
        accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
        secretAccessKey: randomBytes(30).toString('base64'),
      }),
    ),
  ) as { accessKeyId: string; secretAccessKey: string };
  await readOrCreatePrivateFile(config.devfleetConfigFile, () => JSON.stringify(defaultFleetConfig(root), null, 2));
  await ensureDemoUsers(config.api.usersFile);
  return { codecKeys, root };
}

interface Part {
  child: ChildProcess | undefined;
  ready: Promise<Record<string, unknown>>;
  restarts: number;
  readyAt?: number;
}

/** A part that stayed up this long has recovered: its next crash restarts it at once again. */
const STEADY_MS = 60_000;
const MAX_RESTART_DELAY_MS = 30_000;

/** 0.5 s before the first restart, doubling while a part keeps dying, at most 30 s. */
function restartDelay(attempt: number): number {
  return Math.min(MAX_RESTART_DELAY_MS, 500 * 2 ** attempt);
}

/**
 * Starts the embedded stack: the Temporal dev server (SQLite under MECHANIC_HOME) and devfleet,
 * the worker and the API server, each as its own child process so any one can be killed and
 * restarted while the others keep going. A part that dies on its own is restarted.
 */
export async function startStack(
  config: Config,
  events: StackEvents,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Stack> {
  const home = config.home;
  const running = await readStack(home);
  if (running?.pid && running.pid !== process.pid && isAlive(running.pid)) {
    throw new UserError(
      'USAGE',
      `a mechanic stack is already running from ${home} (pid ${running.pid}); use it, stop it with Ctrl-C in its terminal, or set MECHANIC_HOME to start another`,
    );
  }
  await mkdir(path.join(home, 'logs'), { recursive: true, mode: 0o700 });
  const secrets = await ensureSecrets(config);
  const cliPath = await findTemporalCli({ onProgress: (line) => events.progress(line) });
  const [host, portText] = splitAddress(config.temporal.address);
  events.progress(
    `starting Temporal dev server on ${config.temporal.address} (state in ${path.join(home, 'temporal.db')})`,
  );
  const temporalOptions = {
    cliPath,
    dbFile: path.join(home, 'temporal.db'),
    ip: host,
    port: Number(portText),
    ui: true,
    uiPort: config.temporal.uiPort,
    namespace: config.temporal.namespace,
    logFile: path.join(home, 'logs', 'temporal.log'),
  };
  let temporal: DevServer;
  try {
    temporal = await startDevServer(temporalOptions);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError('TEMPORAL_UNAVAILABLE', `the Temporal dev server did not start: ${(e as Error).message}`);
  }

  let stopping = false;
  let up = false;
  // The Temporal dev server is a child too: if it dies, it comes back on the same port and
  // SQLite file, so every run it held is still there; the worker and server reconnect.
  let temporalRestarts = 0;
  let restartingTemporal = false;
  const temporalWatch = setInterval(() => {
    if (!up || stopping || restartingTemporal || isAlive(temporal.pid)) return;
    restartingTemporal = true;
    const delay = restartDelay(temporalRestarts);
    events.partExited?.('temporal', null, null, delay);
    setTimeout(() => {
      void (async () => {
        try {
          if (stopping) return;
          const next = await startDevServer(temporalOptions);
          if (stopping) await next.stop();
          else temporal = next;
          temporalRestarts = 0;
        } catch {
          temporalRestarts++;
        } finally {
          restartingTemporal = false;
        }
      })();
    }, delay);
  }, 1000);
  const restartTimers = new Set<NodeJS.Timeout>();
  const parts = new Map<PartName, Part>();
  const logs = new Map<PartName, WriteStream>();
  const baseEnv: NodeJS.ProcessEnv = {
    ...env,
    MECHANIC_HOME: home,
    MECHANIC_SUPERVISED: '1',
    MECHANIC_CODEC_KEYS: secrets.codecKeys,
    TEMPORAL_ADDRESS: temporal.address,
    AWS_ACCESS_KEY_ID: secrets.root.accessKeyId,
    AWS_SECRET_ACCESS_KEY: secrets.root.secretAccessKey,
  };
  const envFor = new Map<PartName, NodeJS.ProcessEnv>();

  const launch = (name: PartName): Part => {
    const log = logs.get(name) ?? createWriteStream(path.join(home, 'logs', `${name}.log`), { flags: 'a' });
    logs.set(name, log);
    // stdin is a pipe the child watches: if this process dies, the pipe closes and so do they.
    const child = spawn(process.execPath, [BIN, name], { env: envFor.get(name), stdio: ['pipe', 'pipe', 'pipe'] });
    const tail: string[] = [];
    const part: Part = { child, restarts: parts.get(name)?.restarts ?? 0, ready: Promise.resolve({}) };
    part.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new UserError(
              'SERVER_UNAVAILABLE',
              `${name} did not become ready within ${READY_TIMEOUT_MS / 1000} s; see ${path.join(home, 'logs', `${name}.log`)}`,
            ),
          ),
        READY_TIMEOUT_MS,
      );
      const onLine = (line: string) => {
        log.write(`${line}\n`);
        tail.push(line);
        if (tail.length > 20) tail.shift();
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          if (entry['msg'] === 'ready') {
            clearTimeout(timer);
            part.readyAt = Date.now();
            resolve(entry);
          }
        } catch {
          // Not a log line of ours (e.g. a native module's warning); it is kept in the log file.
        }
      };
      createInterface({ input: child.stdout }).on('line', onLine);
      createInterface({ input: child.stderr }).on('line', onLine);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(
          new UserError(
            'SERVER_UNAVAILABLE',
            `${name} exited while starting (${signal ?? `code ${code}`}):\n${lastMessages(tail)}`,
          ),
        );
        // While the stack is starting, a part that dies fails the start; once it is up, a part
        // that dies is restarted, with a growing pause if it keeps dying.
        if (stopping || !up) return;
        const steady = part.readyAt !== undefined && Date.now() - part.readyAt > STEADY_MS;
        const attempt = steady ? 0 : part.restarts;
        const delay = restartDelay(attempt);
        events.partExited?.(name, code, signal, delay);
        const relaunch = setTimeout(() => {
          restartTimers.delete(relaunch);
          if (stopping) return;
          const restarted = launch(name);
          restarted.restarts = attempt + 1;
          parts.set(name, restarted);
          restarted.ready.catch(() => {});
        }, delay);
        restartTimers.add(relaunch);
      });
    });
    part.ready.catch(() => {});
    parts.set(name, part);
    return part;
  };

  const stopParts = async () => {
    stopping = true;
    for (const t of restartTimers) clearTimeout(t);
    clearInterval(temporalWatch);
    await Promise.all(
      [...parts.values()].map(async ({ child }) => {
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }),
    );
    for (const log of logs.values()) log.end();
  };

  try {
    envFor.set('devfleet', { ...baseEnv });
    events.progress('starting devfleet (local STS + SSM with three instances)');
    const fleetReady = await launch('devfleet').ready;
    const endpoint = String(fleetReady['endpoint']);
    // A restarted part must come back where the others (and the CLI) already look for it.
    envFor.set('devfleet', { ...baseEnv, MECHANIC_DEVFLEET_PORT: new URL(endpoint).port });
    const partEnv = { ...baseEnv, MECHANIC_AWS_ENDPOINT: endpoint };
    envFor.set('worker', partEnv);
    envFor.set('server', partEnv);
    events.progress('starting worker and API server');
    const [, serverReady] = await Promise.all([launch('worker').ready, launch('server').ready]);
    envFor.set('server', { ...partEnv, MECHANIC_API_PORT: new URL(String(serverReady['url'])).port });
    const info: StackInfo = {
      apiUrl: String(serverReady['url']),
      temporalAddress: temporal.address,
      temporalUiUrl: temporal.uiUrl,
      devfleetEndpoint: endpoint,
      pid: process.pid,
    };
    await writeFile(stackFile(home), `${JSON.stringify(info, null, 2)}\n`);
    up = true;
    return {
      info,
      home,
      async stop() {
        await stopParts();
        while (restartingTemporal) await new Promise((r) => setTimeout(r, 100));
        await temporal.stop();
        await writeFile(stackFile(home), '{}\n').catch(() => {});
      },
    };
  } catch (e) {
    await stopParts();
    await temporal.stop();
    throw e;
  }
}

/**
 * The environment for a throwaway stack in `home` on free ports: the shell's environment without
 * mechanic's, Temporal's, AWS's and the database's settings, so it can never reach a real
 * cluster, account or database configured there.
 */
export async function throwawayStackEnv(
  home: string,
  poll: { minMs: number; maxMs: number },
  from: NodeJS.ProcessEnv = process.env,
): Promise<NodeJS.ProcessEnv> {
  const kept = Object.entries(from).filter(
    ([k]) => k === 'TEMPORAL_CLI' || !/^(MECHANIC_|TEMPORAL_|AWS_|DATABASE_URL$|PG[A-Z]+$)/.test(k),
  );
  return {
    ...Object.fromEntries(kept),
    MECHANIC_HOME: home,
    TEMPORAL_ADDRESS: `127.0.0.1:${await getFreePort()}`,
    TEMPORAL_UI_PORT: String(await getFreePort()),
    MECHANIC_API_PORT: '0',
    MECHANIC_DEVFLEET_PORT: '0',
    MECHANIC_POLL_MIN_MS: String(poll.minMs),
    MECHANIC_POLL_MAX_MS: String(poll.maxMs),
  };
}

function splitAddress(address: string): [string, string] {
  const i = address.lastIndexOf(':');
  if (i <= 0) throw new UserError('CONFIG_INVALID', `TEMPORAL_ADDRESS "${address}" must be host:port`);
  return [address.slice(0, i), address.slice(i + 1)];
}

function lastMessages(lines: readonly string[]): string {
  return lines
    .map((l) => {
      try {
        const e = JSON.parse(l) as { msg?: string; err?: { message?: string } };
        return e.err?.message ? `${e.msg}: ${e.err.message}` : (e.msg ?? l);
      } catch {
        return l;
      }
    })
    .slice(-5)
    .join('\n');
}
