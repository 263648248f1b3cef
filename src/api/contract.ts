/**
 * The mechanic API: every route, what it takes and what it answers. The server registers exactly
 * these routes (src/server/routes/*), the typed client calls them by name (src/api/client.ts), and
 * /api/openapi.json is generated from this table.
 */
import { z } from 'zod';
import { AuditVerdictSchema } from '../core/audit-chain.ts';
import { EvidencePackSchema } from '../core/evidence-pack.ts';
import { ReportQuerySchema, ReportSchema } from './report-schema.ts';
import {
  ApprovalStateSchema,
  AuditListQuerySchema,
  AuditVerifyQuerySchema,
  AuditExportQuerySchema,
  AuditRecordSchema,
  CancelBodySchema,
  ExecutionParamsSchema,
  ExecutionStatusSchema,
  ExecutionSummarySchema,
  ExecutionViewSchema,
  InvalidRunbookSchema,
  LaunchBodySchema,
  ListExecutionsQuerySchema,
  PlanSchema,
  PrincipalSchema,
  RunbookInfoSchema,
  RunbookParamsSchema,
  RunbookQuerySchema,
  VoteBodySchema,
  DeprecateBodySchema,
  PublishBodySchema,
  PublishResultSchema,
  ReviewBodySchema,
  RunbookVersionDetailSchema,
  RunbookVersionInfoSchema,
  RunbookVersionParamsSchema,
  RunbookVersionsQuerySchema,
} from './schemas.ts';

export interface RouteSpec {
  readonly method: 'GET' | 'POST';
  /** Hono-style path: `:name` segments are path parameters. */
  readonly path: string;
  readonly summary: string;
  readonly params?: z.ZodType;
  readonly query?: z.ZodType;
  readonly body?: z.ZodType;
  readonly response: z.ZodType;
  /** The success status; every error answers with ErrorBodySchema and a 4xx/5xx status. */
  readonly status: 200 | 201;
}

function route<const T extends RouteSpec>(spec: T): T {
  return spec;
}

export const routes = {
  me: route({
    method: 'GET',
    path: '/api/me',
    summary: 'Who the caller is',
    response: z.object({ user: PrincipalSchema }),
    status: 200,
  }),
  listRunbooks: route({
    method: 'GET',
    path: '/api/runbooks',
    summary:
      'The runbooks that can be launched, each with whether the caller may launch it (and the reason if not), and the files that could not be loaded',
    response: z.object({ runbooks: z.array(RunbookInfoSchema), invalid: z.array(InvalidRunbookSchema) }),
    status: 200,
  }),
  getRunbook: route({
    method: 'GET',
    path: '/api/runbooks/:name',
    summary: 'One runbook (the newest version unless ?version= names one)',
    params: RunbookParamsSchema,
    query: RunbookQuerySchema,
    response: z.object({ runbook: RunbookInfoSchema }),
    status: 200,
  }),
  publishRunbooks: route({
    method: 'POST',
    path: '/api/runbooks',
    summary: 'Publish runbook versions, all or nothing; a published version never changes',
    body: PublishBodySchema,
    response: z.object({ published: z.array(PublishResultSchema) }),
    status: 201,
  }),
  listRunbookVersions: route({
    method: 'GET',
    path: '/api/runbook-versions',
    summary: 'Every published version (of one runbook with ?name=): status, author, reviews, last run',
    query: RunbookVersionsQuerySchema,
    response: z.object({ versions: z.array(RunbookVersionInfoSchema) }),
    status: 200,
  }),
  getRunbookVersion: route({
    method: 'GET',
    path: '/api/runbooks/:name/versions/:version',
    summary: 'One published version, with its YAML as published',
    params: RunbookVersionParamsSchema,
    response: z.object({ version: RunbookVersionDetailSchema }),
    status: 200,
  }),
  reviewRunbook: route({
    method: 'POST',
    path: '/api/runbooks/:name/versions/:version/reviews',
    summary: 'Approve or reject a version someone else published, naming the digest reviewed',
    params: RunbookVersionParamsSchema,
    body: ReviewBodySchema,
    response: z.object({ version: RunbookVersionInfoSchema }),
    status: 200,
  }),
  deprecateRunbook: route({
    method: 'POST',
    path: '/api/runbooks/:name/versions/:version/deprecation',
    summary: 'Withdraw a version: it can no longer be launched',
    params: RunbookVersionParamsSchema,
    body: DeprecateBodySchema,
    response: z.object({ version: RunbookVersionInfoSchema }),
    status: 200,
  }),
  plan: route({
    method: 'POST',
    path: '/api/plans',
    summary: 'Plan a run without starting it: exactly what approvers would be shown',
    body: LaunchBodySchema,
    response: z.object({ plan: PlanSchema, planDigest: z.string() }),
    status: 200,
  }),
  launch: route({
    method: 'POST',
    path: '/api/executions',
    summary: 'Plan and start a run; it waits for approval',
    body: LaunchBodySchema,
    response: z.object({ executionId: z.string(), plan: PlanSchema, planDigest: z.string() }),
    status: 201,
  }),
  listExecutions: route({
    method: 'GET',
    path: '/api/executions',
    summary: 'Executions, newest first',
    query: ListExecutionsQuerySchema,
    response: z.object({ executions: z.array(ExecutionSummarySchema) }),
    status: 200,
  }),
  getExecution: route({
    method: 'GET',
    path: '/api/executions/:id',
    summary: 'One execution: plan, approvals, steps, per-instance status and output',
    params: ExecutionParamsSchema,
    response: z.object({ execution: ExecutionViewSchema }),
    status: 200,
  }),
  vote: route({
    method: 'POST',
    path: '/api/executions/:id/votes',
    summary: 'Approve or reject exactly the plan whose digest the body names',
    params: ExecutionParamsSchema,
    body: VoteBodySchema,
    response: z.object({ approval: ApprovalStateSchema }),
    status: 200,
  }),
  cancel: route({
    method: 'POST',
    path: '/api/executions/:id/cancel',
    summary: 'Stop a run waiting for approval, or cancel the command of the step it is running',
    params: ExecutionParamsSchema,
    body: CancelBodySchema,
    response: z.object({ status: ExecutionStatusSchema }),
    status: 200,
  }),
  executionPack: route({
    method: 'GET',
    path: '/api/executions/:id/pack',
    summary:
      "One run's evidence pack: its events, runbook version, votes and the chain proof to a signed checkpoint (mechanic audit verify-pack checks it offline)",
    params: ExecutionParamsSchema,
    response: EvidencePackSchema,
    status: 200,
  }),
  listAudit: route({
    method: 'GET',
    path: '/api/audit',
    summary: 'Audit records in chain order',
    query: AuditListQuerySchema,
    response: z.object({ records: z.array(AuditRecordSchema) }),
    status: 200,
  }),
  verifyAudit: route({
    method: 'GET',
    path: '/api/audit/verify',
    summary:
      "Walk the hash chain and report the first broken link; checks the newest checkpoint's signature, or every one's with allSignatures=true",
    query: AuditVerifyQuerySchema,
    response: z.object({ verdict: AuditVerdictSchema }),
    status: 200,
  }),
  auditReport: route({
    method: 'GET',
    path: '/api/audit/report',
    summary:
      'What is run most, fails most and waits longest for approval over a range (from/to: a day or an ISO time, at most 366 days), runs per day by status, and the runs a reviewer should look at',
    query: ReportQuerySchema,
    response: z.object({ report: ReportSchema }),
    status: 200,
  }),
} as const;

export type Routes = typeof routes;
export type RouteName = keyof Routes;

/**
 * Server-sent event streams, fed by the audit log: each event is one audit record (`id` = its seq,
 * `event: audit`, `data` = the record as JSON). Reconnect with `Last-Event-ID` to resume after it.
 */
export const streams = {
  all: { path: '/api/events', summary: 'Every audit record the caller may see, live' },
  execution: {
    path: '/api/executions/:id/events',
    summary: "One execution's audit records from its first, then live",
  },
} as const;

/**
 * Downloads: answers streamed as files rather than parsed JSON (the typed client's `download`).
 * Errors before the first byte are the usual error body and status; a failure after it cuts the
 * connection, so a reader never takes a truncated file for a whole one.
 */
export const downloads = {
  auditExport: {
    path: '/api/audit/export',
    summary:
      'The audit log (or a time range, or one execution) as JSON Lines, CSV, OCSF API Activity JSON or Parquet for Amazon Security Lake, streamed',
    query: AuditExportQuerySchema,
  },
} as const;
export type DownloadName = keyof typeof downloads;

/**
 * Every route above and every event-stream connection is rate-limited per signed-in caller and per
 * client address (a stream takes one request of the budget, however many events it carries). Over
 * the budget the answer is this status, a Retry-After header in whole seconds, and the usual error
 * body with code RATE_LIMITED and one sentence ("too many requests from alice; try again in 3 s").
 */
export const rateLimited = { status: 429, code: 'RATE_LIMITED', retryAfterHeader: 'retry-after' } as const;

type Input<T, K extends string> = T extends Record<K, infer S extends z.ZodType> ? z.input<S> : undefined;
/** What a caller passes to a route: its path parameters, query and body, each typed by the contract. */
export type RouteInput<N extends RouteName> = {
  params: Input<Routes[N], 'params'>;
  query: Input<Routes[N], 'query'>;
  body: Input<Routes[N], 'body'>;
};
export type RouteOutput<N extends RouteName> = z.output<Routes[N]['response']>;

type DeepReadonly<T> = T extends readonly (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;
/** What a server handler may answer: the contract's shape, read-only as the core's types are. */
export type RouteAnswer<N extends RouteName> = DeepReadonly<RouteOutput<N>>;
