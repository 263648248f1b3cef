/**
 * `npm run bench`: what mechanic's guarantees cost, each measured against a baseline in the same
 * run on the same machine. Prints medians, p95 and the ratio to the baseline's median.
 *
 *   plan        buildPlan (params, shell-safe rendering, session policy, canonical digest)
 *               vs. JSON.stringify + sha256 of the same plan
 *   audit       one hash-chained, serialised append to the SQLite audit log (BEGIN IMMEDIATE,
 *               chain head read, index projection) vs. a plain INSERT of the same row
 *   run         one approved one-step run on the embedded stack, request to completed
 *               (Temporal, STS, SSM through devfleet, audit) vs. the same command sent and
 *               followed directly with the AWS SDK against devfleet
 *   step gap, approval → 1st SendCommand
 *               what the worker adds between steps and after an approval, on the embedded
 *               stack with its own settings, vs. a bare Temporal workflow (step-overhead.ts)
 *   AWS CLI     a 3-step run on 5 instances through mechanic vs. the same commands from a script
 *               using the AWS CLI's send-command and wait command-executed (aws-cli.ts; installs
 *               the CLI into the user's cache on first use, or says why it is skipped)
 *   10,000      a step on 10,000 light devfleet instances: devfleet through the SDK, then a
 *               mechanic run (wall time, events in each workflow history) (fleet-10k.ts)
 *   many runs   200 approved two-step runs on three instances at once on one worker: steps/s,
 *               worker RSS, launch and vote latency, nothing lost (many-runs.ts)
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { ListCommandInvocationsCommand, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { buildPlan } from '../../src/core/plan.ts';
import { loadRunbookFile } from '../../src/store/runbook-registry.ts';
import { openSigningAuditStore } from '../../src/store/audit-log.ts';
import { loadConfig } from '../../src/config.ts';
import { startStack, throwawayStackEnv } from '../../src/embedded/stack.ts';
import { connectApi } from '../../cli/api.ts';
import { benchStepOverhead, formatOverhead } from './step-overhead.ts';
import { benchAwsCli, formatCli } from './aws-cli.ts';
import { benchFleet10k } from './fleet-10k.ts';
import { benchManyRuns, formatManyRuns } from './many-runs.ts';

process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';

interface Row {
  name: string;
  n: number;
  median: number;
  p95: number;
  baseline: string;
  baseMedian: number;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

async function sample(n: number, fn: (i: number) => unknown): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn(i);
    out.push(performance.now() - t);
  }
  return out.sort((a, b) => a - b);
}

async function compare(
  name: string,
  n: number,
  warmup: number,
  fn: (i: number) => unknown,
  baseline: string,
  base: (i: number) => unknown,
): Promise<Row> {
  await sample(warmup, fn);
  await sample(warmup, base);
  // Interleave halves so drift on a shared machine hits both sides alike.
  const a1 = await sample(n / 2, fn);
  const b1 = await sample(n / 2, base);
  const a2 = await sample(n / 2, (i) => fn(i + n));
  const b2 = await sample(n / 2, (i) => base(i + n));
  const a = [...a1, ...a2].sort((x, y) => x - y);
  const b = [...b1, ...b2].sort((x, y) => x - y);
  return { name, n, median: quantile(a, 0.5), p95: quantile(a, 0.95), baseline, baseMedian: quantile(b, 0.5) };
}

async function benchPlan(): Promise<Row> {
  const { runbook, digest } = await loadRunbookFile(path.resolve('runbooks/deploy-web.yaml'));
  const input = (i: number) => ({
    executionId: `mx-bench${i}`,
    runbook,
    runbookDigest: digest,
    rawParams: { release: 'v1.2.3', note: `run ${i}` },
    targets: [
      { instanceId: 'i-0d3f1ee7000000001', name: 'web-1' },
      { instanceId: 'i-0d3f1ee7000000002', name: 'web-2' },
    ],
    requester: 'alice',
    reason: 'benchmark',
    region: 'us-east-1',
    now: new Date(),
  });
  const sample = buildPlan(input(0)).plan;
  return compare(
    'plan',
    2000,
    200,
    (i) => buildPlan(input(i)),
    'JSON + sha256',
    () => createHash('sha256').update(JSON.stringify(sample)).digest('hex'),
  );
}

async function benchAudit(dir: string): Promise<Row> {
  // The store as the worker and server open it: signing a checkpoint every 100 records is part of the cost.
  const store = await openSigningAuditStore({
    store: { kind: 'sqlite', file: path.join(dir, 'audit.db') },
    audit: { keyFile: path.join(dir, 'audit-key.pem') },
  });
  const raw = new Database(path.join(dir, 'raw.db'));
  raw.pragma('journal_mode = WAL');
  raw.exec('CREATE TABLE events (id TEXT PRIMARY KEY, execution_id TEXT, type TEXT, actor TEXT, at TEXT, data TEXT)');
  const insert = raw.prepare('INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)');
  const data = {
    step: 'install',
    index: 0,
    phase: 'main' as const,
    commandId: 'c0ffee00-0000-4000-8000-000000000000',
    instanceId: 'i-0d3f1ee7000000001',
    status: 'Success',
    statusDetails: 'Success',
    responseCode: 0,
    stdout: 'x'.repeat(500),
    stderr: '',
    outputSha256: '0'.repeat(64),
  };
  let counter = 0; // warm-up and measured rounds must never reuse an event id
  const event = (_i: number) => ({
    eventId: `bench:${counter++}`,
    executionId: 'mx-bench',
    type: 'step.instance' as const,
    actor: 'mechanic',
    at: new Date().toISOString(),
    data,
  });
  const row = await compare(
    'audit',
    1000,
    100,
    (i) => store.append(event(i)),
    'plain INSERT',
    (i) => {
      const e = event(i);
      insert.run(e.eventId, e.executionId, e.type, e.actor, e.at, JSON.stringify(e.data));
    },
  );
  await store.close();
  raw.close();
  return row;
}

async function benchRun(dir: string): Promise<Row> {
  const env = await throwawayStackEnv(path.join(dir, 'stack'), { minMs: 100, maxMs: 500 });
  const config = loadConfig(env);
  const stack = await startStack(config, { progress: () => {} }, env);
  try {
    const alice = await connectApi(config, 'alice');
    const bob = await connectApi(config, 'bob');
    const root = JSON.parse(await readFile(path.join(config.home, 'devfleet', 'root.json'), 'utf8')) as {
      accessKeyId: string;
      secretAccessKey: string;
    };
    const endpoint = stack.info.devfleetEndpoint;
    const sts = new STSClient({ region: 'us-east-1', endpoint, credentials: root });

    const run = async () => {
      const launched = await alice.call('launch', {
        body: { runbook: 'rotate-logs', params: { keep: 3 }, reason: 'benchmark run' },
      });
      await bob.call('vote', {
        params: { id: launched.executionId },
        body: { decision: 'approve', planDigest: launched.planDigest },
      });
      for (;;) {
        const { execution } = await alice.call('getExecution', { params: { id: launched.executionId } });
        if (execution.status === 'completed') return;
        if (execution.status !== 'running' && execution.status !== 'awaiting_approval')
          throw new Error(`run ended ${execution.status}`);
        await sleep(50);
      }
    };
    const direct = async () => {
      const { Credentials: c } = await sts.send(
        new AssumeRoleCommand({
          RoleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
          RoleSessionName: 'bench',
          DurationSeconds: 900,
        }),
      );
      const ssm = new SSMClient({
        region: 'us-east-1',
        endpoint,
        credentials: {
          accessKeyId: c!.AccessKeyId!,
          secretAccessKey: c!.SecretAccessKey!,
          sessionToken: c!.SessionToken!,
        },
      });
      const ids = ['i-0d3f1ee7000000001', 'i-0d3f1ee7000000002', 'i-0d3f1ee7000000003'];
      for (const script of ['echo rotate', 'echo prune']) {
        const { Command } = await ssm.send(
          new SendCommandCommand({
            DocumentName: 'AWS-RunShellScript',
            InstanceIds: ids,
            Parameters: { commands: [script] },
          }),
        );
        for (;;) {
          const { CommandInvocations: inv = [] } = await ssm.send(
            new ListCommandInvocationsCommand({ CommandId: Command!.CommandId! }),
          );
          if (inv.length === ids.length && inv.every((i) => i.Status === 'Success')) break;
          await sleep(50);
        }
      }
    };
    return await compare('run', 10, 1, run, 'SDK direct', direct);
  } finally {
    await stack.stop();
  }
}

const dir = await mkdtemp(path.join(tmpdir(), 'mechanic-bench-'));
try {
  const rows = [await benchPlan(), await benchAudit(dir), await benchRun(dir)];
  const overhead = await benchStepOverhead(dir);
  const f = (ms: number) => (ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(ms < 10 ? 2 : 0)} ms`);
  process.stdout.write(
    '| bench | n | median | p95 | baseline | baseline median | ratio |\n|---|---|---|---|---|---|---|\n',
  );
  for (const r of rows) {
    process.stdout.write(
      `| ${r.name} | ${r.n} | ${f(r.median)} | ${f(r.p95)} | ${r.baseline} | ${f(r.baseMedian)} | ${(r.median / r.baseMedian).toFixed(1)}× |\n`,
    );
  }
  process.stdout.write(`\n${formatOverhead(overhead)}\n`);
  process.stdout.write(`\n${formatCli(await benchAwsCli(dir, 3, (l) => process.stderr.write(`${l}\n`)))}\n`);
  process.stdout.write(`\n${formatManyRuns(await benchManyRuns(dir))}\n`);
  process.stdout.write('\n');
  await benchFleet10k(dir, (line) => process.stdout.write(`${line}\n`));
} finally {
  await rm(dir, { recursive: true, force: true });
}
