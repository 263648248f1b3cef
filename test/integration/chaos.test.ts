import { appendFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import type { ExecutionView } from '../../src/core/execution.ts';
import type { CommandLogEntry } from '../../src/devfleet/command-log.ts';
import {
  POSTGRES_MISSING_MESSAGE,
  createTestDatabase,
  startTestPostgres,
  type TestPostgres,
} from '../helpers/postgres.ts';
import {
  approveRun,
  commandLogCounts,
  launchWitnessRun,
  onAnyServer,
  ranCounts,
  runningNow,
  startMultiStack,
  untilEnded,
  witnessCounts,
  WEB_INSTANCES,
  type LaunchedRun,
  type MultiStack,
} from '../helpers/multi-stack.ts';

/**
 * Issue 11's chaos, as AWS would see it. Everything mechanic runs — the Temporal server, both
 * workers, both API servers — is SIGKILLed at seeded-random moments while runs are launched,
 * approved and run, then started again; devfleet, standing in for AWS, keeps running (AWS does not
 * crash with you). Every run completes, each (run, step, instance) once in devfleet's log and by
 * the host's own count, and the audit chain verifies. The second campaign kills devfleet too: every
 * run then ends in a final state that tells the truth, and nothing runs twice.
 *
 * Sizes: MECHANIC_CHAOS_RUNS / MECHANIC_CHAOS_KILLS (the issue's figure is 50 runs: `npm run chaos`),
 * MECHANIC_CHAOS_SEED to replay a campaign; the seed is printed with every failure. The CI size
 * (6 runs and 5 kills, then 4 runs and 4 kills) keeps this file near three minutes on a quiet 2-core
 * machine: each kill costs a restart (a worker or server takes several seconds to start) and a
 * killed worker's steps wait out their 3-second heartbeat timeout.
 */
const RUNS = intEnv('MECHANIC_CHAOS_RUNS', 6);
const KILLS = intEnv('MECHANIC_CHAOS_KILLS', 5);
const SEED = intEnv('MECHANIC_CHAOS_SEED', Math.floor(Math.random() * 2 ** 31));
/** Generous: a loaded machine slows every restart; the campaign's own waits are for states, never for times. */
const TIMEOUT_MS = Math.max(900_000, RUNS * 60_000);

function intEnv(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number, not ${text}`);
  return n;
}

/** mulberry32: a small seeded generator, so a failing campaign can be run again move for move. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Victim = 'temporal' | 'devfleet' | `worker-${number}` | `server-${number}`;

/** SIGKILLs `victim` and starts it again (after a pause, so work meets it down). */
async function killAndRestart(stack: MultiStack, victim: Victim, pauseMs: number): Promise<void> {
  if (victim === 'temporal') {
    await stack.temporal.kill();
    await sleep(pauseMs);
    await stack.temporal.start();
    return;
  }
  const part = [stack.devfleet, ...stack.workers, ...stack.servers].find((p) => p.name === victim)!;
  await part.kill();
  await sleep(pauseMs);
  await part.start();
}

/**
 * A launch plans the run, and planning asks SSM which instances the targets select. While devfleet
 * (AWS) is down the server refuses it with its advice, "…; try again in a moment", and nothing is
 * started: the operator does as told. Before launching again they look for the run by its tag, as
 * launchWitnessRun does, in case an earlier try started it before its answer was lost.
 */
async function launchFollowingAdvice(
  stack: MultiStack,
  via: number,
  tag: string,
  seconds: number,
): Promise<LaunchedRun> {
  for (let again = false; ; again = true) {
    if (again) {
      const found = await onAnyServer(
        stack,
        via,
        async (i) =>
          (await stack.api(i, 'alice').call('listExecutions', { query: { limit: 500 } })).executions.find(
            (e) => e.params['tag'] === tag,
          ),
        `looking for ${tag}`,
      );
      if (found) return { tag, executionId: found.id, planDigest: found.planDigest };
    }
    try {
      return await launchWitnessRun(stack, via, tag, seconds);
    } catch (e) {
      if (!awsAwayForAMoment(e)) throw e;
      await sleep(500);
    }
  }
}

/** The server's refusal of a plan because STS or SSM did not answer (not a refusal by AWS's policy). */
function awsAwayForAMoment(e: unknown): boolean {
  const { code, message } = e as { code?: unknown; message?: unknown };
  return (
    (code === 'SSM_COMMAND_FAILED' || code === 'STS_FAILED') &&
    typeof message === 'string' &&
    message.endsWith('; try again in a moment')
  );
}

interface Campaign {
  readonly views: ExecutionView[];
  readonly tags: string[];
  readonly kills: string[];
}

/**
 * Launches `runs` witness runs (staggered, through random servers, approved through another) while
 * `kills` SIGKILLs land on random victims; resolves once every run has ended and every victim is back.
 */
async function campaign(
  stack: MultiStack,
  name: string,
  opts: { runs: number; kills: number; victims: readonly Victim[]; first?: Victim; random: () => number },
): Promise<Campaign> {
  const { random } = opts;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  // Every random choice is drawn up front, in order, so a seed replays the same campaign.
  const plans = Array.from({ length: opts.runs }, (_, i) => ({
    tag: `${name}-${i}`,
    delayMs: Math.floor(random() * 1500 * opts.runs),
    via: Math.floor(random() * stack.servers.length),
    seconds: 1 + Math.floor(random() * 3),
  }));
  const strikes = Array.from({ length: opts.kills }, (_, i) => ({
    gapMs: 500 + Math.floor(random() * 3000),
    victim: i === 0 && opts.first !== undefined ? opts.first : pick(opts.victims),
    pauseMs: Math.floor(random() * 1500),
  }));
  const kills: string[] = [];
  const launched = new Set<string>();
  let allDriven = false;
  /** True once a step of this campaign is running on a host (its script spawned, not finished). */
  const midStep = async () => (await runningNow(stack)).some((c) => launched.has(c.split(' ')[1] ?? ''));
  const killer = (async () => {
    for (const [i, strike] of strikes.entries()) {
      // The first strike lands while a step runs on the hosts (a state, waited for); the others at random moments.
      if (i === 0) while (!allDriven && !(await midStep())) await sleep(100);
      else await sleep(strike.gapMs);
      kills.push(`${strike.victim} (after ${launched.size} launches${i === 0 ? ', mid-step' : ''})`);
      await killAndRestart(stack, strike.victim, strike.pauseMs);
    }
  })();
  const driven = plans.map(async (p) => {
    await sleep(p.delayMs);
    const run = await launchFollowingAdvice(stack, p.via, p.tag, p.seconds);
    launched.add(run.executionId);
    await approveRun(stack, (p.via + 1) % stack.servers.length, run);
    return untilEnded(stack, run.executionId, p.via);
  });
  const all = Promise.all(driven).finally(() => (allDriven = true));
  // The killer is always let finish, so no restart is under way when the stack is stopped.
  const [views, killed] = await Promise.allSettled([all, killer]);
  if (views.status === 'rejected') throw new Error(`seed ${SEED}; kills: ${kills.join(', ')}`, { cause: views.reason });
  if (killed.status === 'rejected') throw killed.reason;
  return { views: views.value, tags: plans.map((p) => p.tag), kills };
}

/**
 * With MECHANIC_CHAOS_REPORT=<file>, each campaign appends one JSON line to it before its checks:
 * seed, wall time, the kills in order and each run's outcome with how often devfleet ran each of
 * its (step, instance) — what a report on a long campaign needs, which the test's pass does not say.
 */
async function reportCampaign(
  stack: MultiStack,
  name: string,
  startedAt: number,
  { views, kills }: Pick<Campaign, 'views' | 'kills'>,
): Promise<void> {
  const file = process.env['MECHANIC_CHAOS_REPORT'];
  if (file === undefined || file === '') return;
  const runs = [];
  for (const v of views) {
    runs.push({
      tag: v.plan.params['tag'],
      executionId: v.executionId,
      status: v.status,
      ...(v.reason !== undefined ? { reason: v.reason } : {}),
      steps: v.steps.map((st) => st.status),
      ran: await ranCounts(stack, v.executionId),
    });
  }
  const line = { campaign: name, seed: SEED, wallMs: Date.now() - startedAt, kills, runs };
  await appendFile(file, `${JSON.stringify(line)}\n`);
}

const ONCE_EACH = Object.fromEntries(
  ['step 0', 'step 1'].flatMap((s) => WEB_INSTANCES.map((i) => [`${s} ${i}`, 1] as const)),
);

describe(`chaos (seed ${SEED}: MECHANIC_CHAOS_SEED=${SEED} replays it)`, () => {
  let postgres: TestPostgres | undefined;
  let stack: MultiStack | undefined;
  const random = seeded(SEED);

  beforeAll(async () => {
    postgres = await startTestPostgres();
    if (!postgres) throw new Error(POSTGRES_MISSING_MESSAGE);
    const databaseUrl = await createTestDatabase(postgres.url, 'mechanic_chaos');
    stack = await startMultiStack({ temporalCli: inject('temporalCli'), workers: 2, servers: 2, databaseUrl });
  }, 600_000);
  afterAll(async () => {
    await stack?.stop();
    await postgres?.stop();
  }, 300_000);

  test(
    `campaign 1: mechanic's processes SIGKILLed ${KILLS} times across ${RUNS} runs; every run completes, once per host`,
    async () => {
      const s = stack!;
      const startedAt = Date.now();
      const { views, tags, kills } = await campaign(s, 'c1', {
        runs: RUNS,
        kills: KILLS,
        victims: ['temporal', ...s.workers.map((w) => w.name as Victim), ...s.servers.map((w) => w.name as Victim)],
        random,
      });
      await reportCampaign(s, 'c1', startedAt, { views, kills });
      const context = `seed ${SEED}; kills: ${kills.join(', ')}\n${s.describe()}`;
      expect(
        views.map((v) => ({ status: v.status, steps: v.steps.map((st) => st.status) })),
        context,
      ).toEqual(views.map(() => ({ status: 'completed', steps: ['succeeded', 'succeeded'] })));

      const log = await s.commandLog();
      expect(
        views.map((v) => commandLogCounts(log, v.executionId)),
        context,
      ).toEqual(views.map(() => ONCE_EACH));
      const witness = witnessCounts(await s.witness());
      const expected = Object.fromEntries(tags.flatMap((t) => [[`${t} slow`, 1] as const, [`${t} after`, 1] as const]));
      for (const id of WEB_INSTANCES) {
        const mine = Object.fromEntries(Object.entries(witness[id] ?? {}).filter(([k]) => k.startsWith('c1-')));
        expect({ id, counts: mine }, context).toEqual({ id, counts: expected });
      }

      const verify = await s.cli(0, 'dave', 'audit', 'verify');
      expect(verify.stderr, context).toBe('');
      expect(verify.stdout, context).toMatch(/^audit chain intact/);
    },
    TIMEOUT_MS,
  );

  test(
    `campaign 2: devfleet is killed too; every run ends in a state that tells the truth, nothing twice`,
    async () => {
      const s = stack!;
      const startedAt = Date.now();
      const { views, kills } = await campaign(s, 'c2', {
        runs: Math.max(2, Math.ceil(RUNS * 0.7)),
        kills: Math.max(2, KILLS - 1),
        // devfleet first, mid-step, then twice as likely as any other part: this campaign is about AWS going away.
        first: 'devfleet',
        victims: ['devfleet', 'devfleet', 'temporal', ...s.workers.map((w) => w.name as Victim), 'server-1'],
        random,
      });
      await reportCampaign(s, 'c2', startedAt, { views, kills });
      const context = `seed ${SEED}; kills: ${kills.join(', ')}\n${s.describe()}`;
      const log = await s.commandLog();
      const witness = witnessCounts(await s.witness());
      for (const view of views) {
        const tag = String(view.plan.params['tag']);
        const entries = log.filter((e) => e.comment.startsWith(`mechanic ${view.executionId} `));
        const ran = await ranCounts(s, view.executionId);
        const story = JSON.stringify({
          run: tag,
          status: view.status,
          reason: view.reason,
          entries: entries.map(brief),
        });
        // Nothing twice: at most one run of a step per host, by devfleet's log and by the host's own count.
        for (const count of Object.values(ran)) expect(count, story).toBe(1);
        for (const id of WEB_INSTANCES) {
          for (const step of ['slow', 'after'])
            expect(witness[id]?.[`${tag} ${step}`] ?? 0, story).toBeLessThanOrEqual(1);
        }
        expect(['completed', 'failed'], `${story}\n${context}`).toContain(view.status);
        if (view.status === 'completed') {
          expect(ran, story).toEqual(ONCE_EACH);
          // devfleet's last word on each (step, instance) is a success too.
          const last = new Map(entries.map((e) => [`${e.comment} ${e.instanceId}`, e.status]));
          expect([...new Set(last.values())], story).toEqual(['Success']);
          for (const id of WEB_INSTANCES) {
            expect([witness[id]?.[`${tag} slow`], witness[id]?.[`${tag} after`]], story).toEqual([1, 1]);
          }
          continue;
        }
        // A failed run says why, and what it says each host did is what devfleet says happened there.
        expect(view.reason, story).toBeTruthy();
        for (const [index, step] of view.steps.entries()) {
          const onHosts = entries.filter((e) => e.comment === `mechanic ${view.executionId} step ${index}`);
          if (step.status === 'skipped' || step.status === 'pending') {
            expect(onHosts.map(brief), story).toEqual([]);
            continue;
          }
          for (const inst of step.instances) {
            // devfleet's last word on the instance (an earlier start line may be one it never ran).
            const there = onHosts.filter((e) => e.instanceId === inst.instanceId).at(-1);
            if (there === undefined) continue; // never started on the host (e.g. refused, or timed out in delivery)
            expect({ instance: inst.instanceId, status: inst.status, code: inst.responseCode }, story).toEqual({
              instance: inst.instanceId,
              status: there.status,
              code: there.responseCode,
            });
          }
        }
      }
      const verify = await s.cli(0, 'dave', 'audit', 'verify');
      expect(verify.stdout, context).toMatch(/^audit chain intact/);
    },
    TIMEOUT_MS,
  );
});

function brief(e: CommandLogEntry): string {
  return `${e.comment.split(' ').slice(2).join(' ')} ${e.instanceId} ${e.status} ${e.responseCode ?? ''}`;
}
