/**
 * The confirm page of a high-risk approval. One click in Slack never approves a high-risk run:
 * the click mints a single-use ticket, bound to the clicker's mechanic identity and to the plan
 * digest on the button, that lives five minutes. Its link opens this page on the API server,
 * where the approver signs in with OIDC (the server's browser sign-in, src/server/web-session.ts),
 * must be the very person the ticket was made for, sees the whole plan — every script as it will
 * run, the targets, role, lifetime and digest — and confirms it. The vote then takes the same
 * path as every other (policies with channel "web", the run's rules, the workflow's validator),
 * as the signed-in user with the groups their identity provider gives them.
 */
import { Hono, type Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from 'pino';
import type { User } from '../authz/users.ts';
import type { ExecutionView } from '../core/execution.ts';
import { isMechanicError } from '../core/errors.ts';
import { planParamText } from '../core/params.ts';
import type { PlannedStep } from '../core/plan.ts';
import { plannedStepNotes } from '../core/step-controls-text.ts';
import { rateControlText } from '../core/targets.ts';
import { neutralize } from '../core/text.ts';
import type { WebSessions } from '../server/web-session.ts';
import type { SlackExecutions } from './interactions.ts';
import { runbookMeta } from './message.ts';
import type { ConfirmTicket, SlackState } from './state.ts';

export interface ConfirmDeps {
  readonly state: SlackState;
  readonly sessions: Pick<WebSessions, 'userOf' | 'loginPath'>;
  readonly executions: SlackExecutions;
  readonly log: Logger;
  readonly now?: () => number;
}

/** Text for HTML: neutralised (no control, bidi or invisible characters) and entity-escaped. */
function h(s: string): string {
  return neutralize(s).replace(
    /[&<>"']/g,
    (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!,
  );
}
/** Multi-line text (scripts) keeps its line breaks. */
function hBlock(s: string): string {
  return neutralize(s, { multiline: true }).replace(
    /[&<>"']/g,
    (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!,
  );
}

function html(c: Context, status: ContentfulStatusCode, title: string, body: string): Response {
  c.header('cache-control', 'no-store');
  // Nothing but this page's own form: no scripts at all, no framing, nothing loaded from elsewhere.
  c.header(
    'content-security-policy',
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  );
  c.header('referrer-policy', 'no-referrer');
  return c.html(
    `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${h(title)} — mechanic</title>` +
      '<style>body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}' +
      'pre{background:#f4f4f4;padding:.6rem;overflow:auto}th{text-align:left;padding-right:1rem}' +
      'button{font-size:1rem;padding:.5rem 1.2rem}</style></head>' +
      `<body><h1>${h(title)}</h1>${body}</body></html>`,
    status,
  );
}

function sentence(text: string): string {
  return `<p role="status">${h(text)}</p>`;
}

function planPage(view: ExecutionView, ticket: ConfirmTicket, user: User): string {
  const p = view.plan;
  const meta = runbookMeta(view);
  const rows: [string, string][] = [
    ['Execution', p.executionId],
    ['Runbook', `${p.runbook.name}@${p.runbook.version} — ${p.runbook.description}`],
    ['Risk', meta.risk],
    ['Owners', meta.owners.join(', ') || 'none named'],
    ['Approval groups', meta.approvalGroups.join(', ') || 'any approver'],
    ['Requested by', p.requester],
    ['Reason', p.reason],
    ['Role', `${p.roleArn} in ${p.region}`],
    ['Credentials live', `${Math.round(p.budgetSeconds / 60)} minutes`],
    [
      'Approvals',
      view.approval.status === 'rejected'
        ? `rejected by ${view.approval.by}`
        : `${view.approval.approvedBy.length} of ${p.approval.required}${view.approval.approvedBy.length ? ` (${view.approval.approvedBy.join(', ')})` : ''}`,
    ],
    ['Plan digest', view.planDigest],
  ];
  const params = Object.entries(p.params)
    .map(([k, v]) =>
      // A secret's value is only the name of an SSM parameter, read on the instance: said as mechanic plan says it.
      p.secretParams?.includes(k)
        ? `<tr><th>${h(k)}</th><td>${h(planParamText(k, v, p.secretParams))}</td></tr>`
        : `<tr><th>${h(k)}</th><td><code>${h(String(v))}</code></td></tr>`,
    )
    .join('');
  const targets = p.targets.map((t) => `<li>${h(t.name ? `${t.name} (${t.instanceId})` : t.instanceId)}</li>`).join('');
  // As mechanic plan says them: a skipped step is one line saying why, never its script (it is never
  // sent); the others their timeout, rate control, condition, retries and continueOnError, then the script.
  const step = (s: PlannedStep, phase: string): string => {
    if (s.skipped !== undefined) return `<h3>${h(s.name)}${phase} — ${h(plannedStepNotes(s).join('; '))}</h3>`;
    const notes = [rateControlText(s, p.targets.length), ...plannedStepNotes(s)].filter(
      (n): n is string => n !== undefined,
    );
    return (
      `<h3>${h(s.name)}${phase} — up to ${s.timeoutSeconds} s</h3>` +
      (notes.length ? `<ul>${notes.map((n) => `<li>${h(n)}</li>`).join('')}</ul>` : '') +
      `<pre><code>${hBlock(s.script)}</code></pre>`
    );
  };
  const steps = [...p.steps.map((s) => step(s, '')), ...p.onFailure.map((s) => step(s, ' (on failure)'))].join('');
  return (
    `<p>Signed in as <strong>${h(user.id)}</strong>. You are approving this plan of a <strong>high-risk</strong> runbook. ` +
    'Read it: this is exactly what will run.</p>' +
    `<table>${rows.map(([k, v]) => `<tr><th>${h(k)}</th><td>${h(v)}</td></tr>`).join('')}</table>` +
    (params ? `<h2>Parameters</h2><table>${params}</table>` : '') +
    `<h2>Targets (${p.targets.length})</h2><ul>${targets}</ul>` +
    `<h2>Steps</h2>${steps}` +
    `<form method="post" action="/slack/confirm/${encodeURIComponent(ticket.token)}">` +
    `<input type="hidden" name="digest" value="${h(view.planDigest)}">` +
    '<button type="submit" name="decision" value="approve">Approve this plan</button></form>'
  );
}

export function confirmRoutes(deps: ConfirmDeps): Hono {
  const app = new Hono();
  const now = () => deps.now?.() ?? Date.now();
  const record = async (user: User | undefined, ticket: ConfirmTicket | undefined, code: string, reason: string) => {
    try {
      await deps.executions.auditRefusal(
        user ?? { id: 'web:anonymous', displayName: 'browser', roles: [] },
        ticket?.executionId ?? null,
        'approval.refused',
        { code, reason, channel: 'web', ...(ticket ? { executionId: ticket.executionId } : {}) },
      );
    } catch (e) {
      deps.log.error({ err: e }, 'could not record a refused confirmation');
    }
  };
  const gone = async (c: Context, user: User | undefined) => {
    const why = 'this confirm link is used, expired or unknown; click Approve in Slack again for a new one';
    await record(user, undefined, 'CONFIRM_LINK_INVALID', why);
    return html(c, 410, 'Link no longer valid', sentence(`${why[0]!.toUpperCase()}${why.slice(1)}.`));
  };
  /** The ticket, the signed-in user, and that they are the one it was made for; or the answer. */
  const check = async (c: Context): Promise<{ ticket: ConfirmTicket; user: User } | Response> => {
    const token = c.req.param('token') ?? '';
    const user = deps.sessions.userOf(c.req.raw);
    const ticket = /^[A-Za-z0-9_-]{43}$/.test(token) ? deps.state.peekTicket(token, now()) : undefined;
    if (!ticket) return gone(c, user);
    if (!user) return c.redirect(deps.sessions.loginPath(`/slack/confirm/${token}`), 302);
    if (user.id !== ticket.userId) {
      const why = `this link was made for ${ticket.userId}, and you are signed in as ${user.id}; only they can use it`;
      await record(user, ticket, 'CONFIRM_WRONG_USER', why);
      return html(c, 403, 'Not your link', sentence(`${why[0]!.toUpperCase()}${why.slice(1)}.`));
    }
    return { ticket, user };
  };

  app.get('/:token', async (c) => {
    const checked = await check(c);
    if (checked instanceof Response) return checked;
    const { ticket, user } = checked;
    let view: ExecutionView;
    try {
      view = await deps.executions.approvalView(ticket.executionId);
    } catch (e) {
      if (!isMechanicError(e)) throw e;
      return html(c, 404, 'No such run', sentence(`${e.message}.`));
    }
    if (view.planDigest !== ticket.planDigest) {
      const why = 'the plan of this run is not the one on the Slack button you clicked; review it again in Slack';
      await record(user, ticket, 'APPROVAL_PLAN_MISMATCH', why);
      return html(c, 409, 'The plan changed', sentence(`${why[0]!.toUpperCase()}${why.slice(1)}.`));
    }
    return html(
      c,
      200,
      `Approve ${view.plan.runbook.name}@${view.plan.runbook.version}?`,
      planPage(view, ticket, user),
    );
  });

  app.post('/:token', async (c) => {
    const checked = await check(c);
    if (checked instanceof Response) return checked;
    const { ticket, user } = checked;
    const form = await c.req.parseBody();
    if (form['digest'] !== ticket.planDigest || form['decision'] !== 'approve') {
      const why = 'the confirmed plan is not the plan of this link; open the link again and confirm what it shows';
      await record(user, ticket, 'APPROVAL_PLAN_MISMATCH', why);
      return html(c, 409, 'Not confirmed', sentence(`${why[0]!.toUpperCase()}${why.slice(1)}.`));
    }
    // Spent before the vote: a second submission, a reload or a replayed form finds nothing to use.
    if (!deps.state.useTicket(ticket.token, now())) return gone(c, user);
    try {
      const state = await deps.executions.vote(
        user,
        ticket.executionId,
        { decision: 'approve', planDigest: ticket.planDigest },
        { channel: 'web' },
      );
      const after =
        state.status === 'pending'
          ? `${state.missing} more approval${state.missing === 1 ? '' : 's'} needed`
          : state.status === 'approved'
            ? `approved by ${state.approvedBy.join(', ')}; it runs now`
            : 'the run is rejected';
      return html(
        c,
        200,
        'Approval recorded',
        sentence(`Your approval of ${ticket.executionId} is recorded; ${after}.`),
      );
    } catch (e) {
      if (!isMechanicError(e)) throw e;
      // The vote path recorded the refusal; the approver reads its one sentence.
      return html(c, 409, 'Not approved', sentence(`${e.message}.`));
    }
  });
  return app;
}
