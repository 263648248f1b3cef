import type { Hono } from 'hono';
import { downloads } from '../../api/contract.ts';
import { EXPORT_MEDIA, type AuditExportFormat } from '../../core/audit-export.ts';
import type { AuditStore } from '../../store/audit-log.ts';
import { auditExportChunks, exportRange, type AuditExportQuery } from '../../store/audit-export.ts';
import { parseInput, register, type Env, type Guard } from '../route.ts';

/** The download's file name: what and when, e.g. mechanic-audit-20260301T120000Z.ocsf.json. */
export function exportFileName(format: AuditExportFormat, now: Date = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `mechanic-audit-${stamp}.${EXPORT_MEDIA[format].extension}`;
}

/**
 * An export as an HTTP answer that streams: the range is checked and the first chunk read before
 * the status is sent, so a bad request or a database that fails at once is an error answer; a
 * failure later errors the stream, which cuts the connection (no valid end of a chunked body), so
 * no client takes the part it got for the whole. The stream pulls a page only when the client
 * reads, so a slow reader holds the export back instead of piling it up in memory.
 */
export async function exportResponse(
  audit: Pick<AuditStore, 'db'>,
  query: AuditExportQuery,
  format: AuditExportFormat,
  headers: Record<string, string> = {},
): Promise<Response> {
  exportRange(query);
  const chunks = auditExportChunks(audit.db, query, format);
  const first = await chunks.next();
  const body = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        if (first.done) controller.close();
        else controller.enqueue(first.value);
      },
      async pull(controller) {
        const next = await chunks.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
      async cancel() {
        await chunks.return(undefined);
      },
    },
    { highWaterMark: 1 },
  );
  return new Response(body, {
    status: 200,
    headers: {
      'content-type': EXPORT_MEDIA[format].type,
      'content-disposition': `attachment; filename="${exportFileName(format)}"`,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      ...headers,
    },
  });
}

export function auditRoutes(app: Hono<Env>, guard: Guard, audit: AuditStore): void {
  register(app, guard, 'listAudit', {
    authorize: () => ['readAudit', { kind: 'audit' }],
    run: async (_c, { query }) => ({ records: await audit.list(query) }),
  });
  register(app, guard, 'verifyAudit', {
    authorize: () => ['readAudit', { kind: 'audit' }],
    run: async (_c, { query }) => ({ verdict: await audit.verify({ allSignatures: query.allSignatures === 'true' }) }),
  });
  app.get(downloads.auditExport.path, async (c) => {
    // Authorization first: a caller who may not export learns nothing about valid filters.
    await guard(c, 'exportAudit', { kind: 'audit' });
    const q = parseInput(downloads.auditExport.query, c.req.query(), 'query');
    return exportResponse(audit, { since: q.since, until: q.until, executionId: q.execution }, q.format);
  });
}
