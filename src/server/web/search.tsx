/** @jsxImportSource hono/jsx */
/**
 * /ui/search: people and hosts. `?instance=i-0abc&from=&to=` answers "who ran anything on this host
 * in this range" (runs that targeted it, with their operators and approvers); `?person=alice`
 * answers "what did alice run or let run" (as operator or as approver). readAudit, like the list.
 */
import type { Hono } from 'hono';
import { UserError } from '../../core/errors.ts';
import type { ExecutionSummary } from '../../core/execution-index.ts';
import { listRuns } from '../../store/run-queries.ts';
import { requireAction } from './auth.ts';
import type { WebDeps, WebEnv } from './index.ts';
import { Page, html } from './layout.tsx';
import { RunTable, inert, parseFilters, typed, withPage } from './parts.tsx';

/** Who did what in a set of runs: each person with how many runs they requested and approved. */
function people(runs: readonly ExecutionSummary[]): { id: string; operated: number; approved: number }[] {
  const by = new Map<string, { id: string; operated: number; approved: number }>();
  const get = (id: string) => by.get(id) ?? (by.set(id, { id, operated: 0, approved: 0 }), by.get(id)!);
  for (const r of runs) {
    get(r.operator).operated++;
    for (const a of new Set(r.approvals)) get(a).approved++;
  }
  return [...by.values()].sort((a, b) => b.operated + b.approved - (a.operated + a.approved) || (a.id < b.id ? -1 : 1));
}

export function searchPage(app: Hono<WebEnv>, deps: WebDeps): void {
  app.get('/ui/search', async (c) => {
    await requireAction(c, 'readAudit', { kind: 'audit' });
    const query = c.req.queries();
    const { page, ...filters } = parseFilters(query, ['instance', 'person', 'from', 'to']);
    if (filters.instance !== undefined && filters.person !== undefined) {
      throw new UserError('USAGE', 'search for a host or for a person, not both at once');
    }
    const asked = filters.instance !== undefined || filters.person !== undefined;
    const result = asked ? await listRuns(deps.db, filters, { pageToken: page, limit: 100 }) : undefined;
    const subject = filters.instance !== undefined ? `on ${filters.instance}` : `by ${filters.person ?? ''}`;
    return html(
      c,
      <Page title="People and hosts" user={c.get('user')} path="/ui/search">
        <form class="filters" method="get" action="/ui/search" role="search" aria-label="Search runs by host or person">
          <div>
            <label for="s-instance">Instance</label>
            <input id="s-instance" name="instance" value={typed(query, 'instance')} placeholder="i-0abc" />
          </div>
          <div>
            <label for="s-person">or person</label>
            <input id="s-person" name="person" value={typed(query, 'person')} placeholder="alice" />
          </div>
          <div>
            <label for="s-from">From (UTC)</label>
            <input id="s-from" name="from" type="date" value={typed(query, 'from').slice(0, 10)} />
          </div>
          <div>
            <label for="s-to">To (UTC, inclusive)</label>
            <input id="s-to" name="to" type="date" value={typed(query, 'to').slice(0, 10)} />
          </div>
          <div>
            <button type="submit">Search</button>
          </div>
        </form>
        {result === undefined ? (
          <p>Name an instance to see who ran anything on it, or a person to see what they ran or approved.</p>
        ) : (
          <>
            {filters.instance !== undefined ? (
              result.runs.length > 0 ? (
                <table>
                  <caption>People who ran or approved anything {inert(subject)} (this page)</caption>
                  <thead>
                    <tr>
                      <th scope="col">Person</th>
                      <th scope="col">Runs requested</th>
                      <th scope="col">Runs approved</th>
                    </tr>
                  </thead>
                  <tbody>
                    {people(result.runs).map((p) => (
                      <tr>
                        <td>
                          <a href={`/ui/search?person=${encodeURIComponent(p.id)}`}>{inert(p.id)}</a>
                        </td>
                        <td>{p.operated}</td>
                        <td>{p.approved}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              ) : null
            ) : null}
            <RunTable
              runs={result.runs}
              caption={
                filters.person !== undefined
                  ? `Runs ${inert(filters.person)} requested or approved, newest first`
                  : `Runs ${inert(subject)}, newest first`
              }
            />
            <nav class="pager" aria-label="Pages">
              {page ? <a href={withPage('/ui/search', query, undefined)}>Newest</a> : null}
              {result.next ? (
                <a href={withPage('/ui/search', query, result.next)} rel="next">
                  Older runs
                </a>
              ) : null}
            </nav>
          </>
        )}
      </Page>,
    );
  });
}
