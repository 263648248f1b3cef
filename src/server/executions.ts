import { randomBytes, randomUUID } from 'node:crypto';
import {
  ServiceError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  isGrpcServiceError,
  type Client,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { AuditStore } from '../store/audit-log.ts';
import type { RunbookRegistry } from '../store/runbook-registry.ts';
import type { Inventory } from '../activities/inventory.ts';
import type { ExecutionSummary } from '../core/audit.ts';
import type { ApprovalState, Vote } from '../core/approval.ts';
import type { ExecutionSettings, ExecutionStatus, ExecutionView } from '../core/execution.ts';
import { humanTextProblem } from '../core/text.ts';
import { TERMINAL_STATUSES } from '../core/execution.ts';
import { refusalEvent, requestedEvent, type AuditEventData, type RefusalType } from '../core/audit-events.ts';
import type { Plan } from '../core/plan.ts';
import type { User } from '../authz/users.ts';
import { buildPlan } from '../core/plan.ts';
import { selectTargets } from '../core/targets.ts';
import { viewFromAudit } from '../core/execution-view.ts';
import { UserError, isMechanicError, type ErrorCode } from '../core/errors.ts';
import { cancelUpdate, runbookExecution, statusQuery, voteUpdate } from '../../workflows/runbook-execution.ts';
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

export interface ExecutionServiceDeps {
  readonly client: Client;
  readonly taskQueue: string;
  readonly registry: RunbookRegistry;
  readonly inventory: Inventory;
  readonly audit: AuditStore;
  readonly region: string;
  readonly settings: ExecutionSettings;
  readonly now?: () => Date;
  readonly newId?: () => string;
}

const QUERY_DEADLINE_MS = 5_000;

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

  async function plan(user: User, req: LaunchRequest): Promise<{ plan: Plan; planDigest: string }> {
    const entry = await deps.registry.get(req.runbook, req.version);
    const inventory = await deps.inventory.instancesFor(entry.runbook.roleArn, entry.runbook.targets);
    const targets = selectTargets(entry.runbook.name, entry.runbook.targets, inventory, req.targets ?? []);
    return buildPlan({
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
  }

  return {
    /** Plans without starting anything: what `launch --dry-run` and the TUI preview show. */
    plan,

    /** Plans and starts the run. Nothing is started unless the whole plan is valid. */
    async launch(user: User, req: LaunchRequest): Promise<{ executionId: string; planDigest: string; plan: Plan }> {
      const planned = await plan(user, req);
      await temporalCall(() =>
        deps.client.workflow.start(runbookExecution, {
          taskQueue: deps.taskQueue,
          workflowId: planned.plan.executionId,
          args: [{ ...planned, settings: deps.settings }],
          typedSearchAttributes: [
            { key: searchAttributes.runbook, value: planned.plan.runbook.name },
            { key: searchAttributes.operator, value: user.id },
            { key: searchAttributes.status, value: 'awaiting_approval' },
          ],
        }),
      );
      await deps.audit.append(requestedEvent(planned));
      return { executionId: planned.plan.executionId, ...planned };
    },

    async vote(user: User, executionId: string, req: VoteRequest): Promise<ApprovalState> {
      const vote: Vote = {
        approver: user.id,
        decision: req.decision,
        planDigest: req.planDigest,
        ...(req.comment ? { comment: req.comment } : {}),
      };
      try {
        return await temporalCall(() =>
          deps.client.workflow.getHandle(executionId).executeUpdate(voteUpdate, {
            args: [vote],
            // A fresh update id per request: Temporal would answer a reused id with the first
            // vote's result, so a second vote (even a reject after an approve) would look accepted.
            // The validator refuses it instead, saying what the voter already did.
            updateId: `${user.id}:${randomUUID()}`,
          }),
        );
      } catch (e) {
        const refusal = await toRefusal(deps, executionId, e);
        await auditRefusal(user, refusal.code === 'EXECUTION_NOT_FOUND' ? null : executionId, 'approval.refused', {
          executionId,
          decision: req.decision,
          code: refusal.code,
          reason: refusal.message,
        });
        throw refusal;
      }
    },

    /**
     * Cancels an execution at whatever stage it is: waiting for approval, or running (its SSM
     * command is cancelled). Who may cancel which execution is the Authorizer's decision, made
     * before this is called.
     */
    async cancel(user: User, executionId: string, reason: string): Promise<ExecutionStatus> {
      const text = reason.trim();
      if (text.length < 3) throw new UserError('USAGE', 'say why you cancel it: add --reason "why"');
      const refused = humanTextProblem('the reason', text);
      if (refused) throw new UserError('USAGE', refused);
      try {
        return await temporalCall(() =>
          deps.client.workflow
            .getHandle(executionId)
            .executeUpdate(cancelUpdate, { args: [{ by: user.id, reason: text }] }),
        );
      } catch (e) {
        throw await toRefusal(deps, executionId, e, 'cancelled');
      }
    },

    async get(executionId: string): Promise<ExecutionView> {
      try {
        // A query needs a worker; when none answers soon, the audit log still tells the story.
        return await deps.client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () =>
          deps.client.workflow.getHandle(executionId).query(statusQuery),
        );
      } catch (e) {
        // Our own deadline shows up as DEADLINE_EXCEEDED or as CANCELLED (1), depending on timing.
        if (!(e instanceof WorkflowNotFoundError) && !serverUnanswered(e, [1])) throw e;
      }
      const view = viewFromAudit(await deps.audit.list({ executionId, limit: 10_000 }));
      if (!view) throw notFound(executionId);
      return view;
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

function notFound(executionId: string): UserError {
  return new UserError(
    'EXECUTION_NOT_FOUND',
    `there is no execution ${executionId}; "mechanic list" shows the executions`,
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
  if (e instanceof WorkflowUpdateFailedError && e.cause instanceof ApplicationFailure && e.cause.type) {
    return new UserError(e.cause.type as ErrorCode, e.cause.message);
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
    return notFound(executionId);
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
