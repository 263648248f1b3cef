import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readCommandLog } from '../../src/devfleet/command-log.ts';
import type { ExecutionView } from '../../src/core/execution.ts';
import type { AuditRecord } from '../../src/core/audit.ts';
import { partPid, waitFor } from '../helpers/parts.ts';
import { runCli, startDevStack, type DevStack } from '../helpers/cli.ts';

const RUNBOOKS = fileURLToPath(new URL('../fixtures/runbooks/', import.meta.url));

/**
 * Durability: the worker is SIGKILLed while a step runs. The supervisor restarts it; the new
 * worker follows the same SSM command (it does not send it again), re-issues credentials (the
 * secret died with the old worker, and the re-issue is audited) and finishes the run.
 */
describe('a worker killed mid-step', () => {
  let stack: DevStack;
  const cli = (...args: string[]) => runCli(args, stack.env);
  const commandLog = () => readCommandLog(path.join(stack.home, 'devfleet'));

  /** Launches slow-step as alice and returns the execution id. */
  const launch = async (reason: string, ...params: string[]): Promise<string> => {
    const launched = await cli(
      'launch',
      'slow-step',
      ...params.flatMap((p) => ['--param', p]),
      '--reason',
      reason,
      '--as',
      'alice',
      '--json',
    );
    expect(launched.code).toBe(0);
    return (JSON.parse(launched.stdout) as { executionId: string }).executionId;
  };

  const untilSlowStepRuns = (id: string) =>
    waitFor('the slow step to be running on devfleet', async () => {
      const log = await commandLog();
      return log.filter((e) => e.comment === `mechanic ${id} step 0`).length === 2 ? true : undefined;
    });

  /** SIGKILLs a part and waits until the supervisor has started a new one; returns both pids. */
  const killAndAwaitRestart = async (part: string): Promise<[number, number]> => {
    const old = partPid(stack, part);
    process.kill(old, 'SIGKILL');
    const next = await waitFor(`the supervisor to restart ${part}`, async () => {
      const pid = partPid(stack, part);
      return pid !== old ? pid : undefined;
    });
    return [old, next];
  };

  beforeAll(async () => {
    stack = await startDevStack({
      MECHANIC_RUNBOOKS_DIR: RUNBOOKS,
      MECHANIC_HEARTBEAT_TIMEOUT_SECONDS: '3',
      MECHANIC_POLL_MAX_MS: '500',
    });
  });
  afterAll(async () => {
    expect(await stack?.stop()).toBe(0);
  });

  test('does not run the step twice, and the run completes', async () => {
    const id = await launch('crash test');
    expect((await cli('approve', id, '--yes', '--as', 'bob')).code).toBe(0);

    await untilSlowStepRuns(id);
    const [oldWorker, newWorker] = await killAndAwaitRestart('worker');
    expect(newWorker).not.toBe(oldWorker);

    const status = await cli('status', id, '--wait', '--as', 'alice', '--json');
    expect(status.stderr).toBe('');
    const view = JSON.parse(status.stdout) as ExecutionView;
    expect(view.status).toBe('completed');
    expect(view.steps.map((s) => s.status)).toEqual(['succeeded', 'succeeded']);

    const log = (await commandLog()).filter((e) => e.comment.startsWith(`mechanic ${id} `));
    expect(log.map((e) => `${e.comment.split(' ').slice(2).join(' ')} ${e.instanceId}`).sort()).toEqual([
      'step 0 i-0d3f1ee7000000001',
      'step 0 i-0d3f1ee7000000002',
      'step 1 i-0d3f1ee7000000001',
      'step 1 i-0d3f1ee7000000002',
    ]);
    // The host's own witness: the script counts its runs in a file of its sandbox, and prints the count.
    expect(view.steps[0]!.instances).toHaveLength(2);
    for (const inst of view.steps[0]!.instances) {
      expect(inst.stdout).toContain('run 1 on this host');
      expect(inst.stdout).toContain('slept on web-');
      const runs = await readFile(
        path.join(stack.home, 'devfleet', 'instances', inst.instanceId, 'root', 'runs'),
        'utf8',
      );
      expect({ instance: inst.instanceId, runs: runs.trim() }).toEqual({ instance: inst.instanceId, runs: '1' });
    }

    const audit = await cli('audit', 'list', '--execution', id, '--as', 'dave', '--json');
    const records = JSON.parse(audit.stdout) as AuditRecord[];
    const issued = records.filter((r) => r.type === 'credentials.issued').map((r) => r.data['reason']);
    expect(issued).toEqual(['approved', 'reissued']);
    expect(records.filter((r) => r.type === 'step.instance')).toHaveLength(4);
  });

  test('the API server can be killed and comes back; nothing is lost', async () => {
    const before = JSON.parse((await cli('list', '--as', 'alice', '--json')).stdout) as unknown[];
    process.kill(partPid(stack, 'server'), 'SIGKILL');
    const after = await waitFor('the API server to come back', async () => {
      const r = await cli('list', '--as', 'alice', '--json');
      return r.code === 0 ? (JSON.parse(r.stdout) as unknown[]) : undefined;
    });
    expect(after).toEqual(before);
  });

  test('a stalled worker does not stall status: the audit log answers', async () => {
    const id = await launch('stall test', 'seconds=1');
    const worker = partPid(stack, 'worker');
    process.kill(worker, 'SIGSTOP');
    try {
      const status = await cli('status', id, '--as', 'alice', '--json');
      expect(status.code).toBe(0);
      const view = JSON.parse(status.stdout) as ExecutionView;
      expect(view.status).toBe('awaiting_approval');
      expect(view.plan.reason).toBe('stall test');
    } finally {
      process.kill(worker, 'SIGCONT');
    }
  });

  test('an operator cancels a running step: the command is cancelled on every host and nothing after it runs', async () => {
    const id = await launch('cancel test', 'seconds=30');
    expect((await cli('approve', id, '--yes', '--as', 'bob')).code).toBe(0);
    await untilSlowStepRuns(id);

    const notHers = await cli('cancel', id, '--reason', 'not mine', '--as', 'bob');
    expect(notHers.code).toBe(1);
    expect(notHers.stderr).toContain('mechanic: bob (approver, author) may not cancel executions');

    const cancel = await cli('cancel', id, '--reason', 'wrong window', '--as', 'alice');
    expect(cancel.stderr, (await cli('status', id, '--as', 'alice')).stdout).toBe('');
    expect(cancel.stdout).toContain(`cancelling ${id}`);

    const view = JSON.parse((await cli('status', id, '--wait', '--as', 'alice', '--json')).stdout) as ExecutionView;
    expect(view.status).toBe('cancelled');
    expect(view.reason).toBe('cancelled by alice: wrong window');
    expect(view.steps.map((s) => s.status)).toEqual(['cancelled', 'skipped']);
    expect(view.steps[0]!.instances.map((i) => i.status)).toEqual(['Cancelled', 'Cancelled']);

    const log = (await commandLog()).filter((e) => e.comment.startsWith(`mechanic ${id} `));
    expect(log.map((e) => `${e.comment.split(' ').slice(2).join(' ')} ${e.status}`)).toEqual([
      'step 0 Cancelled',
      'step 0 Cancelled',
    ]);

    const again = await cli('cancel', id, '--reason', 'twice', '--as', 'alice');
    expect(again.stderr).toBe(
      `mechanic: execution ${id} has already ended (cancelled); it can no longer be cancelled\n`,
    );

    const records = JSON.parse(
      (await cli('audit', 'list', '--execution', id, '--as', 'dave', '--json')).stdout,
    ) as AuditRecord[];
    // The run's story ends with the cancel; the refused second cancel is on the record after it.
    expect(records.filter((r) => r.type.startsWith('execution.')).at(-1)).toMatchObject({
      type: 'execution.cancelled',
      actor: 'alice',
    });
    expect(records.at(-1)).toMatchObject({
      type: 'request.refused',
      actor: 'alice',
      data: { code: 'EXECUTION_FINISHED' },
    });
    expect(records.some((r) => r.type === 'access.denied' && r.actor === 'bob')).toBe(true);
  });

  test('a SIGKILLed Temporal dev server comes back with its runs, and they go on', async () => {
    const id = await launch('temporal crash', 'seconds=1');
    await killAndAwaitRestart('temporal');
    await waitFor('bob to be able to approve again', async () => {
      const r = await cli('approve', id, '--yes', '--as', 'bob');
      return r.code === 0 ? true : undefined;
    });
    const view = JSON.parse((await cli('status', id, '--wait', '--as', 'alice', '--json')).stdout) as ExecutionView;
    expect(view.status).toBe('completed');
    expect(stack.output()).toContain('! temporal exited; restarting it');
  });
});
