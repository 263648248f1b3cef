import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Config } from '../config.ts';
import { UserError } from '../core/errors.ts';
import { ensureDemoUsers } from '../authz/users.ts';
import { CONTAINER_CREDENTIALS_PATH, defaultFleetConfig, parseFleetConfig } from '../devfleet/config.ts';
import { CLI_CLIENT_ID, WEB_CLIENT_ID } from '../authz/dev-idp.ts';
import { findTemporalCli } from './provision.ts';
import { startDevServer, type DevServer, type DevServerOptions } from './dev-server.ts';
import { getFreePort } from './ports.ts';
import { ensurePrivateDir, isAlive, readOrCreatePrivateFile } from '../host.ts';
import { stackFile, type StackInfo } from './stack-file.ts';
import { workerHeapFlags } from '../temporal/worker-heap.ts';
import {
  isSameProcess,
  processIdentity,
  processTableFile,
  readProcessTable,
  stopRecorded,
  writeProcessTable,
  type ProcessIdentity,
} from './processes.ts';

const BIN = fileURLToPath(new URL('../../bin/mechanic.js', import.meta.url));
const READY_TIMEOUT_MS = 120_000;

export type PartName = 'devfleet' | 'idp' | 'worker' | 'server';

export interface StackEvents {
  progress(line: string): void;
  /** Something the user should know and may want to act on (an open home made private, leftovers stopped). */
  warn?(line: string): void;
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
  await readOrCreatePrivateFile(config.devfleetConfigFile, () =>
    JSON.stringify({ ...defaultFleetConfig(root), seedHosts: true }, null, 2),
  );
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

/** How a part is named to a person. */
export const PART_LABELS: Readonly<Record<PartName | 'temporal' | 'watchdog', string>> = {
  temporal: 'Temporal dev server',
  devfleet: 'devfleet',
  idp: 'sign-in provider',
  worker: 'worker',
  server: 'API server',
  watchdog: 'watchdog',
};

/** Time a part gets to stop on its own (the worker finishes in-flight activity calls) before SIGKILL. */
const PART_STOP_GRACE_MS = 15_000;
const TEMPORAL_STOP_GRACE_MS = 2_500;
/** Leftovers of a killed stack have nothing to finish that matters more than the start the user is waiting for. */
const LEFTOVER_GRACE_MS = 5_000;

/**
 * Starts the embedded stack: the Temporal dev server (SQLite under MECHANIC_HOME) and devfleet,
 * the worker and the API server, each as its own child process so any one can be killed and
 * restarted while the others keep going. A part that dies on its own is restarted.
 *
 * No child outlives the supervisor: each part runs in a process group of its own (a Ctrl-C reaches only the
 * supervisor, which stops the parts before the Temporal server they talk to), a watchdog process stops them all
 * when the supervisor dies however it died, and processes.json records each one (pid, start time, command line) so
 * that a later start stops what a killed stack left behind, and only that.
 */
export async function startStack(
  config: Config,
  events: StackEvents,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Stack> {
  const home = config.home;
  const openMode = await ensurePrivateDir(home);
  if (openMode !== undefined) {
    events.warn?.(
      `${home} could be read by other users (mode ${openMode.toString(8).padStart(4, '0')}); it holds keys, tokens and the audit log, so it and everything in it are now owner-only (0700)`,
    );
  }
  await clearLeftovers(home, events);
  await mkdir(path.join(home, 'logs'), { recursive: true, mode: 0o700 });
  const secrets = await ensureSecrets(config);
  const cliPath = await findTemporalCli({ onProgress: (line) => events.progress(line) });

  const table: { supervisor: ProcessIdentity; children: Record<string, ProcessIdentity> } = {
    supervisor: processIdentity(process.pid) ?? { pid: process.pid, startTime: '', argv: process.argv },
    children: {},
  };
  let saving: Promise<void> = Promise.resolve();
  const save = () => {
    saving = saving.then(() => writeProcessTable(home, table)).catch(() => {});
    return saving;
  };
  let stopping = false;
  /** Tells the watchdog first (a synchronous pipe write, so it knows even if we die this instant), then the file. */
  const record = (name: string, pid: number | undefined) => {
    const identity = pid === undefined ? undefined : processIdentity(pid);
    if (identity === undefined) return;
    table.children[name] = identity;
    // (The watchdog records itself while it is being started, before `watchdog` below exists.)
    if (name !== 'watchdog') watchdog.watch(name, identity);
    void save();
  };
  const watchdog = startWatchdog(
    () => stopping,
    (pid) => record('watchdog', pid),
  );
  await save();

  const [host, portText] = splitAddress(config.temporal.address);
  const dbFile = path.join(home, 'temporal.db');
  // Port 0: the dev server needs a fixed port, so one is picked here, and picked again if it is taken by the time
  // the server binds it. A restart then reuses whichever port it got, where the parts already look for it.
  const temporalOptions: DevServerOptions = {
    cliPath,
    dbFile,
    ip: host,
    ui: true,
    namespace: config.temporal.namespace,
    logFile: path.join(home, 'logs', 'temporal.log'),
    detached: true,
    // An idle dev server stops in about 1.5 s; one that takes longer is not worth keeping a Ctrl-C waiting for.
    stopGraceMs: TEMPORAL_STOP_GRACE_MS,
    onSpawn: (pid) => record('temporal', pid),
  };
  if (Number(portText) !== 0) temporalOptions.port = Number(portText);
  if (config.temporal.uiPort !== 0) temporalOptions.uiPort = config.temporal.uiPort;
  // The Temporal Web UI reads payloads through the API server's codec endpoint (/codec), named on the dev
  // server's command line: so the API's port is settled before the dev server starts.
  const apiPort = config.api.port !== 0 ? config.api.port : await getFreePort(config.api.host);
  const apiHost = config.api.host.includes(':') ? `[${config.api.host}]` : config.api.host;
  temporalOptions.extraArgs = ['--ui-codec-endpoint', `http://${apiHost}:${apiPort}/codec`];
  events.progress(
    `starting Temporal dev server on ${temporalOptions.port === undefined ? `${host}, a free port` : config.temporal.address} (state in ${dbFile})`,
  );
  let temporal: DevServer;
  try {
    temporal = await startDevServer(temporalOptions);
  } catch (e) {
    stopping = true;
    watchdog.close();
    await rm(processTableFile(home), { force: true });
    if (e instanceof UserError) throw e;
    throw new UserError('TEMPORAL_UNAVAILABLE', `the Temporal dev server did not start: ${(e as Error).message}`);
  }
  temporalOptions.port = Number(splitAddress(temporal.address)[1]);
  if (temporal.uiUrl !== undefined) temporalOptions.uiPort = Number(new URL(temporal.uiUrl).port);

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
    // The demo catalog: the API server publishes the runbooks folder as carol (an author) and approves it
    // as bob, so a newcomer sees reviewed versions; MECHANIC_REGISTRY_SEED="" turns it off.
    MECHANIC_REGISTRY_SEED: env['MECHANIC_REGISTRY_SEED'] ?? 'carol,bob',
    TEMPORAL_ADDRESS: temporal.address,
    AWS_ACCESS_KEY_ID: secrets.root.accessKeyId,
    AWS_SECRET_ACCESS_KEY: secrets.root.secretAccessKey,
  };
  // devfleet's root keys are long-term: a session token left in the shell (a real account's) must not ride with them.
  delete baseEnv['AWS_SESSION_TOKEN'];
  const envFor = new Map<PartName, NodeJS.ProcessEnv>();

  const launch = (name: PartName): Part => {
    const log =
      logs.get(name) ?? createWriteStream(path.join(home, 'logs', `${name}.log`), { flags: 'a', mode: 0o600 });
    logs.set(name, log);
    // stdin is a pipe the child watches: if this process dies, the pipe closes and the child stops. Its own process
    // group keeps the terminal's Ctrl-C away from it: the supervisor stops the parts, in order.
    // MECHANIC_WORKER_HEAP_MB for the worker's main thread (activities) can only be given where node starts; the flag
    // bounds the process's other heaps too (a worker started without it still bounds its workflow thread itself).
    const nodeFlags = name === 'worker' ? workerHeapFlags(config.worker.heapMb) : [];
    const child = spawn(process.execPath, [...nodeFlags, BIN, name], {
      env: envFor.get(name),
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    record(name, child.pid);
    child.stdin.on('error', () => {});
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

  /** Stops the parts (all at once: none needs another to stop), then the Temporal server they talk to. */
  const stopAll = async () => {
    stopping = true;
    for (const t of restartTimers) clearTimeout(t);
    clearInterval(temporalWatch);
    const running = [...parts.entries()].flatMap(([name, { child }]) => (isRunning(child) ? [{ name, child }] : []));
    if (running.length > 0) events.progress(`stopping ${running.map(({ name }) => PART_LABELS[name]).join(', ')}`);
    await Promise.all(running.map(({ child }) => stopChild(child, PART_STOP_GRACE_MS)));
    for (const log of logs.values()) log.end();
    while (restartingTemporal) await new Promise((r) => setTimeout(r, 100));
    events.progress(`stopping ${PART_LABELS.temporal}`);
    await temporal.stop();
    watchdog.close();
    await saving;
    await rm(processTableFile(home), { force: true });
  };

  try {
    envFor.set('devfleet', { ...baseEnv });
    envFor.set('idp', { ...baseEnv });
    events.progress('starting devfleet (local STS + SSM with three instances) and the development sign-in provider');
    const [fleetReady, idpReady] = await Promise.all([launch('devfleet').ready, launch('idp').ready]);
    const endpoint = String(fleetReady['endpoint']);
    const issuer = String(idpReady['issuer']);
    // A restarted part must come back where the others (and the CLI) already look for it; for the provider, its
    // port is part of the issuer every token names.
    envFor.set('devfleet', { ...baseEnv, MECHANIC_DEVFLEET_PORT: new URL(endpoint).port });
    envFor.set('idp', { ...baseEnv, MECHANIC_IDP_PORT: new URL(issuer).port });
    const partEnv = { ...baseEnv, MECHANIC_AWS_ENDPOINT: endpoint };
    const worker = await workerAwsEnv(config, partEnv, endpoint);
    if (worker.note !== undefined) events.progress(worker.note);
    envFor.set('worker', worker.env);
    if (config.authz.oidc !== undefined && config.authz.oidc.issuer !== issuer) {
      events.warn?.(
        `the embedded stack's API server trusts its own sign-in provider, not MECHANIC_OIDC_ISSUER (${config.authz.oidc.issuer}); run "mechanic server" on its own to use that one`,
      );
    }
    // The API server verifies the provider's ID tokens (the CLI's, and the web client's) with the same code as in
    // production: issuer, audience and keys from the provider's discovery document.
    envFor.set('server', {
      ...partEnv,
      MECHANIC_OIDC_ISSUER: issuer,
      MECHANIC_OIDC_AUDIENCE: CLI_CLIENT_ID,
      MECHANIC_OIDC_JWKS_URL: '',
      MECHANIC_OIDC_WEB_CLIENT_ID: WEB_CLIENT_ID,
      MECHANIC_OIDC_WEB_CLIENT_SECRET: '',
      MECHANIC_API_PORT: String(apiPort),
      // The dev server's Web UI, by either name a browser may use for it, may call the codec endpoint.
      ...(temporal.uiUrl !== undefined
        ? {
            MECHANIC_TEMPORAL_UI_ORIGIN: `${temporal.uiUrl},http://localhost:${new URL(temporal.uiUrl).port}`,
          }
        : {}),
    });
    events.progress('starting worker and API server');
    const [, serverReady] = await Promise.all([launch('worker').ready, launch('server').ready]);
    envFor.set('server', { ...envFor.get('server'), MECHANIC_API_PORT: new URL(String(serverReady['url'])).port });
    const info: StackInfo = {
      apiUrl: String(serverReady['url']),
      temporalAddress: temporal.address,
      temporalUiUrl: temporal.uiUrl,
      devfleetEndpoint: endpoint,
      idpIssuer: issuer,
      pid: process.pid,
    };
    await writeFile(stackFile(home), `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
    up = true;
    return {
      info,
      home,
      async stop() {
        await stopAll();
        await writeFile(stackFile(home), '{}\n').catch(() => {});
      },
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}

/** What the worker must not inherit when it signs as a role session: any other source of AWS credentials. */
const OTHER_AWS_CREDENTIALS = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_PROFILE',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_ROLE_ARN',
  'AWS_ROLE_SESSION_NAME',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
];

/**
 * The worker's AWS credentials in the embedded stack. By default (MECHANIC_DEV_WORKER_CREDENTIALS=role) they are a
 * session of devfleet's worker role from its container-credentials endpoint, which the AWS SDK's default chain reads
 * and renews as on ECS: every run's lease is then role chaining, an hour at most and refreshed, as it will be in AWS.
 * With `keys`, or a fleet file without containerCredentials (written before it existed), the worker signs with
 * devfleet's long-term keys, as it used to.
 */
export async function workerAwsEnv(
  config: Config,
  partEnv: NodeJS.ProcessEnv,
  endpoint: string,
): Promise<{ env: NodeJS.ProcessEnv; note?: string }> {
  if (config.aws.devWorkerCredentials === 'keys') return { env: partEnv };
  let container: { authorizationToken: string } | undefined;
  try {
    container = parseFleetConfig(JSON.parse(await readFile(config.devfleetConfigFile, 'utf8'))).containerCredentials;
  } catch (e) {
    throw new UserError(
      'CONFIG_INVALID',
      `the fleet file ${config.devfleetConfigFile} cannot be read for the worker's credentials: ${(e as Error).message.split('\n')[0]}`,
      { cause: e },
    );
  }
  if (container === undefined) {
    return {
      env: partEnv,
      note: `the worker signs with devfleet's long-term keys: the fleet file ${config.devfleetConfigFile} has no containerCredentials (MECHANIC_DEV_WORKER_CREDENTIALS=keys says so on purpose)`,
    };
  }
  const env: NodeJS.ProcessEnv = { ...partEnv };
  for (const k of OTHER_AWS_CREDENTIALS) delete env[k];
  const devfleetDir = path.join(config.home, 'devfleet');
  return {
    env: {
      ...env,
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `${endpoint}${CONTAINER_CREDENTIALS_PATH}`,
      AWS_CONTAINER_AUTHORIZATION_TOKEN: container.authorizationToken,
      // Only the container endpoint: never the shell's shared AWS files (a real account's profile), nor a metadata probe.
      AWS_SHARED_CREDENTIALS_FILE: path.join(devfleetDir, 'no-shared-credentials'),
      AWS_CONFIG_FILE: path.join(devfleetDir, 'no-shared-config'),
      AWS_EC2_METADATA_DISABLED: 'true',
    },
  };
}

function isRunning(child: ChildProcess | undefined): child is ChildProcess {
  return child !== undefined && child.exitCode === null && child.signalCode === null;
}

/** SIGTERM and the end of its stdin (which a part also takes as the word to stop), SIGKILL after `graceMs`. */
async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (!isRunning(child)) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  child.stdin?.end();
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * Refuses to start beside a live stack in the same home, and stops what a killed one left running — only processes
 * whose pid, start time and command line all match what it recorded, so a reused pid never costs a stranger.
 */
async function clearLeftovers(home: string, events: StackEvents): Promise<void> {
  const table = await readProcessTable(home);
  if (table === undefined) return;
  const { supervisor } = table;
  if (supervisor.pid !== process.pid && isSameProcess(supervisor)) {
    throw new UserError(
      'USAGE',
      `a mechanic stack is already running from ${home} (pid ${supervisor.pid}); use it, stop it with Ctrl-C in its terminal, or set MECHANIC_HOME to start another`,
    );
  }
  const stopped = await stopRecorded(table.children, LEFTOVER_GRACE_MS);
  if (stopped.length > 0) {
    events.warn?.(
      `stopped what an earlier mechanic stack in ${home} left running: ${stopped
        .map(({ name, pid }) => `${PART_LABELS[name as PartName] ?? name} (pid ${pid})`)
        .join(', ')}`,
    );
  }
  await rm(processTableFile(home), { force: true });
}

const WATCHDOG = fileURLToPath(new URL('./watchdog.ts', import.meta.url));
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

const MAX_WATCHDOG_STARTS = 10;

interface Watchdog {
  watch(name: string, identity: ProcessIdentity): void;
  close(): void;
}

/**
 * Starts the watchdog (src/embedded/watchdog.ts) and keeps one running while the stack runs: one that dies is
 * started again and told every child recorded so far.
 */
function startWatchdog(stopping: () => boolean, onStart: (pid: number | undefined) => void): Watchdog {
  const known = new Map<string, ProcessIdentity>();
  let child: ChildProcess;
  const send = (name: string, identity: ProcessIdentity) => {
    child.stdin?.write(`${JSON.stringify({ name, ...identity })}\n`);
  };
  let starts = 0;
  const start = () => {
    starts++;
    child = spawn(process.execPath, ['--import', TSX_LOADER, WATCHDOG], {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    // It must never keep the supervisor alive; the supervisor's exit is exactly what it waits for.
    child.unref();
    (child.stdin as { unref?: () => void } | null)?.unref?.();
    child.stdin?.on('error', () => {});
    child.once('exit', () => {
      // One that cannot even start (a broken install) must not be respawned forever; the pid file still protects.
      if (!stopping() && starts < MAX_WATCHDOG_STARTS) start();
    });
    for (const [name, identity] of known) send(name, identity);
    onStart(child.pid);
  };
  start();
  return {
    watch(name, identity) {
      known.set(name, identity);
      send(name, identity);
    },
    close() {
      child.stdin?.end();
    },
  };
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
    // Port 0: the stack picks free ports itself, and picks again if one is taken by the time it is bound.
    TEMPORAL_ADDRESS: '127.0.0.1:0',
    TEMPORAL_UI_PORT: '0',
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
