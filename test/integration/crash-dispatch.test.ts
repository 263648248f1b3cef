import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readCommandLog } from '../../src/devfleet/command-log.ts';
import { DEMO_INSTANCE_IDS, type FleetConfig } from '../../src/devfleet/config.ts';
import type { ExecutionView } from '../../src/core/execution.ts';
import type { AuditRecord } from '../../src/core/audit.ts';
import { partPid, waitFor } from '../helpers/parts.ts';
import { runCli, startDevStack, type DevStack } from '../helpers/cli.ts';

const RUNBOOKS = fileURLToPath(new URL('../fixtures/runbooks/', import.meta.url));
const WEB = [DEMO_INSTANCE_IDS['web-1'], DEMO_INSTANCE_IDS['web-2']];

/**
 * Exactly-once dispatch across a crash: the worker is SIGKILLed after SSM accepted a step's
 * SendCommand and before its answer arrived (devfleet holds the answer back). Temporal retries the
 * dispatch on the restarted worker, which finds the command by its token and adopts it; each host
 * counts its own runs of the script, and counts one.
 */
describe('a worker killed between an accepted SendCommand and its answer', () => {
  let stack: DevStack;
  const cli = (...args: string[]) => runCli(args, stack.env);
  const fleetDir = () => path.join(stack.home, 'devfleet');

  /** SIGKILLs a part and waits until the supervisor has started a new one. */
  const killAndAwaitRestart = async (part: string): Promise<void> => {
    const old = partPid(stack, part);
    process.kill(old, 'SIGKILL');
    await waitFor(`the supervisor to restart ${part}`, async () => (partPid(stack, part) !== old ? true : undefined));
  };

  beforeAll(async () => {
    stack = await startDevStack({
      MECHANIC_RUNBOOKS_DIR: RUNBOOKS,
      MECHANIC_HEARTBEAT_TIMEOUT_SECONDS: '3',
      MECHANIC_POLL_MAX_MS: '500',
    });
    // devfleet reads its fleet file when it starts: add the fault, then let the supervisor
    // restart it (on the same port, with its state). The next SendCommand is accepted and runs,
    // but its answer is held back far longer than this test lasts.
    const file = path.join(fleetDir(), 'fleet.json');
    const fleet = JSON.parse(await readFile(file, 'utf8')) as FleetConfig;
    const faults: FleetConfig['faults'] = { sendCommand: { acceptThen: 'delay', delayMs: 600_000, times: 1 } };
    await writeFile(file, JSON.stringify({ ...fleet, faults }, null, 2));
    await killAndAwaitRestart('devfleet');
    await waitFor('devfleet to answer again', async () => {
      await fetch(stack.info.devfleetEndpoint, { method: 'POST' });
      return true;
    });
  });
  afterAll(async () => {
    expect(await stack?.stop()).toBe(0);
  });

  test('the retried dispatch adopts the command: one run per host, and the log is stamped in its order', async () => {
    const launched = await cli(
      'launch',
      'slow-step',
      '--param',
      'seconds=1',
      '--reason',
      'lost answer',
      '--as',
      'alice',
      '--json',
    );
    expect(launched.stderr).toBe('');
    const id = (JSON.parse(launched.stdout) as { executionId: string }).executionId;
    expect((await cli('approve', id, '--yes', '--as', 'bob')).code).toBe(0);

    // Accepted: the step has started on both hosts, while the answer to its SendCommand is held.
    const token = `mechanic ${id} step 0`;
    await waitFor('SSM to accept step 0', async () => {
      const started = (await readCommandLog(fleetDir())).filter((e) => e.comment === token);
      return started.length === WEB.length ? true : undefined;
    });
    await killAndAwaitRestart('worker');

    // The dead attempt is noticed by its timeout (start-to-close, or a heartbeat timeout where
    // the workflow sets one), then Temporal retries the dispatch on the new worker.
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

    // The host's own witness: the script counts its runs in a file of its sandbox.
    for (const instanceId of WEB) {
      const runs = await readFile(path.join(fleetDir(), 'instances', instanceId, 'root', 'runs'), 'utf8');
      expect({ instanceId, runs: runs.trim() }).toEqual({ instanceId, runs: '1' });
    }
    const step0 = (await readCommandLog(fleetDir())).filter((e) => e.comment === token);
    expect(step0.map((e) => e.instanceId).sort()).toEqual(WEB);
    const commandIds = [...new Set(step0.map((e) => e.commandId))];
    expect(commandIds).toHaveLength(1);
    expect(view.steps[0]!.commandId).toBe(commandIds[0]);

    // The audit log's order is its story: no record is stamped earlier than the one before it,
    // although step 0 ended long before the workflow learned its command id.
    const records = JSON.parse(
      (await cli('audit', 'list', '--execution', id, '--as', 'dave', '--json')).stdout,
    ) as AuditRecord[];
    expect(records.map((r) => r.seq)).toEqual(records.map((r) => r.seq).sort((a, b) => a - b));
    const backwards = records.filter((r, i) => i > 0 && Date.parse(r.at) < Date.parse(records[i - 1]!.at));
    expect(backwards.map((r) => `${r.seq} ${r.type} ${r.at}`)).toEqual([]);
    expect(records.filter((r) => r.type === 'credentials.issued').map((r) => r.data['reason'])).toEqual([
      'approved',
      'reissued',
    ]);
  }, 360_000);
});
