import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { connectApi } from '../../cli/api.ts';
import { loadConfig } from '../../src/config.ts';
import { readCommandLog } from '../../src/devfleet/command-log.ts';
import { workerAwsEnv } from '../../src/embedded/stack.ts';
import { dataConverterFor, parseCodecKeys } from '../../src/temporal/codec.ts';
import { writeOwnerOnly } from '../helpers/claims.ts';
import { BIN, startDevStack, type DevStack } from '../helpers/cli.ts';
import { waitFor } from '../helpers/parts.ts';

/**
 * Beyond what a worker can take, runs queue rather than fail, and a second worker on the same task
 * queue takes part of the load. `mechanic dev`'s worker is held to one activity, two workflow tasks
 * and one audit write at a time (MECHANIC_WORKER_*); RUNS runs are launched at once, a second
 * `mechanic worker` process, started as a second machine would start one, joins the task queue, and
 * every run is approved at once. Every run must complete with each step once on each host, no task of any run may
 * have timed out, each worker must have kept to its limit, and both must have run steps — told
 * apart by the worker identity Temporal writes into each run's history.
 */

const RUNS = 12;
const INSTANCES = 3;
const STEPS = 2;

const RUNBOOK = `name: queued-steps
version: 1
description: Two short steps on every staging host, for the queueing test.
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
    script: sleep 1 && echo first
  - name: second
    timeoutSeconds: 60
    script: echo second
`;

interface StartedWorker {
  readonly child: ChildProcess;
  readonly identity: string;
  readonly exited: Promise<number | null>;
}

/** `mechanic worker` beside the stack's own, with what a second machine would be given. */
async function startSecondWorker(stack: DevStack): Promise<StartedWorker> {
  const root = JSON.parse(await readFile(path.join(stack.home, 'devfleet', 'root.json'), 'utf8')) as {
    accessKeyId: string;
    secretAccessKey: string;
  };
  const base: NodeJS.ProcessEnv = {
    ...stack.env,
    MECHANIC_CODEC_KEYS: (await readFile(path.join(stack.home, 'codec-keys'), 'utf8')).trim(),
    MECHANIC_AWS_ENDPOINT: stack.info.devfleetEndpoint,
    AWS_ACCESS_KEY_ID: root.accessKeyId,
    AWS_SECRET_ACCESS_KEY: root.secretAccessKey,
    // It stops when this test's end of its stdin closes, however the test ends.
    MECHANIC_SUPERVISED: '1',
  };
  // The same credentials as the stack's worker: a session of devfleet's worker role.
  const { env } = await workerAwsEnv(loadConfig(base), base, stack.info.devfleetEndpoint);
  const child = spawn(process.execPath, [BIN, 'worker'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.on('error', () => {});
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let output = '';
  const identity = await new Promise<string>((resolve, reject) => {
    let seen: string | undefined;
    const onLine = (line: string) => {
      output += `${line}\n`;
      try {
        const entry = JSON.parse(line) as { msg?: string; identity?: string };
        if (entry.msg === 'worker started') seen = entry.identity;
        if (entry.msg === 'ready' && seen !== undefined) resolve(seen);
      } catch {
        // Not one of mechanic's log lines (the SDK's own, bundler output).
      }
    };
    createInterface({ input: child.stdout }).on('line', onLine);
    createInterface({ input: child.stderr }).on('line', onLine);
    void exited.then((code) => reject(new Error(`the second worker exited (${code}) before it was ready:\n${output}`)));
  });
  return { child, identity, exited };
}

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
const ms = (t: HistoryEvent['eventTime']) => Number(t?.seconds ?? 0) * 1000 + Math.floor((t?.nanos ?? 0) / 1e6);

describe(
  'beyond a worker’s limits, runs queue and a second worker takes part of the load',
  { timeout: 600_000 },
  () => {
    let stack: DevStack;
    let scratch: string;
    let second: StartedWorker | undefined;
    let firstIdentity = '';
    let ids: string[] = [];
    let histories: Map<string, HistoryEvent[]>;

    beforeAll(async () => {
      scratch = await mkdtemp(path.join(tmpdir(), 'mechanic-worker-load-'));
      const runbooksDir = path.join(scratch, 'runbooks');
      await writeOwnerOnly(path.join(runbooksDir, 'queued-steps.yaml'), RUNBOOK);
      stack = await startDevStack({
        MECHANIC_RUNBOOKS_DIR: runbooksDir,
        MECHANIC_WORKER_MAX_ACTIVITIES: '1',
        MECHANIC_WORKER_MAX_WORKFLOW_TASKS: '2',
        MECHANIC_WORKER_MAX_LOCAL_ACTIVITIES: '1',
      });
      const started = (await readFile(path.join(stack.home, 'logs', 'worker.log'), 'utf8')).split('\n').flatMap((l) => {
        try {
          const entry = JSON.parse(l) as { msg?: string; identity?: string };
          return entry.msg === 'worker started' && entry.identity ? [entry.identity] : [];
        } catch {
          return [];
        }
      });
      firstIdentity = started.at(-1) ?? '';
      expect(firstIdentity).not.toBe('');

      // Every run launched at once, waiting for approval; then a second worker joins the task queue,
      // and every run is approved at once: far more work than one activity at a time can serve.
      const config = loadConfig(stack.env);
      const alice = await connectApi(config, 'alice');
      const bob = await connectApi(config, 'bob');
      const launched = await Promise.all(
        Array.from({ length: RUNS }, (_, i) =>
          alice.call('launch', { body: { runbook: 'queued-steps', reason: `queued run ${i}` } }),
        ),
      );
      ids = launched.map((l) => l.executionId);
      second = await startSecondWorker(stack);
      await Promise.all(
        launched.map((l) =>
          bob.call('vote', { params: { id: l.executionId }, body: { decision: 'approve', planDigest: l.planDigest } }),
        ),
      );

      const dave = await connectApi(config, 'dave');
      await waitFor('every queued run to end', async () => {
        const { executions } = await dave.call('listExecutions', { query: { limit: 1000 } });
        const ours = executions.filter((e) => ids.includes(e.id));
        return ours.length === RUNS && ours.every((e) => e.status !== 'running' && e.status !== 'awaiting_approval')
          ? true
          : undefined;
      });

      const codecKeys = (await readFile(path.join(stack.home, 'codec-keys'), 'utf8')).trim();
      const connection = await Connection.connect({ address: stack.info.temporalAddress });
      try {
        const client = new Client({ connection, dataConverter: dataConverterFor(parseCodecKeys(codecKeys)) });
        histories = new Map(
          await Promise.all(
            ids.map(
              async (id) =>
                [id, (await client.workflow.getHandle(id).fetchHistory()).events ?? []] as [string, HistoryEvent[]],
            ),
          ),
        );
      } finally {
        await connection.close();
      }
    }, 600_000);

    afterAll(async () => {
      if (second) {
        second.child.kill('SIGTERM');
        expect(await second.exited).toBe(0);
      }
      const code = await stack?.stop();
      if (scratch) await rm(scratch, { recursive: true, force: true });
      expect(code).toBe(0);
    });

    test('every run completes, each step once on each host', async () => {
      const config = loadConfig(stack.env);
      const dave = await connectApi(config, 'dave');
      const { executions } = await dave.call('listExecutions', { query: { limit: 1000 } });
      expect(executions.filter((e) => ids.includes(e.id)).map((e) => e.status)).toEqual(ids.map(() => 'completed'));
      const ran = (await readCommandLog(path.join(stack.home, 'devfleet'))).filter((e) =>
        ids.some((id) => e.comment.startsWith(`mechanic ${id} `)),
      );
      const once = new Set(ran.map((e) => `${e.comment} ${e.instanceId}`));
      expect(ran).toHaveLength(RUNS * STEPS * INSTANCES);
      expect(once.size).toBe(ran.length);
    });

    test('nothing timed out or failed while it waited in the queue', () => {
      for (const [id, events] of histories) {
        const bad = events.filter(
          (e) =>
            e.activityTaskTimedOutEventAttributes ||
            e.activityTaskFailedEventAttributes ||
            e.workflowTaskFailedEventAttributes ||
            // A start-to-close timeout would mean a worker took a task it could not run in time;
            // a sticky schedule-to-start one only sends the task back to the shared queue.
            (e.workflowTaskTimedOutEventAttributes &&
              e.workflowTaskTimedOutEventAttributes.timeoutType !==
                temporal.api.enums.v1.TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START),
        );
        expect({ id, bad }).toEqual({ id, bad: [] });
      }
    });

    test('each worker kept to one activity at a time, and both ran steps', () => {
      // Each activity as the history tells it: who started it, when it started and when it ended.
      const runs: { identity: string; type: string; start: number; end: number }[] = [];
      for (const events of histories.values()) {
        const byId = new Map(events.map((e) => [Number(e.eventId), e]));
        for (const e of events) {
          const done =
            e.activityTaskCompletedEventAttributes ??
            e.activityTaskFailedEventAttributes ??
            e.activityTaskCanceledEventAttributes;
          if (!done) continue;
          const started = byId.get(Number(done.startedEventId));
          const scheduled = byId.get(Number(done.scheduledEventId));
          runs.push({
            identity: started?.activityTaskStartedEventAttributes?.identity ?? '',
            type: scheduled?.activityTaskScheduledEventAttributes?.activityType?.name ?? '',
            start: ms(started?.eventTime),
            end: ms(e.eventTime),
          });
        }
      }
      expect(new Set(runs.map((r) => r.identity))).toEqual(new Set([firstIdentity, second!.identity]));
      for (const identity of [firstIdentity, second!.identity]) {
        const mine = runs.filter((r) => r.identity === identity).sort((a, b) => a.start - b.start);
        const overlapping = mine.filter((r, i) => i > 0 && r.start < mine[i - 1]!.end);
        expect({ identity, overlapping }).toEqual({ identity, overlapping: [] });
        // Steps, not only bookkeeping: each worker sent or followed some of the runs' commands.
        expect(mine.some((r) => r.type === 'dispatchStep' || r.type === 'awaitStep')).toBe(true);
      }
    });
  },
);
