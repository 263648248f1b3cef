import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { UserError } from '../core/errors.ts';
import { getFreePort } from './ports.ts';
import { allSearchAttributes, cliTypeName } from '../temporal/search-attributes.ts';
import type { SearchAttributeKey } from '@temporalio/common/lib/search-attributes.js';
import type { SearchAttributeType } from '@temporalio/common';

export interface DevServerOptions {
  /** The `temporal` CLI binary, from `findTemporalCli()`. */
  cliPath: string;
  /** SQLite file that keeps workflows across restarts; omit for an in-memory server that forgets everything. */
  dbFile?: string;
  /** Frontend gRPC port. Default: a random free port. */
  port?: number;
  /** Bind address of the frontend (and UI). Default 127.0.0.1: the dev server has no authentication. */
  ip?: string;
  /** Serve the Temporal Web UI. Default false. */
  ui?: boolean;
  /** Web UI port when `ui`. Default: a random free port. */
  uiPort?: number;
  /** Namespace to create and wait for. Default 'default' (which the CLI always creates). */
  namespace?: string;
  /** Append the server's stdout and stderr here; omitted, they are discarded (the last lines are kept for errors). */
  logFile?: string;
  /** Appended verbatim to the command line, e.g. more `--dynamic-config-value`s. */
  extraArgs?: string[];
  /**
   * Start it in a process group of its own, so a Ctrl-C meant for the supervisor's terminal does not reach it: the
   * supervisor stops it last, after the parts that talk to it. Default false.
   */
  detached?: boolean;
  /** Called with the server's pid as soon as it is spawned, before it is ready (a supervisor records it). */
  onSpawn?: (pid: number) => void;
  /**
   * How long `stop()` lets the server shut down on its own before SIGKILL. Default 10 s. Its SQLite file is as safe
   * either way (every write is a committed transaction, and the durability test SIGKILLs it); the grace only spares
   * its log the noise of a crash.
   */
  stopGraceMs?: number;
  /** How long to wait for the frontend to answer. Default 30 s; a large SQLite file can take well over 5 s. */
  startTimeoutMs?: number;
}

export interface DevServer {
  /** `host:port` of the frontend, for `Connection.connect({ address })` and `NativeConnection.connect`. */
  readonly address: string;
  readonly namespace: string;
  readonly uiUrl: string | undefined;
  readonly pid: number;
  /** SIGTERM, then SIGKILL after a grace period; resolves once the process has exited. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Dynamic config the SDK's own test server sets (sdk-core ephemeral_server): updates must be enabled for approvals,
 * and the version check would otherwise phone home on every start. Then interactive latency, for a server that has
 * one shard and one user (temporalio/temporal common/dynamicconfig/constants.go):
 * - each history queue reader (transfer: a new workflow or activity task for matching; timer: retries, sleeps and
 *   timeouts; visibility: the run list's status) polls at most 20 times a second by default, which a run waits out
 *   at every task; 1000 lets a task through as soon as it is written.
 * - eager activity execution: an activity scheduled on the worker's own task queue comes back in the answer to the
 *   workflow task that scheduled it, instead of a trip through matching (the SDK asks for it by default).
 */
const DYNAMIC_CONFIG = [
  'frontend.enableServerVersionCheck=false',
  'frontend.enableUpdateWorkflowExecution=true',
  'frontend.enableUpdateWorkflowExecutionAsyncAccepted=true',
  'history.transferProcessorMaxPollRPS=1000',
  'history.timerProcessorMaxPollRPS=1000',
  'history.visibilityProcessorMaxPollRPS=1000',
  'system.enableActivityEagerExecution=true',
];
const DEFAULT_START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;
const TAIL_LINES = 30;
const PORT_RETRIES = 3;

/**
 * Starts `temporal server start-dev` as a child process and resolves once its frontend answers gRPC calls for the
 * namespace and mechanic's search attributes are registered. If the process dies while starting, the error carries
 * its last output lines. When the port was chosen here and turned out to be taken after all, it retries with another.
 */
export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (error) {
      const retry = error instanceof PortTakenError && opts.port === undefined && attempt < PORT_RETRIES;
      if (!retry) throw error instanceof PortTakenError ? error.userError : error;
    }
  }
}

class PortTakenError extends Error {
  constructor(readonly userError: UserError) {
    super(userError.message);
  }
}

async function startOnce(opts: DevServerOptions): Promise<DevServer> {
  const ip = opts.ip ?? '127.0.0.1';
  const namespace = opts.namespace ?? 'default';
  const port = opts.port ?? (await getFreePort(ip));
  const ui = opts.ui ?? false;
  const uiPort = ui ? (opts.uiPort ?? (await getFreePort(ip))) : undefined;
  const host = ip.includes(':') ? `[${ip}]` : ip;
  const address = `${host}:${port}`;

  const args = [
    'server',
    'start-dev',
    '--ip',
    ip,
    '--port',
    String(port),
    '--log-format',
    'json',
    '--log-level',
    'warn',
  ];
  // The CLI always creates "default"; naming it again would only be noise.
  if (namespace !== 'default') args.push('--namespace', namespace);
  if (opts.dbFile !== undefined) {
    await mkdir(path.dirname(path.resolve(opts.dbFile)), { recursive: true });
    // Write-ahead logging, still synced at every commit: the CLI's SQLite otherwise journals with a
    // rollback file, about 22 ms a commit here against 3 ms, and every workflow task is a commit.
    // A killed server loses nothing committed either way.
    args.push('--db-filename', opts.dbFile, '--sqlite-pragma', 'journal_mode=wal');
  }
  if (uiPort !== undefined) args.push('--ui-port', String(uiPort));
  else args.push('--headless');
  for (const value of DYNAMIC_CONFIG) args.push('--dynamic-config-value', value);
  for (const key of allSearchAttributes) args.push('--search-attribute', `${key.name}=${cliTypeName(key.type)}`);
  args.push(...(opts.extraArgs ?? []));

  const log = opts.logFile === undefined ? undefined : await openLog(opts.logFile);
  const child = spawn(opts.cliPath, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: opts.detached ?? false });
  const output = captureOutput(child, log);
  let dead = false;
  // Aborted when the process is gone, so the readiness loop stops instead of polling a dead address until timeout.
  const gone = new AbortController();
  // 'close' rather than 'exit': it comes after stdout and stderr are drained, so the tail holds the dying words.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  // A binary that cannot be executed at all emits 'error' and never 'exit'.
  const spawnError = new Promise<Error>((resolve) =>
    child.once('error', (error) => {
      if (child.pid === undefined) {
        dead = true;
        gone.abort();
      }
      resolve(error);
    }),
  );
  void exited.then(() => {
    dead = true;
    gone.abort();
    liveChildren.delete(child);
    log?.end();
  });
  if (child.pid !== undefined) {
    liveChildren.add(child);
    opts.onSpawn?.(child.pid);
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (dead || child.pid === undefined) {
        log?.end();
        return;
      }
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), opts.stopGraceMs ?? STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    })();
    return stopping;
  };

  const timeoutMs = opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const failure = (problem: string): UserError =>
    new UserError('TEMPORAL_UNAVAILABLE', `${problem}${formatTail(output.tail())}`);

  const ready = (async () => {
    await waitUntilReady(address, namespace, Date.now() + timeoutMs, gone.signal);
    await withConnection(address, (connection) =>
      connection.withDeadline(Date.now() + 15_000, () => ensureSearchAttributes(connection, namespace)),
    );
  })();
  const outcome = await Promise.race([
    ready.then(() => 'ready' as const),
    exited.then((exit) => ({ exit })),
    spawnError.then((error) => ({ error })),
  ]).catch((error: unknown) => ({ error }));

  if (outcome === 'ready') {
    return {
      address,
      namespace,
      uiUrl: uiPort === undefined ? undefined : `http://${host}:${uiPort}`,
      pid: child.pid ?? -1,
      stop,
    };
  }
  // Whatever went wrong, leave no process behind. The readiness loop sees the abort and ends on its own: an attempt in
  // flight cannot be cancelled (grpc-js ignores the abort while still connecting) but is bounded by its 3 s deadline.
  await stop();
  void ready.catch(() => {
    // Its failure is already reported (or superseded by the exit) above.
  });
  if ('exit' in outcome) {
    const how =
      outcome.exit.signal !== null ? `was killed by ${outcome.exit.signal}` : `exited with ${outcome.exit.code}`;
    const error = failure(`The Temporal dev server ${how} while starting; its last output:`);
    if (/address already in use|port .* (is )?not free|can't set frontend port/i.test(output.tail().join('\n'))) {
      throw new PortTakenError(error);
    }
    throw error;
  }
  const cause = outcome.error;
  if (cause instanceof UserError) {
    throw failure(`${cause.message.replace(/\.$/, '')}; the dev server's last output:`);
  }
  const message = cause instanceof Error ? cause.message : String(cause);
  throw new UserError(
    'TEMPORAL_CLI_UNAVAILABLE',
    `Could not run the temporal CLI at "${opts.cliPath}" (${message}); check TEMPORAL_CLI or remove the cached binary.`,
    { cause },
  );
}

/**
 * Waits until a Temporal frontend at `address` answers `DescribeNamespace` for `namespace`, retrying until
 * `timeoutMs` has passed. Throws `TEMPORAL_UNAVAILABLE` if it never does.
 */
export async function waitForTemporal(address: string, namespace: string, timeoutMs: number): Promise<void> {
  await waitUntilReady(address, namespace, Date.now() + timeoutMs);
}

async function waitUntilReady(
  address: string,
  namespace: string,
  deadline: number,
  abort?: AbortSignal,
): Promise<void> {
  const started = Date.now();
  let lastError = 'nothing is listening yet';
  while (abort?.aborted !== true) {
    // A plain TCP probe first: far cheaper than a gRPC channel while the server is still booting.
    if (await tcpReachable(address, Math.max(100, Math.min(1_000, deadline - Date.now())))) {
      try {
        const attemptDeadline = Math.min(deadline, Date.now() + 3_000);
        await withConnection(address, (connection) =>
          connection.withDeadline(attemptDeadline, () => connection.workflowService.describeNamespace({ namespace })),
        );
        return;
      } catch (error) {
        lastError = error instanceof Error ? firstLine(error.message) : String(error);
      }
    } else {
      lastError = 'nothing is listening yet';
    }
    if (Date.now() >= deadline) break;
    await sleep(150, undefined, abort === undefined ? {} : { signal: abort }).catch(() => {
      // Aborted: the loop condition ends the wait.
    });
  }
  const waited = Math.round((Date.now() - started) / 1000);
  throw new UserError(
    'TEMPORAL_UNAVAILABLE',
    `Temporal at ${address} did not answer for namespace "${namespace}" within ${waited}s (${lastError}); ` +
      'check that the server is running and that the address and namespace are right.',
  );
}

/**
 * Makes sure `keys` exist as custom search attributes in `namespace`, adding the missing ones through the operator
 * service. The CLI registers them when it creates a database, but a database file made by an older mechanic (or a
 * self-hosted cluster) may lack attributes added since. Adding is idempotent; a type clash is reported, not fixed.
 */
export async function ensureSearchAttributes(
  connection: Connection,
  namespace: string,
  keys: readonly SearchAttributeKey<SearchAttributeType>[] = allSearchAttributes,
): Promise<void> {
  const { IndexedValueType } = proto.temporal.api.enums.v1;
  const wanted = new Map(keys.map((key) => [key.name, IndexedValueType[`INDEXED_VALUE_TYPE_${key.type}`]]));
  const existing = (await connection.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};
  const missing: Record<string, proto.temporal.api.enums.v1.IndexedValueType> = {};
  for (const [name, type] of wanted) {
    const current = existing[name];
    if (current === undefined) missing[name] = type;
    else if (current !== type) {
      throw new UserError(
        'TEMPORAL_UNAVAILABLE',
        `Search attribute ${name} exists in namespace "${namespace}" with type ${IndexedValueType[current]}, ` +
          `but mechanic needs ${IndexedValueType[type]}; remove it or use another namespace.`,
      );
    }
  }
  if (Object.keys(missing).length === 0) return;
  await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
  // The dev server refreshes its search-attribute cache on read, but a cluster may take a moment: confirm before use.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const now = (await connection.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};
    if (Object.keys(missing).every((name) => now[name] !== undefined)) return;
    if (Date.now() > deadline) {
      throw new UserError(
        'TEMPORAL_UNAVAILABLE',
        `Registered search attributes ${Object.keys(missing).join(', ')} in namespace "${namespace}", ` +
          'but the server still does not list them after 10s.',
      );
    }
    await sleep(200);
  }
}

async function withConnection<T>(address: string, fn: (connection: Connection) => Promise<T>): Promise<T> {
  const connection = Connection.lazy({ address, connectTimeout: '3s' });
  try {
    return await fn(connection);
  } finally {
    await connection.close();
  }
}

function tcpReachable(address: string, timeoutMs: number): Promise<boolean> {
  const { host, port } = splitAddress(address);
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function splitAddress(address: string): { host: string; port: number } {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
  if (match === null || match[1] === undefined || match[2] === undefined) {
    throw new UserError('CONFIG_INVALID', `Temporal address "${address}" is not in the form host:port.`);
  }
  return { host: match[1], port: Number(match[2]) };
}

async function openLog(file: string): Promise<WriteStream> {
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const stream = createWriteStream(file, { flags: 'a', mode: 0o600 });
  // A log we cannot write must not crash the process that owns the server; the output is simply lost.
  stream.on('error', () => {});
  return stream;
}

/** Tees the child's output into the log (if any) and keeps its last lines for error messages. */
function captureOutput(child: ChildProcess, log: WriteStream | undefined): { tail: () => string[] } {
  const lines: string[] = [];
  const onLine = (line: string): void => {
    log?.write(`${line}\n`);
    if (line.trim() === '') return;
    lines.push(line);
    if (lines.length > TAIL_LINES) lines.shift();
  };
  if (child.stdout !== null) createInterface({ input: child.stdout }).on('line', onLine);
  if (child.stderr !== null) createInterface({ input: child.stderr }).on('line', onLine);
  return { tail: () => [...lines] };
}

function formatTail(lines: string[]): string {
  if (lines.length === 0) return ' (no output)';
  return `\n${lines
    .slice(-10)
    .map((line) => `  ${summarizeLogLine(line)}`)
    .join('\n')}`;
}

/** The server logs JSON; show the message and error of a line rather than the whole record. */
function summarizeLogLine(line: string): string {
  try {
    const record: unknown = JSON.parse(line);
    if (typeof record === 'object' && record !== null) {
      const { level, msg, error } = record as Record<string, unknown>;
      const parts = [level, msg, error].filter((part) => typeof part === 'string' && part !== '');
      if (parts.length > 0) return parts.join(': ');
    }
  } catch {
    // Not JSON (the CLI's own messages are plain text): show it as is.
  }
  return line.length > 500 ? `${line.slice(0, 500)}…` : line;
}

function firstLine(text: string): string {
  return (text.split('\n', 1)[0] ?? '').trim();
}

/**
 * Children still running when this process exits are killed, so a crashed test run or CLI does not leave dev servers
 * holding ports and database files. (A SIGKILLed parent cannot do this; `mechanic dev` supervises its children.)
 */
const liveChildren = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
});
