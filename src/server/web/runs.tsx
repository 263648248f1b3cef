/** @jsxImportSource hono/jsx */
/**
 * /ui/runs: every run, filtered by runbook, operator, approver, instance, status and time range,
 * newest first, paged with an opaque token (store/run-queries.ts); readAudit, like `audit list`.
 * /ui/approvals: the runs waiting for a vote, for approvers (readRun), who may not read the log.
 * /ui/events and /ui/runs/:id/events: the live event streams the pages follow (server-sent events,
 * the same records as the API's streams, behind the session instead of a bearer token).
 */
import type { Context, Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { EXECUTION_STATUSES } from '../../core/execution.ts';
import { UserError } from '../../core/errors.ts';
import { awaitingApproval, listRuns } from '../../store/run-queries.ts';
import { viewFromAudit } from '../../core/execution-view.ts';
import { executionResource } from '../execution-resource.ts';
import { mayAct, requireAction } from './auth.ts';
import type { WebDeps, WebEnv } from './index.ts';
import { Page, html } from './layout.tsx';
import { RunTable, STATUS_LABEL, parseFilters, typed, withPage } from './parts.tsx';

const PAGE_SIZE = 50;
const KEEPALIVE_MS = 15_000;

export function runListPages(app: Hono<WebEnv>, deps: WebDeps): void {
  app.get('/ui/runs', async (c) => {
    await requireAction(c, 'readAudit', { kind: 'audit' });
    const query = c.req.queries();
    const { page, ...filters } = parseFilters(query, [
      'runbook',
      'operator',
      'approver',
      'instance',
      'status',
      'from',
      'to',
    ]);
    const result = await listRuns(deps.db, filters, { pageToken: page, limit: PAGE_SIZE });
    const field = (name: string, label: string, hint?: string) => (
      <div>
        <label for={`f-${name}`}>{label}</label>
        <input id={`f-${name}`} name={name} value={typed(query, name)} placeholder={hint} />
      </div>
    );
    return html(
      c,
      <Page title="Runs" user={c.get('user')} path="/ui/runs" live="/ui/events">
        <form class="filters" method="get" action="/ui/runs" role="search" aria-label="Filter runs">
          {field('runbook', 'Runbook', 'deploy-web')}
          {field('operator', 'Operator', 'alice')}
          {field('approver', 'Approver', 'bob')}
          {field('instance', 'Instance', 'i-0abc')}
          <div>
            <label for="f-status">Status</label>
            <select id="f-status" name="status">
              <option value="">any</option>
              {EXECUTION_STATUSES.map((s) => (
                <option value={s} selected={typed(query, 'status') === s}>
                  {STATUS_LABEL[s]}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label for="f-from">From (UTC)</label>
            <input id="f-from" name="from" type="date" value={typed(query, 'from').slice(0, 10)} />
          </div>
          <div>
            <label for="f-to">To (UTC, inclusive)</label>
            <input id="f-to" name="to" type="date" value={typed(query, 'to').slice(0, 10)} />
          </div>
          <div>
            <button type="submit">Filter</button> <a href="/ui/runs">Clear</a>
          </div>
        </form>
        <RunTable runs={result.runs} caption={page ? 'Runs (older page), newest first' : 'Runs, newest first'} />
        <nav class="pager" aria-label="Pages">
          {page ? <a href={withPage('/ui/runs', query, undefined)}>Newest</a> : null}
          {result.next ? (
            <a href={withPage('/ui/runs', query, result.next)} rel="next">
              Older runs
            </a>
          ) : null}
          <a href={withPage('/ui/runs', query, page)}>Refresh</a>
        </nav>
      </Page>,
    );
  });

  app.get('/ui/approvals', async (c) => {
    await requireAction(c, 'readRun', { kind: 'catalog' });
    const user = c.get('user');
    const runs = await awaitingApproval(deps.db);
    const mine = [];
    for (const r of runs) {
      if (r.operator === user.id) continue;
      // The facts the vote is decided on (approval groups, risk, approvals so far), as on the run page.
      const view = viewFromAudit(await deps.audit.list({ executionId: r.id, limit: 1_000 }));
      if (!view || view.votes.some((v) => v.approver === user.id)) continue;
      const resource = executionResource(r.id, view);
      if ((await mayAct(c, 'approve', resource)) || (await mayAct(c, 'reject', resource))) mine.push(r);
    }
    return html(
      c,
      <Page title="Waiting for approval" user={user} path="/ui/approvals" live="/ui/events">
        <p>Runs you may approve or reject. Your own runs are not listed: nobody approves their own change.</p>
        <RunTable runs={mine} caption="Runs waiting for a vote, newest first" />
        <p>
          <a href="/ui/approvals">Refresh</a>
        </p>
      </Page>,
    );
  });

  /** Records after the reader's last seen one, as server-sent events, then new ones as they are appended. */
  const follow = (
    c: Context<WebEnv>,
    executionId: string | undefined,
    visible: (executionId: string | null) => boolean,
  ) => {
    const lastEventId = c.req.header('last-event-id');
    let cursor = 0;
    if (lastEventId !== undefined) {
      if (!/^\d{1,15}$/.test(lastEventId))
        throw new UserError('USAGE', 'the Last-Event-ID header must be a record number');
      cursor = Number(lastEventId);
    } else {
      cursor = deps.tail.head();
    }
    return streamSSE(c, async (stream) => {
      const aborted = new AbortController();
      stream.onAbort(() => aborted.abort());
      const keepalive = setInterval(() => void stream.write(': keep-alive\n\n'), KEEPALIVE_MS);
      try {
        while (!aborted.signal.aborted) {
          const head = deps.tail.head();
          const page = await deps.audit.list({
            ...(executionId !== undefined ? { executionId } : {}),
            afterSeq: cursor,
            limit: 500,
          });
          for (const r of page) {
            cursor = r.seq;
            // Only what a page needs to know something changed: the record's number, type and run.
            if (visible(r.executionId)) {
              await stream.writeSSE({
                id: String(r.seq),
                event: 'audit',
                data: JSON.stringify({ seq: r.seq, type: r.type, executionId: r.executionId }),
              });
            }
          }
          if (page.length === 500) continue;
          if (!(await deps.tail.waitBeyond(Math.max(head, cursor), aborted.signal))) break;
        }
      } finally {
        clearInterval(keepalive);
      }
    });
  };

  app.get('/ui/events', async (c) => {
    await requireAction(c, 'readRun', { kind: 'catalog' });
    return follow(c, undefined, (id) => id !== null);
  });
  app.get('/ui/runs/:id/events', async (c) => {
    const id = c.req.param('id');
    if (!/^[A-Za-z0-9._:-]{1,200}$/.test(id)) throw new UserError('USAGE', 'that is not a run id');
    await requireAction(c, 'readRun', { kind: 'execution', id });
    return follow(c, id, () => true);
  });
}
