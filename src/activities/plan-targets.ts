/**
 * The instance ids of a run's plan, read from its request record: what a fan-out step sent to all of
 * the plan's targets loads instead of carrying 10,000 ids in its child workflow's input, which the
 * run's own history would hold once per step (about 220 KB a step at that size).
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Kysely } from 'kysely';
import { digestOf } from '../core/canonical.ts';
import { runRecordsOfTypes } from '../store/run-queries.ts';
import type { Database } from '../store/schema.ts';

/** Which run's targets, and the digest of the plan they must come from. */
export interface PlanTargetsRequest {
  readonly executionId: string;
  readonly planDigest: string;
}

/**
 * `db` is the audit store's database (the worker's AuditStore has it). The ids come from the plan
 * whose digest the run holds, or not at all: a record that does not hold that plan is a broken
 * log, and the step fails saying so rather than run on other instances.
 */
export function createPlanTargets(db: Kysely<Database> | undefined) {
  return async function planTargets({ executionId, planDigest }: PlanTargetsRequest): Promise<string[]> {
    if (!db) {
      throw ApplicationFailure.nonRetryable(
        `this worker cannot read the audit log, so it cannot load the targets of ${executionId}; start it with its audit store`,
        'CONFIG_INVALID',
      );
    }
    const broken = (where: string) =>
      ApplicationFailure.nonRetryable(
        `the request record of ${executionId} in the audit log (${where}) does not hold the plan the run was started with (digest ${planDigest.slice(0, 12)}); run "mechanic audit verify" to find what changed`,
        'AUDIT_CHAIN_BROKEN',
      );
    let record: Awaited<ReturnType<typeof runRecordsOfTypes>>[number] | undefined;
    try {
      [record] = await runRecordsOfTypes(db, executionId, ['execution.requested'], 1);
    } catch (e) {
      // A row whose data is not JSON at all: no retry will read it.
      if (e instanceof SyntaxError) throw broken('unreadable');
      throw e;
    }
    // The run's first activity recorded its request, long before any step: missing now, it was
    // deleted, and no retry brings it back.
    if (!record) {
      throw ApplicationFailure.nonRetryable(
        `the request record of ${executionId} is missing from the audit log, though the run recorded it before its first step; run "mechanic audit verify" to find what changed`,
        'AUDIT_CHAIN_BROKEN',
      );
    }
    const plan = (record.data as { plan?: { targets?: readonly { instanceId: string }[] } }).plan;
    let same = false;
    try {
      same = plan !== undefined && digestOf(plan) === planDigest;
    } catch {
      same = false;
    }
    const targets: unknown = plan?.targets;
    if (!same || !Array.isArray(targets)) throw broken(`#${record.seq}`);
    return (targets as readonly { instanceId: string }[]).map((t) => t.instanceId);
  };
}
