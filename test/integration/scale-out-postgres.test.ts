import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import {
  POSTGRES_MISSING_MESSAGE,
  createTestDatabase,
  startTestPostgres,
  type TestPostgres,
} from '../helpers/postgres.ts';
import { waitFor } from '../helpers/parts.ts';
import {
  approveRun,
  commandLogCounts,
  launchWitnessRun,
  startMultiStack,
  tasksOf,
  untilEnded,
  witnessCounts,
  workerOf,
  WEB_INSTANCES,
  type LaunchedRun,
  type MultiStack,
} from '../helpers/multi-stack.ts';

const ONCE_EACH = Object.fromEntries(
  ['step 0', 'step 1'].flatMap((s) => WEB_INSTANCES.map((i) => [`${s} ${i}`, 1] as const)),
);

/**
 * Issue 11 part 6, scale-out on the real engine: two workers and two API servers as separate
 * processes, on one task queue and one PostgreSQL database, behind one Temporal server. Runs are
 * launched through one server and approved through the other; the worker following a running step
 * is SIGKILLed. Every run still completes, each command runs once per host (devfleet's log and the
 * host's own count), the audit chain verifies, and Temporal's history shows the surviving worker
 * did the rest. The killed worker, started again, joins and runs work.
 */
describe('two workers and two API servers on PostgreSQL, one worker killed mid-step', () => {
  let postgres: TestPostgres | undefined;
  let stack: MultiStack | undefined;

  beforeAll(async () => {
    postgres = await startTestPostgres();
    if (!postgres) throw new Error(POSTGRES_MISSING_MESSAGE);
    const databaseUrl = await createTestDatabase(postgres.url, 'mechanic_scale_out');
    stack = await startMultiStack({ temporalCli: inject('temporalCli'), workers: 2, servers: 2, databaseUrl });
  }, 600_000);
  afterAll(async () => {
    await stack?.stop();
    await postgres?.stop();
  }, 300_000);

  test('every run completes once per host; the surviving worker did the rest; the killed one rejoins', async () => {
    const s = stack!;
    // Four runs, launched two through each server, each approved through the other one.
    const runs: LaunchedRun[] = [];
    for (let i = 0; i < 4; i++) runs.push(await launchWitnessRun(s, i % 2, `scale-${i}`, 6));
    for (const [i, run] of runs.entries()) await approveRun(s, (i + 1) % 2, run);

    // A step is running on the hosts, and Temporal names the worker following it: that worker is killed.
    const { victim, run: interrupted } = await waitFor('a worker to be following a running step', async () => {
      const log = await s.commandLog();
      const client = await s.temporalClient();
      for (const run of runs) {
        const running = log.filter(
          (e) => e.comment === `mechanic ${run.executionId} step 0` && e.status === 'InProgress',
        );
        if (running.length !== WEB_INSTANCES.length) continue;
        const { raw } = await client.workflow.getHandle(run.executionId).describe();
        const follow = raw.pendingActivities?.find((a) => a.activityType?.name === 'awaitStep');
        const worker = follow?.lastWorkerIdentity ? workerOf(s, follow.lastWorkerIdentity) : undefined;
        if (worker !== undefined) return { victim: s.workers.find((w) => w.name === worker)!, run };
      }
      return undefined;
    });
    const survivor = s.workers.find((w) => w !== victim)!;
    const killedIdentity = victim.identities.at(-1)!;
    const killedAt = Date.now();
    await victim.kill();

    const views = await Promise.all(runs.map((r, i) => untilEnded(s, r.executionId, i % 2)));
    expect(
      views.map((v) => ({ id: v.executionId, status: v.status, steps: v.steps.map((st) => st.status) })),
      s.describe(),
    ).toEqual(runs.map((r) => ({ id: r.executionId, status: 'completed', steps: ['succeeded', 'succeeded'] })));

    // Once per (run, step, instance): in devfleet's command log, and by each host's own count.
    const log = await s.commandLog();
    for (const run of runs)
      expect({ run: run.tag, counts: commandLogCounts(log, run.executionId) }).toEqual({
        run: run.tag,
        counts: ONCE_EACH,
      });
    const witness = witnessCounts(await s.witness());
    const expected = Object.fromEntries(
      runs.flatMap((r) => [
        [`${r.tag} slow`, 1],
        [`${r.tag} after`, 1],
      ]),
    );
    for (const id of WEB_INSTANCES) expect({ id, counts: witness[id] }).toEqual({ id, counts: expected });

    // Which worker ran what: after the kill, only the survivor started tasks; it finished the interrupted step.
    const tasks = (await Promise.all(runs.map((r) => tasksOf(s, r.executionId)))).flat();
    const after = tasks.filter((t) => t.atMs > killedAt + 1000 && t.identity !== '');
    expect(after.length).toBeGreaterThan(0);
    expect([...new Set(after.map((t) => workerOf(s, t.identity)))], JSON.stringify(after)).toEqual([survivor.name]);
    const follows = (await tasksOf(s, interrupted.executionId)).filter((t) => t.name === 'awaitStep');
    expect(follows.map((t) => workerOf(s, t.identity))).toEqual([survivor.name, survivor.name]);
    expect(tasks.some((t) => t.identity === killedIdentity)).toBe(true);

    // The audit chain (written by four processes into one database) verifies.
    const verify = await s.cli(0, 'dave', 'audit', 'verify');
    expect(verify.stderr).toBe('');
    expect(verify.stdout).toMatch(/^audit chain intact/);

    // The killed worker starts again and joins: with the survivor stopped, it alone runs a new run to its end.
    await victim.start();
    await survivor.stop();
    const late = await launchWitnessRun(s, 1, 'scale-late', 0);
    await approveRun(s, 0, late);
    expect((await untilEnded(s, late.executionId)).status).toBe('completed');
    // (An event the server wrote with no worker identity, seen once under load, names nobody and is left out.)
    const lateTasks = (await tasksOf(s, late.executionId)).filter((t) => t.identity !== '');
    expect([...new Set(lateTasks.map((t) => workerOf(s, t.identity)))], JSON.stringify(lateTasks)).toEqual([
      victim.name,
    ]);
    expect(commandLogCounts(await s.commandLog(), late.executionId)).toEqual(ONCE_EACH);
  }, 600_000);
});
