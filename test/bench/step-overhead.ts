/**
 * What mechanic adds between two steps, and between an approval and the first command, on the
 * embedded stack as `mechanic dev` runs it (its Temporal dev server and settings, devfleet, the
 * real worker and API server), against a bare Temporal workflow on the same server in the same run.
 *
 *   step gap       a command finishing on the last host (devfleet's command log) → the next
 *                  step's command starting on the first host; baseline: one no-op activity ending
 *                  → the next one starting, in a workflow that runs nothing else
 *   approval       the vote's answer reaching the approver → the first command starting on a host;
 *                  baseline: an update's answer → the workflow's first no-op activity starting
 *
 * Part of `npm run bench` (run.ts); alone: `node --import tsx test/bench/step-overhead.ts`.
 * MECHANIC_POLL_MIN_MS / MECHANIC_POLL_MAX_MS in the environment override the defaults measured.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { connectApi } from '../../cli/api.ts';
import { loadConfig } from '../../src/config.ts';
import { readCommandLog } from '../../src/devfleet/command-log.ts';
import { startStack, throwawayStackEnv } from '../../src/embedded/stack.ts';
import { bareSteps, goUpdate } from '../fixtures/workflows/bare-steps.ts';

process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';

export interface OverheadRow {
  name: string;
  n: number;
  median: number;
  p95: number;
  baseline: string;
  baseMedian: number;
  baseP95: number;
}

/** Steps per run; each sleeps a little on the hosts, longer than the first poll would wait. */
const STEPS = 6;
const STEP_SECONDS = 0.3;

const RUNBOOK = `name: bench-steps
version: 1
description: Bench runbook, several short steps on every staging host.
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
${Array.from(
  { length: STEPS },
  (_, i) => `  - name: step-${i + 1}
    timeoutSeconds: 60
    script: |
      sleep ${STEP_SECONDS}
      echo step ${i + 1}
`,
).join('')}`;

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
const sorted = (xs: readonly number[]) => [...xs].sort((a, b) => a - b);

/** Runs `runs` approved runs of the bench runbook and the bare baseline; answers two rows. */
export async function benchStepOverhead(dir: string, runs = 8): Promise<OverheadRow[]> {
  const home = path.join(dir, 'overhead-stack');
  const runbooksDir = path.join(dir, 'overhead-runbooks');
  await mkdir(runbooksDir, { recursive: true });
  await writeFile(path.join(runbooksDir, 'bench-steps.yaml'), RUNBOOK);
  // The stack's own polling defaults, unless the caller's environment sets them.
  const {
    MECHANIC_POLL_MIN_MS: _min,
    MECHANIC_POLL_MAX_MS: _max,
    ...env
  } = await throwawayStackEnv(home, {
    minMs: 0,
    maxMs: 0,
  });
  for (const key of ['MECHANIC_POLL_MIN_MS', 'MECHANIC_POLL_MAX_MS'] as const) {
    if (process.env[key] !== undefined) env[key] = process.env[key];
  }
  env['MECHANIC_RUNBOOKS_DIR'] = runbooksDir;
  const config = loadConfig(env);
  const stack = await startStack(config, { progress: () => {} }, env);
  try {
    const mechanic = await measureMechanic(config, runs);
    const bare = await measureBare(stack.info.temporalAddress, config.temporal.namespace, runs);
    return [
      row('step gap', mechanic.gaps, 'bare Temporal: activity → next', bare.gaps),
      row('approval → 1st SendCommand', mechanic.approvals, 'bare Temporal: update → 1st activity', bare.approvals),
    ];
  } finally {
    await stack.stop();
  }
}

function row(name: string, xs: number[], baseline: string, base: number[]): OverheadRow {
  const a = sorted(xs);
  const b = sorted(base);
  return {
    name,
    n: a.length,
    median: quantile(a, 0.5),
    p95: quantile(a, 0.95),
    baseline,
    baseMedian: quantile(b, 0.5),
    baseP95: quantile(b, 0.95),
  };
}

async function measureMechanic(
  config: ReturnType<typeof loadConfig>,
  runs: number,
): Promise<{ gaps: number[]; approvals: number[] }> {
  const alice = await connectApi(config, 'alice');
  const bob = await connectApi(config, 'bob');
  // An auditor, to say why a bench run failed.
  const dave = await connectApi(config, 'dave');
  const gaps: number[] = [];
  const approvals: number[] = [];
  // One warm-up run: the first workflow task of a fresh worker pays for loading the workflow code.
  for (let r = -1; r < runs; r++) {
    const launched = await alice.call('launch', { body: { runbook: 'bench-steps', reason: 'step overhead bench' } });
    await bob.call('vote', {
      params: { id: launched.executionId },
      body: { decision: 'approve', planDigest: launched.planDigest },
    });
    const approvedAt = Date.now();
    for (;;) {
      const { execution } = await alice.call('getExecution', { params: { id: launched.executionId } });
      if (execution.status === 'completed') break;
      if (execution.status !== 'running' && execution.status !== 'awaiting_approval') {
        const { records } = await dave.call('listAudit', { query: { executionId: launched.executionId } });
        const errors = records.flatMap((e) => ('error' in e.data ? [String(e.data['error'])] : []));
        throw new Error(`bench run ended ${execution.status} (${execution.reason ?? ''}): ${errors.join('; ')}`);
      }
      await sleep(100);
    }
    if (r < 0) continue;
    // devfleet's own record of when each invocation started and finished on its host.
    const log = (await readCommandLog(path.join(config.home, 'devfleet'))).filter((e) =>
      e.comment.startsWith(`mechanic ${launched.executionId} step `),
    );
    const byStep = Array.from({ length: STEPS }, (_, i) =>
      log.filter((e) => e.comment === `mechanic ${launched.executionId} step ${i}`),
    );
    if (byStep.some((s) => s.length === 0)) throw new Error('a bench step has no invocation in the command log');
    const ms = (iso: string | undefined) => Date.parse(iso ?? '');
    approvals.push(Math.min(...byStep[0]!.map((e) => ms(e.startedAt))) - approvedAt);
    for (let i = 1; i < STEPS; i++) {
      const finished = Math.max(...byStep[i - 1]!.map((e) => ms(e.finishedAt)));
      const started = Math.min(...byStep[i]!.map((e) => ms(e.startedAt)));
      gaps.push(started - finished);
    }
  }
  return { gaps, approvals };
}

async function measureBare(
  address: string,
  namespace: string,
  runs: number,
): Promise<{ gaps: number[]; approvals: number[] }> {
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // A runtime is already installed in this process: keep it.
  }
  const taskQueue = `bench-bare-${randomUUID()}`;
  let stamps: { step: number; start: number; end: number }[] = [];
  const native = await NativeConnection.connect({ address });
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace });
  const worker = await Worker.create({
    connection: native,
    namespace,
    taskQueue,
    workflowsPath: fileURLToPath(new URL('../fixtures/workflows/bare-steps.ts', import.meta.url)),
    activities: {
      async noop(step: number) {
        const start = Date.now();
        stamps.push({ step, start, end: Date.now() });
      },
    },
  });
  const gaps: number[] = [];
  const approvals: number[] = [];
  try {
    await worker.runUntil(async () => {
      for (let r = -1; r < runs; r++) {
        stamps = [];
        const handle = await client.workflow.start(bareSteps, {
          taskQueue,
          workflowId: `bench-bare-${randomUUID()}`,
          args: [STEPS],
        });
        await handle.executeUpdate(goUpdate);
        const goAt = Date.now();
        await handle.result();
        if (r < 0) continue;
        approvals.push(stamps[0]!.start - goAt);
        for (let i = 1; i < stamps.length; i++) gaps.push(stamps[i]!.start - stamps[i - 1]!.end);
      }
    });
  } finally {
    await connection.close();
    await native.close();
  }
  return { gaps, approvals };
}

export function formatOverhead(rows: readonly OverheadRow[]): string {
  const f = (ms: number) => `${Math.round(ms)} ms`;
  return [
    '| bench | n | p50 | p95 | baseline | baseline p50 | baseline p95 | ratio p50 |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.n} | ${f(r.median)} | ${f(r.p95)} | ${r.baseline} | ${f(r.baseMedian)} | ${f(r.baseP95)} | ${(r.median / Math.max(1, r.baseMedian)).toFixed(1)}× |`,
    ),
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = await mkdtemp(path.join(tmpdir(), 'mechanic-bench-'));
  try {
    const runs = Number(process.env['BENCH_RUNS'] ?? 8);
    process.stdout.write(`${formatOverhead(await benchStepOverhead(dir, runs))}\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
