import { randomBytes, randomUUID } from 'node:crypto';
import {
  QueryNotRegisteredError,
  ServiceError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  isGrpcServiceError,
  type Client,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { AuditStore } from '../store/audit-log.ts';
import type { RunbookRegistry } from '../store/runbook-registry.ts';
import type { Inventory } from '../activities/inventory.ts';
import type { ExecutionSummary } from '../core/audit.ts';
import { checkVote, votingGroups, type ApprovalState, type Vote } from '../core/approval.ts';
import type { ExecutionInput, ExecutionSettings, ExecutionStatus, ExecutionView } from '../core/execution.ts';
import { groupsOf, type Action, type Authorizer, type Decision, type Resource } from '../authz/authorizer.ts';
import type { Channel } from '../api/client.ts';
import type { DenialRecorder } from './denials.ts';
import { executionResource } from './execution-resource.ts';
import { humanTextProblem } from '../core/text.ts';
import { TERMINAL_STATUSES } from '../core/execution.ts';
import { refusalEvent, requestedEvent, type AuditEventData, type RefusalType } from '../core/audit-events.ts';
import type { Plan } from '../core/plan.ts';
import type { User } from '../authz/users.ts';
import { buildPlan } from '../core/plan.ts';
import { lookupsFor, selectTargets, type FleetInstance, type PlannedTarget } from '../core/targets.ts';
import { parseParams } from '../core/params.ts';
import type { Runbook } from '../core/runbook.ts';
import { viewFromAudit } from '../core/execution-view.ts';
import { VOTE_FACT_TYPES, voteFactsFromAudit } from '../core/vote-facts.ts';
import { recordedPlan, runRecordsOfTypes } from '../store/run-queries.ts';
import { runRecords } from '../store/run-records.ts';
import { UserError, isMechanicError, type ErrorCode } from '../core/errors.ts';
import { cancelUpdate, runbookExecution, statusQuery, voteUpdate } from '../../workflows/runbook-execution.ts';
import { statusSummaryQuery, type StatusSummary } from '../../workflows/messages.ts';
import { searchAttributes } from '../temporal/search-attributes.ts';

export interface LaunchRequest {
  readonly runbook: string;
  readonly version?: number | undefined;
  readonly params: Readonly<Record<string, unknown>>;
  readonly targets?: readonly string[] | undefined;
  readonly reason: string;
}

export interface VoteRequest {
  readonly decision: 'approve' | 'reject';
  readonly planDigest: string;
  readonly comment?: string | undefined;
}

/** Where a request came from; the policies see it (a rule may refuse high-risk votes from chat). */
export interface RequestOrigin {
  readonly channel: Channel;
}

export interface ExecutionServiceDeps {
  readonly client: Client;
  readonly taskQueue: string;
  readonly registry: RunbookRegistry;
  readonly inventory: Inventory;
  readonly audit: AuditStore;
  readonly region: string;
  readonly settings: ExecutionSettings;
  /**
   * Asked again with everything known of the runbook or the run (the routes' guard knows only the
   * path): its answer is what a launch, vote or cancel records, and a denial is refused here.
   */
  readonly authorizer: Authorizer;
  /**
   * Folds one caller's repeated denials into counted records (the server's recorder, shared with
   * the routes' guard), so a caller refused again and again cannot flood the audit log. Without
   * it, each denial is its own record.
   */
  readonly denials?: Pick<DenialRecorder, 'record'>;
  readonly now?: () => Date;
  readonly newId?: () => string;
  /**
   * How long a vote or cancel waits for the run to take it (default 30 s). Past it the caller is
   * told the run did not answer and that the request may still have been taken, never a bare error.
   */
  readonly updateDeadlineMs?: number;
  /** How long a status read waits for the run's worker (default 5 s) before it reads the audit log instead. */
  readonly queryDeadlineMs?: number;
}

const QUERY_DEADLINE_MS = 5_000;
/** The plans the status read keeps (one on 10,000 targets is about half a megabyte). */
const PLAN_CACHE_SIZE = 32;
const UPDATE_DEADLINE_MS = 30_000;

/** Refusals this service has already put on the record, so the server's error handler does not again. */
const RECORDED = new WeakSet<object>();

/** True for an error whose refusal this service already recorded. */
export function isRecordedRefusal(e: unknown): boolean {
  return typeof e === 'object' && e !== null && RECORDED.has(e);
}

/** The policies that decided a FORBIDDEN refusal of this service, so an edge can act on which one refused. */
const DENIED_BY = new WeakMap<object, readonly string[]>();

/** The ids of the forbids that decided a refusal thrown by this service ([] for any other error). */
export function policiesDenying(e: unknown): readonly string[] {
  return (typeof e === 'object' && e !== null && DENIED_BY.get(e)) || [];
}

/** A plan, and the ids of the policies that allowed its launch. */
type Planned = { plan: Plan; planDigest: string; policies: readonly string[] };

/** Execution ids are short (they ride in every SSM Comment token) and unguessable. */
export function newExecutionId(): string {
  return `mx-${randomBytes(8).toString('base64url').replace(/[-_]/g, 'x').slice(0, 10).toLowerCase()}`;
}

/**
 * What the API does with executions, on behalf of an authenticated user. Everything that
 * starts or changes a workflow goes through here, so authorization and auditing of refusals
 * sit in one place.
 */
export function createExecutionService(deps: ExecutionServiceDeps) {
  const now = () => deps.now?.() ?? new Date();
  const newId = deps.newId ?? newExecutionId;

  async function auditRefusal<T extends RefusalType>(
    user: User,
    executionId: string | null,
    type: T,
    data: AuditEventData<T>,
  ): Promise<void> {
    await deps.audit.append(
      refusalEvent(type, { executionId, actor: user.id, at: now().toISOString(), unique: randomUUID(), data }),
    );
  }

  /** Asks the Authorizer; a denial is recorded with the policies that decided it, and thrown. */
  async function authorize(
    user: User,
    action: Action,
    resource: Resource,
    origin: RequestOrigin,
    executionId: string | null,
  ): Promise<Decision> {
    const decision = deps.authorizer.authorize(user, action, resource, { channel: origin.channel, time: now() });
    if (decision.allow) return decision;
    const data = { action, channel: origin.channel, reason: decision.reason, policies: decision.policies };
    if (deps.denials) {
      // The same refusal again is the same action on the same kind of thing, refused by the same policies.
      const kind = `${action} ${resource.kind} ${decision.policies.join(',')}`;
      await deps.denials.record({ type: 'access.denied', actor: user.id, executionId, kind, data });
    } else {
      await auditRefusal(user, executionId, 'access.denied', data);
    }
    const refusal = new UserError('FORBIDDEN', decision.reason);
    RECORDED.add(refusal);
    DENIED_BY.set(refusal, decision.policies);
    throw refusal;
  }

  /**
   * The run as the policies see it: who asked, the runbook as its plan pinned it, the targets,
   * and who approved so far as which approval groups.
   */
  async function executionFacts(executionId: string): Promise<{ view: ExecutionView; resource: Resource }> {
    // From the run's own records, not a query: a query waits for a worker busy with other runs'
    // steps (seconds under load), and the workflow's validator holds every rule again anyway, so
    // a log a little behind the run only means that the run itself refuses. A run whose request is
    // not recorded yet (started outside this API, before its first workflow task) is asked.
    const records = await runRecordsOfTypes(deps.audit.db, executionId, VOTE_FACT_TYPES);
    const view = voteFactsFromAudit(records) ?? (await get(executionId));
    return { view, resource: executionResource(executionId, view) };
  }

  async function plan(user: User, req: LaunchRequest, origin: RequestOrigin): Promise<Planned> {
    const entry = await deps.registry.get(req.runbook, req.version);
    const { runbook } = entry;
    // The route's guard asked about the catalog; this asks about the runbook, its metadata in view.
    const decision = await authorize(
      user,
      'launch',
      {
        kind: 'runbook',
        name: runbook.name,
        owners: runbook.owners,
        risk: runbook.risk,
        environment: runbook.environment,
        tags: runbook.tags,
        approvalGroups: runbook.approval.groups,
      },
      origin,
      null,
    );
    const targets = await resolveTargets(deps.inventory, entry.runbook, req);
    const planned = buildPlan({
      executionId: newId(),
      runbook: entry.runbook,
      runbookDigest: entry.digest,
      rawParams: req.params,
      targets,
      requester: user.id,
      reason: req.reason,
      region: deps.region,
      now: now(),
    });
    return { ...planned, policies: decision.policies };
  }

  /** An update (a vote, a cancel) bounded in time: a busy or absent worker must not hold the caller forever. */
  function update<T>(fn: () => Promise<T>): Promise<T> {
    return deps.client.withDeadline(Date.now() + (deps.updateDeadlineMs ?? UPDATE_DEADLINE_MS), fn);
  }

  // The plans of the runs read lately, by execution id and plan digest, most recent last. A plan
  // never changes, so a status read asks the run only for the rest (statusSummaryQuery) and takes
  // the plan from here, or from the run's request record: a poll of a run on 10,000 targets then
  // moves a few kilobytes through Temporal and the worker instead of the whole plan every time.
  const plans = new Map<string, Plan>();

  /**
   * The plan of a run from its request record, checked against the digest the run holds; undefined
   * when the run has not recorded its request yet (one started outside this API, before its first
   * workflow task). A record that does not hold that very plan is a broken log, said in one sentence.
   */
  async function planOf(executionId: string, planDigest: string): Promise<Plan | undefined> {
    const key = `${executionId} ${planDigest}`;
    const kept = plans.get(key);
    if (kept) {
      plans.delete(key);
      plans.set(key, kept);
      return kept;
    }
    const found = await recordedPlan(deps.audit.db, executionId, planDigest);
    if ('missing' in found) return undefined;
    if ('broken' in found) throw new UserError('AUDIT_CHAIN_BROKEN', found.broken);
    const { plan } = found;
    plans.set(key, plan);
    if (plans.size > PLAN_CACHE_SIZE) plans.delete(plans.keys().next().value!);
    return plan;
  }

  /**
   * The run's view from its workflow: the summary, with the plan filled in, field for field what the
   * full status query answers. A worker on code older than the summary query, and a run whose
   * request is not on the record yet, are asked the full view.
   */
  async function liveView(executionId: string): Promise<ExecutionView> {
    const handle = deps.client.workflow.getHandle(executionId);
    const deadline = Date.now() + (deps.queryDeadlineMs ?? QUERY_DEADLINE_MS);
    const full = () => deps.client.withDeadline(deadline, () => handle.query(statusQuery));
    let summary: StatusSummary;
    try {
      summary = await deps.client.withDeadline(deadline, () => handle.query(statusSummaryQuery));
    } catch (e) {
      // Temporal's answer when the workflow has no handler for the query (its code predates it).
      if (e instanceof QueryNotRegisteredError) return full();
      throw e;
    }
    const plan = await planOf(executionId, summary.planDigest);
    if (!plan) return full();
    const { executionId: id, status, planDigest, ...rest } = summary;
    return { executionId: id, status, planDigest, plan, ...rest };
  }

  async function get(executionId: string): Promise<ExecutionView> {
    try {
      // A query needs a worker; when none answers soon, the audit log still tells the story.
      const view = await liveView(executionId);
      // A run Temporal ended (terminated, say) answers as it stood then; its end is on the record
      // (ended-runs.ts), and the record is what happened. A run's own end is set before it is recorded.
      if (TERMINAL_STATUSES.has(view.status)) return view;
      const summary = await deps.audit.getExecution(executionId);
      if (!summary || !TERMINAL_STATUSES.has(summary.status)) return view;
    } catch (e) {
      // Our own deadline shows up as DEADLINE_EXCEEDED or as CANCELLED (1), depending on timing.
      // FAILED_PRECONDITION (9): a run closed before its first workflow task (terminated at once)
      // cannot be queried at all; its records still tell what there is.
      if (!(e instanceof WorkflowNotFoundError) && !serverUnanswered(e, [1, 9])) throw e;
    }
    const view = viewFromAudit(await runRecords(deps.audit, executionId));
    if (!view) throw notFound(executionId);
    return view;
  }

  return {
    /** Plans without starting anything: what `launch --dry-run` and the TUI preview show. */
    async plan(user: User, req: LaunchRequest, origin: RequestOrigin): Promise<{ plan: Plan; planDigest: string }> {
      const { plan: p, planDigest } = await plan(user, req, origin);
      return { plan: p, planDigest };
    },

    /**
     * Plans and starts the run. Nothing is started unless the whole plan is valid and the policies
     * allow this launch of this runbook; the request's record names the policies that allowed it.
     */
    async launch(
      user: User,
      req: LaunchRequest,
      origin: RequestOrigin,
    ): Promise<{ executionId: string; planDigest: string; plan: Plan }> {
      const { policies, ...planned } = await plan(user, req, origin);
      const input: ExecutionInput = { ...planned, settings: deps.settings, launchPolicies: policies };
      await temporalCall(() =>
        deps.client.workflow.start(runbookExecution, {
          taskQueue: deps.taskQueue,
          workflowId: planned.plan.executionId,
          args: [input],
          typedSearchAttributes: [
            { key: searchAttributes.runbook, value: planned.plan.runbook.name },
            { key: searchAttributes.operator, value: user.id },
            { key: searchAttributes.status, value: 'awaiting_approval' },
          ],
        }),
      );
      // The same event, id and content the workflow writes: whichever lands first is the record.
      await deps.audit.append(requestedEvent(input));
      return { executionId: planned.plan.executionId, ...planned };
    },

    /**
     * Casts a vote as the authenticated user, with their approval groups, never names a client
     * typed. The rules the run knows (finished, own run, other plan, twice) are checked first, as
     * the workflow would; then the policies, with the run's facts; then the workflow, whose
     * validator holds every rule again for a vote that raced another one past these checks.
     */
    async vote(
      user: User,
      executionId: string,
      req: VoteRequest,
      origin: RequestOrigin = { channel: 'api' },
    ): Promise<ApprovalState> {
      const refuse = async (e: unknown): Promise<never> => {
        const refusal = await toRefusal(deps, executionId, e);
        await auditRefusal(user, refusal.code === 'EXECUTION_NOT_FOUND' ? null : executionId, 'approval.refused', {
          executionId,
          decision: req.decision,
          code: refusal.code,
          reason: refusal.message,
        });
        throw refusal;
      };
      let facts: Awaited<ReturnType<typeof executionFacts>>;
      try {
        facts = await executionFacts(executionId);
        const { view } = facts;
        if (TERMINAL_STATUSES.has(view.status)) {
          throw new UserError(
            'EXECUTION_FINISHED',
            `execution ${executionId} has already ended (${view.status}); it can no longer be approved`,
          );
        }
        checkVote(
          {
            requester: view.plan.requester,
            planDigest: view.planDigest,
            votes: view.votes,
            open: view.status === 'awaiting_approval' && view.approval.status === 'pending',
          },
          { approver: user.id, decision: req.decision, planDigest: req.planDigest },
        );
      } catch (e) {
        return refuse(e);
      }
      const decision = await authorize(user, req.decision, facts.resource, origin, executionId);
      const approvalGroups = facts.resource.kind === 'execution' ? (facts.resource.runbook?.approvalGroups ?? []) : [];
      const vote: Vote = {
        approver: user.id,
        decision: req.decision,
        planDigest: req.planDigest,
        ...(req.comment ? { comment: req.comment } : {}),
        groups: votingGroups(groupsOf(user), approvalGroups),
        policies: decision.policies,
      };
      try {
        return await temporalCall(() =>
          update(() =>
            deps.client.workflow.getHandle(executionId).executeUpdate(voteUpdate, {
              args: [vote],
              // A fresh update id per request: Temporal would answer a reused id with the first
              // vote's result, so a second vote (even a reject after an approve) would look accepted.
              // The validator refuses it instead, saying what the voter already did.
              updateId: `${user.id}:${randomUUID()}`,
            }),
          ),
        );
      } catch (e) {
        return refuse(e);
      }
    },

    /**
     * Cancels an execution at whatever stage it is: waiting for approval, or running (its SSM
     * command is cancelled). Who may cancel which execution is the Authorizer's decision, made
     * before this is called.
     */
    async cancel(
      user: User,
      executionId: string,
      reason: string,
      origin: RequestOrigin = { channel: 'api' },
    ): Promise<ExecutionStatus> {
      const text = reason.trim();
      if (text.length < 3) throw new UserError('USAGE', 'say why you cancel it: add --reason "why"');
      const refused = humanTextProblem('the reason', text);
      if (refused) throw new UserError('USAGE', refused);
      let resource: Resource;
      try {
        ({ resource } = await executionFacts(executionId));
      } catch (e) {
        throw await toRefusal(deps, executionId, e, 'cancelled');
      }
      const { policies } = await authorize(user, 'cancel', resource, origin, executionId);
      try {
        return await temporalCall(() =>
          update(() =>
            deps.client.workflow
              .getHandle(executionId)
              .executeUpdate(cancelUpdate, { args: [{ by: user.id, reason: text, policies }] }),
          ),
        );
      } catch (e) {
        throw await toRefusal(deps, executionId, e, 'cancelled');
      }
    },

    get,

    /**
     * The run as an approver needs it (its plan, votes and status), from its records, as a vote
     * checks it: never waiting for a worker busy with other runs (Slack gives a button 3 s to answer).
     */
    async approvalView(executionId: string): Promise<ExecutionView> {
      return (await executionFacts(executionId)).view;
    },

    /** The execution's index entry, or EXECUTION_NOT_FOUND: what the Authorizer needs to know of it. */
    async summary(executionId: string): Promise<ExecutionSummary> {
      const summary = await deps.audit.getExecution(executionId);
      if (!summary) throw notFound(executionId);
      return summary;
    },

    async list(q: { status?: ExecutionStatus | undefined; limit?: number | undefined }): Promise<ExecutionSummary[]> {
      return deps.audit.listExecutions({
        ...(q.status !== undefined ? { status: q.status } : {}),
        ...(q.limit !== undefined ? { limit: q.limit } : {}),
      });
    },

    auditRefusal,
  };
}

export type ExecutionService = ReturnType<typeof createExecutionService>;

/**
 * The instances a launch will touch. Targets taken from a parameter are looked up from its
 * checked value (ids and Name tags), and so is the runbook's bound on them, so that a value
 * outside the bound is refused naming it before anything starts.
 */
async function resolveTargets(
  inventory: Inventory,
  runbook: Runbook,
  req: Pick<LaunchRequest, 'params' | 'targets'>,
): Promise<PlannedTarget[]> {
  const params = 'fromParameter' in runbook.targets ? parseParams(runbook, req.params) : {};
  const lookups = lookupsFor(runbook.name, runbook.targets, params);
  // The lookups are independent: asked at once, a launch naming ids and names inside a bound waits
  // for one round of SSM calls instead of three. A failure is reported as asking them in turn would
  // (the first lookup's), whichever answered first.
  const answers = await Promise.allSettled(
    [...lookups.wanted, ...(lookups.within ? [lookups.within] : [])].map((selector) =>
      inventory.instancesFor(runbook.roleArn, selector),
    ),
  );
  const failed = answers.find((a) => a.status === 'rejected');
  if (failed) throw failed.reason;
  const lists = answers.map((a) => (a as PromiseFulfilledResult<FleetInstance[]>).value);
  const found = new Map<string, FleetInstance>();
  for (const list of lists.slice(0, lookups.wanted.length)) for (const i of list) found.set(i.id, i);
  const within = lookups.within ? lists.at(-1) : undefined;
  return selectTargets(runbook.name, runbook.targets, [...found.values()], req.targets ?? [], {
    ...(lookups.values ? { values: lookups.values } : {}),
    ...(within ? { within } : {}),
  });
}

function notFound(executionId: string): UserError {
  return new UserError(
    'EXECUTION_NOT_FOUND',
    `there is no execution ${executionId}; "mechanic list" shows the executions`,
  );
}

function ended(executionId: string, verb: string): UserError {
  return new UserError(
    'EXECUTION_FINISHED',
    `execution ${executionId} has ended in Temporal; it can no longer be ${verb}, and "mechanic status ${executionId}" shows how it ended`,
  );
}

/** Maps a failed vote to the one sentence the voter sees. */
async function toRefusal(
  deps: ExecutionServiceDeps,
  executionId: string,
  e: unknown,
  verb = 'approved',
): Promise<UserError> {
  if (isMechanicError(e)) return e instanceof UserError ? e : new UserError(e.code, e.message);
  if (
    e instanceof WorkflowUpdateFailedError &&
    e.cause instanceof ApplicationFailure &&
    e.cause.type === 'AcceptedUpdateCompletedWorkflow'
  ) {
    // The run took the request, then ended (failed, or terminated from Temporal) before it was done.
    return ended(executionId, verb);
  }
  if (e instanceof WorkflowUpdateFailedError && e.cause instanceof ApplicationFailure && e.cause.type) {
    return new UserError(e.cause.type as ErrorCode, e.cause.message);
  }
  if (e instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
    // Sent, but not answered in time: the run may yet take it, so the caller must look, not resend blindly.
    return new UserError(
      'TEMPORAL_UNAVAILABLE',
      `execution ${executionId} did not answer in time (Temporal or its worker is busy or down), so your request may or may not have been taken; check mechanic status ${executionId} before trying again`,
    );
  }
  if (e instanceof WorkflowNotFoundError) {
    // Temporal says "not found" both for unknown executions and for finished ones.
    const summary = await deps.audit.getExecution(executionId);
    if (summary && TERMINAL_STATUSES.has(summary.status)) {
      return new UserError(
        'EXECUTION_FINISHED',
        `execution ${executionId} has already ended (${summary.status}); it can no longer be ${verb}`,
      );
    }
    // Temporal no longer has it running, though its records do not say how it ended (a run
    // terminated from Temporal, or one whose end is not recorded yet).
    return summary ? ended(executionId, verb) : notFound(executionId);
  }
  throw e;
}

/**
 * True when Temporal (or the worker behind a query) did not answer in time: gRPC status 14
 * UNAVAILABLE or 4 DEADLINE_EXCEEDED, bare or wrapped in the client's ServiceError.
 */
function serverUnanswered(e: unknown, alsoCodes: readonly number[] = []): boolean {
  const grpc = isGrpcServiceError(e)
    ? e
    : e instanceof ServiceError && isGrpcServiceError(e.cause)
      ? e.cause
      : undefined;
  return grpc !== undefined && [14, 4, ...alsoCodes].includes(Number(grpc.code));
}

/** Runs a Temporal call, turning "server not reachable" into one clear sentence. */
async function temporalCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (serverUnanswered(e)) {
      throw new UserError(
        'TEMPORAL_UNAVAILABLE',
        'the Temporal server is not answering; check that it is running and try again',
        {
          cause: e,
        },
      );
    }
    throw e;
  }
}
