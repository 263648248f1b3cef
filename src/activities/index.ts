import type { STSClient } from '@aws-sdk/client-sts';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { ApplicationFailure } from '@temporalio/activity';
import type { NewAuditEvent } from '../core/audit.ts';
import { AuditEventConflictError } from '../store/audit-log.ts';
import type { CredentialLease, CredentialRequest } from '../core/execution.ts';
import type { SessionCredentials } from './aws.ts';
import { CredentialLeases, type CredentialDeps } from './credentials.ts';
import { createSsmActivities, type SsmDeps } from './ssm.ts';
import { createPlanTargets } from './plan-targets.ts';
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';

export interface ActivityDeps {
  readonly audit: {
    append(event: NewAuditEvent): Promise<unknown>;
    /** Several events in one transaction, keeping those already recorded (AuditStore.appendMany). */
    appendMany?(events: readonly NewAuditEvent[], options: { keepRecorded: true }): Promise<unknown>;
    /** The store's database (AuditStore.db): planTargets reads a run's request record from it. */
    readonly db?: Kysely<Database>;
  };
  readonly sts: Pick<STSClient, 'send'>;
  readonly ssmFor: (credentials: SessionCredentials) => SSMClient;
  readonly pollIntervalMs: SsmDeps['pollIntervalMs'];
  readonly deliveryTimeoutSeconds: number;
  /** How long a run's leases may last: what the worker's credentials allow and the operator's ceiling. */
  readonly credentialLimits?: Pick<CredentialDeps, 'baseIsRoleSession' | 'maxSeconds'>;
}

/** Every activity the workflow calls, built once per worker from its dependencies. */
export function createActivities(deps: ActivityDeps) {
  const record = (event: NewAuditEvent) => deps.audit.append(event);
  const appendMany = deps.audit.appendMany?.bind(deps.audit);
  const leases = new CredentialLeases({ sts: deps.sts, record, ...deps.credentialLimits });
  return {
    /** Appends one audit event; idempotent on its eventId, so retries never duplicate it. */
    async recordEvent(event: NewAuditEvent): Promise<void> {
      try {
        await record(event);
      } catch (e) {
        // Two different events under one id is a bug upstream; retrying would hide it forever.
        if (e instanceof AuditEventConflictError)
          throw ApplicationFailure.nonRetryable(e.message, 'AUDIT_EVENT_CONFLICT');
        throw e;
      }
    },
    /**
     * Appends several events in order, in one transaction where the store can (the deciding vote
     * and the run's start). A retry after a worker died keeps what the dead attempt wrote: these
     * ids are numbered by the run itself, so a record already under one is this very record,
     * stamped with an earlier time.
     */
    async recordEvents(events: readonly NewAuditEvent[]): Promise<void> {
      if (appendMany) {
        await appendMany(events, { keepRecorded: true });
        return;
      }
      for (const event of events) {
        try {
          await record(event);
        } catch (e) {
          if (!(e instanceof AuditEventConflictError)) throw e;
        }
      }
    },
    /** The instance ids of a run's plan, from its request record (a fan-out step sent to all of them). */
    planTargets: createPlanTargets(deps.audit.db),
    async issueCredentials(req: CredentialRequest): Promise<CredentialLease> {
      return leases.issue(req, 'approved');
    },
    async releaseCredentials(executionId: string): Promise<void> {
      leases.release(executionId);
    },
    ...createSsmActivities({
      leases,
      ssmFor: deps.ssmFor,
      record,
      ...(appendMany
        ? { recordMany: (events: readonly NewAuditEvent[]) => appendMany(events, { keepRecorded: true }) }
        : {}),
      pollIntervalMs: deps.pollIntervalMs,
      deliveryTimeoutSeconds: deps.deliveryTimeoutSeconds,
    }),
  };
}

export type MechanicActivities = ReturnType<typeof createActivities>;
