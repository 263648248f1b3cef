import {
  CancelCommandCommand,
  GetCommandInvocationCommand,
  SendCommandCommand,
  paginateListCommandInvocations,
  paginateListCommands,
  type CommandInvocation,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { ApplicationFailure, Context, heartbeat } from '@temporalio/activity';
import type { InstanceResult, StepOutcome, StepRequest } from '../core/execution.ts';
import { auditEvent, instanceEventId, type NewAuditEvent } from '../core/audit-events.ts';
import { cap, redact } from '../core/redact.ts';
import { sendRefusal, ssmTruncated } from '../core/ssm-output.ts';
import { sha256Hex } from '../core/canonical.ts';
import { RUN_SHELL_SCRIPT } from '../core/session-policy.ts';
import { rateLimitCount } from '../core/targets.ts';
import { SendCommandOutcomeUnknownError, type SessionCredentials } from './aws.ts';
import type { CredentialLeases } from './credentials.ts';
import { AuditEventConflictError } from '../store/audit-log.ts';

export interface SsmDeps {
  readonly leases: Pick<CredentialLeases, 'credentialsFor' | 'drop'>;
  /** The SSM client for a session; the worker reuses one per credentials (ssmClients). */
  readonly ssmFor: (credentials: SessionCredentials) => SSMClient;
  readonly record: (event: NewAuditEvent) => Promise<unknown>;
  /**
   * Records several events in one write, keeping any already recorded under the same id (the
   * store's appendMany with keepRecorded). Without it, each is recorded on its own.
   */
  readonly recordMany?: (events: readonly NewAuditEvent[]) => Promise<unknown>;
  /** First and largest wait between polls of a running command. */
  readonly pollIntervalMs: { readonly min: number; readonly max: number };
  /** How long SSM may take to deliver a command before it gives up on an instance. */
  readonly deliveryTimeoutSeconds: number;
  /**
   * After a SendCommand whose answer was lost, how long to keep looking for the command before
   * failing the attempt (default 15 s): ListCommands is eventually consistent.
   */
  readonly unconfirmedSendLookupMs?: number;
}

const TERMINAL = new Set(['Success', 'Failed', 'TimedOut', 'Cancelled']);
/** What one instance's output may take in workflow history; the audit log keeps the full output. */
const PREVIEW_CHARS = 2_000;
/** What one instance's output may take in the audit log (after redaction). */
const AUDIT_OUTPUT_CHARS = 24_000;
/**
 * GetCommandInvocation calls in flight at once when a step ends: well under SSM's throttling, and
 * with RECORD_BATCH, a bounded number of outputs held at a time however many instances the step
 * ran on.
 */
const DETAIL_BATCH = 5;
/**
 * Instance records written in one audit transaction, at most, and the output they may hold
 * between writes: few transactions per step, and a bounded amount of output held at once.
 */
const RECORD_BATCH = 25;
const RECORD_CHARS = 400_000;

/**
 * The token that makes dispatch exactly-once: SendCommand has no client token, so the Comment
 * (≤ 100 chars) carries one unique to this run and step, and a retry looks for it first.
 */
export function dispatchToken(req: Pick<StepRequest, 'executionId' | 'stepIndex' | 'phase' | 'attempt'>): string {
  const base = `mechanic ${req.executionId} ${req.phase === 'main' ? 'step' : 'onfailure'} ${req.stepIndex}`;
  // A retry of a failed step is a new command: its own token, so find-or-send never adopts the
  // failed attempt, and a retried dispatch of the same attempt still finds its own send.
  return req.attempt !== undefined && req.attempt > 1 ? `${base} attempt ${req.attempt}` : base;
}

/** One SendCommand of a step on more than 50 instances, with its share of the step's rate control. */
export interface BatchRequest extends StepRequest {
  /** Which batch of the step this is (0 is the first); `instanceIds` are its own. */
  readonly batch: number;
  readonly maxConcurrency: string;
  readonly maxErrors: string;
}

/** What a batch leaves in workflow history: each instance's status and exit code, no output. */
export interface BatchInstance {
  readonly instanceId: string;
  readonly status: string;
  readonly statusDetails: string;
  readonly responseCode: number;
}

export interface BatchOutcome {
  readonly commandId: string;
  readonly instances: readonly BatchInstance[];
}

/** A batch's own dispatch token: the step's, and which batch (counted from 1). */
export function batchToken(req: Parameters<typeof dispatchToken>[0] & { readonly batch: number }): string {
  return `${dispatchToken(req)} batch ${req.batch + 1}`;
}

/** The id of a batch's step.started record: one per batch, however often its activity is retried. */
function batchStartedEventId(req: BatchRequest): string {
  const base = `${req.executionId}:step.started:${req.phase}:${req.stepIndex}:batch:${req.batch}`;
  return req.attempt !== undefined && req.attempt > 1 ? `${base}:attempt:${req.attempt}` : base;
}

export function createSsmActivities(deps: SsmDeps) {
  const clientFor = async (req: StepRequest) => deps.ssmFor(await deps.leases.credentialsFor(req.credentials));

  /** Calls SSM, turning a refused session into a re-issue on the next attempt. */
  const call = async <T>(req: StepRequest, fn: (ssm: SSMClient) => Promise<T>): Promise<T> => {
    try {
      return await fn(await clientFor(req));
    } catch (e) {
      throw toFailure(e, () => deps.leases.drop(req.executionId));
    }
  };

  /**
   * Records an instance's result once. An attempt retried after recording some instances finds
   * them recorded with an earlier stamp; a final invocation never changes, so that record stands.
   */
  const recordOnce = async (event: NewAuditEvent): Promise<void> => {
    try {
      await deps.record(event);
    } catch (e) {
      if (!(e instanceof AuditEventConflictError)) throw e;
    }
  };

  /**
   * Records instances' results once each (as recordOnce), in one write when the store takes
   * several: a step's instances cost one audit transaction per few outputs, not one each.
   */
  const recordAllOnce = async (events: readonly NewAuditEvent[]): Promise<void> => {
    if (events.length === 0) return;
    if (deps.recordMany) {
      await deps.recordMany(events);
      return;
    }
    for (const event of events) await recordOnce(event);
  };

  const findOrSend = async (
    req: StepRequest,
    token = dispatchToken(req),
  ): Promise<{ commandId: string; adopted: boolean }> => {
    // A retried attempt may follow one that sent and died before the answer: it looks as long as
    // after a lost answer, because ListCommands may not show that command yet.
    const existing =
      (await call(req, (ssm) => findCommand(ssm, token, req.notBefore))) ??
      (Context.current().info.attempt > 1 ? await lookAgain(req, token) : undefined);
    if (existing) return { commandId: existing, adopted: true };
    const command = sendCommandFor(req, token, deps.deliveryTimeoutSeconds);
    let commandId: string | undefined;
    try {
      commandId = (await call(req, (ssm) => ssm.send(command))).Command?.CommandId;
    } catch (e) {
      if (!(e instanceof ApplicationFailure) || e.type !== 'SSM_SEND_UNCONFIRMED') throw e;
      // SSM may have accepted it: look again before Temporal retries, because ListCommands may
      // show a new command only after a while, and a retry that looked too early would send twice.
      const found = await lookAgain(req, token);
      if (found) return { commandId: found, adopted: true };
      throw e;
    }
    if (!commandId)
      throw ApplicationFailure.retryable('SSM accepted the command without a command id', 'SSM_INCOMPLETE');
    return { commandId, adopted: false };
  };

  /** Looks for a command whose answer was lost, with growing pauses, for up to unconfirmedSendLookupMs. */
  const lookAgain = async (req: StepRequest, token: string): Promise<string | undefined> => {
    const ctx = Context.current();
    const budget = deps.unconfirmedSendLookupMs ?? 15_000;
    let waited = 0;
    for (let pause = 250; waited < budget; pause *= 2) {
      const wait = Math.min(pause, budget - waited);
      await ctx.sleep(wait);
      waited += wait;
      const found = await call(req, (ssm) => findCommand(ssm, token, req.notBefore));
      if (found) return found;
    }
    return undefined;
  };

  const activities = {
    /** Sends the step's command once: adopts an earlier send of this run and step if there is one. */
    async dispatchStep(req: StepRequest): Promise<{ commandId: string; adopted: boolean }> {
      // Beats while SSM answers, so that with a heartbeat timeout a dead worker is noticed long
      // before the start-to-close timeout, and the retry adopts whatever this attempt sent.
      const ctx = Context.current();
      const beat = setInterval(() => ctx.heartbeat(), 1_000);
      try {
        return await findOrSend(req);
      } finally {
        clearInterval(beat);
      }
    },

    /** Follows a sent command until every instance is done, then records each instance's result. */
    async awaitStep(req: StepRequest & { readonly commandId: string }): Promise<StepOutcome> {
      const ctx = Context.current();
      // A record is stamped when it is recorded, never earlier than the record before it: the
      // log's order (seq) is the story, and its clock must agree. SSM's own times (when the
      // script ended) can be earlier than step.started, which the workflow records after the
      // dispatch answer arrives. This attempt was scheduled after step.started was recorded, by
      // Temporal's clock, so the stamp is never earlier than that either.
      let last = ctx.info.currentAttemptScheduledTimestampMs;
      const recordingTime = () => {
        last = Math.max(last, Date.now());
        return new Date(last).toISOString();
      };
      let wait = deps.pollIntervalMs.min;
      let invocations: CommandInvocation[] = [];
      for (let poll = 1; ; poll++) {
        invocations = await call(req, (ssm) => listInvocations(ssm, req.commandId));
        const done = invocations.filter((i) => TERMINAL.has(i.Status ?? ''));
        heartbeat({ poll, done: done.length, of: req.instanceIds.length });
        if (invocations.length >= req.instanceIds.length && done.length === invocations.length) break;
        // Sleeps through the activity context, so a cancelled run stops polling at once.
        await ctx.sleep(wait + Math.floor(Math.random() * (wait / 4)));
        wait = Math.min(deps.pollIntervalMs.max, Math.round(wait * 1.5));
      }
      const instances: InstanceResult[] = [];
      // Outputs fetched a few at a time and recorded in SSM's order, several in one write: the
      // step's end waits for one round trip per DETAIL_BATCH instead of one per instance, and
      // for one audit transaction per RECORD_BATCH outputs (or RECORD_CHARS of them).
      const details = async function* () {
        for (let from = 0; from < invocations.length; from += DETAIL_BATCH) {
          const batch = invocations.slice(from, from + DETAIL_BATCH);
          yield* await Promise.all(
            batch.map(async (inv) => ({
              inv,
              detail: await call(req, (ssm) =>
                ssm.send(
                  new GetCommandInvocationCommand({
                    CommandId: req.commandId,
                    InstanceId: inv.InstanceId ?? 'unknown',
                  }),
                ),
              ),
            })),
          );
        }
      };
      let pending: NewAuditEvent[] = [];
      let pendingChars = 0;
      const flush = async () => {
        await recordAllOnce(pending);
        pending = [];
        pendingChars = 0;
      };
      for await (const { inv, detail } of details()) {
        const instanceId = inv.InstanceId ?? 'unknown';
        const stdout = cap(redact(detail.StandardOutputContent ?? ''), AUDIT_OUTPUT_CHARS);
        const stderr = cap(redact(detail.StandardErrorContent ?? ''), AUDIT_OUTPUT_CHARS);
        const outputSha256 = sha256Hex(`${stdout}\u0000${stderr}`);
        // SSM returns only the first 24,000 / 8,000 characters and does not say it cut: mark it.
        const cut = ssmTruncated({
          stdout: detail.StandardOutputContent ?? '',
          stderr: detail.StandardErrorContent ?? '',
        });
        const truncated = cut.length > 0 ? { truncatedBySsm: cut } : {};
        const result: InstanceResult = {
          instanceId,
          status: detail.Status ?? inv.Status ?? 'Failed',
          statusDetails: detail.StatusDetails ?? inv.StatusDetails ?? '',
          responseCode: detail.ResponseCode ?? -1,
          stdout: cap(stdout, PREVIEW_CHARS),
          stderr: cap(stderr, PREVIEW_CHARS),
          outputSha256,
          ...truncated,
        };
        pending.push(
          auditEvent('step.instance', {
            eventId: instanceEventId(req.executionId, req.phase, req.stepIndex, instanceId, req.attempt),
            executionId: req.executionId,
            actor: 'mechanic',
            at: recordingTime(),
            data: {
              step: req.step.name,
              index: req.stepIndex,
              phase: req.phase,
              ...(req.attempt !== undefined ? { attempt: req.attempt } : {}),
              commandId: req.commandId,
              instanceId,
              status: result.status,
              statusDetails: result.statusDetails,
              responseCode: result.responseCode,
              stdout,
              stderr,
              outputSha256,
              ...truncated,
            },
          }),
        );
        pendingChars += stdout.length + stderr.length;
        if (pending.length >= RECORD_BATCH || pendingChars >= RECORD_CHARS) await flush();
        instances.push(result);
      }
      await flush();
      const missing = req.instanceIds.filter((id) => !instances.some((i) => i.instanceId === id));
      const ok = missing.length === 0 && instances.every((i) => i.status === 'Success');
      return { commandId: req.commandId, ok, instances };
    },

    /**
     * One batch of a step on more than 50 instances, start to end: sends it once (find-or-send on
     * the batch's own token, so a retry after a lost answer or a killed worker adopts the command
     * it sent), records that it started, follows it and records each instance's result, like a
     * step's own dispatch and follow. Answers only each instance's status and exit code: outputs
     * stay in the audit log, never in workflow history.
     */
    async runBatch(req: BatchRequest): Promise<BatchOutcome> {
      const ctx = Context.current();
      // The batch's share of the step's rate control, sent as this command's own.
      const sent: StepRequest = {
        ...req,
        step: { ...req.step, maxConcurrency: req.maxConcurrency, maxErrors: req.maxErrors },
      };
      const beat = setInterval(() => ctx.heartbeat(), 1_000);
      let commandId: string;
      try {
        ({ commandId } = await findOrSend(sent, batchToken(req)));
      } finally {
        clearInterval(beat);
      }
      await recordOnce(
        auditEvent('step.started', {
          eventId: batchStartedEventId(req),
          executionId: req.executionId,
          actor: 'mechanic',
          at: new Date().toISOString(),
          data: {
            step: req.step.name,
            index: req.stepIndex,
            phase: req.phase,
            ...(req.attempt !== undefined ? { attempt: req.attempt } : {}),
            commandId,
          },
        }),
      );
      const outcome = await activities.awaitStep({ ...sent, commandId });
      return {
        commandId,
        instances: outcome.instances.map((i) => ({
          instanceId: i.instanceId,
          status: i.status,
          statusDetails: i.statusDetails,
          responseCode: i.responseCode,
        })),
      };
    },

    /**
     * Cancels the commands of a step's batches, found by their tokens; answers the batches whose
     * command SSM does not show yet (still being sent), for the caller to try again. Each batch's
     * runBatch goes on following its command to its final statuses and records them.
     */
    async cancelBatches(req: StepRequest & { readonly batches: readonly number[] }): Promise<number[]> {
      const notFound: number[] = [];
      for (const batch of req.batches) {
        const commandId = await call(req, (ssm) => findCommand(ssm, batchToken({ ...req, batch }), req.notBefore));
        if (!commandId) {
          notFound.push(batch);
          continue;
        }
        try {
          await call(req, (ssm) => ssm.send(new CancelCommandCommand({ CommandId: commandId })));
        } catch (e) {
          // A command that finished meanwhile cannot be cancelled, and needs not be.
          if (!(e instanceof ApplicationFailure) || !e.nonRetryable) throw e;
        }
      }
      return notFound;
    },

    /**
     * Cancels a step's command, then follows it to its final per-instance statuses, which are
     * recorded like any other step's. SSM cannot promise the process stops; the statuses say
     * what happened.
     */
    async cancelStep(req: StepRequest & { readonly commandId: string }): Promise<StepOutcome> {
      try {
        await call(req, (ssm) => ssm.send(new CancelCommandCommand({ CommandId: req.commandId })));
      } catch (e) {
        // A command that finished meanwhile cannot be cancelled; its statuses still get recorded.
        if (!(e instanceof ApplicationFailure) || !e.nonRetryable) throw e;
      }
      return activities.awaitStep(req);
    },
  };
  return activities;
}

export type SsmActivities = ReturnType<typeof createSsmActivities>;

/** The step's one command: every target at once, its script as the document's commands. */
function sendCommandFor(req: StepRequest, token: string, deliveryTimeoutSeconds: number): SendCommandCommand {
  return new SendCommandCommand({
    DocumentName: RUN_SHELL_SCRIPT,
    InstanceIds: [...req.instanceIds],
    Parameters: { commands: req.step.script.split('\n'), executionTimeout: [String(req.step.timeoutSeconds)] },
    TimeoutSeconds: deliveryTimeoutFor(req, deliveryTimeoutSeconds),
    Comment: token,
    // The runbook's rate control when it sets one, else SSM's own defaults, stated: at most 50
    // at once, and stop at the first failing instance, so a runbook that breaks one host does
    // not go on to break the rest.
    MaxConcurrency: req.step.maxConcurrency ?? '50',
    MaxErrors: req.step.maxErrors ?? '0',
  });
}

/** SSM's longest TimeoutSeconds (30 days). */
const MAX_DELIVERY_TIMEOUT_SECONDS = 2_592_000;

/**
 * TimeoutSeconds counts from the send for every instance: one still waiting for a concurrency slot
 * when it passes is never run (DeliveryTimedOut). So a rate-limited step gives the instances of
 * each later wave the step's timeout again on top of the delivery timeout.
 */
function deliveryTimeoutFor(req: StepRequest, deliveryTimeoutSeconds: number): number {
  const base = Math.max(30, deliveryTimeoutSeconds);
  const targets = req.instanceIds.length;
  if (req.step.maxConcurrency === undefined || targets === 0) return base;
  const waves = Math.ceil(targets / rateLimitCount(req.step.maxConcurrency, targets, 'concurrency'));
  return Math.min(MAX_DELIVERY_TIMEOUT_SECONDS, base + (waves - 1) * req.step.timeoutSeconds);
}

async function findCommand(client: SSMClient, token: string, notBefore: string): Promise<string | undefined> {
  // Comment is not filterable server-side; bound the look-up by time and document instead.
  const after = new Date(Date.parse(notBefore) - 5 * 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const filters = [
    { key: 'InvokedAfter' as const, value: after },
    { key: 'DocumentName' as const, value: RUN_SHELL_SCRIPT },
  ];
  for await (const page of paginateListCommands({ client, pageSize: 50 }, { Filters: filters })) {
    const found = page.Commands?.find((c) => c.Comment === token);
    if (found?.CommandId) return found.CommandId;
  }
  return undefined;
}

async function listInvocations(client: SSMClient, commandId: string): Promise<CommandInvocation[]> {
  const all: CommandInvocation[] = [];
  for await (const page of paginateListCommandInvocations({ client, pageSize: 50 }, { CommandId: commandId })) {
    all.push(...(page.CommandInvocations ?? []));
  }
  return all;
}

const NOT_RETRYABLE = new Set([
  'InvalidDocument',
  'InvalidInstanceId',
  'InvalidParameters',
  'AccessDeniedException',
  'InvalidCommandId',
  'UnsupportedPlatformType',
  'MaxDocumentSizeExceeded',
  'DuplicateInstanceId',
]);

/** Maps SDK errors to Temporal failures: what retrying cannot fix ends the step. */
function toFailure(e: unknown, dropLease: () => void): unknown {
  if (e instanceof ApplicationFailure) return e;
  const err = e as { name?: string; message?: string };
  const name = err.name ?? 'Error';
  const message = `${name}: ${err.message ?? String(e)}`;
  if (name === 'ExpiredTokenException' || name === 'UnrecognizedClientException') {
    dropLease();
    return ApplicationFailure.retryable(
      `the run's credentials were refused (${message}); re-issuing`,
      'CREDENTIALS_REFUSED',
    );
  }
  const refused = sendRefusal(name, err.message ?? '');
  if (refused) return ApplicationFailure.nonRetryable(refused, 'SSM_COMMAND_FAILED');
  if (NOT_RETRYABLE.has(name)) return ApplicationFailure.nonRetryable(message, 'SSM_COMMAND_FAILED');
  // Retryable too: the retried dispatch looks for the command before it sends.
  if (e instanceof SendCommandOutcomeUnknownError) return ApplicationFailure.retryable(message, 'SSM_SEND_UNCONFIRMED');
  return ApplicationFailure.retryable(message, 'SSM_UNAVAILABLE');
}
