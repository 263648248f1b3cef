/**
 * A step on 10,000 instances, at both ends (issue 11's "10,000-instance step").
 *
 *   devfleet     10,000 light instances in this process: start time and memory; then through the
 *                real SDK what a caller of SSM at that size does — DescribeInstanceInformation
 *                paged to the end, 200 SendCommands of 50 InstanceIds each followed to their end
 *                with ListCommandInvocations, and one tag-target SendCommand reaching all 10,000
 *   mechanic     one approved run of a one-step runbook whose targets (a tag) select all 10,000,
 *                on the embedded stack with its own polling defaults: wall time from the approval
 *                to the run's end, each batch's time, the events in each workflow history (the
 *                run's and each fan-out child's), the status read's latency, the size and latency of
 *                the run's two query answers (statusSummary, which the API server asks, and the
 *                full status) and the worker's RSS
 *
 * Part of `npm run bench` (run.ts); alone: `node --expose-gc --import tsx test/bench/fleet-10k.ts`
 * (FLEET_BENCH_COUNT=2000 for a smaller fleet). Every invocation is checked in devfleet's command
 * log: each instance exactly once per command.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  ListCommandInvocationsCommand,
  ListCommandsCommand,
  paginateDescribeInstanceInformation,
  SendCommandCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../../src/config.ts';
import { readCommandLog } from '../../src/devfleet/command-log.ts';
import { DEMO_ROLE_ARN, defaultFleetConfig, lightInstanceId } from '../../src/devfleet/config.ts';
import { startDevfleet } from '../../src/devfleet/server.ts';
import { readProcessTable } from '../../src/embedded/processes.ts';
import { startStack, throwawayStackEnv } from '../../src/embedded/stack.ts';
import { dataConverterFor, parseCodecKeys } from '../../src/temporal/codec.ts';
import { connectApi } from '../../cli/api.ts';
import { statusQuery, statusSummaryQuery } from '../../workflows/messages.ts';
import { prepareFleetHome, runbooksFolder } from './fleet-home.ts';

process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';

const COMMAND_MS = 200;
const ROOT = { accessKeyId: 'AKIAFLEETBENCH000001', secretAccessKey: 'fleet-bench-root-secret-000001' };

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The garbage collector, exposed for this measurement even without `node --expose-gc`. */
function collector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

function heapAfterGc(): number {
  const gc = collector();
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** Runs `fn` over `items` with at most `limit` at a time. */
async function pool<T>(items: readonly T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

async function commandDone(ssm: SSMClient, commandId: string, everyMs: number): Promise<string> {
  for (;;) {
    const { Commands = [] } = await ssm.send(new ListCommandsCommand({ CommandId: commandId }));
    const status = Commands[0]?.Status ?? 'Pending';
    if (!['Pending', 'InProgress', 'Cancelling'].includes(status)) return status;
    await sleep(everyMs);
  }
}

/** devfleet alone, at `count` light instances, through the SDK. */
export async function devfleetSide(dir: string, count: number): Promise<string[]> {
  const lines: string[] = [];
  const config = {
    ...defaultFleetConfig(ROOT),
    lightInstances: [{ count, namePrefix: 'node', tags: { Role: 'fleet' }, commandMs: COMMAND_MS }],
  };
  const heap0 = heapAfterGc();
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  const fleet = await startDevfleet({ dataDir: path.join(dir, 'devfleet-10k'), config });
  const startMs = performance.now() - t0;
  const heap1 = heapAfterGc();
  const rss1 = process.memoryUsage().rss;
  lines.push(
    `devfleet start with ${count.toLocaleString('en-US')} light instances: ${startMs.toFixed(0)} ms; heap +${mib(heap1 - heap0)} (${((heap1 - heap0) / count).toFixed(0)} bytes an instance), RSS +${mib(rss1 - rss0)}`,
  );
  const sts = new STSClient({ region: 'us-east-1', endpoint: fleet.endpoint, credentials: ROOT });
  let ssm: SSMClient | undefined;
  try {
    const { Credentials: c } = await sts.send(
      new AssumeRoleCommand({ RoleArn: DEMO_ROLE_ARN, RoleSessionName: 'fleet-bench', DurationSeconds: 3600 }),
    );
    ssm = new SSMClient({
      region: 'us-east-1',
      endpoint: fleet.endpoint,
      maxAttempts: 10,
      credentials: {
        accessKeyId: c!.AccessKeyId!,
        secretAccessKey: c!.SecretAccessKey!,
        sessionToken: c!.SessionToken!,
      },
    });
    const client = ssm;

    let t = performance.now();
    let found = 0;
    let pages = 0;
    for await (const page of paginateDescribeInstanceInformation(
      { client, pageSize: 50 },
      { Filters: [{ Key: 'tag:Role', Values: ['fleet'] }] },
    )) {
      pages++;
      found += page.InstanceInformationList?.length ?? 0;
    }
    lines.push(
      `DescribeInstanceInformation, every page: ${found} instances in ${pages} pages, ${(performance.now() - t).toFixed(0)} ms`,
    );
    if (found !== count) throw new Error(`DescribeInstanceInformation found ${found} of ${count} instances`);

    // 200 SendCommands of 50 InstanceIds, 20 in flight, each followed with ListCommandInvocations.
    const ids = Array.from({ length: count }, (_, i) => lightInstanceId(0, i + 1));
    const batches: string[][] = [];
    for (let i = 0; i < ids.length; i += 50) batches.push(ids.slice(i, i + 50));
    const commandIds: string[] = [];
    let calls = 0;
    t = performance.now();
    await pool(batches, 20, async (batch) => {
      const { Command } = await client.send(
        new SendCommandCommand({
          DocumentName: 'AWS-RunShellScript',
          InstanceIds: batch,
          Parameters: { commands: ['echo batch'] },
          Comment: 'fleet bench batches',
        }),
      );
      calls++;
      commandIds.push(Command!.CommandId!);
      for (;;) {
        await sleep(COMMAND_MS);
        const { CommandInvocations: invs = [] } = await client.send(
          new ListCommandInvocationsCommand({ CommandId: Command!.CommandId! }),
        );
        calls++;
        if (invs.length === batch.length && invs.every((i) => i.Status === 'Success')) return;
        if (invs.some((i) => i.Status === 'Failed' || i.Status === 'TimedOut' || i.Status === 'Cancelled'))
          throw new Error(`a batch failed: ${invs.map((i) => i.Status).join(',')}`);
      }
    });
    const batchMs = performance.now() - t;
    const log = await readCommandLog(path.join(dir, 'devfleet-10k'));
    const inBatches = log.filter((e) => e.comment === 'fleet bench batches');
    if (inBatches.length !== count || new Set(inBatches.map((e) => e.instanceId)).size !== count)
      throw new Error(`the command log has ${inBatches.length} batch invocations, not one for each of ${count}`);
    lines.push(
      `${batches.length} SendCommands × 50 InstanceIds (20 at a time, ${COMMAND_MS} ms commands), followed to the end: ${secs(batchMs)}, ${calls} SSM calls; command log: each instance once`,
    );

    t = performance.now();
    const { Command } = await client.send(
      new SendCommandCommand({
        DocumentName: 'AWS-RunShellScript',
        Targets: [{ Key: 'tag:Role', Values: ['fleet'] }],
        Parameters: { commands: ['echo tag'] },
        MaxConcurrency: '100%',
        Comment: 'fleet bench tag',
      }),
    );
    const sendMs = performance.now() - t;
    const status = await commandDone(client, Command!.CommandId!, 200);
    const tagMs = performance.now() - t;
    const tagged = (await readCommandLog(path.join(dir, 'devfleet-10k'))).filter(
      (e) => e.comment === 'fleet bench tag',
    );
    if (status !== 'Success' || new Set(tagged.map((e) => e.instanceId)).size !== count || tagged.length !== count)
      throw new Error(`the tag-target command ended ${status} with ${tagged.length} invocations`);
    lines.push(
      `one SendCommand, tag target → ${count.toLocaleString('en-US')} invocations (MaxConcurrency 100%): accepted in ${sendMs.toFixed(0)} ms, Success after ${secs(tagMs)}`,
    );
    lines.push(`devfleet RSS after all of it: ${mib(process.memoryUsage().rss)}`);
  } finally {
    ssm?.destroy();
    sts.destroy();
    await fleet.close();
  }
  return lines;
}

const RUNBOOK = `name: fleet-step
version: 1
description: Bench runbook, one short step on every instance of the light fleet.
owners: [sre]
risk: low
environment: staging
tags: [bench]
roleArn: arn:aws:iam::123456789012:role/mechanic-runner
targets:
  tags:
    Role: fleet
approval:
  required: 1
  expiresAfterMinutes: 60
steps:
  - name: hello
    timeoutSeconds: 900
    script: |
      echo hello
`;

/** p50, p95 and the largest of `xs` (0s when empty). */
function spread(xs: readonly number[]): { p50: number; p95: number; max: number } {
  if (xs.length === 0) return { p50: 0, p95: 0, max: 0 };
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
  return { p50: q(0.5), p95: q(0.95), max: s.at(-1)! };
}

/** A process's resident memory in MiB, from /proc (undefined when it is gone or there is no /proc). */
function rssMiB(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;

/** The bytes of every payload's data in `value` (a history's events): what a history carries. */
function payloadBytes(value: unknown): number {
  if (value instanceof Uint8Array) return value.length;
  if (typeof value !== 'object' || value === null) return 0;
  let n = 0;
  for (const v of Object.values(value)) n += payloadBytes(v);
  return n;
}

/** Milliseconds since the epoch of a history event's time. */
const eventMs = (e: { eventTime?: { seconds?: unknown; nanos?: number | null } | null }): number =>
  Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);

/**
 * mechanic on the embedded stack, with its own polling defaults: one approved run of one step on
 * `count` instances, followed as an operator's client follows it (the run's status once a
 * second). It waits at most `minutes`; a run still going then is reported with how far it got
 * (instances done, in devfleet's command log), and cancelled. Reports the wall time, each batch's
 * time (its activity, from the step's history), the events in each history, the status read's
 * latency and the worker's memory.
 */
export async function mechanicSide(
  dir: string,
  count: number,
  minutes: number,
  emit: (line: string) => void,
): Promise<void> {
  const home = path.join(dir, 'fleet-stack');
  await prepareFleetHome(home, {
    lightInstances: [{ count, namePrefix: 'node', tags: { Role: 'fleet' }, commandMs: COMMAND_MS }],
  });
  // The stack's own polling defaults, unless the caller's environment sets them.
  const {
    MECHANIC_POLL_MIN_MS: _min,
    MECHANIC_POLL_MAX_MS: _max,
    ...env
  } = await throwawayStackEnv(home, { minMs: 0, maxMs: 0 });
  for (const [key, value] of Object.entries(process.env)) {
    if (/^MECHANIC_(POLL_|WORKER_)/.test(key) && value !== undefined) env[key] = value;
  }
  env['MECHANIC_RUNBOOKS_DIR'] = await runbooksFolder(path.join(dir, 'fleet-runbooks'), {
    'fleet-step.yaml': RUNBOOK,
  });
  const config = loadConfig(env);
  const fleetDir = path.join(config.home, 'devfleet');
  const stack = await startStack(config, { progress: () => {} }, env);
  let sampler: NodeJS.Timeout | undefined;
  try {
    const workerPid = (await readProcessTable(home))?.children['worker']?.pid;
    const rssIdle = workerPid === undefined ? undefined : rssMiB(workerPid);
    let rssPeak = rssIdle ?? 0;
    sampler = setInterval(() => {
      if (workerPid !== undefined) rssPeak = Math.max(rssPeak, rssMiB(workerPid) ?? 0);
    }, 250);
    const alice = await connectApi(config, 'alice');
    const bob = await connectApi(config, 'bob');
    const launchedAt = Date.now();
    const launched = await alice.call('launch', { body: { runbook: 'fleet-step', reason: 'fleet bench' } });
    emit(`mechanic: launch planned ${count.toLocaleString('en-US')} targets in ${secs(Date.now() - launchedAt)}`);
    await bob.call('vote', {
      params: { id: launched.executionId },
      body: { decision: 'approve', planDigest: launched.planDigest },
    });
    const approvedAt = Date.now();
    const deadline = approvedAt + minutes * 60_000;
    const ofRun = async () =>
      (await readCommandLog(fleetDir)).filter((e) => e.comment.startsWith(`mechanic ${launched.executionId} `));
    let status = 'running';
    let lastNote = approvedAt;
    const reads: number[] = [];
    for (;;) {
      const t = performance.now();
      ({ status } = (await alice.call('getExecution', { params: { id: launched.executionId } })).execution);
      reads.push(performance.now() - t);
      if (status !== 'running' && status !== 'awaiting_approval') break;
      if (Date.now() > deadline) break;
      if (Date.now() - lastNote > 60_000) {
        lastNote = Date.now();
        const done = (await ofRun()).filter((e) => e.finishedAt !== undefined).length;
        process.stderr.write(`  … ${secs(Date.now() - approvedAt)}: ${done} of ${count} instances done\n`);
      }
      await sleep(1000);
    }
    const elapsed = Date.now() - approvedAt;
    clearInterval(sampler);
    const log = await ofRun();
    const once = new Set(log.map((e) => e.instanceId)).size === log.length;
    const batches = new Set(log.map((e) => e.comment)).size;
    if (status === 'running' || status === 'awaiting_approval') {
      emit(
        `mechanic, one step on ${count.toLocaleString('en-US')} instances: NOT finished after ${secs(elapsed)} — ${log.length} instances started in ${batches} batches (${secs(elapsed / Math.max(1, batches))} a batch${once ? ', each once' : ', SOME TWICE'}); the run was cancelled`,
      );
      try {
        await alice.call('cancel', {
          params: { id: launched.executionId },
          body: { reason: 'fleet bench time limit' },
        });
      } catch (e) {
        // A run too busy to answer may refuse the cancel too; the stack is stopped below either way.
        emit(`  the cancel was refused: ${(e as Error).message}`);
      }
    } else {
      emit(
        `mechanic, one step on ${count.toLocaleString('en-US')} instances (tag target), approval → run ${status}: ${secs(elapsed)}; ${log.length} invocations in ${batches} batches, ${(elapsed / Math.max(1, batches)).toFixed(0)} ms a batch${log.length === count && once ? ', each instance exactly once' : ' — NOT each instance exactly once'}`,
      );
    }
    const r = spread(reads);
    emit(
      `  the run's status read through the API (${reads.length} reads, once a second while it ran): p50 ${r.p50.toFixed(0)} ms, p95 ${r.p95.toFixed(0)} ms, max ${r.max.toFixed(0)} ms`,
    );
    if (rssIdle !== undefined)
      emit(`  worker RSS: ${rssIdle.toFixed(0)} MiB before the run, ${rssPeak.toFixed(0)} MiB at most during it`);
    const connection = await Connection.connect({ address: stack.info.temporalAddress });
    try {
      const client = new Client({
        connection,
        namespace: config.temporal.namespace,
        // The stack's own payload keys (the query answers are encrypted like every payload).
        dataConverter: dataConverterFor(parseCodecKeys(readFileSync(path.join(home, 'codec-keys'), 'utf8'))),
      });
      // What a status read moves through Temporal: the summary the API server asks (no plan), and
      // the full view older servers ask, each answered 10 times by the finished run's worker.
      const run = client.workflow.getHandle(launched.executionId);
      const answers: string[] = [];
      for (const [name, ask] of [
        ['statusSummary', () => run.query(statusSummaryQuery)],
        ['status', () => run.query(statusQuery)],
      ] as const) {
        const times: number[] = [];
        let bytes = 0;
        for (let i = 0; i < 10; i++) {
          const t = performance.now();
          bytes = JSON.stringify(await ask()).length;
          times.push(performance.now() - t);
        }
        const q = spread(times);
        answers.push(`${name} ${(bytes / 1024).toFixed(1)} KiB, p50 ${q.p50.toFixed(0)} ms`);
      }
      emit(`  the run's query answers (10 each, the run finished): ${answers.join('; ')}`);
      const histories: { id: string; events: number; bytes: number }[] = [];
      const batchMs: number[] = [];
      for await (const w of client.workflow.list()) {
        if (w.workflowId !== launched.executionId && !w.workflowId.startsWith(`${launched.executionId}:`)) continue;
        const history = await client.workflow.getHandle(w.workflowId, w.runId).fetchHistory();
        const events = history.events ?? [];
        histories.push({ id: w.workflowId, events: events.length, bytes: payloadBytes(events) });
        if (w.workflowId === launched.executionId) continue;
        // Each batch's activity, from its start to its completion (send, follow, record).
        // Only the batches (runBatch), not the child's load of the plan's ids (planTargets).
        const batches = new Set(
          events
            .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'runBatch')
            .map((e) => String(e.eventId)),
        );
        const started = new Map<string, number>();
        for (const e of events) {
          const a = e.activityTaskStartedEventAttributes;
          if (a && batches.has(String(a.scheduledEventId))) started.set(String(a.scheduledEventId), eventMs(e));
          const c = e.activityTaskCompletedEventAttributes;
          const from = c ? started.get(String(c.scheduledEventId)) : undefined;
          if (from !== undefined) batchMs.push(eventMs(e) - from);
        }
      }
      const parent = histories.find((x) => x.id === launched.executionId);
      const children = histories.filter((x) => x.id !== launched.executionId);
      const most = Math.max(0, ...children.map((c) => c.events));
      emit(
        `  events in history: the run ${parent?.events ?? 'not found'}; ${children.length} child workflow${children.length === 1 ? '' : 's'}, the largest ${most}, ${children.reduce((n, c) => n + c.events, 0)} in all (goal: every history under 5,000)`,
      );
      emit(
        `  payload bytes in history: the run ${parent ? kib(parent.bytes) : 'not found'}; the child workflow${children.length === 1 ? '' : 's'} ${children.map((c) => kib(c.bytes)).join(', ')}`,
      );
      const b = spread(batchMs);
      emit(
        `  each batch of 50 (its activity: send, follow, record ${COMMAND_MS} ms commands): p50 ${b.p50} ms, p95 ${b.p95} ms, max ${b.max} ms over ${batchMs.length} batches`,
      );
    } finally {
      await connection.close();
    }
  } finally {
    if (sampler) clearInterval(sampler);
    await stack.stop();
  }
}

/**
 * Both sides, each line emitted as soon as it is known. FLEET_BENCH_COUNT (default 10,000) sizes
 * the fleet, FLEET_BENCH_MINUTES (default 20) bounds the wait for mechanic's run.
 */
export async function benchFleet10k(
  dir: string,
  emit: (line: string) => void,
  count = Number(process.env['FLEET_BENCH_COUNT'] ?? 10_000),
  minutes = Number(process.env['FLEET_BENCH_MINUTES'] ?? 20),
): Promise<void> {
  emit(`### A step on ${count.toLocaleString('en-US')} instances`);
  for (const line of await devfleetSide(dir, count)) emit(line);
  await mechanicSide(dir, count, minutes, emit);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = await mkdtemp(path.join(tmpdir(), 'mechanic-fleet-bench-'));
  try {
    await benchFleet10k(dir, (line) => process.stdout.write(`${line}\n`));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
