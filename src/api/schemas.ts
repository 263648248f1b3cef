/**
 * The shapes that cross the HTTP API, as zod schemas. The server answers with them, the typed
 * client parses every answer with them, and the OpenAPI document is generated from them, so the
 * three cannot drift apart. Only zod and the core's plain constants are imported here: the CLI and
 * the TUI load this module, and neither should pay for the runbook parser or a database driver.
 */
import { z } from 'zod';
import { AUDIT_EXPORT_FORMATS } from '../core/audit-export.ts';
import { ERROR_CODES } from '../core/errors.ts';
import { EXECUTION_STATUSES } from '../core/execution.ts';
import { humanTextProblem } from '../core/text.ts';

/** Text a person typed (a reason, a comment): control, bidi and invisible characters are refused here. */
function humanText(label: string, max: number) {
  return z
    .string()
    .max(max)
    .superRefine((value, ctx) => {
      const problem = humanTextProblem(label, value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });
}

/** Execution ids are short tokens (`mx-…`); anything longer or stranger is refused before any look-up. */
export const ExecutionIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'must be an execution id like mx-ab12cd34ef');
export const RunbookNameSchema = z.string().regex(/^[a-z][a-z0-9-]{1,62}$/, 'must be a runbook name like deploy-web');

export const ErrorCodeSchema = z.enum(ERROR_CODES);
export const ErrorBodySchema = z.strictObject({
  error: z.strictObject({ code: ErrorCodeSchema, message: z.string() }),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

export const ExecutionStatusSchema = z.enum(EXECUTION_STATUSES);
const ScalarParamValueSchema = z.union([z.string(), z.number(), z.boolean()]);
/** A list parameter takes a JSON array of its items (at most 500, the cap of maxItems). */
const ParamValueSchema = z.union([ScalarParamValueSchema, z.array(ScalarParamValueSchema).max(500)]);

export const PrincipalSchema = z.object({
  id: z.string(),
  displayName: z.string(),
  roles: z.array(z.string()),
});

export const PlannedTargetSchema = z.object({ instanceId: z.string(), name: z.string().exactOptional() });
const PlannedStepSchema = z.object({
  name: z.string(),
  script: z.string(),
  timeoutSeconds: z.number().int(),
  // Step controls, present only when the runbook sets them (core/plan.ts).
  condition: z.string().exactOptional(),
  skipped: z.string().exactOptional(),
  retries: z.number().int().exactOptional(),
  retryDelaySeconds: z.number().int().exactOptional(),
  continueOnError: z.literal(true).exactOptional(),
  // SSM rate control ("5", "25%"), present only when the runbook sets it (core/plan.ts).
  maxConcurrency: z.string().exactOptional(),
  maxErrors: z.string().exactOptional(),
});

export const PlanSchema = z.object({
  executionId: z.string(),
  runbook: z.object({
    name: z.string(),
    version: z.number().int(),
    digest: z.string(),
    description: z.string(),
    // Plans made before runbooks said who owns them and how risky they are carry none of these.
    risk: z.enum(['low', 'medium', 'high']).exactOptional(),
    owners: z.array(z.string()).readonly().exactOptional(),
    approvalGroups: z.array(z.string()).readonly().exactOptional(),
    environment: z.string().exactOptional(),
    tags: z.array(z.string()).readonly().exactOptional(),
  }),
  requester: z.string(),
  reason: z.string(),
  params: z.record(z.string(), ParamValueSchema),
  /** Parameters whose value is an SSM Parameter Store name, read on the instance (never the secret). */
  secretParams: z.array(z.string()).readonly().exactOptional(),
  targets: z.array(PlannedTargetSchema),
  roleArn: z.string(),
  region: z.string(),
  steps: z.array(PlannedStepSchema),
  onFailure: z.array(PlannedStepSchema),
  approval: z.object({ required: z.number().int(), expiresAfterSeconds: z.number().int() }),
  budgetSeconds: z.number().int(),
  sessionPolicy: z.string(),
  createdAt: z.string(),
});

export const ApprovalStateSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('pending'), approvedBy: z.array(z.string()), missing: z.number().int() }),
  z.object({ status: z.literal('approved'), approvedBy: z.array(z.string()) }),
  z.object({ status: z.literal('rejected'), by: z.string(), comment: z.string().exactOptional() }),
]);

const VoteSchema = z.object({
  approver: z.string(),
  decision: z.enum(['approve', 'reject']),
  planDigest: z.string(),
  comment: z.string().exactOptional(),
});

const InstanceResultSchema = z.object({
  instanceId: z.string(),
  status: z.string(),
  statusDetails: z.string(),
  responseCode: z.number(),
  stdout: z.string(),
  stderr: z.string(),
  outputSha256: z.string(),
  /** Set only when SSM cut the output at its limit (24,000 / 8,000 characters): which streams. */
  truncatedBySsm: z
    .array(z.enum(['stdout', 'stderr']))
    .readonly()
    .exactOptional(),
});

const StepViewSchema = z.object({
  name: z.string(),
  phase: z.enum(['main', 'onFailure']),
  status: z.enum(['pending', 'running', 'succeeded', 'failed', 'cancelled', 'skipped']),
  commandId: z.string().exactOptional(),
  instances: z.array(InstanceResultSchema),
  reason: z.string().exactOptional(),
  attempt: z.number().int().exactOptional(),
  continuedOnError: z.literal(true).exactOptional(),
  /** A step on more than 50 instances: counts by status; `instances` lists only the unsuccessful. */
  summary: z.object({ total: z.number().int(), byStatus: z.record(z.string(), z.number().int()) }).exactOptional(),
});

export const ExecutionViewSchema = z.object({
  executionId: z.string(),
  status: ExecutionStatusSchema,
  planDigest: z.string(),
  plan: PlanSchema,
  approval: ApprovalStateSchema,
  votes: z.array(VoteSchema),
  steps: z.array(StepViewSchema),
  credentials: z
    .object({
      accessKeyId: z.string(),
      expiration: z.string(),
      policyDigest: z.string(),
      packedPolicySize: z.number().exactOptional(),
    })
    .exactOptional(),
  reason: z.string().exactOptional(),
  /** Audit records of this run that do not fit the vocabulary, named (the view was rebuilt without them). */
  unreadable: z.array(z.string()).exactOptional(),
});

export { ExecutionSummarySchema } from '../core/execution-index.ts';

/**
 * Whether the caller may launch a runbook, decided by the same policies as the launch itself; when
 * not, the one sentence a launch would be refused with.
 */
export const LaunchDecisionSchema = z.discriminatedUnion('allowed', [
  z.object({ allowed: z.literal(true) }),
  z.object({ allowed: z.literal(false), reason: z.string() }),
]);
export type LaunchDecision = z.infer<typeof LaunchDecisionSchema>;

/** A runbook as the catalog shows it; the server validated it fully when it loaded the file. */
export const RunbookInfoSchema = z.looseObject({
  name: z.string(),
  version: z.number().int(),
  description: z.string(),
  roleArn: z.string(),
  parameters: z.record(z.string(), z.looseObject({ type: z.string(), description: z.string().optional() })),
  targets: z.union([
    z.object({ instanceIds: z.array(z.string()) }),
    z.object({ tags: z.record(z.string(), z.string()) }),
    z.object({ names: z.array(z.string()) }),
    z.object({
      fromParameter: z.string(),
      within: z
        .union([
          z.object({ instanceIds: z.array(z.string()) }),
          z.object({ tags: z.record(z.string(), z.string()) }),
          z.object({ names: z.array(z.string()) }),
        ])
        .optional(),
    }),
  ]),
  approval: z.object({
    required: z.number().int(),
    expiresAfterMinutes: z.number().int(),
    /** Groups whose members may approve; empty: any approver. Absent from servers before they existed. */
    groups: z.array(z.string()).exactOptional(),
  }),
  /**
   * Who answers for it, and how much harm a wrong run can do (high: approvers from two groups).
   * This server always sends both; a client may still meet a server from before they existed.
   */
  owners: z.array(z.string()).exactOptional(),
  risk: z.enum(['low', 'medium', 'high']).exactOptional(),
  steps: z.array(z.looseObject({ name: z.string(), script: z.string(), timeoutSeconds: z.number().int() })),
  onFailure: z.array(z.looseObject({ name: z.string(), script: z.string(), timeoutSeconds: z.number().int() })),
  digest: z.string(),
  source: z.string(),
  /** The caller's launch decision; absent from servers before it existed (a client then lets the launch decide). */
  launch: LaunchDecisionSchema.exactOptional(),
});
export type RunbookInfo = z.infer<typeof RunbookInfoSchema>;

/** A runbook file the server could not load, and why; the valid ones are still served. */
export const InvalidRunbookSchema = z.object({ file: z.string(), error: z.string() });

// The runbook registry: published versions, reviews, deprecations ------------------------------

const Sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'must be a 64-character sha256 digest');

/** One published runbook version: who published it from where, its status and its reviews. */
export const RunbookVersionInfoSchema = z.object({
  name: z.string(),
  version: z.number().int(),
  digest: z.string(),
  description: z.string(),
  author: z.string(),
  publishedAt: z.string(),
  source: z.object({
    kind: z.enum(['file', 'git']),
    path: z.string(),
    commit: z.string().exactOptional(),
    clean: z.boolean().exactOptional(),
  }),
  status: z.enum(['pending', 'approved', 'rejected', 'deprecated']),
  reviews: z.array(
    z.object({
      reviewer: z.string(),
      decision: z.enum(['approve', 'reject']),
      digest: z.string(),
      comment: z.string(),
      at: z.string(),
    }),
  ),
  deprecated: z.object({ by: z.string(), reason: z.string(), at: z.string() }).exactOptional(),
  lastRunAt: z.string().exactOptional(),
});
export type RunbookVersionInfoBody = z.infer<typeof RunbookVersionInfoSchema>;
/** A version with the YAML as it was published: what a reviewer reads and `runbook diff` compares. */
export const RunbookVersionDetailSchema = RunbookVersionInfoSchema.extend({ yaml: z.string() });

export const PublishResultSchema = z.object({
  name: z.string(),
  version: z.number().int(),
  digest: z.string(),
  path: z.string(),
  outcome: z.enum(['published', 'unchanged']),
});

/** Runbook files to publish, all or nothing; `git` when they come from a repository's working tree. */
export const PublishBodySchema = z.strictObject({
  files: z
    .array(z.strictObject({ path: humanText('the file path', 500).pipe(z.string().min(1)), text: z.string() }))
    .min(1)
    .max(200),
  git: z
    .strictObject({
      commit: z.string().regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/, 'must be a full git commit id'),
      clean: z.boolean(),
    })
    .exactOptional(),
});
export type PublishBody = z.input<typeof PublishBodySchema>;

export const ReviewBodySchema = z.strictObject({
  decision: z.enum(['approve', 'reject']),
  /** The digest of the version the reviewer read. */
  digest: Sha256Schema,
  comment: humanText('the comment', 2000),
});
export const DeprecateBodySchema = z.strictObject({ reason: humanText('the reason', 500) });
export const RunbookVersionsQuerySchema = z.strictObject({
  name: RunbookNameSchema.exactOptional(),
});
export const RunbookVersionParamsSchema = z.strictObject({
  name: RunbookNameSchema,
  version: z.coerce.number().int().positive().max(2_147_483_647),
});

export const AuditRecordSchema = z.object({
  seq: z.number().int(),
  eventId: z.string(),
  executionId: z.string().nullable(),
  type: z.string(),
  actor: z.string(),
  at: z.string(),
  data: z.record(z.string(), z.unknown()),
  prevHash: z.string(),
  hash: z.string(),
  recordedAt: z.string(),
});
export type AuditRecordInfo = z.infer<typeof AuditRecordSchema>;

// Requests -------------------------------------------------------------------------------------

export const LaunchBodySchema = z.strictObject({
  runbook: RunbookNameSchema,
  version: z.number().int().positive().exactOptional(),
  params: z.record(z.string().max(64), ParamValueSchema).default({}),
  targets: z
    .array(z.string().regex(/^[\w.:@-]{1,128}$/, 'must be an instance id or a Name tag value'))
    .max(50)
    .exactOptional(),
  reason: humanText('the reason', 500),
});
export type LaunchBody = z.input<typeof LaunchBodySchema>;

export const VoteBodySchema = z.strictObject({
  decision: z.enum(['approve', 'reject']),
  planDigest: z.string().regex(/^[0-9a-f]{64}$/, 'must be the 64-character plan digest shown with the plan'),
  comment: humanText('the comment', 500).exactOptional(),
});
export type VoteBody = z.input<typeof VoteBodySchema>;

export const CancelBodySchema = z.strictObject({ reason: humanText('the reason', 500) });

const LimitSchema = z.coerce.number().int().positive().max(10_000);

export const ListExecutionsQuerySchema = z.strictObject({
  status: ExecutionStatusSchema.exactOptional(),
  limit: LimitSchema.exactOptional(),
});
export const AuditListQuerySchema = z.strictObject({
  executionId: ExecutionIdSchema.exactOptional(),
  afterSeq: z.coerce.number().int().nonnegative().exactOptional(),
  limit: LimitSchema.exactOptional(),
});
/**
 * GET /api/audit/verify: `allSignatures=true` checks every checkpoint's signature, not only the
 * newest one's (a checkpoint row forged below a genuine one; see src/store/audit-log.ts verify).
 */
export const AuditVerifyQuerySchema = z.strictObject({
  allSignatures: z.enum(['true', 'false']).exactOptional(),
});
/**
 * GET /api/audit/export: the format, and optionally a time range (ISO 8601, `since` inclusive,
 * `until` exclusive, on when each event happened) and one execution. The range is checked by the
 * store (src/store/audit-export.ts), which names a bad time in one sentence.
 */
export const AuditExportQuerySchema = z.strictObject({
  format: z.enum(AUDIT_EXPORT_FORMATS),
  since: z.string().max(64).exactOptional(),
  until: z.string().max(64).exactOptional(),
  execution: ExecutionIdSchema.exactOptional(),
});
export const RunbookQuerySchema = z.strictObject({ version: z.coerce.number().int().positive().exactOptional() });
export const ExecutionParamsSchema = z.strictObject({ id: ExecutionIdSchema });
export const RunbookParamsSchema = z.strictObject({ name: RunbookNameSchema });
