/** @jsxImportSource hono/jsx */
/**
 * /ui/runbooks: every runbook in the registry. /ui/runbooks/:name: its versions with digests,
 * authors, reviewers and status, the diff between two versions (`?from=1&to=2`, the same line diff
 * as `mechanic runbook diff`), and its runs. readAudit: this is the auditor's record of what was
 * reviewed and what ran.
 */
import type { Hono } from 'hono';
import { lineDiff } from '../../core/line-diff.ts';
import { UserError } from '../../core/errors.ts';
import type { RunbookVersionInfo } from '../../store/runbook-registry.ts';
import { listRuns } from '../../store/run-queries.ts';
import { requireAction } from './auth.ts';
import type { WebDeps, WebEnv } from './index.ts';
import { Page, html } from './layout.tsx';
import { RunTable, Time, inert, parseFilters, withPage } from './parts.tsx';

const NAME = /^[a-z0-9][a-z0-9-]{0,99}$/;

function versionNumber(name: string, value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^\d{1,6}$/.test(value) || Number(value) < 1) {
    throw new UserError('USAGE', `"${name}" must be a version number like 2`);
  }
  return Number(value);
}

function VersionTable(props: { readonly versions: readonly RunbookVersionInfo[] }) {
  return (
    <table>
      <caption>Versions, newest first</caption>
      <thead>
        <tr>
          <th scope="col">Version</th>
          <th scope="col">Status</th>
          <th scope="col">Digest</th>
          <th scope="col">Author</th>
          <th scope="col">Reviews</th>
          <th scope="col">Published</th>
          <th scope="col">Source</th>
        </tr>
      </thead>
      <tbody>
        {props.versions.map((v) => (
          <tr>
            <td>{v.version}</td>
            <td>
              {v.status}
              {v.deprecated ? (
                <div class="muted">
                  deprecated by {inert(v.deprecated.by)}: {inert(v.deprecated.reason)}
                </div>
              ) : null}
            </td>
            <td class="mono">{v.digest.slice(0, 19)}…</td>
            <td>{inert(v.author)}</td>
            <td>
              {v.reviews.length === 0 ? (
                <span class="muted">none</span>
              ) : (
                <ul>
                  {v.reviews.map((r) => (
                    <li>
                      {inert(r.reviewer)}: {r.decision}
                      {r.comment ? ` — ${inert(r.comment)}` : ''}
                    </li>
                  ))}
                </ul>
              )}
            </td>
            <td>
              <Time iso={v.publishedAt} />
            </td>
            <td class="mono">
              {inert(v.source.path)}
              {v.source.commit
                ? ` @ ${inert(v.source.commit.slice(0, 12))}${v.source.clean === false ? ' (unclean tree)' : ''}`
                : ''}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function runbookPages(app: Hono<WebEnv>, deps: WebDeps): void {
  app.get('/ui/runbooks', async (c) => {
    await requireAction(c, 'readAudit', { kind: 'audit' });
    const versions = deps.runbookStore ? await deps.runbookStore.versions() : undefined;
    const catalog = await deps.registry.list();
    const names = [...new Set([...(versions ?? []).map((v) => v.name), ...catalog.map((r) => r.runbook.name)])].sort();
    return html(
      c,
      <Page title="Runbooks" user={c.get('user')} path="/ui/runbooks">
        <table>
          <caption>Runbooks in the registry</caption>
          <thead>
            <tr>
              <th scope="col">Runbook</th>
              <th scope="col">Versions</th>
              <th scope="col">Newest</th>
            </tr>
          </thead>
          <tbody>
            {names.map((name) => {
              const mine = (versions ?? []).filter((v) => v.name === name);
              const launchable = catalog.find((r) => r.runbook.name === name);
              return (
                <tr>
                  <td>
                    <a href={`/ui/runbooks/${encodeURIComponent(name)}`}>{inert(name)}</a>
                  </td>
                  <td>{mine.length > 0 ? mine.length : 1}</td>
                  <td>
                    {mine[0]
                      ? `${mine[0].version} (${mine[0].status})`
                      : launchable
                        ? String(launchable.runbook.version)
                        : ''}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </Page>,
    );
  });

  app.get('/ui/runbooks/:name', async (c) => {
    const name = c.req.param('name');
    if (!NAME.test(name))
      throw new UserError('USAGE', 'that is not a runbook name; names are lower-case words joined by -');
    await requireAction(c, 'readAudit', { kind: 'audit' });
    const query = c.req.queries();
    const from = versionNumber('from', c.req.query('from'));
    const to = versionNumber('to', c.req.query('to'));
    const { page } = parseFilters(query, [], ['page', 'from', 'to']);
    const versions = deps.runbookStore ? (await deps.runbookStore.versions(name)).filter((v) => v.name === name) : [];
    if (versions.length === 0 && !(await deps.registry.list()).some((r) => r.runbook.name === name)) {
      throw new UserError('RUNBOOK_NOT_FOUND', `there is no runbook ${name} in the registry`);
    }
    let diff: string[] | undefined;
    if (from !== undefined || to !== undefined) {
      if (from === undefined || to === undefined)
        throw new UserError('USAGE', 'a diff needs both "from" and "to" versions');
      if (!deps.runbookStore)
        throw new UserError('USAGE', 'this server reads runbooks from a folder; it keeps no versions to compare');
      const [a, b] = await Promise.all([deps.runbookStore.version(name, from), deps.runbookStore.version(name, to)]);
      diff = lineDiff(a.yaml, b.yaml);
    }
    const runs = await listRuns(deps.db, { runbook: name }, { pageToken: page, limit: 50 });
    const newest = versions[0]?.version;
    const older = versions[1]?.version;
    return html(
      c,
      <Page title={`Runbook ${name}`} user={c.get('user')} path="/ui/runbooks">
        {versions.length > 0 ? (
          <VersionTable versions={versions} />
        ) : (
          <p>This runbook is read from a folder; it has no recorded versions.</p>
        )}
        {versions.length > 1 ? (
          <form
            class="filters"
            method="get"
            action={`/ui/runbooks/${encodeURIComponent(name)}`}
            aria-label="Compare versions"
          >
            <div>
              <label for="d-from">Compare version</label>
              <select id="d-from" name="from">
                {versions.map((v) => (
                  <option value={String(v.version)} selected={(from ?? older) === v.version}>
                    {v.version}
                  </option>
                ))}
              </select>
            </div>
            <div>
              <label for="d-to">with version</label>
              <select id="d-to" name="to">
                {versions.map((v) => (
                  <option value={String(v.version)} selected={(to ?? newest) === v.version}>
                    {v.version}
                  </option>
                ))}
              </select>
            </div>
            <div>
              <button type="submit">Show the difference</button>
            </div>
          </form>
        ) : null}
        {diff ? (
          <section aria-labelledby="diff-h">
            <h2 id="diff-h">
              Version {from} → {to}
            </h2>
            <pre class="diff" aria-label={`Lines removed start with -, lines added with +`}>
              {inert(diff.join('\n'), true)}
            </pre>
          </section>
        ) : null}
        <section aria-labelledby="runs-h">
          <h2 id="runs-h">Runs</h2>
          <RunTable runs={runs.runs} caption={`Runs of ${name}, newest first`} />
          <nav class="pager" aria-label="Pages">
            {page ? <a href={withPage(`/ui/runbooks/${encodeURIComponent(name)}`, query, undefined)}>Newest</a> : null}
            {runs.next ? (
              <a href={withPage(`/ui/runbooks/${encodeURIComponent(name)}`, query, runs.next)} rel="next">
                Older runs
              </a>
            ) : null}
          </nav>
        </section>
      </Page>,
    );
  });
}
