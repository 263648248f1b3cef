/**
 * The audit vocabulary: every event type mechanic records, the schema of its data, its event-id
 * format and its constructor. Every writer (workflow, activities, API server) builds events here,
 * and every reader (execution view, index, CLI, exports) reads them through readAuditEvent, so a
 * writer and a reader can never disagree about what a field means.
 *
 * Workflow-safe: zod and types only. No node:crypto (hashing lives in audit-chain.ts), because the
 * workflow bundle imports this module and runs in Temporal's sandbox.
 *
 * Compatibility: recorded audit logs and workflow histories hold events in exactly these shapes
 * and ids. A field may be added as optional; a field or an id format is never changed.
 */
import { z } from 'zod';
import type { ExecutionStatus } from './execution.ts';
import type { Plan } from './plan.ts';

const PhaseSchema = z.enum(['main', 'onFailure']);
const Text = z.string();
const Id = z.string().min(1);

/** Only what the view and the index read from the plan is checked; the rest is kept as written. */
const PlanShapeSchema = z.looseObject({
  executionId: Id,
  runbook: z.looseObject({ name: Id, version: z.number().int() }),
  requester: Id,
  reason: Text,
  targets: z.array(z.looseObject({ instanceId: Id })),
  steps: z.array(z.looseObject({ name: Id })),
  onFailure: z.array(z.looseObject({ name: Id })),
  approval: z.looseObject({ required: z.number().int(), expiresAfterSeconds: z.number() }),
  createdAt: Text,
});
const isPlanShape = (v: unknown): boolean => PlanShapeSchema.safeParse(v).success;
/** The schema behind each custom check of the vocabulary, so audit-event-check.ts can compile it too. */
export const AUDIT_CUSTOM_CHECK_SCHEMAS: ReadonlyMap<unknown, z.ZodType> = new Map([[isPlanShape, PlanShapeSchema]]);

const StepRefShape = {
  step: Text,
  index: z.number().int().nonnegative(),
  phase: PhaseSchema,
  /** Which send of a step that may be retried (1 is the first); absent for a step that is never retried. */
  attempt: z.number().int().min(1).optional(),
};

const EndDataSchema = z.strictObject({ reason: Text.optional() });

/**
 * One caller's repeated refusals of one kind, folded into one record per window (the API server's
 * src/server/denials.ts): the record stands for `count` refusals between `since` and `until`. A
 * refusal record without a count stands for one (refusalCount).
 */
const FoldedShape = {
  count: z.number().int().positive().optional(),
  since: z.iso.datetime().optional(),
  until: z.iso.datetime().optional(),
};

/** The ids of the Cedar policies that allowed an action; every allowed change records them. */
const Policies = z.array(Id).readonly().optional();

/** A vote: the plan it names, the approval groups its voter voted as, the policies that allowed it. */
const VoteDataSchema = z.strictObject({
  planDigest: Id,
  comment: Text.optional(),
  groups: z.array(Id).readonly().optional(),
  policies: Policies,
});

/** The data schema of every event type. Strict where mechanic's own code writes, loose for refusals. */
export const AUDIT_EVENT_DATA = {
  /** The request, with the whole plan, so an execution can be read back from the log alone. */
  'execution.requested': z.strictObject({
    runbook: z.strictObject({
      name: Id,
      version: z.number().int(),
      digest: Text,
      description: Text,
      // What the policies read, pinned with the plan (absent in plans made before they existed).
      risk: z.enum(['low', 'medium', 'high']).optional(),
      owners: z.array(Text).readonly().optional(),
      approvalGroups: z.array(Text).readonly().optional(),
      environment: Text.optional(),
      tags: z.array(Text).readonly().optional(),
    }),
    // A list parameter's value is an array of its items; a secret's is its SSM parameter name.
    params: z.record(
      z.string(),
      z.union([z.string(), z.number(), z.boolean(), z.array(z.union([z.string(), z.number(), z.boolean()]))]),
    ),
    targets: z.array(Id).readonly(),
    planDigest: Id,
    reason: Text,
    requester: Id,
    plan: z.custom<Plan>(isPlanShape, 'not a plan'),
    /** The ids of the policies that allowed the launch. */
    policies: Policies,
  }),
  /** A vote; it counts only for the plan whose digest it names. */
  'approval.granted': VoteDataSchema,
  'approval.rejected': VoteDataSchema,
  /** A vote the API refused (own change, wrong plan, too late…). Loose: the server adds context. */
  'approval.refused': z.looseObject({ code: Text, reason: Text }),
  /** Any action refused by authorization. Loose: the server adds context (action, path, policy). */
  'access.denied': z.looseObject({ action: Text, reason: Text, ...FoldedShape }),
  /** Any other refused request of a known caller. Loose: the server adds context (method, path). */
  'request.refused': z.looseObject({ code: Text, reason: Text, ...FoldedShape }),
  'credentials.issued': z.strictObject({
    accessKeyId: Id,
    expiration: Text,
    policyDigest: Text,
    packedPolicySize: z.number().optional(),
    roleArn: Text,
    /** approved: the run's first lease; reissued: a worker without one; refreshed: one near its end, replaced. */
    reason: z.enum(['approved', 'reissued', 'refreshed']),
  }),
  'execution.running': z.strictObject({ approvedBy: z.array(Text).readonly() }),
  'step.started': z.strictObject({ ...StepRefShape, commandId: Id }),
  /** One instance's final status and redacted, capped output of one step. */
  'step.instance': z.strictObject({
    ...StepRefShape,
    commandId: Id,
    instanceId: Id,
    status: Text,
    statusDetails: Text,
    responseCode: z.number().int(),
    stdout: Text,
    stderr: Text,
    outputSha256: Text,
    /** Which streams SSM cut at its limit (24,000 / 8,000 characters); absent when none. */
    truncatedBySsm: z
      .array(z.enum(['stdout', 'stderr']))
      .readonly()
      .optional(),
  }),
  /** One record per step, however it ended. */
  'step.completed': z.strictObject({
    ...StepRefShape,
    commandId: Id.optional(),
    ok: z.boolean(),
    cancelled: z.literal(true).optional(),
    instances: z
      .array(z.strictObject({ instanceId: Id, status: Text, responseCode: z.number().int() }))
      .readonly()
      .optional(),
    error: Text.optional(),
    /** This attempt failed and the step is sent again (a new command) after its pause. */
    retrying: z.literal(true).optional(),
    /** The step failed and the run goes on past it (continueOnError). */
    continuedOnError: z.literal(true).optional(),
  }),
  /** A step the plan decided not to run (its condition does not hold): never sent. */
  'step.skipped': z.strictObject({ ...StepRefShape, reason: Text }),
  /** A run that ended after every step, naming the steps that failed and were allowed to (continueOnError). */
  'execution.completed': z.strictObject({ reason: Text.optional(), failedSteps: z.array(Id).readonly().optional() }),
  'execution.failed': EndDataSchema,
  'execution.expired': EndDataSchema,
  /** A cancel, with the ids of the policies that allowed whoever asked for it. */
  'execution.cancelled': z.strictObject({ reason: Text.optional(), policies: Policies }),
  'execution.rejected': EndDataSchema,
  // The runbook registry (src/store/runbook-registry.ts): not tied to an execution.
  /** A runbook version entered the registry: its digest, its author and where it came from. */
  'runbook.published': z.strictObject({
    name: Id,
    version: z.number().int(),
    digest: Id,
    source: z.strictObject({
      kind: z.enum(['file', 'git']),
      path: Text,
      commit: Text.optional(),
      clean: z.boolean().optional(),
    }),
  }),
  /** A review of one version, naming the digest the reviewer saw. */
  'runbook.reviewed': z.strictObject({
    name: Id,
    version: z.number().int(),
    digest: Id,
    decision: z.enum(['approve', 'reject']),
    comment: Text,
  }),
  /** A version withdrawn from launching. */
  'runbook.deprecated': z.strictObject({ name: Id, version: z.number().int(), digest: Id, reason: Text }),
  /** The API server was asked (SIGHUP) to re-read its policies: applied, or refused with why (the old stay). */
  'policy.reloaded': z.strictObject({ file: Text, digest: Id, applied: z.boolean(), reason: Text.optional() }),
} as const;

export type AuditEventType = keyof typeof AUDIT_EVENT_DATA;
export const AUDIT_EVENT_TYPES = Object.keys(AUDIT_EVENT_DATA) as [AuditEventType, ...AuditEventType[]];
export const AuditEventTypeSchema = z.enum(AUDIT_EVENT_TYPES);

export type AuditEventData<T extends AuditEventType> = z.infer<(typeof AUDIT_EVENT_DATA)[T]>;

/** One event of type T, as a writer builds it and a reader gets it from readAuditEvent. */
export interface AuditEventOf<T extends AuditEventType> {
  /** Idempotency key chosen by the writer (formats below): a retried write lands once. */
  readonly eventId: string;
  /** Null only for refusals not tied to one execution (e.g. access.denied on a listing). */
  readonly executionId: string | null;
  readonly type: T;
  /** Who caused it: a user id, or 'mechanic' for the system. */
  readonly actor: string;
  /** When it happened, supplied by the writer: workflows pass their deterministic time. */
  readonly at: string;
  readonly data: AuditEventData<T>;
}
/** The discriminated union of every event: narrow on `type` and `data` is typed. */
export type AuditEvent = { [T in AuditEventType]: AuditEventOf<T> }[AuditEventType];

/**
 * The envelope a store accepts before validation; the hash covers exactly these six fields. Typed
 * events (AuditEvent) are assignable to it.
 */
export interface NewAuditEvent {
  eventId: string;
  executionId: string | null;
  type: AuditEventType;
  actor: string;
  at: string;
  data: Record<string, unknown>;
}

/** Refusals: the API's answers to requests it did not carry out. */
export type RefusalType = 'approval.refused' | 'access.denied' | 'request.refused';

/** How many refusals a record stands for: its folded `count`, or one. */
export function refusalCount(event: { readonly data: Readonly<Record<string, unknown>> }): number {
  const count = event.data['count'];
  return typeof count === 'number' && Number.isInteger(count) && count > 0 ? count : 1;
}

/** Types that may be written without an execution. */
const EXECUTIONLESS: ReadonlySet<AuditEventType> = new Set([
  'approval.refused',
  'access.denied',
  'request.refused',
  'runbook.published',
  'runbook.reviewed',
  'runbook.deprecated',
  'policy.reloaded',
]);

function envelopeSchema<T extends AuditEventType>(type: T) {
  return z.strictObject({
    eventId: z.string().min(1).max(200),
    executionId: EXECUTIONLESS.has(type) ? z.string().min(1).max(200).nullable() : z.string().min(1).max(200),
    type: z.literal(type),
    actor: z.string().min(1),
    at: z.iso.datetime(),
    data: AUDIT_EVENT_DATA[type],
  });
}
const ENVELOPES = Object.fromEntries(AUDIT_EVENT_TYPES.map((t) => [t, envelopeSchema(t)])) as {
  [T in AuditEventType]: ReturnType<typeof envelopeSchema<T>>;
};
/** The schema of one event type's whole envelope (audit-event-check.ts compiles these for `audit verify`). */
export function auditEventSchemaOf<T extends AuditEventType>(type: T): (typeof ENVELOPES)[T] {
  return ENVELOPES[type];
}
/** Every event, discriminated on `type`: what a store refuses to write when it does not fit. */
export const AuditEventSchema = z.discriminatedUnion(
  'type',
  AUDIT_EVENT_TYPES.map((t) => ENVELOPES[t]) as unknown as [
    ReturnType<typeof envelopeSchema<AuditEventType>>,
    ...ReturnType<typeof envelopeSchema<AuditEventType>>[],
  ],
);

/**
 * Checks an event (new or read back) against the vocabulary. The event itself is returned as it
 * came, never the parsed copy, so validation cannot change what gets hashed. The problem names the
 * event and every field that does not fit.
 */
export function checkAuditEvent(input: unknown): { ok: true; event: AuditEvent } | { ok: false; problem: string } {
  const type = (input as { type?: unknown } | null)?.type;
  const eventId = (input as { eventId?: unknown } | null)?.eventId;
  const name = `${typeof type === 'string' ? type : 'event'} ${typeof eventId === 'string' ? eventId : '(no id)'}`;
  if (typeof type !== 'string' || !(type in AUDIT_EVENT_DATA)) {
    return { ok: false, problem: `${name} has an unknown type` };
  }
  const result = ENVELOPES[type as AuditEventType].safeParse(input);
  if (!result.success) {
    return { ok: false, problem: `${name} does not fit its schema: ${z.prettifyError(result.error)}` };
  }
  return { ok: true, event: input as AuditEvent };
}

/**
 * Reads a stored record as a typed event; a record that does not fit (a writer bug or a forged row)
 * is named, with its seq, instead of being read as if it did.
 */
export function readAuditEvent(
  record: NewAuditEvent & { readonly seq?: number },
): { ok: true; event: AuditEvent } | { ok: false; problem: string } {
  // Only the six hashed fields are the event; a record's seq, hashes and store time are not.
  const { eventId, executionId, type, actor, at, data } = record;
  const checked = checkAuditEvent({ eventId, executionId, type, actor, at, data });
  if (checked.ok) return checked;
  return {
    ok: false,
    problem: record.seq !== undefined ? `record #${record.seq}: ${checked.problem}` : checked.problem,
  };
}

// ---------------------------------------------------------------------------------------------
// Execution ends: the event that closes each final status.

export type FinalStatus = Exclude<ExecutionStatus, 'awaiting_approval' | 'running'>;

export const END_EVENT_STATUS = {
  'execution.completed': 'completed',
  'execution.failed': 'failed',
  'execution.expired': 'expired',
  'execution.cancelled': 'cancelled',
  'execution.rejected': 'rejected',
} as const satisfies Partial<Record<AuditEventType, FinalStatus>>;
export type EndEventType = keyof typeof END_EVENT_STATUS;

/** The event that ends an execution with each final status. */
export const END_EVENT_OF = {
  completed: 'execution.completed',
  failed: 'execution.failed',
  expired: 'execution.expired',
  cancelled: 'execution.cancelled',
  rejected: 'execution.rejected',
} as const satisfies Record<FinalStatus, EndEventType>;

/** The final status an event sets, or undefined when it does not end an execution. */
export function endStatusOf(type: AuditEventType): FinalStatus | undefined {
  return (END_EVENT_STATUS as Partial<Record<AuditEventType, FinalStatus>>)[type];
}

// ---------------------------------------------------------------------------------------------
// Event ids. Recorded logs and histories depend on these formats: never change one.

/** The workflow's events, numbered in the order it records them; 0 is the request. */
export function workflowEventId(executionId: string, counter: number, type: AuditEventType): string {
  return `${executionId}:${String(counter).padStart(4, '0')}:${type}`;
}
/** One per credential key: a worker that re-issues records each new key once. */
export function reissuedEventId(executionId: string, accessKeyId: string): string {
  return `${executionId}:credentials.reissued:${accessKeyId}`;
}
/** One per refreshed lease: a run longer than a lease records each new key once. */
export function refreshedEventId(executionId: string, accessKeyId: string): string {
  return `${executionId}:credentials.refreshed:${accessKeyId}`;
}
/**
 * One per instance and step (and attempt, from the second on), however many times its result is
 * followed. The first attempt keeps the original format.
 */
export function instanceEventId(
  executionId: string,
  phase: 'main' | 'onFailure',
  stepIndex: number,
  instanceId: string,
  attempt?: number,
): string {
  const base = `${executionId}:step.instance:${phase}:${stepIndex}:${instanceId}`;
  return attempt !== undefined && attempt > 1 ? `${base}:attempt:${attempt}` : base;
}
/** A refusal is one request's answer: the caller supplies a unique id (e.g. a UUID). */
export function refusalEventId(executionId: string | null, type: RefusalType, unique: string): string {
  return `${executionId ?? 'none'}:${type}:${unique}`;
}

// ---------------------------------------------------------------------------------------------
// Constructors. Plain objects, no validation here: the store validates every write.

/** Builds one event of type T; the data is typed by the vocabulary. */
export function auditEvent<T extends AuditEventType>(
  type: T,
  fields: { eventId: string; executionId: string | null; actor: string; at: string; data: AuditEventData<T> },
): AuditEventOf<T> {
  return {
    eventId: fields.eventId,
    executionId: fields.executionId,
    type,
    actor: fields.actor,
    at: fields.at,
    data: fields.data,
  };
}

/**
 * The audit record of a request. Both the API server (right after starting the workflow, so the
 * caller's response means "recorded") and the workflow (so it is recorded even if the server
 * died in between) write it; same id, same content, so the log holds it once.
 */
export function requestedEvent({
  plan,
  planDigest,
  launchPolicies,
}: {
  readonly plan: Plan;
  readonly planDigest: string;
  /** The ids of the policies that allowed the launch. */
  readonly launchPolicies?: readonly string[] | undefined;
}): AuditEventOf<'execution.requested'> {
  return auditEvent('execution.requested', {
    eventId: workflowEventId(plan.executionId, 0, 'execution.requested'),
    executionId: plan.executionId,
    actor: plan.requester,
    at: plan.createdAt,
    data: {
      runbook: plan.runbook,
      params: plan.params,
      targets: plan.targets.map((t) => t.instanceId),
      planDigest,
      reason: plan.reason,
      requester: plan.requester,
      // The whole plan, so the execution can be read back from the audit log alone.
      plan,
      ...(launchPolicies !== undefined ? { policies: launchPolicies } : {}),
    },
  });
}

/** A refused vote or action, by `actor`; `unique` makes each refusal its own event. */
export function refusalEvent<T extends RefusalType>(
  type: T,
  fields: { executionId: string | null; actor: string; at: string; unique: string; data: AuditEventData<T> },
): AuditEventOf<T> {
  return auditEvent(type, {
    eventId: refusalEventId(fields.executionId, type, fields.unique),
    executionId: fields.executionId,
    actor: fields.actor,
    at: fields.at,
    data: fields.data,
  });
}
