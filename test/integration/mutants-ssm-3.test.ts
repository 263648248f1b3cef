/**
 * The SSM activities (src/activities/ssm.ts) for what a whole Stryker run left alive after
 * mutants-ssm and mutants-ssm-2: how a step's instance records are grouped into audit writes
 * (recordAllOnce, a write every 25 records or 400,000 characters of output), and the pauses of
 * the poll loop and of the look-up after a lost send, which the activity takes through its
 * context's sleep: the tests replace that sleep with one that notes what was asked and returns
 * at once, so each pause is read exactly, with no clock.
 *
 * As in mutants-ssm-2: devfleet in process, the real AWS SDK clients reaching it through the SSM
 * proxy (which answers itself what a test makes up: a listing of many instances, their outputs),
 * and the activities built as the worker builds them (createActivities), on an audit log that
 * notes each write: one event (append) or several in one transaction (appendMany).
 *
 * Each mutant (line:column of the file as the run saw it), and what kills it or why it cannot be:
 * - 133:9 `events.length === 0` → false: "25 instances: one write of 25 (and no empty write after
 *   it)".
 * - 134:9 `deps.recordMany` → false, 134:26 its block → {}: every batching test (the records go in
 *   one appendMany each, never one by one as well).
 * - 247:19 `pending = []` → `["Stryker was here"]`: "26 instances: a write of 25, then one of 1".
 * - 294:9 `+=` → `-=`, 294:25 `stdout.length + stderr.length` → `-`: "output fills a write: 21
 *   instances of 20,000 characters are written 20, then 1".
 * - 295:13 / 295:47 the flush condition → true, → false, `||` → `&&`, `>=` → `>` or `<` (either
 *   side): the 25, 26 and 21-instance tests (exactly 25 records, exactly 400,000 characters).
 * - 174:36 `budget - waited` → `budget + waited`: "a retried dispatch pauses 250, 500, … ms and
 *   then only what is left of its 15 s".
 * - 218 / 219, the poll's jitter and growth (`+`, `*`, `/` of the jitter, `Math.min`, `* 1.5`):
 *   "polls pause the interval plus up to a quarter of it, growing by half up to the largest".
 * - 69:10 and 101:10 `req.attempt !== undefined` → true: equivalent, `undefined > 1` is false.
 * - 211:46 `let invocations = []` → `["Stryker was here"]`: equivalent, reassigned before it is read.
 * - 214:73 `i.Status ?? ''` → `?? 'Stryker was here!'` (no coverage): equivalent, neither is a
 *   final status.
 * - 226:28 `from < invocations.length` → `<=`: equivalent, the extra turn fetches an empty batch,
 *   which yields nothing.
 * - 257:51, 258:50 `?? ''` → `?? 'Stryker was here!'`: equivalent, 17 characters are below SSM's
 *   limits, so neither marks the output cut.
 * - 263:50 `'Failed'` → "" (no coverage): unreachable, polling ends only when every listed
 *   invocation has a final status, so `inv.Status` is always there.
 * - 429:84 `/\.\d{3}Z$/` → `/\.\d{3}Z/`: equivalent, toISOString has one `.mmmZ`, at its end.
 */
import type { SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { createSsmClient, createStsClient } from '../../src/activities/aws.ts';
import { createActivities } from '../../src/activities/index.ts';
import { dispatchToken } from '../../src/activities/ssm.ts';
import type { NewAuditEvent } from '../../src/core/audit.ts';
import { instanceEventId } from '../../src/core/audit-events.ts';
import type { StepRequest } from '../../src/core/execution.ts';
import { defaultFleetConfig } from '../../src/devfleet/config.ts';
import { startSsmProxy, type SsmProxy } from '../helpers/ssm-proxy.ts';
import { activityEnv as env, runActivity as run, stepRequest } from '../helpers/activity-requests.ts';
import { REGION, ROOT, startHarness, type Harness } from './devfleet-helpers.ts';

const WEB_1 = 'i-0d3f1ee7000000001';

let fleet: Harness;
let proxy: SsmProxy;
const clients: SSMClient[] = [];

beforeAll(async () => {
  fleet = await startHarness({ config: defaultFleetConfig(ROOT) });
  proxy = await startSsmProxy(fleet.fleet.endpoint);
});
afterAll(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await proxy?.close();
  await fleet?.close();
});
afterEach(() => {
  proxy.answer = () => undefined;
});

/** One audit write of step.instance records: one event (append) or several in one transaction. */
interface Write {
  readonly how: 'append' | 'appendMany';
  readonly ids: readonly unknown[];
}

/**
 * A worker's activities as the worker builds them (createActivities), whose SSM calls go through
 * the proxy, on an audit log that keeps nothing and notes each write of instance records.
 */
function worker() {
  const writes: Write[] = [];
  const activities = createActivities({
    audit: {
      append: async (e) => {
        if (e.type === 'step.instance') writes.push({ how: 'append', ids: [e.eventId] });
      },
      appendMany: async (many) => {
        // Each as it came: something that is no event shows as undefined.
        writes.push({ how: 'appendMany', ids: many.map((e) => (e as Partial<NewAuditEvent>).eventId) });
      },
    },
    sts: createStsClient({ region: REGION, endpoint: fleet.fleet.endpoint, baseCredentials: ROOT }),
    ssmFor: (credentials) => {
      const client = createSsmClient({ region: REGION, endpoint: proxy.endpoint }, credentials);
      clients.push(client);
      return client;
    },
    pollIntervalMs: { min: 50, max: 200 },
    deliveryTimeoutSeconds: 60,
  });
  return Object.assign(activities, { writes });
}

/** A step request for a fresh run on `targets`. */
const request = (targets: readonly string[]): StepRequest => stepRequest('mutants-ssm-3', 'mx-mss3', targets);

/**
 * An activity context whose sleep notes each pause asked and returns at once. A loop that never
 * ends (a mutant's) would then spin: after 100 pauses the sleep fails the activity instead.
 */
function pausing(info: Parameters<typeof env>[0] = {}) {
  const running = env(info);
  const pauses: number[] = [];
  vi.spyOn(running.context, 'sleep').mockImplementation(async (ms) => {
    if (pauses.push(Number(ms)) > 100) throw new Error('more than 100 pauses: a loop that does not end');
  });
  return { running, pauses };
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => `i-0${String(i).padStart(16, '0')}`);

/**
 * Makes up a finished command on `instances`: every invocation listed as done, and each instance's
 * output `stdout` and `stderr` long.
 */
function finished(instances: readonly string[], output: { stdout: number; stderr: number } = { stdout: 3, stderr: 0 }) {
  proxy.answer = (operation, input) => {
    if (operation === 'ListCommandInvocations')
      return {
        json: {
          CommandInvocations: instances.map((id) => ({ InstanceId: id, Status: 'Success', StatusDetails: 'Success' })),
        },
      };
    if (operation === 'GetCommandInvocation')
      return {
        json: {
          InstanceId: input['InstanceId'],
          Status: 'Success',
          StatusDetails: 'Success',
          ResponseCode: 0,
          StandardOutputContent: 'o'.repeat(output.stdout),
          StandardErrorContent: 'e'.repeat(output.stderr),
        },
      };
    return undefined;
  };
}

describe("a step's instance records, a few to an audit write", () => {
  /** Follows a made-up command on `n` instances; answers the writes as the sizes of their batches. */
  async function follow(n: number, output?: { stdout: number; stderr: number }) {
    const w = worker();
    const targets = ids(n);
    const req = request(targets);
    finished(targets, output);
    const outcome = await run(w.awaitStep, { ...req, commandId: `c-${n}-instances` });
    expect(outcome.instances.map((i) => i.instanceId)).toEqual(targets);
    // All in SSM's order, each once, and only ever several to a transaction.
    expect(w.writes.flatMap((x) => x.ids)).toEqual(
      targets.map((id) => instanceEventId(req.executionId, 'main', 0, id)),
    );
    expect(w.writes.map((x) => x.how).filter((how) => how !== 'appendMany')).toEqual([]);
    return w.writes.map((x) => x.ids.length);
  }

  test('25 instances: one write of 25 (and no empty write after it)', async () => {
    expect(await follow(25)).toEqual([25]);
  });

  test('26 instances: a write of 25, then one of 1', async () => {
    expect(await follow(26)).toEqual([25, 1]);
  });

  test('two instances: one write of both', async () => {
    expect(await follow(2)).toEqual([2]);
  });

  test('output fills a write: 21 instances of 20,000 characters are written 20, then 1 (400,000 characters a write)', async () => {
    expect(await follow(21, { stdout: 16_000, stderr: 4_000 })).toEqual([20, 1]);
  });
});

describe('pauses, as asked of the activity context', () => {
  test('a retried dispatch pauses 250, 500, … ms and then only what is left of its 15 s before it sends', async () => {
    const w = worker();
    const req = request([WEB_1]);
    const { running, pauses } = pausing({ attempt: 2 });
    await expect(running.run(w.dispatchStep, req)).resolves.toMatchObject({ adopted: false });
    expect(pauses).toEqual([250, 500, 1_000, 2_000, 4_000, 7_250]);
    expect(
      proxy.calls
        .filter((c) => c.operation === 'SendCommand' && c.input['Comment'] === dispatchToken(req))
        .map((c) => c.input['InstanceIds']),
    ).toEqual([[WEB_1]]);
  });

  test('polls pause the interval plus up to a quarter of it, growing by half up to the largest', async () => {
    const w = worker();
    const req = request([WEB_1]);
    // Six listings with the instance still running, then done.
    let listed = 0;
    proxy.answer = (operation) => {
      if (operation === 'ListCommandInvocations') {
        const Status = ++listed > 6 ? 'Success' : 'InProgress';
        return { json: { CommandInvocations: [{ InstanceId: WEB_1, Status, StatusDetails: Status }] } };
      }
      if (operation === 'GetCommandInvocation')
        return {
          json: { Status: 'Success', StatusDetails: 'Success', ResponseCode: 0, StandardOutputContent: 'ok\n' },
        };
      return undefined;
    };
    const { running, pauses } = pausing();
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.5);
    try {
      await expect(running.run(w.awaitStep, { ...req, commandId: 'c-slow-poll' })).resolves.toMatchObject({ ok: true });
    } finally {
      random.mockRestore();
    }
    // 50 ms growing by half (rounded) to at most 200, each plus half of a quarter (the random draw).
    expect(pauses).toEqual([50 + 6, 75 + 9, 113 + 14, 170 + 21, 200 + 25, 200 + 25]);
  });
});
