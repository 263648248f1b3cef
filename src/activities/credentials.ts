import { AssumeRoleCommand, type STSClient } from '@aws-sdk/client-sts';
import { ApplicationFailure } from '@temporalio/common';
import type { CredentialLease, CredentialRequest } from '../core/execution.ts';
import { auditEvent, refreshedEventId, reissuedEventId, type NewAuditEvent } from '../core/audit-events.ts';
import { sha256Hex } from '../core/canonical.ts';
import { sessionCredentialsOf, type SessionCredentials } from './aws.ts';

const RELEASED_MEMORY_MS = 24 * 60 * 60_000;

/** STS's own bounds on DurationSeconds. */
const STS_MIN_SECONDS = 900;
const STS_MAX_SECONDS = 43_200;
/**
 * AWS caps a session assumed with role credentials (role chaining: an ECS task role, an EKS pod
 * role, a worker that assumed a role first) at one hour, and refuses a longer DurationSeconds.
 * It is also the shortest MaxSessionDuration a role can have, so every role grants it.
 */
export const ROLE_CHAINING_MAX_SECONDS = 3600;
/** A lease closer than this to expiry is not handed out: a step could outlive it. */
const REFRESH_MARGIN_MS = 2 * 60_000;

export interface LeaseLimits {
  /** The worker's own credentials are a role session, so AssumeRole from them is role chaining. */
  readonly chained: boolean;
  /** The operator's ceiling (MECHANIC_CREDENTIAL_MAX_SECONDS), for a role with a shorter MaxSessionDuration. */
  readonly maxSeconds?: number | undefined;
}

/**
 * How long a lease asks STS for: what the plan needs, never more than the worker's credentials
 * allow (one hour when chaining) or the operator's ceiling, never less than STS's 15 minutes. A run
 * longer than that lives on successive leases (see needsRefresh).
 */
export function leaseSeconds(planSeconds: number, limits: LeaseLimits): number {
  let seconds = Math.min(Math.ceil(planSeconds), STS_MAX_SECONDS, limits.maxSeconds ?? STS_MAX_SECONDS);
  if (limits.chained) seconds = Math.min(seconds, ROLE_CHAINING_MAX_SECONDS);
  return Math.max(STS_MIN_SECONDS, seconds);
}

/**
 * How close to its expiry a lease is replaced: two minutes, or a quarter of its lifetime when that
 * is shorter, so a short lease is still handed out for most of its life and renewed before its end.
 */
export function refreshMarginMs(lifetimeMs: number): number {
  return Math.min(REFRESH_MARGIN_MS, Math.max(0, lifetimeMs) / 4);
}

/** True when a lease obtained at `obtainedAt` must be replaced before use at `now`. */
export function needsRefresh(lease: { obtainedAt: Date; expiration: Date }, now: Date): boolean {
  const left = lease.expiration.getTime() - now.getTime();
  return left <= refreshMarginMs(lease.expiration.getTime() - lease.obtainedAt.getTime());
}

export interface CredentialDeps {
  readonly sts: Pick<STSClient, 'send'>;
  readonly record: (event: NewAuditEvent) => Promise<unknown>;
  readonly now?: () => Date;
  /**
   * Whether the worker's own credentials are a role session (they carry a session token). Absent:
   * long-term keys. A probe that fails counts as a session: one hour is granted either way.
   */
  readonly baseIsRoleSession?: () => Promise<boolean>;
  /** MECHANIC_CREDENTIAL_MAX_SECONDS: the most any lease asks for. */
  readonly maxSeconds?: number | undefined;
}

/** A live lease: the secret, when this worker obtained it, and the session policy it carries. */
interface Held {
  readonly credentials: SessionCredentials;
  readonly obtainedAt: Date;
  readonly policyDigest: string;
}

type Why = 'approved' | 'reissued' | 'refreshed';

/**
 * Keeps each run's STS secret inside this worker process, keyed by execution id. Only the key
 * id, expiry and policy digest ever leave it (into workflow history). A worker that restarts
 * loses its leases; the next step re-issues, and that re-issue is audited like the first. A lease
 * lasts at most what STS grants the worker's credentials (one hour when chaining); one close to
 * its end is refreshed with the same request (role, session policy, source identity, tags), and
 * each refresh is audited.
 */
export class CredentialLeases {
  readonly #leases = new Map<string, Held>();
  /** Issuances under way, so concurrent steps of one run share one AssumeRole and one record. */
  readonly #pending = new Map<string, Promise<Held>>();
  /** Learnt once from the first probe that answers. */
  #chained: boolean | undefined;
  /** Runs that released their credentials, and when; remembered long enough to outlast stray attempts. */
  readonly #released = new Map<string, number>();
  readonly #deps: CredentialDeps;

  constructor(deps: CredentialDeps) {
    this.#deps = deps;
  }

  async issue(req: CredentialRequest, why: 'approved' | 'reissued'): Promise<CredentialLease> {
    const held = await this.#obtain(req, why);
    return leaseOf(held);
  }

  /** The live secret for a run, re-issuing when this worker has none or it is about to expire. */
  async credentialsFor(req: CredentialRequest): Promise<SessionCredentials> {
    if (this.#released.has(req.executionId)) {
      // A late activity attempt (cancelled or timed out, still unwinding) must not mint new
      // credentials for a run that has already given its own up.
      throw released(req.executionId);
    }
    const held = this.#leases.get(req.executionId);
    const same = held !== undefined && held.policyDigest === sha256Hex(req.sessionPolicy);
    if (same && !needsRefresh({ obtainedAt: held.obtainedAt, expiration: held.credentials.expiration }, this.#now()))
      return held.credentials;
    // Near its end, the same lease is refreshed; none here (a restarted worker, a refused key), re-issued.
    const next = await this.#obtain(req, same ? 'refreshed' : 'reissued');
    // It may have shared an approved issue that ended after the run's release: no secret then.
    if (this.#released.has(req.executionId)) throw released(req.executionId);
    return next.credentials;
  }

  /** One AssumeRole per run at a time; concurrent callers wait for the same one. */
  #obtain(req: CredentialRequest, why: Why): Promise<Held> {
    const pending = this.#pending.get(req.executionId);
    if (pending && why !== 'approved') return pending;
    const p = (async () => {
      const credentials = await this.#assume(req);
      if (why !== 'approved' && this.#released.has(req.executionId)) throw released(req.executionId);
      const held: Held = { credentials, obtainedAt: this.#now(), policyDigest: sha256Hex(req.sessionPolicy) };
      // An approved issue still answers a run released meanwhile, but its secret is not kept: no
      // step of that run may use it, and it would stay in this worker's memory until it exits.
      if (!this.#released.has(req.executionId)) this.#leases.set(req.executionId, held);
      if (why !== 'approved') {
        await this.#deps.record(
          auditEvent('credentials.issued', {
            eventId: (why === 'refreshed' ? refreshedEventId : reissuedEventId)(
              req.executionId,
              credentials.accessKeyId,
            ),
            executionId: req.executionId,
            actor: 'mechanic',
            at: this.#now().toISOString(),
            data: { ...leaseOf(held), roleArn: req.roleArn, reason: why },
          }),
        );
      }
      return held;
    })();
    this.#pending.set(req.executionId, p);
    const clear = () => {
      if (this.#pending.get(req.executionId) === p) this.#pending.delete(req.executionId);
    };
    p.then(clear, clear);
    return p;
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

  /** What STS grants the worker's credentials: learnt from the first probe that answers. */
  async #limits(): Promise<LeaseLimits> {
    if (this.#chained === undefined && this.#deps.baseIsRoleSession) {
      try {
        this.#chained = await this.#deps.baseIsRoleSession();
      } catch {
        // Unknown this time (the credential source did not answer): assume chaining, which every role allows.
        return { chained: true, maxSeconds: this.#deps.maxSeconds };
      }
    }
    return { chained: this.#chained ?? false, maxSeconds: this.#deps.maxSeconds };
  }

  async #assume(req: CredentialRequest): Promise<SessionCredentials> {
    const tags = [
      { Key: 'MechanicExecution', Value: req.executionId },
      { Key: 'MechanicRunbook', Value: req.runbook.slice(0, 256) },
      { Key: 'MechanicApprovers', Value: req.approvers.join(' ').slice(0, 256) || 'none' },
    ];
    const ask = (DurationSeconds: number) =>
      this.#deps.sts.send(
        new AssumeRoleCommand({
          RoleArn: req.roleArn,
          RoleSessionName: sessionName(req.executionId),
          Policy: req.sessionPolicy,
          DurationSeconds,
          SourceIdentity: sourceIdentity(req.sourceIdentity),
          Tags: tags,
        }),
      );
    try {
      const seconds = leaseSeconds(req.durationSeconds, await this.#limits());
      let out;
      try {
        out = await ask(seconds);
      } catch (e) {
        // A role whose MaxSessionDuration is shorter than the lease (or chaining the probe did not
        // see): one hour is within every role's maximum and every chain, so ask for that instead.
        if (seconds <= ROLE_CHAINING_MAX_SECONDS || !durationRefused(e)) throw e;
        out = await ask(ROLE_CHAINING_MAX_SECONDS);
      }
      const creds = sessionCredentialsOf(out.Credentials);
      if (!creds) throw ApplicationFailure.retryable('STS answered AssumeRole without credentials', 'STS_INCOMPLETE');
      return creds;
    } catch (e) {
      throw toFailure(e);
    }
  }
}

const leaseOf = (held: Held): CredentialLease => ({
  accessKeyId: held.credentials.accessKeyId,
  expiration: held.credentials.expiration.toISOString(),
  policyDigest: held.policyDigest,
});

const released = (executionId: string) =>
  ApplicationFailure.nonRetryable(`execution ${executionId} has released its credentials`, 'CREDENTIALS_RELEASED');

/** STS's refusal of a DurationSeconds above the role's MaxSessionDuration or the role-chaining hour. */
function durationRefused(e: unknown): boolean {
  const err = e as { name?: string; message?: string };
  return err.name === 'ValidationError' && /DurationSeconds exceeds/.test(err.message ?? '');
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
