/** @jsxImportSource hono/jsx */
/**
 * /ui/exports: the audit exports of `mechanic audit export` as downloads from the browser. The form
 * needs no script: it asks /ui/exports/download, which checks the choices and sends the browser to
 * the file's own address, /ui/exports/audit.{jsonl,csv,ocsf.json,parquet}?since=&until=&execution=,
 * which streams the export (the same store reader and encoders as the API) with a file name.
 * Every step asks for `exportAudit` (channel web); a refusal is recorded and answered with a 403 page.
 */
import type { Context, Hono } from 'hono';
import { ExecutionIdSchema } from '../../api/schemas.ts';
import {
  AUDIT_EXPORT_FORMATS,
  EXPORT_MEDIA,
  exportRange,
  type AuditExportFormat,
  type AuditExportQuery,
} from '../../core/audit-export.ts';
import { UserError } from '../../core/errors.ts';
import { exportResponse } from '../routes/audit.ts';
import { requireAction } from './auth.ts';
import type { WebDeps, WebEnv } from './index.ts';
import { Page, html } from './layout.tsx';

const DESCRIBE: Readonly<Record<AuditExportFormat, string>> = {
  jsonl: 'JSON Lines — every record exactly as stored, hashes included, to re-verify the chain',
  csv: 'CSV — one row per record, for a spreadsheet (cells that would start a formula are made text)',
  ocsf: 'OCSF JSON — API Activity events (OCSF 1.1.0, class 6003) for a security data lake',
  parquet: 'Parquet — the OCSF events for an Amazon Security Lake custom source',
};

/** The form's text fields: an empty field means "not set". */
function fields(c: Context<WebEnv>): AuditExportQuery {
  const value = (name: string) => {
    const v = c.req.query(name)?.trim();
    return v === undefined || v === '' ? undefined : v;
  };
  const executionId = value('execution');
  if (executionId !== undefined && !ExecutionIdSchema.safeParse(executionId).success) {
    throw new UserError(
      'USAGE',
      `"${executionId.slice(0, 100)}" is not an execution id; they look like mx-ab12cd34ef (see the runs)`,
    );
  }
  const q = { since: value('since'), until: value('until'), executionId };
  // A malformed or reversed range is a 400 page with one sentence, before any download starts.
  exportRange(q);
  return q;
}

function queryString(q: AuditExportQuery): string {
  const qs = new URLSearchParams();
  if (q.since !== undefined) qs.set('since', q.since);
  if (q.until !== undefined) qs.set('until', q.until);
  if (q.executionId !== undefined) qs.set('execution', q.executionId);
  return qs.size > 0 ? `?${qs.toString()}` : '';
}

/** Where each format's file is downloaded from. */
export function exportPath(format: AuditExportFormat, q: AuditExportQuery = {}): string {
  return `/ui/exports/audit.${EXPORT_MEDIA[format].extension}${queryString(q)}`;
}

function ExportForm() {
  return (
    <form class="filters" method="get" action="/ui/exports/download" aria-label="Export the audit log">
      <fieldset>
        <legend>Format</legend>
        {AUDIT_EXPORT_FORMATS.map((f, i) => (
          <div class="field">
            <input type="radio" id={`format-${f}`} name="format" value={f} checked={i === 0} />{' '}
            <label for={`format-${f}`}>{DESCRIBE[f]}</label>
          </div>
        ))}
      </fieldset>
      <div class="field">
        <label for="export-since">Since</label>
        <input id="export-since" name="since" aria-describedby="export-hint" size={24} />
      </div>
      <div class="field">
        <label for="export-until">Until (excluded)</label>
        <input id="export-until" name="until" aria-describedby="export-hint" size={24} />
      </div>
      <div class="field">
        <label for="export-execution">One execution</label>
        <input id="export-execution" name="execution" aria-describedby="export-hint" size={16} />
      </div>
      <button type="submit">Download</button>
      <p id="export-hint" class="muted">
        Leave a field empty for no limit. Times are ISO 8601 (2026-11-30 or 2026-11-30T08:00:00Z; UTC without an offset)
        and compare with when each event happened; an execution id looks like mx-ab12cd34ef.
      </p>
    </form>
  );
}

export function exportPages(app: Hono<WebEnv>, deps: WebDeps): void {
  app.get('/ui/exports', async (c) => {
    await requireAction(c, 'exportAudit', { kind: 'audit' });
    return html(
      c,
      <Page title="Exports" user={c.get('user')} path="/ui/exports">
        <p>
          The audit log, or a range of it, or one execution, as a file. The export streams: a whole log downloads
          without the server holding it.
        </p>
        <ExportForm />
        <h2>The whole log</h2>
        <ul>
          {AUDIT_EXPORT_FORMATS.map((f) => (
            <li>
              <a href={exportPath(f)} download>
                audit.{EXPORT_MEDIA[f].extension}
              </a>{' '}
              — {DESCRIBE[f]}
            </li>
          ))}
        </ul>
      </Page>,
    );
  });

  app.get('/ui/exports/download', async (c) => {
    await requireAction(c, 'exportAudit', { kind: 'audit' });
    const requested = c.req.query('format');
    const format = AUDIT_EXPORT_FORMATS.find((f) => f === requested);
    if (!format) {
      throw new UserError('USAGE', `choose a format: ${AUDIT_EXPORT_FORMATS.join(', ')}`);
    }
    return c.redirect(exportPath(format, fields(c)), 303);
  });

  for (const format of AUDIT_EXPORT_FORMATS) {
    app.get(exportPath(format), async (c) => {
      await requireAction(c, 'exportAudit', { kind: 'audit' });
      return exportResponse(deps.audit, fields(c), format);
    });
  }
}
