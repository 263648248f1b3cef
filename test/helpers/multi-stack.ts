/**
 * mechanic as production runs it, on one machine: one Temporal dev server (SQLite file), devfleet,
 * and any number of `mechanic worker` and `mechanic server` processes on one task queue and one
 * audit database (PostgreSQL when `databaseUrl` is given). Unlike `mechanic dev`, nothing here
 * restarts a part on its own: the test kills and starts each one, and knows which one ran what.
 *
 * Every part is a child of the test process with a pipe on its stdin (MECHANIC_SUPERVISED=1): if the
 * test process dies, the pipes close and the parts stop. `stop()` ends them all; an exit hook
 * SIGKILLs whatever is left if the test process exits without it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../../src/config.ts';
import { createApiClient, type ApiClient } from '../../src/api/client.ts';
import { ensureDemoUsers, readUsersFile } from '../../src/authz/users.ts';
import { COMMAND_LOG_FILE, readCommandLog, type CommandLogEntry } from '../../src/devfleet/command-log.ts';
import { defaultFleetConfig, type FleetConfig } from '../../src/devfleet/config.ts';
import { startDevServer, type DevServer } from '../../src/embedded/dev-server.ts';
import { getFreePort } from '../../src/embedded/ports.ts';
import { throwawayStackEnv, workerAwsEnv } from '../../src/embedded/stack.ts';
import { TERMINAL_STATUSES, type ExecutionView } from '../../src/core/execution.ts';
import { BIN, runCli, type CliResult } from './cli.ts';

/**
 * A runbook written for these tests: two steps on the web hosts, and each host writes down every
 * run of each step ("<tag> <step>" in its own `witness` file), so a step that ran twice shows on the
 * host whatever any log says. `tag` is unique per run.
 */
export const WITNESS_RUNBOOK = `name: witness-steps
version: 1
description: Two steps on the web fleet; each host writes down every run of each step.
roleArn: arn:aws:iam::123456789012:role/mechanic-runner
parameters:
  tag:
    type: string
    pattern: '^[a-z0-9-]{1,40}$'
  seconds:
    type: integer
    min: 0
    max: 60
    default: 1
targets:
  tags:
    Role: web
steps:
  - name: slow
    timeoutSeconds: 120
    script: |
      printf '%s slow\\n' {{ tag }} >> witness
      sleep {{ seconds }}
  - name: after
    timeoutSeconds: 60
    script: |
      printf '%s after\\n' {{ tag }} >> witness
`;

export const WEB_INSTANCES = ['i-0d3f1ee7000000001', 'i-0d3f1ee7000000002'] as const;

type PartKind = 'devfleet' | 'worker' | 'server';

/** One `mechanic <kind>` process, which the test starts, kills and starts again. */
export interface StackPart {
  readonly name: string;
  readonly kind: PartKind;
  /** The pid of the running process; undefined while it is down. */
  readonly pid: number | undefined;
  /** Every pid this part has had, oldest first. */
  readonly pids: readonly number[];
  /** Every identity a worker said its tasks carry in Temporal's history (its "worker started" line). */
  readonly identities: readonly string[];
  /** Where it answers (devfleet's endpoint, a server's URL), from its ready line. */
  readonly url: string | undefined;
  running(): boolean;
  /** Starts it (again, on the same port) and resolves once it logs that it is ready. */
  start(): Promise<void>;
  /** SIGKILL, and resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM (a worker finishes its in-flight calls), SIGKILL after a grace; resolves once it is gone. */
  stop(): Promise<void>;
  /** Its log so far (every start), for failure messages. */
  output(): string;
}

export interface MultiStack {
  readonly home: string;
  readonly fleetDir: string;
  readonly temporal: {
    readonly address: string;
    readonly pid: number | undefined;
    kill(): Promise<void>;
    start(): Promise<void>;
  };
  readonly devfleet: StackPart;
  readonly workers: readonly StackPart[];
  readonly servers: readonly StackPart[];
  /** A demo user's token (users file). */
  token(user: string): string;
  /** The typed API client of server `i` as `user`. */
  api(i: number, user: string): ApiClient;
  /** The real command line against server `i` as `user`. */
  cli(i: number, user: string, ...args: string[]): Promise<CliResult>;
  /** A Temporal client (its payloads stay encrypted: only history metadata is read through it). */
  temporalClient(): Promise<Client>;
  commandLog(): Promise<CommandLogEntry[]>;
  /** Each web host's own record: its witness lines ("<tag> <step>"). */
  witness(): Promise<Record<string, string[]>>;
  /** Everything the stack printed, part by part, for a failure message. */
  describe(): string;
  stop(): Promise<void>;
}

export interface MultiStackOptions {
  /** The `temporal` CLI (from vitest's inject('temporalCli')). */
  temporalCli: string;
  workers: number;
  servers: number;
  /** PostgreSQL for the audit log and registry; SQLite under the home when omitted. */
  databaseUrl?: string;
  /** More settings for every part. */
  env?: NodeJS.ProcessEnv;
  /** Changes devfleet's config (the demo fleet with fresh root keys): light instances, faults, stsTimeScale, callLog. */
  fleet?: (demo: FleetConfig) => FleetConfig;
  /** More runbooks (file name → YAML) beside witness-steps, published and reviewed with it. */
  runbooks?: Readonly<Record<string, string>>;
}

const READY_TIMEOUT_MS = 180_000;
const STOP_GRACE_MS = 15_000;

/** Every process any multi-stack of this test process started and has not seen exit. */
const live = new Set<ChildProcess>();
/** The Temporal servers' pids (started by startDevServer, which keeps no pipe to them). */
const liveTemporal = new Set<number>();
let exitHook = false;
function killLeftoversOnExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
    for (const pid of liveTemporal) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  });
}

export async function startMultiStack(opts: MultiStackOptions): Promise<MultiStack> {
  killLeftoversOnExit();
  const home = await mkdtemp(path.join(tmpdir(), 'mechanic-multi-'));
  const fleetDir = path.join(home, 'devfleet');
  const runbooksDir = path.join(home, 'runbooks');
  await mkdir(path.join(home, 'logs'), { recursive: true });
  await mkdir(fleetDir, { recursive: true, mode: 0o700 });
  await mkdir(runbooksDir, { recursive: true });
  await writeFile(path.join(runbooksDir, 'witness-steps.yaml'), WITNESS_RUNBOOK);
  for (const [file, text] of Object.entries(opts.runbooks ?? {})) await writeFile(path.join(runbooksDir, file), text);

  const root = {
    accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64'),
  };
  const demo: FleetConfig = defaultFleetConfig(root);
  const fleet: FleetConfig = opts.fleet ? opts.fleet(demo) : demo;
  await writeFile(path.join(fleetDir, 'fleet.json'), JSON.stringify(fleet, null, 2), { mode: 0o600 });
  const usersFile = path.join(home, 'users.json');
  await ensureDemoUsers(usersFile);
  const users = new Map((await readUsersFile(usersFile)).users.map((u) => [u.id, u.token]));

  const temporalPort = await getFreePort();
  const temporalOptions = {
    cliPath: opts.temporalCli,
    dbFile: path.join(home, 'temporal.db'),
    port: temporalPort,
    logFile: path.join(home, 'logs', 'temporal.log'),
    stopGraceMs: 2_500,
  };
  const startTemporal = async (): Promise<DevServer> => {
    const server = await startDevServer(temporalOptions);
    liveTemporal.add(server.pid);
    return server;
  };
  const stopTemporal = async (server: DevServer): Promise<void> => {
    await server.stop();
    liveTemporal.delete(server.pid);
  };
  // The workers load one pre-built workflow bundle, as production workers do (`npm run build`): built
  // once here, not by every worker at every start.
  const bundling = runCli(['bundle', '--out', path.join(home, 'workflow-bundle.js')], {
    ...(await throwawayStackEnv(home, { minMs: 100, maxMs: 500 })),
  });
  let temporal: DevServer | undefined = await startTemporal();
  const address = temporal.address;
  const cleanups: (() => Promise<unknown>)[] = [];

  const base: NodeJS.ProcessEnv = {
    ...(await throwawayStackEnv(home, { minMs: 100, maxMs: 500 })),
    MECHANIC_SUPERVISED: '1',
    LOG_LEVEL: 'info',
    MECHANIC_RUNBOOKS_DIR: runbooksDir,
    MECHANIC_USERS_FILE: usersFile,
    MECHANIC_AUDIT_KEY_FILE: path.join(home, 'audit-key.pem'),
    MECHANIC_CODEC_KEYS: `multi1:${randomBytes(32).toString('base64')}`,
    TEMPORAL_ADDRESS: address,
    // A worker that dies mid-step is noticed after 3 s, not a minute.
    MECHANIC_HEARTBEAT_TIMEOUT_SECONDS: '3',
    // The test polls many runs through one user: the API's per-user budget must not be what it meets.
    MECHANIC_RATE_LIMIT_BURST: '100000',
    MECHANIC_RATE_LIMIT_PER_SECOND: '100000',
    ...(opts.databaseUrl !== undefined ? { DATABASE_URL: opts.databaseUrl } : {}),
    ...opts.env,
  };

  const parts: StackPart[] = [];
  let stopped = false;
  const makePart = (name: string, kind: PartKind, envFor: () => NodeJS.ProcessEnv): StackPart => {
    let child: ChildProcess | undefined;
    let url: string | undefined;
    const pids: number[] = [];
    const identities: string[] = [];
    let text = '';
    let log: WriteStream | undefined;
    const part: StackPart = {
      name,
      kind,
      get pid() {
        return child !== undefined && child.exitCode === null && child.signalCode === null ? child.pid : undefined;
      },
      pids,
      identities,
      get url() {
        return url;
      },
      running: () => child !== undefined && child.exitCode === null && child.signalCode === null,
      output: () => text,
      async start() {
        if (stopped) throw new Error(`${name} cannot start: the stack has been stopped`);
        if (part.running()) throw new Error(`${name} is already running`);
        log ??= createWriteStream(path.join(home, 'logs', `${name}.log`), { flags: 'a' });
        const env = envFor();
        const c = spawn(process.execPath, [BIN, kind], { env, stdio: ['pipe', 'pipe', 'pipe'] });
        child = c;
        live.add(c);
        c.once('exit', () => live.delete(c));
        c.stdin.on('error', () => {});
        if (c.pid !== undefined) pids.push(c.pid);
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`${name} was not ready within ${READY_TIMEOUT_MS / 1000} s:\n${text.slice(-3000)}`)),
            READY_TIMEOUT_MS,
          );
          const onLine = (line: string) => {
            text += `${line}\n`;
            log?.write(`${line}\n`);
            try {
              const entry = JSON.parse(line) as Record<string, unknown>;
              if (entry['msg'] === 'worker started' && typeof entry['identity'] === 'string') {
                identities.push(entry['identity']);
              }
              if (entry['msg'] === 'ready') {
                clearTimeout(timer);
                const at = entry['endpoint'] ?? entry['url'];
                if (typeof at === 'string') url = at;
                resolve();
              }
            } catch {
              // Not a JSON log line (a native module's warning): kept in the output only.
            }
          };
          createInterface({ input: c.stdout }).on('line', onLine);
          createInterface({ input: c.stderr }).on('line', onLine);
          c.once('exit', (code, signal) => {
            clearTimeout(timer);
            reject(new Error(`${name} exited while starting (${signal ?? `code ${code}`}):\n${text.slice(-3000)}`));
          });
        });
      },
      async kill() {
        const c = child;
        if (c === undefined || !part.running()) return;
        const exited = new Promise((r) => c.once('exit', r));
        c.kill('SIGKILL');
        await exited;
      },
      async stop() {
        const c = child;
        if (c === undefined || !part.running()) return;
        const exited = new Promise((r) => c.once('exit', r));
        c.kill('SIGTERM');
        c.stdin?.end();
        const timer = setTimeout(() => c.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
        log?.end();
        log = undefined;
      },
    };
    parts.push(part);
    return part;
  };

  // devfleet first (the others need its endpoint); restarted, it comes back on the same port with its state.
  let devfleetPort = '0';
  const devfleet = makePart('devfleet', 'devfleet', () => ({
    ...base,
    MECHANIC_DEVFLEET_PORT: devfleetPort,
    AWS_ACCESS_KEY_ID: root.accessKeyId,
    AWS_SECRET_ACCESS_KEY: root.secretAccessKey,
  }));
  const stopEverything = async () => {
    stopped = true;
    await Promise.all(parts.map((p) => p.stop()));
    if (temporal !== undefined) await stopTemporal(temporal);
    temporal = undefined;
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  };
  try {
    await devfleet.start();
    const endpoint = devfleet.url!;
    devfleetPort = new URL(endpoint).port;
    const partEnv: NodeJS.ProcessEnv = {
      ...base,
      MECHANIC_AWS_ENDPOINT: endpoint,
      AWS_ACCESS_KEY_ID: root.accessKeyId,
      AWS_SECRET_ACCESS_KEY: root.secretAccessKey,
    };
    const bundle = await bundling;
    if (bundle.code !== 0) throw new Error(`mechanic bundle failed: ${bundle.stderr}`);
    // Workers sign as devfleet's worker role from its container-credentials endpoint, as on ECS.
    const workerEnv = {
      ...(await workerAwsEnv(loadConfig(partEnv), partEnv, endpoint)).env,
      MECHANIC_WORKFLOW_BUNDLE: bundle.stdout.trim(),
    };
    const serverPorts: string[] = [];
    const servers = Array.from({ length: opts.servers }, (_, i) =>
      makePart(`server-${i + 1}`, 'server', () => ({
        ...partEnv,
        MECHANIC_API_PORT: serverPorts[i] ?? '0',
        // The first server publishes and reviews the runbooks; the others find them in the shared registry.
        MECHANIC_REGISTRY_SEED: i === 0 ? 'carol,bob' : '',
      })),
    );
    const workers = Array.from({ length: opts.workers }, (_, i) =>
      makePart(`worker-${i + 1}`, 'worker', () => workerEnv),
    );
    // The first server alone: it makes the audit key and seeds the registry before anyone else reads them.
    await servers[0]!.start();
    await Promise.all([...servers.slice(1), ...workers].map((p) => p.start()));
    servers.forEach((s, i) => (serverPorts[i] = new URL(s.url!).port));

    const cliEnv = (i: number, user: string): NodeJS.ProcessEnv => ({
      ...base,
      MECHANIC_SUPERVISED: '0',
      MECHANIC_API_URL: servers[i]!.url,
      MECHANIC_TOKEN: token(user),
    });
    const token = (user: string): string => {
      const t = users.get(user);
      if (t === undefined) throw new Error(`no demo user ${user}`);
      return t;
    };
    let client: { client: Client; connection: Connection } | undefined;
    cleanups.push(async () => client?.connection.close());

    return {
      home,
      fleetDir,
      temporal: {
        address,
        get pid() {
          return temporal?.pid;
        },
        async kill() {
          if (temporal === undefined) return;
          process.kill(temporal.pid, 'SIGKILL');
          await stopTemporal(temporal); // resolves once the killed process is gone
          temporal = undefined;
        },
        async start() {
          if (stopped) throw new Error('the Temporal server cannot start: the stack has been stopped');
          if (temporal !== undefined) throw new Error('the Temporal server is already running');
          temporal = await startTemporal();
        },
      },
      devfleet,
      workers,
      servers,
      token,
      api: (i, user) => createApiClient({ url: servers[i]!.url!, token: token(user) }),
      cli: (i, user, ...args) => runCli(args, cliEnv(i, user)),
      async temporalClient() {
        if (client === undefined) {
          const connection = await Connection.connect({ address });
          client = { connection, client: new Client({ connection }) };
        }
        return client.client;
      },
      commandLog: () => readCommandLog(fleetDir),
      async witness() {
        const out: Record<string, string[]> = {};
        for (const id of WEB_INSTANCES) {
          const text = await readFile(path.join(fleetDir, 'instances', id, 'root', 'witness'), 'utf8').catch(() => '');
          out[id] = text.split('\n').filter((l) => l !== '');
        }
        return out;
      },
      describe: () =>
        parts
          .map((p) => `--- ${p.name} (pids ${p.pids.join(', ')})\n${p.output().split('\n').slice(-40).join('\n')}`)
          .join('\n'),
      async stop() {
        try {
          await stopEverything();
        } finally {
          if (process.env['MECHANIC_KEEP_TEST_HOME'] === '1') process.stderr.write(`kept ${home}\n`);
          else await rm(home, { recursive: true, force: true });
        }
      },
    };
  } catch (e) {
    await stopEverything().catch(() => undefined);
    await rm(home, { recursive: true, force: true });
    throw e;
  }
}

/** Each (run tag, step) a host ran, counted: `{ "<tag> slow": 1, … }` per instance. */
export function witnessCounts(witness: Record<string, string[]>): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const [id, lines] of Object.entries(witness)) {
    const counts: Record<string, number> = {};
    for (const l of lines) counts[l] = (counts[l] ?? 0) + 1;
    out[id] = counts;
  }
  return out;
}

/** `{ "<step> <instance>": count }` of one run's entries in devfleet's command log. */
export function commandLogCounts(log: readonly CommandLogEntry[], executionId: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of log) {
    if (!e.comment.startsWith(`mechanic ${executionId} `)) continue;
    const key = `${e.comment.split(' ').slice(2).join(' ')} ${e.instanceId}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** The error code a failed API call carries (UserError), or undefined for anything else. */
function codeOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** Calls that may fail only because the part answering them is down (or restarting). */
const UNAVAILABLE = new Set(['SERVER_UNAVAILABLE', 'TEMPORAL_UNAVAILABLE', 'INTERNAL']);

/**
 * Tries `fn` on server `first`, then on each other one, round and round, until one answers; a failure
 * that is not the unavailability of a part is thrown at once. The test's timeout bounds it.
 */
export async function onAnyServer<T>(
  stack: MultiStack,
  first: number,
  fn: (i: number) => Promise<T>,
  what: string,
): Promise<T> {
  const n = stack.servers.length;
  for (let attempt = 0; ; attempt++) {
    const i = (first + attempt) % n;
    try {
      return await fn(i);
    } catch (e) {
      const code = codeOf(e);
      if (code === undefined || !UNAVAILABLE.has(code)) throw e;
      if (attempt % n === n - 1) await new Promise((r) => setTimeout(r, 500));
      if (attempt > 2000) throw new Error(`${what}: no server answered (${(e as Error).message})`, { cause: e });
    }
  }
}

export interface LaunchedRun {
  readonly tag: string;
  readonly executionId: string;
  readonly planDigest: string;
}

/**
 * Launches witness-steps as alice through server `via` (another one if it is down). A launch whose
 * answer was lost may still have started the run: before trying again, the operator looks for it by
 * its tag, as a person would look at the list, and adopts it rather than starting a second one.
 */
export async function launchWitnessRun(
  stack: MultiStack,
  via: number,
  tag: string,
  seconds: number,
): Promise<LaunchedRun> {
  const body = { runbook: 'witness-steps', params: { tag, seconds }, reason: `run ${tag}` };
  let tried = false;
  return onAnyServer(
    stack,
    via,
    async (i) => {
      const api = stack.api(i, 'alice');
      if (tried) {
        const { executions } = await api.call('listExecutions', { query: { limit: 500 } });
        const found = executions.find((e) => e.params['tag'] === tag);
        if (found) return { tag, executionId: found.id, planDigest: found.planDigest };
      }
      tried = true;
      const launched = await api.call('launch', { body });
      return { tag, executionId: launched.executionId, planDigest: launched.planDigest };
    },
    `launching ${tag}`,
  );
}

/** bob approves the run through server `via` (another if it is down); a vote that landed before its answer was lost counts. */
export async function approveRun(stack: MultiStack, via: number, run: LaunchedRun): Promise<void> {
  let tried = false;
  await onAnyServer(
    stack,
    via,
    async (i) => {
      try {
        await stack
          .api(i, 'bob')
          .call('vote', { params: { id: run.executionId }, body: { decision: 'approve', planDigest: run.planDigest } });
      } catch (e) {
        // A retry after a lost answer: the vote counted, or the run has gone on past its approval
        // (bob's vote is the one it waits for; how the run ended is for the caller to check).
        if (tried && (codeOf(e) === 'APPROVAL_DUPLICATE' || codeOf(e) === 'EXECUTION_FINISHED')) return;
        tried = true;
        throw e;
      }
    },
    `approving ${run.tag}`,
  );
}

/** The run's view once it has ended (any server that answers). */
export async function untilEnded(stack: MultiStack, executionId: string, via = 0): Promise<ExecutionView> {
  for (;;) {
    const view = await onAnyServer(
      stack,
      via,
      async (i) => (await stack.api(i, 'alice').call('getExecution', { params: { id: executionId } })).execution,
      `reading ${executionId}`,
    );
    if (TERMINAL_STATUSES.has(view.status)) return view;
    await new Promise((r) => setTimeout(r, 500));
  }
}

export interface HistoryTask {
  readonly kind: 'workflow task' | 'activity';
  readonly name: string;
  readonly identity: string;
  readonly atMs: number;
}

/** Who ran what in one run: each started workflow task and activity in its Temporal history, with the worker's identity. */
export async function tasksOf(stack: MultiStack, executionId: string): Promise<HistoryTask[]> {
  const client = await stack.temporalClient();
  const history = await client.workflow.getHandle(executionId).fetchHistory();
  const scheduled = new Map<string, string>();
  const tasks: HistoryTask[] = [];
  for (const event of history.events ?? []) {
    const atMs = Number(event.eventTime?.seconds ?? 0) * 1000 + Math.floor((event.eventTime?.nanos ?? 0) / 1e6);
    const id = String(event.eventId);
    const s = event.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(id, s.activityType?.name ?? '?');
    const a = event.activityTaskStartedEventAttributes;
    if (a) {
      tasks.push({
        kind: 'activity',
        name: scheduled.get(String(a.scheduledEventId)) ?? '?',
        identity: a.identity ?? '',
        atMs,
      });
    }
    const w = event.workflowTaskStartedEventAttributes;
    if (w) tasks.push({ kind: 'workflow task', name: 'workflow task', identity: w.identity ?? '', atMs });
  }
  return tasks;
}

/** The worker (by name) that logged a Temporal identity as its own. */
export function workerOf(stack: MultiStack, identity: string): string | undefined {
  return stack.workers.find((w) => w.identities.includes(identity))?.name;
}

/**
 * `{ "<step> <instance>": count }` of one run's invocations devfleet really ran: a `start` line of its
 * command log followed by the script's `spawn` line or a `finish`. A start line alone is an
 * invocation devfleet was killed in the middle of starting, before its InProgress state was on disk
 * and before any script ran; the restarted devfleet delivers it again (see the report on issue 11).
 */
export async function ranCounts(stack: MultiStack, executionId: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const e of await startsOf(stack)) {
    if (!e.ran || !e.comment.startsWith(`mechanic ${executionId} `)) continue;
    const k = `${e.comment.split(' ').slice(2).join(' ')} ${e.instanceId}`;
    counts[k] = (counts[k] ?? 0) + 1;
  }
  return counts;
}

/** The comments of the invocations whose scripts are running on the hosts now (spawned, not finished). */
export async function runningNow(stack: MultiStack): Promise<string[]> {
  return (await startsOf(stack)).filter((e) => e.spawned && !e.finished).map((e) => e.comment);
}

interface StartEntry {
  key: string;
  comment: string;
  instanceId: string;
  spawned: boolean;
  finished: boolean;
  /** Spawned or finished: the invocation really began. */
  ran: boolean;
}

async function startsOf(stack: MultiStack): Promise<StartEntry[]> {
  const text = await readFile(path.join(stack.fleetDir, COMMAND_LOG_FILE), 'utf8').catch(() => '');
  const starts: StartEntry[] = [];
  const last = new Map<string, StartEntry>();
  for (const raw of text.split('\n')) {
    let line: { type?: string; commandId?: string; instanceId?: string; comment?: string };
    try {
      line = JSON.parse(raw) as typeof line;
    } catch {
      continue; // the empty last line, or one torn by a SIGKILL
    }
    const key = `${line.commandId}/${line.instanceId}`;
    if (line.type === 'start') {
      const entry: StartEntry = {
        key,
        comment: line.comment ?? '',
        instanceId: line.instanceId ?? '',
        spawned: false,
        finished: false,
        ran: false,
      };
      starts.push(entry);
      last.set(key, entry);
    } else {
      const entry = last.get(key);
      if (!entry) continue;
      if (line.type === 'spawn') entry.spawned = true;
      else entry.finished = true;
      entry.ran = true;
    }
  }
  return starts;
}
