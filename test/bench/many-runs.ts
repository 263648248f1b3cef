/**
 * Many runs at once on one worker: 200 approved two-step runs on three instances (bench-pair) on
 * the embedded stack as `mechanic dev` runs it (its Temporal dev server, devfleet, one worker, one
 * API server), launched and approved by a crowd of operators and approvers working at once.
 *
 *   steps/s        steps completed ÷ wall time from the first launch request to the last run's end
 *   worker RSS     the worker process's resident memory, sampled from /proc while the runs go
 *                  (peak), and its high-water mark over its whole life (VmHWM, which includes
 *                  bundling the workflow code at start); beside it, the heap limits and the number of
 *                  runs kept in memory the worker logged at start (MECHANIC_WORKER_HEAP_MB,
 *                  MECHANIC_WORKER_MAX_CACHED_RUNS)
 *   launch, vote   each API call's answer time as the client sees it (p50, p95, max)
 *   lost           every run completed, and each (run, step, instance) ran exactly once on
 *                  devfleet (its command log); anything else fails the bench
 *   waits          where the time went, from the runs' Temporal histories: how long the workflow
 *                  task that took each vote waited for a worker and ran, and the same for every
 *                  workflow and activity task (see TaskWaits)
 *
 * The crowd is closed-loop: CLIENTS callers each launch a run, approve it as another user, and go
 * on to the next, until RUNS are launched; the runs themselves overlap (they are all in flight at
 * once when the worker is slower than the crowd). The API's rate limits are raised for the bench:
 * they would otherwise (rightly) slow one principal doing 400 calls in seconds.
 *
 * Part of `npm run bench` (run.ts); alone: `node --import tsx test/bench/many-runs.ts`, with
 * BENCH_RUNS / BENCH_CLIENTS to change the size (BENCH_KEEP=1 keeps the stack's folder), and any MECHANIC_WORKER_* setting in the
 * environment passed to the worker.
 */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import proto, { type temporal as Proto } from '@temporalio/proto';
import { connectApi } from '../../cli/api.ts';
import { loadConfig } from '../../src/config.ts';
import { readCommandLog } from '../../src/devfleet/command-log.ts';
import { readProcessTable } from '../../src/embedded/processes.ts';
import { startStack, throwawayStackEnv } from '../../src/embedded/stack.ts';

process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';

const STEPS = 2;
const INSTANCES = 3;

/**
 * Two short steps on the three staging hosts. Not rotate-logs: its prune step lists and deletes
 * the host's archives, so two of its runs at once on one host can race each other's `rm`.
 */
const RUNBOOK = `name: bench-pair
version: 1
description: Bench runbook, two short steps on every staging host.
owners: [sre]
risk: low
environment: staging
tags: [bench]
roleArn: arn:aws:iam::123456789012:role/mechanic-runner
targets:
  tags:
    Env: staging
approval:
  required: 1
  expiresAfterMinutes: 30
steps:
  - name: first
    timeoutSeconds: 60
    script: echo first on $(hostname)
  - name: second
    timeoutSeconds: 60
    script: echo second on $(hostname)
`;

export interface ManyRunsResult {
  runs: number;
  clients: number;
  seconds: number;
  stepsPerSecond: number;
  rssIdleMiB: number;
  rssPeakMiB: number;
  rssHighWaterMiB: number;
  /** What the worker logged at start: its heaps' limits (MiB) and the runs it keeps in memory. */
  workerMemory: WorkerMemory | undefined;
  launch: Latency;
  vote: Latency;
  completed: number;
  invocations: number;
  /** Launches and votes the server answered with an error (each then sent again). */
  launchErrors: string[];
  voteErrors: string[];
  /** CPU seconds each part of the stack (and this process, the callers) spent during the runs. */
  cpu: Record<string, number>;
  /** Where the time went, from the runs' Temporal histories (see taskWaits). */
  waits: TaskWaits;
}

/**
 * Where a vote and a step wait, read from the runs' histories (Temporal's own timestamps):
 *   voteQueue      the workflow task that took the vote: scheduled → a worker started it
 *   voteTask       that task: started → completed (the validator, the handler, its audit write)
 *   voteAnswerTask the workflow task whose completion answered the vote (wrote the update's
 *                  completion): started → completed. The caller has its answer only then, and the
 *                  task runs on past the handler: the local activities it records (the vote's
 *                  record, and after an approval the run's next records) all hold the answer. When a
 *                  vote races the run's first task, it is accepted in one task and answered in the next.
 *   firstTask      each run's first workflow task: started → completed (records the request); a
 *                  vote sent right after the launch waits for it
 *   taskQueue      every workflow task: scheduled → started
 *   activityQueue  every activity task: scheduled → started (0 when handed out eagerly)
 *   activityRun    every activity task: started → completed (SSM calls, polls, audit writes)
 */
export interface TaskWaits {
  voteQueue: Latency;
  voteTask: Latency;
  voteAnswerTask: Latency;
  firstTask: Latency;
  /** Local activities (markers) recorded by the task that answered the vote (mean). */
  voteAnswerLocalActivities: number;
  taskQueue: Latency;
  activityQueue: Latency;
  activityRun: Latency;
  /** Workflow and activity tasks per run (mean). */
  workflowTasksPerRun: number;
  activitiesPerRun: number;
}

interface WorkerMemory {
  heapLimitMiB: { main: number; workflows: number };
  maxCachedRuns: number;
}

/** The memory settings the worker logged in its 'worker started' line, if it did. */
async function workerMemoryOf(home: string): Promise<WorkerMemory | undefined> {
  const log = await readFile(path.join(home, 'logs', 'worker.log'), 'utf8').catch(() => '');
  const line = log
    .split('\n')
    .filter((l) => l.includes('"worker started"'))
    .at(-1);
  if (line === undefined) return undefined;
  const entry = JSON.parse(line) as Partial<WorkerMemory>;
  return entry.heapLimitMiB && entry.maxCachedRuns !== undefined
    ? { heapLimitMiB: entry.heapLimitMiB, maxCachedRuns: entry.maxCachedRuns }
    : undefined;
}

interface Latency {
  p50: number;
  p95: number;
  max: number;
}

function latency(xs: readonly number[]): Latency {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
  return { p50: q(0.5), p95: q(0.95), max: s.at(-1)! };
}

/** A field of /proc/<pid>/status in MiB (VmRSS, VmHWM); undefined when the process is gone. */
function procMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) a process has used so far; 0 when it is gone. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

/** Runs the bench on a throwaway stack under `dir`. */
export async function benchManyRuns(dir: string, runs = 200, clients = 20): Promise<ManyRunsResult> {
  const home = path.join(dir, 'many-runs-stack');
  // The stack's own polling defaults, unless the caller's environment sets them (as in step-overhead.ts).
  const {
    MECHANIC_POLL_MIN_MS: _min,
    MECHANIC_POLL_MAX_MS: _max,
    ...env
  } = await throwawayStackEnv(home, { minMs: 0, maxMs: 0 });
  for (const [key, value] of Object.entries(process.env)) {
    if (/^MECHANIC_(POLL_|WORKER_)/.test(key) && value !== undefined) env[key] = value;
  }
  env['MECHANIC_RATE_LIMIT_BURST'] = '100000';
  env['MECHANIC_RATE_LIMIT_PER_SECOND'] = '100000';
  const runbooksDir = path.join(dir, 'many-runs-runbooks');
  await mkdir(runbooksDir, { recursive: true });
  await writeFile(path.join(runbooksDir, 'bench-pair.yaml'), RUNBOOK);
  env['MECHANIC_RUNBOOKS_DIR'] = runbooksDir;
  const config = loadConfig(env);
  const stack = await startStack(config, { progress: () => {} }, env);
  try {
    const children = (await readProcessTable(home))?.children ?? {};
    const parts = Object.fromEntries(
      ['temporal', 'devfleet', 'worker', 'server'].flatMap((name) => {
        const pid = children[name]?.pid;
        return pid === undefined ? [] : [[name, pid] as const];
      }),
    );
    // The bench process: the callers, and the stack's supervisor.
    parts['bench'] = process.pid;
    const workerPid = parts['worker'];
    if (workerPid === undefined) throw new Error('the stack recorded no worker process');
    const alice = await connectApi(config, 'alice');
    const bob = await connectApi(config, 'bob');
    const dave = await connectApi(config, 'dave');

    // One warm-up run: the first workflow task of a fresh worker pays for loading the workflow code.
    const warm = await alice.call('launch', {
      body: { runbook: 'bench-pair', reason: 'warm-up' },
    });
    await bob.call('vote', {
      params: { id: warm.executionId },
      body: { decision: 'approve', planDigest: warm.planDigest },
    });
    if ((await waitForEnd([warm.executionId], dave)).length > 0) throw new Error('the warm-up run did not complete');
    const rssIdleMiB = procMiB(workerPid, 'VmRSS') ?? 0;

    let rssPeakMiB = rssIdleMiB;
    const sampler = setInterval(() => {
      rssPeakMiB = Math.max(rssPeakMiB, procMiB(workerPid, 'VmRSS') ?? 0);
    }, 100);
    const launches: number[] = [];
    const votes: number[] = [];
    const ids: string[] = [];
    const launchErrors: string[] = [];
    const voteErrors: string[] = [];
    const startedAt = Date.now();
    const cpuBefore = Object.fromEntries(Object.entries(parts).map(([n, pid]) => [n, cpuSeconds(pid)]));
    try {
      let next = 0;
      await Promise.all(
        Array.from({ length: clients }, async () => {
          while (next < runs) {
            const i = next++;
            let t = performance.now();
            let launched;
            for (let attempt = 1; ; attempt++) {
              try {
                launched = await alice.call('launch', {
                  body: { runbook: 'bench-pair', reason: `many runs bench ${i}` },
                });
                break;
              } catch (e) {
                launchErrors.push((e as Error).message);
                if (attempt === 3) throw e;
              }
            }
            launches.push(performance.now() - t);
            ids.push(launched.executionId);
            // A launch or vote the server could not handle is counted and sent again, as a person
            // would; its latency is the whole wait, retries included.
            t = performance.now();
            for (let attempt = 1; ; attempt++) {
              try {
                await bob.call('vote', {
                  params: { id: launched.executionId },
                  body: { decision: 'approve', planDigest: launched.planDigest },
                });
                break;
              } catch (e) {
                // Sent again after an error, the vote may find it already counted: the error lied.
                if (attempt > 1 && (e as { code?: string }).code === 'EXECUTION_FINISHED') break;
                voteErrors.push((e as Error).message);
                if (attempt === 3) throw e;
              }
            }
            votes.push(performance.now() - t);
          }
        }),
      );
      const failed = await waitForEnd(ids, dave);
      if (failed.length > 0) {
        const why = await Promise.all(
          failed.slice(0, 5).map(async ({ id, status }) => {
            const { records } = await dave.call('listAudit', { query: { executionId: id } });
            const errors = records.flatMap((e) =>
              'error' in e.data || 'reason' in e.data
                ? [`${e.type} ${String(e.data['error'] ?? e.data['reason'])}`]
                : [],
            );
            return `${id} ${status}: ${errors.join('; ')}`;
          }),
        );
        throw new Error(`${failed.length} of ${runs} bench runs did not complete:\n${why.join('\n')}`);
      }
    } finally {
      clearInterval(sampler);
    }
    const rssHighWaterMiB = procMiB(workerPid, 'VmHWM') ?? 0;
    const cpu = Object.fromEntries(Object.entries(parts).map(([n, pid]) => [n, cpuSeconds(pid) - cpuBefore[n]!]));
    // The runs' own record of when they ended, not when this loop happened to look.
    const ended = await lastFinish(ids, dave);
    const seconds = (ended - startedAt) / 1000;

    // Nothing lost, nothing twice: each (run, step, instance) exactly once in devfleet's command log.
    const wanted = new Set(ids);
    const log = (await readCommandLog(path.join(home, 'devfleet'))).filter((e) => {
      const id = /^mechanic (\S+) step /.exec(e.comment)?.[1];
      return id !== undefined && wanted.has(id);
    });
    const keys = new Set(log.map((e) => `${e.comment} ${e.instanceId}`));
    if (log.length !== runs * STEPS * INSTANCES || keys.size !== log.length) {
      throw new Error(
        `devfleet ran ${log.length} invocations (${keys.size} distinct) for ${runs} runs; expected ${runs * STEPS * INSTANCES} once each`,
      );
    }
    if (log.some((e) => e.status !== 'Success')) throw new Error('a bench invocation did not succeed');
    const waits = await taskWaits(stack.info.temporalAddress, config.temporal.namespace, ids);
    return {
      runs,
      clients,
      seconds,
      stepsPerSecond: (runs * STEPS) / seconds,
      rssIdleMiB,
      rssPeakMiB,
      rssHighWaterMiB,
      workerMemory: await workerMemoryOf(home),
      launch: latency(launches),
      vote: latency(votes),
      completed: ids.length,
      invocations: log.length,
      launchErrors,
      voteErrors,
      cpu,
      waits,
    };
  } finally {
    await stack.stop();
  }
}

type Api = Awaited<ReturnType<typeof connectApi>>;

// The package is CommonJS: its namespace comes through the default export when run by node itself.
const { temporal } = proto;
const EventType = temporal.api.enums.v1.EventType;

/** Reads every run's history (event times only: no payload is decoded) and measures where tasks waited. */
async function taskWaits(address: string, namespace: string, ids: readonly string[]): Promise<TaskWaits> {
  const connection = await Connection.connect({ address });
  try {
    const client = new Client({ connection, namespace });
    const w = {
      voteQueue: [],
      voteTask: [],
      voteAnswerTask: [],
      firstTask: [],
      taskQueue: [],
      activityQueue: [],
      activityRun: [],
    } as Record<
      'voteQueue' | 'voteTask' | 'voteAnswerTask' | 'firstTask' | 'taskQueue' | 'activityQueue' | 'activityRun',
      number[]
    >;
    let workflowTasks = 0;
    let activities = 0;
    let answerMarkers = 0;
    for (const id of ids) {
      const events = (await client.workflow.getHandle(id).fetchHistory()).events ?? [];
      const at = new Map<number, number>();
      const ms = (e: Proto.api.history.v1.IHistoryEvent) =>
        Number(e.eventTime?.seconds ?? 0) * 1000 + Math.round((e.eventTime?.nanos ?? 0) / 1e6);
      for (const e of events) at.set(Number(e.eventId), ms(e));
      let lastTaskCompleted: Proto.api.history.v1.IHistoryEvent | undefined;
      // The markers (local activities) each task's completion recorded, kept when that task answered the vote.
      let taskMarkers = 0;
      let answering = false;
      const endOfTask = () => {
        if (answering) answerMarkers += taskMarkers;
        answering = false;
        taskMarkers = 0;
      };
      for (const e of events) {
        switch (e.eventType) {
          case EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED: {
            workflowTasks++;
            const scheduled = at.get(Number(e.workflowTaskStartedEventAttributes?.scheduledEventId));
            if (scheduled !== undefined) w.taskQueue.push(ms(e) - scheduled);
            break;
          }
          case EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: {
            if (!lastTaskCompleted) {
              const started = at.get(Number(e.workflowTaskCompletedEventAttributes?.startedEventId));
              if (started !== undefined) w.firstTask.push(ms(e) - started);
            }
            endOfTask();
            lastTaskCompleted = e;
            break;
          }
          case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED: {
            const started = at.get(Number(lastTaskCompleted?.workflowTaskCompletedEventAttributes?.startedEventId));
            if (lastTaskCompleted && started !== undefined) w.voteAnswerTask.push(ms(lastTaskCompleted) - started);
            answering = true;
            break;
          }
          case EventType.EVENT_TYPE_MARKER_RECORDED:
            taskMarkers++;
            break;
          case EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            endOfTask();
            break;
          case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: {
            // The task that took the update is the one whose completion wrote its acceptance.
            const a = lastTaskCompleted?.workflowTaskCompletedEventAttributes;
            const scheduled = at.get(Number(a?.scheduledEventId));
            const started = at.get(Number(a?.startedEventId));
            if (lastTaskCompleted && scheduled !== undefined && started !== undefined) {
              w.voteQueue.push(started - scheduled);
              w.voteTask.push(ms(lastTaskCompleted) - started);
            }
            break;
          }
          case EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED: {
            activities++;
            const scheduled = at.get(Number(e.activityTaskStartedEventAttributes?.scheduledEventId));
            if (scheduled !== undefined) w.activityQueue.push(ms(e) - scheduled);
            break;
          }
          case EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: {
            const started = at.get(Number(e.activityTaskCompletedEventAttributes?.startedEventId));
            if (started !== undefined) w.activityRun.push(ms(e) - started);
            break;
          }
          default:
        }
      }
      endOfTask();
    }
    const l = (xs: number[]) => (xs.length > 0 ? latency(xs) : { p50: NaN, p95: NaN, max: NaN });
    return {
      voteQueue: l(w.voteQueue),
      voteTask: l(w.voteTask),
      voteAnswerTask: l(w.voteAnswerTask),
      firstTask: l(w.firstTask),
      voteAnswerLocalActivities: w.voteAnswerTask.length > 0 ? answerMarkers / w.voteAnswerTask.length : NaN,
      taskQueue: l(w.taskQueue),
      activityQueue: l(w.activityQueue),
      activityRun: l(w.activityRun),
      workflowTasksPerRun: workflowTasks / ids.length,
      activitiesPerRun: activities / ids.length,
    };
  } finally {
    await connection.close();
  }
}

/**
 * Waits until every run has ended, reading the execution index (which asks no worker anything);
 * answers the runs that ended otherwise than completed.
 */
async function waitForEnd(ids: readonly string[], api: Api): Promise<{ id: string; status: string }[]> {
  const left = new Set(ids);
  const failed: { id: string; status: string }[] = [];
  while (left.size > 0) {
    const { executions } = await api.call('listExecutions', { query: { limit: 1000 } });
    for (const e of executions) {
      if (!left.has(e.id) || e.status === 'running' || e.status === 'awaiting_approval') continue;
      left.delete(e.id);
      if (e.status !== 'completed') failed.push({ id: e.id, status: e.status });
    }
    if (left.size > 0) await sleep(250);
  }
  return failed;
}

async function lastFinish(ids: readonly string[], api: Api): Promise<number> {
  const wanted = new Set(ids);
  const { executions } = await api.call('listExecutions', { query: { limit: 1000 } });
  return Math.max(...executions.filter((e) => wanted.has(e.id)).map((e) => Date.parse(e.finishedAt ?? '')));
}

export function formatManyRuns(r: ManyRunsResult): string {
  const ms = (x: number) => `${Math.round(x)} ms`;
  const mib = (x: number) => `${Math.round(x)} MiB`;
  const lat = (x: Latency) => `${ms(x.p50)} / ${ms(x.p95)} / ${ms(x.max)}`;
  return [
    `| many runs | runs | callers | wall | steps/s | worker RSS idle / peak / high-water | launch p50 / p95 / max | vote p50 / p95 / max | lost |`,
    '|---|---|---|---|---|---|---|---|---|',
    `| ${STEPS} steps × ${INSTANCES} instances | ${r.runs} | ${r.clients} | ${r.seconds.toFixed(1)} s | ${r.stepsPerSecond.toFixed(1)} | ${mib(r.rssIdleMiB)} / ${mib(r.rssPeakMiB)} / ${mib(r.rssHighWaterMiB)} | ${ms(r.launch.p50)} / ${ms(r.launch.p95)} / ${ms(r.launch.max)} | ${ms(r.vote.p50)} / ${ms(r.vote.p95)} / ${ms(r.vote.max)} | none (${r.invocations} invocations, each once) |`,
    '',
    ...(r.workerMemory
      ? [
          `Worker heap limits (MECHANIC_WORKER_HEAP_MB): main thread ${mib(r.workerMemory.heapLimitMiB.main)}, workflow thread ${mib(r.workerMemory.heapLimitMiB.workflows)}; up to ${r.workerMemory.maxCachedRuns} runs kept in memory.`,
        ]
      : []),
    ...(r.launchErrors.length > 0
      ? [
          `${r.launchErrors.length} launches answered with an error and sent again: ${[...new Set(r.launchErrors)].join('; ')}`,
        ]
      : []),
    ...(r.voteErrors.length > 0
      ? [`${r.voteErrors.length} votes answered with an error and sent again: ${[...new Set(r.voteErrors)].join('; ')}`]
      : []),
    `Where tasks waited (p50 / p95 / max, from the runs' histories): the vote's workflow task queued ${lat(r.waits.voteQueue)} and ran ${lat(r.waits.voteTask)}; the task that answered it ran ${lat(r.waits.voteAnswerTask)} (it records ${r.waits.voteAnswerLocalActivities.toFixed(1)} local activities before the answer leaves); a run's first task ran ${lat(r.waits.firstTask)}; every workflow task queued ${lat(r.waits.taskQueue)}; activities queued ${lat(r.waits.activityQueue)} and ran ${lat(r.waits.activityRun)}; ${r.waits.workflowTasksPerRun.toFixed(1)} workflow tasks and ${r.waits.activitiesPerRun.toFixed(1)} activities a run.`,
    `CPU during the runs: ${Object.entries(r.cpu)
      .map(([n, s]) => `${n} ${s.toFixed(1)} s`)
      .join(', ')} (${r.seconds.toFixed(1)} s of wall time on ${availableParallelism()} cores)`,
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = await mkdtemp(path.join(tmpdir(), 'mechanic-bench-'));
  try {
    const result = await benchManyRuns(
      dir,
      Number(process.env['BENCH_RUNS'] ?? 200),
      Number(process.env['BENCH_CLIENTS'] ?? 20),
    );
    process.stdout.write(`${formatManyRuns(result)}\n`);
  } finally {
    if (process.env['BENCH_KEEP'] === '1') process.stderr.write(`kept ${dir}\n`);
    else await rm(dir, { recursive: true, force: true });
  }
}
