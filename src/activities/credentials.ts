import { AssumeRoleCommand, type STSClient } from '@aws-sdk/client-sts';
import { ApplicationFailure } from '@temporalio/common';
import type { CredentialLease, CredentialRequest } from '../core/execution.ts';
import { auditEvent, reissuedEventId, type NewAuditEvent } from '../core/audit-events.ts';
import { sha256Hex } from '../core/canonical.ts';
import { sessionCredentialsOf, type SessionCredentials } from './aws.ts';

/** A lease closer than this to expiry is not handed out: a step could outlive it. */
const EXPIRY_MARGIN_MS = 2 * 60_000;
const RELEASED_MEMORY_MS = 24 * 60 * 60_000;

export interface CredentialDeps {
  readonly sts: Pick<STSClient, 'send'>;
  readonly record: (event: NewAuditEvent) => Promise<unknown>;
  readonly now?: () => Date;
}

/**
 * Keeps each run's STS secret inside this worker process, keyed by execution id. Only the key
 * id, expiry and policy digest ever leave it (into workflow history). A worker that restarts
 * loses its leases; the next step re-issues, and that re-issue is audited like the first.
 */
export class CredentialLeases {
  readonly #leases = new Map<string, SessionCredentials>();
  /** Runs that released their credentials, and when; remembered long enough to outlast stray attempts. */
  readonly #released = new Map<string, number>();
  readonly #deps: CredentialDeps;

  constructor(deps: CredentialDeps) {
    this.#deps = deps;
  }

  async issue(req: CredentialRequest, why: 'approved' | 'reissued'): Promise<CredentialLease> {
    const creds = await this.#assume(req);
    this.#leases.set(req.executionId, creds);
    const lease: CredentialLease = {
      accessKeyId: creds.accessKeyId,
      expiration: creds.expiration.toISOString(),
      policyDigest: sha256Hex(req.sessionPolicy),
    };
    if (why === 'reissued') {
      await this.#deps.record(
        auditEvent('credentials.issued', {
          eventId: reissuedEventId(req.executionId, creds.accessKeyId),
          executionId: req.executionId,
          actor: 'mechanic',
          at: this.#now().toISOString(),
          data: { ...lease, roleArn: req.roleArn, reason: 'reissued' },
        }),
      );
    }
    return lease;
  }

  /** The live secret for a run, re-issuing when this worker has none or it is about to expire. */
  async credentialsFor(req: CredentialRequest): Promise<SessionCredentials> {
    if (this.#released.has(req.executionId)) {
      // A late activity attempt (cancelled or timed out, still unwinding) must not mint new
      // credentials for a run that has already given its own up.
      throw ApplicationFailure.nonRetryable(
        `execution ${req.executionId} has released its credentials`,
        'CREDENTIALS_RELEASED',
      );
    }
    const held = this.#leases.get(req.executionId);
    if (held && held.expiration.getTime() - this.#now().getTime() > EXPIRY_MARGIN_MS) return held;
    await this.issue(req, 'reissued');
    return this.#leases.get(req.executionId)!;
  }

  /** Forget a lease the service refused (expired or revoked), so the next attempt re-issues. */
  drop(executionId: string): void {
    this.#leases.delete(executionId);
  }

  release(executionId: string): void {
    this.#leases.delete(executionId);
    const now = this.#now().getTime();
    this.#released.set(executionId, now);
    for (const [id, at] of this.#released) if (now - at > RELEASED_MEMORY_MS) this.#released.delete(id);
  }

  #now(): Date {
    return this.#deps.now?.() ?? new Date();
  }

  async #assume(req: CredentialRequest): Promise<SessionCredentials> {
    const tags = [
      { Key: 'MechanicExecution', Value: req.executionId },
      { Key: 'MechanicRunbook', Value: req.runbook.slice(0, 256) },
      { Key: 'MechanicApprovers', Value: req.approvers.join(' ').slice(0, 256) || 'none' },
    ];
    try {
      const out = await this.#deps.sts.send(
        new AssumeRoleCommand({
          RoleArn: req.roleArn,
          RoleSessionName: sessionName(req.executionId),
          Policy: req.sessionPolicy,
          DurationSeconds: req.durationSeconds,
          SourceIdentity: sourceIdentity(req.sourceIdentity),
          Tags: tags,
        }),
      );
      const creds = sessionCredentialsOf(out.Credentials);
      if (!creds) throw ApplicationFailure.retryable('STS answered AssumeRole without credentials', 'STS_INCOMPLETE');
      return creds;
    } catch (e) {
      throw toFailure(e);
    }
  }
}

/** STS faults a retry cannot fix (bad role, bad policy, denied) stop the run; others retry. */
function toFailure(e: unknown): unknown {
  if (e instanceof ApplicationFailure) return e;
  const err = e as { name?: string; message?: string; $fault?: string };
  const message = `AssumeRole failed: ${err.name ?? 'Error'}: ${err.message ?? String(e)}`;
  if (err.$fault === 'client' && err.name !== 'ThrottlingException' && err.name !== 'Throttling') {
    return ApplicationFailure.nonRetryable(message, 'STS_FAILED');
  }
  return ApplicationFailure.retryable(message, 'STS_UNAVAILABLE');
}

/** RoleSessionName: 2–64 of [\w+=,.@-]; it appears in CloudTrail next to every call. */
export function sessionName(executionId: string): string {
  return `mechanic-${executionId}`.replace(/[^\w+=,.@-]/g, '-').slice(0, 64);
}

/** SourceIdentity: 2–64 of [\w+=,.@-], not starting with "aws:"; immutable for the session. */
export function sourceIdentity(who: string): string {
  const clean = who.replace(/[^\w+=,.@-]/g, '_').slice(0, 64);
  return clean.length >= 2 ? clean : `${clean}__`.slice(0, 2);
}
