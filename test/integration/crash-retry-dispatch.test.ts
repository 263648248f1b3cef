import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readCommandLog } from '../../src/devfleet/command-log.ts';
import { DEMO_INSTANCE_IDS, type FleetConfig } from '../../src/devfleet/config.ts';
import type { ExecutionView } from '../../src/core/execution.ts';
import type { AuditRecord } from '../../src/core/audit.ts';
import { partPid, waitFor } from '../helpers/parts.ts';
import { runCli, startDevStack, type DevStack } from '../helpers/cli.ts';

const WEB = [DEMO_INSTANCE_IDS['web-1'], DEMO_INSTANCE_IDS['web-2']].sort();

/**
 * A step whose first run on a host fails and whose second succeeds: each host counts its own runs
 * in a file of its sandbox, the witness of how often the script really ran there.
 */
const RUNBOOK = `
name: flaky-step
version: 1
description: Fails the first time it runs on a host and succeeds the second time, counting its runs.
roleArn: arn:aws:iam::123456789012:role/mechanic-runner
targets:
  tags: { Role: web }
steps:
  - name: flaky
    timeoutSeconds: 60
    retries: 1
    retryDelaySeconds: 5
    script: |
      set -euo pipefail
      n=$(( $(cat runs 2>/dev/null || echo 0) + 1 ))
      echo "$n" > runs.tmp
      mv runs.tmp runs
      echo "run $n on this host"
      if [ "$n" -lt 2 ]; then echo "the first run fails on purpose" >&2; exit 1; fi
`;

/**
 * Exactly-once dispatch of a retry across a crash (issue 12's attack row): a step with `retries`
 * fails on its first attempt; the retry's SendCommand is accepted by SSM but its answer is held
 * back, and the worker is SIGKILLed then. Temporal retries the retry's dispatch on the restarted
 * worker, which finds the command by the attempt's own token and adopts it: each host runs the
 * retry once, by its own count, and the run completes.
 *
 * devfleet's lost-answer fault applies to the first SendCommand after it starts, and the first
 * attempt's send must not be the one: so the worker is paused (SIGSTOP) once the first attempt
 * is out, devfleet restarts with the fault, and the worker resumes, to send the retry next.
 */
describe('a worker killed between a retry’s accepted SendCommand and its answer', () => {
  let stack: DevStack;
  let runbooks: string;
  const cli = (...args: string[]) => runCli(args, stack.env);
  const fleetDir = () => path.join(stack.home, 'devfleet');
  const logFor = async (token: string) => (await readCommandLog(fleetDir())).filter((e) => e.comment === token);

  /** SIGKILLs a part and waits until the supervisor has started a new one. */
  const killAndAwaitRestart = async (part: string): Promise<void> => {
    const old = partPid(stack, part);
    process.kill(old, 'SIGKILL');
    await waitFor(`the supervisor to restart ${part}`, async () => (partPid(stack, part) !== old ? true : undefined));
  };

  beforeAll(async () => {
    runbooks = await mkdtemp(path.join(tmpdir(), 'mechanic-retry-crash-'));
    await writeFile(path.join(runbooks, 'flaky-step.yaml'), RUNBOOK);
    stack = await startDevStack({
      MECHANIC_RUNBOOKS_DIR: runbooks,
      MECHANIC_HEARTBEAT_TIMEOUT_SECONDS: '3',
      MECHANIC_POLL_MAX_MS: '500',
    });
  });
  afterAll(async () => {
    expect(await stack?.stop()).toBe(0);
    await rm(runbooks, { recursive: true, force: true });
  });

  test('the restarted worker adopts the retry’s command: each host runs the retry once, and the run completes', async () => {
    const launched = await cli('launch', 'flaky-step', '--reason', 'lost retry answer', '--as', 'alice', '--json');
    expect(launched.stderr).toBe('');
    const id = (JSON.parse(launched.stdout) as { executionId: string }).executionId;
    expect((await cli('approve', id, '--yes', '--as', 'bob')).code).toBe(0);

    const first = `mechanic ${id} step 0`;
    const retry = `mechanic ${id} step 0 attempt 2`;
    await waitFor('SSM to accept the first attempt', async () =>
      (await logFor(first)).length === WEB.length ? true : undefined,
    );
    // Paused, the worker can send nothing while devfleet restarts with the fault; the retry waits
    // out its pause after the first attempt fails, so it cannot have been sent yet.
    const worker = partPid(stack, 'worker');
    process.kill(worker, 'SIGSTOP');
    try {
      expect(await logFor(retry)).toEqual([]);
      const file = path.join(fleetDir(), 'fleet.json');
      const fleet = JSON.parse(await readFile(file, 'utf8')) as FleetConfig;
      const faults: FleetConfig['faults'] = { sendCommand: { acceptThen: 'delay', delayMs: 600_000, times: 1 } };
      await writeFile(file, JSON.stringify({ ...fleet, faults }, null, 2));
      await killAndAwaitRestart('devfleet');
      await waitFor('devfleet to answer again', async () => {
        await fetch(stack.info.devfleetEndpoint, { method: 'POST' });
        return true;
      });
    } finally {
      process.kill(worker, 'SIGCONT');
    }

    // Accepted: the retry has run on both hosts, while the answer to its SendCommand is held.
    await waitFor('SSM to accept the retry', async () =>
      (await logFor(retry)).length === WEB.length ? true : undefined,
    );
    await killAndAwaitRestart('worker');

    const view = await waitFor(
      'the run to end',
      async () => {
        const r = await cli('status', id, '--as', 'alice', '--json');
        if (r.code !== 0) return undefined;
        const v = JSON.parse(r.stdout) as ExecutionView;
        return v.status === 'running' || v.status === 'awaiting_approval' ? undefined : v;
      },
      280_000,
    );
    expect(view.status, JSON.stringify(view)).toBe('completed');

    // The host's own witness: one failed first run and one retry, never a third.
    for (const instanceId of WEB) {
      const runs = await readFile(path.join(fleetDir(), 'instances', instanceId, 'root', 'runs'), 'utf8');
      expect({ instanceId, runs: runs.trim() }).toEqual({ instanceId, runs: '2' });
    }
    // One command per attempt, each on both hosts; the run followed the retry's own command.
    for (const token of [first, retry]) {
      const sent = await logFor(token);
      expect(sent.map((e) => e.instanceId).sort(), token).toEqual(WEB);
      expect(new Set(sent.map((e) => e.commandId)).size, token).toBe(1);
    }
    const retryCommand = (await logFor(retry))[0]!.commandId;
    expect(view.steps[0]!.commandId).toBe(retryCommand);
    expect(view.steps[0]!.status).toBe('succeeded');

    const records = JSON.parse(
      (await cli('audit', 'list', '--execution', id, '--as', 'dave', '--json')).stdout,
    ) as AuditRecord[];
    // One start per attempt, the second naming the adopted command; the new worker re-issued credentials.
    expect(
      records.filter((r) => r.type === 'step.started').map((r) => [r.data['attempt'], r.data['commandId']]),
    ).toEqual([
      [1, (await logFor(first))[0]!.commandId],
      [2, retryCommand],
    ]);
    expect(records.filter((r) => r.type === 'credentials.issued').map((r) => r.data['reason'])).toEqual([
      'approved',
      'reissued',
    ]);
  }, 360_000);
});
