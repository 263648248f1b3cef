/**
 * The instance ids of a run's plan, read from its request record: what a fan-out step sent to all of
 * the plan's targets loads instead of carrying 10,000 ids in its child workflow's input, which the
 * run's own history would hold once per step (about 220 KB a step at that size).
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Kysely } from 'kysely';
import { recordedPlan } from '../store/run-queries.ts';
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
    const found = await recordedPlan(db, executionId, planDigest);
    // The run's first activity recorded its request, long before any step: missing now, it was
    // deleted, and no retry brings it back.
    if ('missing' in found) {
      throw ApplicationFailure.nonRetryable(
        `the request record of ${executionId} is missing from the audit log, though the run recorded it before its first step; run "mechanic audit verify" to find what changed`,
        'AUDIT_CHAIN_BROKEN',
      );
    }
    if ('broken' in found) throw ApplicationFailure.nonRetryable(found.broken, 'AUDIT_CHAIN_BROKEN');
    return found.plan.targets.map((t) => t.instanceId);
  };
}
