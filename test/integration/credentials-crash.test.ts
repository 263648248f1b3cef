import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { readCallLog, type CallLogEntry } from '../../src/devfleet/call-log.ts';
import { DEMO_ROLE_ARN } from '../../src/devfleet/config.ts';
import {
  approveRun,
  commandLogCounts,
  startMultiStack,
  untilEnded,
  WEB_INSTANCES,
  type LaunchedRun,
  type MultiStack,
} from '../helpers/multi-stack.ts';

/**
 * Issue 11, part 2 across a crash: the worker runs as it will in AWS (its own credentials a role
 * session from devfleet's container endpoint, so every lease is role chaining, an hour at most),
 * and devfleet scales STS lifetimes so an hour lasts 10.8 s. Each step outlasts a lease. The worker
 * is SIGKILLed right after devfleet answered the AssumeRole that refreshes the run's lease (a
 * state read from devfleet's call log, not a time), and a new worker finishes the run on a lease of
 * its own, refreshing it in turn.
 *
 * Then: the run completes, each (step, instance) once; devfleet never saw an SSM call signed with
 * an expired key; every key that signed one was audited as issued (approved, refreshed or re-issued)
 * before it was used; no AssumeRole asked for more than the chaining hour; the audit chain verifies.
 */

const SCALE = 0.003; // 3600 s → 10.8 s: a lease is refreshed about 8 s after it was taken.
const STEP_SECONDS = 14;

const RUNBOOK = `name: long-lease
version: 1
description: Two steps of up to two hours each; here each outlasts a lease.
roleArn: ${DEMO_ROLE_ARN}
targets:
  tags: { Role: web }
steps:
  - name: first-half
    timeoutSeconds: 7200
    script: sleep ${STEP_SECONDS} && echo first half done
  - name: second-half
    timeoutSeconds: 7200
    script: sleep ${STEP_SECONDS} && echo second half done
`;

/** AssumeRole calls for a run's lease: signed by the worker's own role session, for the chaining hour. */
const isLeaseAssume = (c: CallLogEntry): boolean =>
  c.operation === 'AssumeRole' && c.outcome === 'ok' && c.accessKeyId?.startsWith('ASIA') === true;

/** The SSM calls a run's steps make (the planner's are DescribeInstance*). */
const RUN_OPERATIONS = new Set(['SendCommand', 'ListCommands', 'ListCommandInvocations', 'GetCommandInvocation']);

const ONCE_EACH = Object.fromEntries(
  ['step 0', 'step 1'].flatMap((s) => WEB_INSTANCES.map((i) => [`${s} ${i}`, 1] as const)),
);

describe('a worker SIGKILLed during a credential refresh', () => {
  let stack: MultiStack | undefined;

  beforeAll(async () => {
    stack = await startMultiStack({
      temporalCli: inject('temporalCli'),
      workers: 1,
      servers: 1,
      runbooks: { 'long-lease.yaml': RUNBOOK },
      fleet: (demo) => ({ ...demo, stsTimeScale: SCALE, callLog: true }),
    });
  }, 600_000);
  afterAll(async () => {
    await stack?.stop();
  }, 120_000);

  test('a new worker finishes the run on its own leases; every key used was live and audited', async () => {
    const s = stack!;
    const worker = s.workers[0]!;
    const launched = await s
      .api(0, 'alice')
      .call('launch', { body: { runbook: 'long-lease', params: {}, reason: 'credentials crash test' } });
    const run: LaunchedRun = { tag: 'long-lease', executionId: launched.executionId, planDigest: launched.planDigest };
    const id = run.executionId;
    await approveRun(s, 0, run);

    // The run's first lease is taken at approval; the second AssumeRole is its refresh. Kill right then.
    for (;;) {
      const leases = (await readCallLog(s.fleetDir)).filter(isLeaseAssume);
      if (leases.length >= 2) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    await worker.kill();
    const killedAt = Date.now();
    await worker.start();

    const view = await untilEnded(s, id);
    const context = s.describe();
    expect(
      { status: view.status, steps: view.steps.map((st) => st.status) },
      `${JSON.stringify(view.reason)}\n${context}`,
    ).toEqual({ status: 'completed', steps: ['succeeded', 'succeeded'] });
    expect(commandLogCounts(await s.commandLog(), id)).toEqual(ONCE_EACH);

    const calls = await readCallLog(s.fleetDir);
    // No SSM call was ever signed with an expired key, and none was refused for one.
    const ssm = calls.filter((c) => c.service === 'ssm');
    expect(ssm.length).toBeGreaterThan(10);
    expect(
      ssm.filter((c) => c.outcome === 'ExpiredTokenException' || Date.parse(c.at) >= Date.parse(c.keyExpiresAt ?? '')),
    ).toEqual([]);
    // No AssumeRole asked for more than the chaining hour.
    expect(calls.filter((c) => c.operation === 'AssumeRole' && Number(c.durationSeconds ?? '3600') > 3600)).toEqual([]);

    const { records } = await s.api(0, 'dave').call('listAudit', { query: { executionId: id, limit: 10_000 } });
    const issued = records.filter((r) => r.type === 'credentials.issued');
    const audited = new Map(issued.map((r) => [String(r.data['accessKeyId']), r]));
    // Every lease key that signed an SSM call of the run (the API server's planner describes the
    // fleet on sessions of its own) was audited as issued, and before its first use.
    const used = new Map<string, string>();
    for (const c of ssm.filter((c) => RUN_OPERATIONS.has(c.operation)))
      if (c.accessKeyId !== undefined && !used.has(c.accessKeyId)) used.set(c.accessKeyId, c.at);
    expect(used.size).toBeGreaterThanOrEqual(3);
    for (const [key, firstUse] of used) {
      const record = audited.get(key);
      expect({ key, audited: record !== undefined }).toEqual({ key, audited: true });
      expect(Date.parse(record!.at)).toBeLessThanOrEqual(Date.parse(firstUse));
    }
    // Each lease is one AssumeRole the worker made; the killed worker's refresh is one of them
    // whether or not it lived to audit (and use) it.
    expect(issued.length).toBeLessThanOrEqual(calls.filter(isLeaseAssume).length);
    expect(new Set(issued.map((r) => r.data['policyDigest'])).size).toBe(1);
    // Before the kill the run was approved and its lease refreshed; after it the new worker, which
    // held no lease, re-issued one, then refreshed that one in its turn.
    const reasons = (from: number, to: number) =>
      issued.filter((r) => Date.parse(r.at) >= from && Date.parse(r.at) < to).map((r) => r.data['reason']);
    const before = reasons(0, killedAt);
    const after = reasons(killedAt, Infinity);
    expect(before[0], JSON.stringify(issued)).toBe('approved');
    expect(before.slice(1).every((r) => r === 'refreshed')).toBe(true);
    expect(after[0], JSON.stringify(issued)).toBe('reissued');
    expect(after.slice(1), JSON.stringify(issued)).toContain('refreshed');
    expect(after.slice(1).every((r) => r === 'refreshed')).toBe(true);

    const verify = await s.cli(0, 'dave', 'audit', 'verify');
    expect(verify.stderr, context).toBe('');
    expect(verify.stdout, context).toMatch(/^audit chain intact/);
  }, 300_000);
});
