/**
 * A run's plan read back from its request record (recordedPlan), as the status read and a fan-out
 * step's planTargets take it, on a real SQLite audit log: the very plan the run holds the digest of,
 * or `missing`, or `broken` in one sentence when the record holds another plan or no JSON at all.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createPlanTargets } from '../../src/activities/plan-targets.ts';
import { requestedEvent } from '../../src/core/audit-events.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { recordedPlan } from '../../src/store/run-queries.ts';
import { testInput } from '../helpers/plans.ts';
import { raw, unguard } from '../helpers/raw-sqlite.ts';

let dir: string;
let file: string;
let audit: AuditStore;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'mechanic-plan-record-'));
  file = path.join(dir, 'audit.db');
  audit = await openAuditStore({ kind: 'sqlite', file });
});
afterAll(async () => {
  await audit?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A run whose request is on the record; its record's data column is then `edit`ed, if asked. */
async function recorded(edit?: (data: string) => string) {
  const input = testInput();
  await audit.append(requestedEvent(input));
  const id = input.plan.executionId;
  const { seq } = (await audit.list({ executionId: id, limit: 1 }))[0]!;
  if (edit) {
    raw(file, (db) => {
      unguard(db);
      const row = db.prepare(
        "select seq, data from audit_events where execution_id = ? and type = 'execution.requested'",
      );
      const { seq, data } = row.get(id) as { seq: number; data: string };
      db.prepare('update audit_events set data = ? where seq = ?').run(edit(data), seq);
    });
  }
  return { input, id, seq };
}

const sentence = (id: string, digest: string, where: string) =>
  `the request record of ${id} in the audit log (${where}) does not hold the plan the run was started with (digest ${digest.slice(0, 12)}); run "mechanic audit verify" to find what changed`;

describe('recordedPlan', () => {
  test('is the plan the run was started with, read from its request record', async () => {
    const { input, id } = await recorded();
    expect(await recordedPlan(audit.db, id, input.planDigest)).toEqual({ plan: input.plan });
  });

  test('is missing for a run with no request on the record', async () => {
    expect(await recordedPlan(audit.db, 'mx-never', 'a'.repeat(64))).toEqual({ missing: true });
  });

  test('is broken, naming the record, when the record holds another plan than the run’s digest', async () => {
    const { input, id, seq } = await recorded((data) => data.replace('i-0d3f1ee7000000001', 'i-0d3f1ee7000000009'));
    expect(await recordedPlan(audit.db, id, input.planDigest)).toEqual({
      broken: sentence(id, input.planDigest, `#${seq}`),
    });
    // The record as written, asked with another digest: the same.
    const other = await recorded();
    expect(await recordedPlan(audit.db, other.id, 'b'.repeat(64))).toEqual({
      broken: sentence(other.id, 'b'.repeat(64), `#${other.seq}`),
    });
  });

  test('is broken when the record holds no plan, or no JSON at all', async () => {
    const noPlan = await recorded((data) => JSON.stringify({ ...JSON.parse(data), plan: null }));
    expect(await recordedPlan(audit.db, noPlan.id, noPlan.input.planDigest)).toEqual({
      broken: sentence(noPlan.id, noPlan.input.planDigest, `#${noPlan.seq}`),
    });
    const notJson = await recorded(() => '{not json');
    expect(await recordedPlan(audit.db, notJson.id, notJson.input.planDigest)).toEqual({
      broken: sentence(notJson.id, notJson.input.planDigest, 'unreadable'),
    });
  });
});

describe('planTargets', () => {
  /** The activity's refusal: its type, its sentence, and that Temporal must not retry it. */
  async function refusal(p: Promise<unknown>) {
    const e = await p.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(ApplicationFailure);
    const f = e as ApplicationFailure;
    return { type: f.type, message: f.message, nonRetryable: f.nonRetryable };
  }

  test('answers the plan’s instance ids, in the plan’s order', async () => {
    const { input, id } = await recorded();
    expect(await createPlanTargets(audit.db)({ executionId: id, planDigest: input.planDigest })).toEqual(
      input.plan.targets.map((t) => t.instanceId),
    );
  });

  test('a record that does not hold the run’s plan, or no record, is refused for good in one sentence', async () => {
    const { input, id, seq } = await recorded((data) => data.replace('i-0d3f1ee7000000001', 'i-0d3f1ee7000000009'));
    expect(await refusal(createPlanTargets(audit.db)({ executionId: id, planDigest: input.planDigest }))).toEqual({
      type: 'AUDIT_CHAIN_BROKEN',
      message: sentence(id, input.planDigest, `#${seq}`),
      nonRetryable: true,
    });
    expect(await refusal(createPlanTargets(audit.db)({ executionId: 'mx-gone', planDigest: 'a'.repeat(64) }))).toEqual({
      type: 'AUDIT_CHAIN_BROKEN',
      message:
        'the request record of mx-gone is missing from the audit log, though the run recorded it before its first step; run "mechanic audit verify" to find what changed',
      nonRetryable: true,
    });
  });

  test('a worker without the audit log is refused for good, saying so', async () => {
    expect(await refusal(createPlanTargets(undefined)({ executionId: 'mx-none', planDigest: 'a'.repeat(64) }))).toEqual(
      {
        type: 'CONFIG_INVALID',
        message:
          'this worker cannot read the audit log, so it cannot load the targets of mx-none; start it with its audit store',
        nonRetryable: true,
      },
    );
  });
});
