/**
 * The audit report over the API (GET /api/audit/report): what `mechanic audit report` asks for and
 * gets. The shape is src/core/reports.ts's Report; this schema is what the contract, the typed
 * client and the OpenAPI document see.
 */
import { z } from 'zod';
import { EXECUTION_STATUSES } from '../core/execution.ts';
import { FLAG_KINDS } from '../core/reports.ts';

/** A day (YYYY-MM-DD, in the server's report time zone) or an ISO time; parseReportRange reads them. */
export const ReportQuerySchema = z.strictObject({
  from: z.string().max(100).optional(),
  to: z.string().max(100).optional(),
});

const Counts = z.record(z.enum(EXECUTION_STATUSES), z.number().int().nonnegative());

export const ReportSchema = z.object({
  range: z.object({ from: z.string(), to: z.string() }),
  timeZone: z.string(),
  workingHours: z.string(),
  truncated: z.boolean(),
  totals: z.object({ runs: z.number().int().nonnegative(), byStatus: Counts }),
  mostRun: z.array(z.object({ runbook: z.string(), runs: z.number().int() })),
  mostFailing: z.array(
    z.object({ runbook: z.string(), failed: z.number().int(), ended: z.number().int(), rate: z.number() }),
  ),
  approvalWaits: z.array(
    z.object({
      runbook: z.string(),
      decided: z.number().int(),
      medianSeconds: z.number(),
      p95Seconds: z.number(),
      maxSeconds: z.number(),
      expired: z.number().int(),
    }),
  ),
  waitDistribution: z.array(
    z.object({
      label: z.string(),
      fromSeconds: z.number(),
      toSeconds: z.number().nullable(),
      runs: z.number().int(),
    }),
  ),
  perDay: z.array(z.object({ day: z.string(), counts: Counts, total: z.number().int() })),
  flags: z.array(z.object({ kind: z.enum(FLAG_KINDS), runs: z.array(z.string()), why: z.string() })),
});
