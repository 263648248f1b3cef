/**
 * GET /api/audit/report: the report of src/core/reports.ts over the API, for `mechanic audit
 * report` and scripts. Reading it takes readAudit, like the log it summarises; a range that cannot
 * be read is a 400 with the sentence parseReportRange gives.
 */
import type { Hono } from 'hono';
import { DEFAULT_REPORT_SETTINGS, buildReport, parseReportRange, type ReportSettings } from '../../core/reports.ts';
import type { AuditStore } from '../../store/audit-log.ts';
import { loadReportInput } from '../../store/report-queries.ts';
import { register, type Env, type Guard } from '../route.ts';
import type { ReportPageSettings } from '../web/reports.tsx';

export function reportRoutes(
  app: Hono<Env>,
  guard: Guard,
  audit: Pick<AuditStore, 'db'>,
  settings?: ReportPageSettings,
): void {
  const reportSettings: ReportSettings = { ...DEFAULT_REPORT_SETTINGS, ...(settings ?? {}) };
  register(app, guard, 'auditReport', {
    authorize: () => ['readAudit', { kind: 'audit' }],
    run: async (_c, { query }) => {
      const range = parseReportRange(query, new Date(), reportSettings.timeZone);
      return { report: buildReport(await loadReportInput(audit.db, range), reportSettings) };
    },
  });
}
