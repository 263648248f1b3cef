/**
 * The reporting web UI: server-rendered pages (Hono JSX, no client build step) under /ui, behind
 * the browser sign-in of web-session.ts. createApp mounts it when browser sign-in is configured.
 *
 * Every page module registers its routes with their full paths (`/ui/...`) on the app returned
 * here, through one line below (`reportPages(app, deps)`…). Before any page runs, the middleware
 * has: sent a browser without a session to sign in (and back), set `c.get('user')` and
 * `c.get('web')` (these deps), set a strict Content-Security-Policy, and, for every POST, checked
 * the form's CSRF token (`_csrf`, from `csrfField(c)`) against the session. A page asks for
 * permission with `requireAction(c, action, resource)` (auth.ts); a malformed input is a
 * `UserError('USAGE', sentence)`; both become a page with that one sentence (400/403/404…).
 */
import { Hono, type Context } from 'hono';
import type { Kysely } from 'kysely';
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { Channel } from '../../api/client.ts';
import type { Authorizer } from '../../authz/authorizer.ts';
import type { User } from '../../authz/users.ts';
import { isMechanicError } from '../../core/errors.ts';
import type { AuditStore } from '../../store/audit-log.ts';
import type { RunbookRegistry, RunbookStore } from '../../store/runbook-registry.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditTail } from '../audit-tail.ts';
import type { DenialRecorder } from '../denials.ts';
import { HTTP_STATUS } from '../errors.ts';
import type { ExecutionService } from '../executions.ts';
import type { WebSessions } from '../web-session.ts';
import { CSRF_FIELD, csrfTokens, webRouteOf, type CsrfTokens } from './auth.ts';
import { LIVE_SCRIPT, ProblemPage, STYLESHEET, html } from './layout.tsx';
import { runPage } from './run.tsx';
import { runbookPages } from './runbooks.tsx';
import { runListPages } from './runs.tsx';
import { searchPage } from './search.tsx';
import { reportPages, type ReportPageSettings } from './reports.tsx';
import { packPages } from './pack.ts';
import { exportPages } from './exports.tsx';

export interface WebDeps {
  readonly webSessions: WebSessions;
  readonly authorizer: Authorizer;
  readonly audit: AuditStore;
  /** The audit store's database, for the read-only queries of the pages (src/store/*-queries.ts). */
  readonly db: Kysely<Database>;
  /** Keys whose checkpoint signatures verify, by key id (the store's trusted keys); empty without signing. */
  readonly trustedKeys: ReadonlyMap<string, KeyObject>;
  readonly executions: ExecutionService;
  readonly registry: RunbookRegistry;
  readonly runbookStore?: RunbookStore | undefined;
  readonly tail: AuditTail;
  readonly denials: DenialRecorder;
  readonly log: Logger;
  /** CSRF tokens for forms; unset, digests of the session cookie (the same on every replica and after a restart). */
  readonly csrf?: CsrfTokens;
  /** The reports' working hours and time zone (config.reports); unset, Mon–Fri 08:00–18:00 UTC. */
  readonly reports?: ReportPageSettings | undefined;
}

export type WebEnv = {
  Variables: {
    user: User;
    /** Always 'web': the channel the policies see for the UI. */
    channel: Channel;
    refusalRecorded: boolean;
    /** The reason of a refusal requireAction recorded, for its page. */
    refusalReason: string | undefined;
    web: WebDeps & { readonly csrf: CsrfTokens };
  };
};

// The CSRF field and token live in auth.ts (page modules import them from there without a cycle).
export { CSRF_FIELD, csrfToken } from './auth.ts';

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  // Inline style attributes only (server-drawn SVG charts carry some); scripts stay strict.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

const TITLES: Partial<Record<number, string>> = {
  400: 'This request cannot be read',
  401: 'Sign-in needed',
  403: 'Not allowed',
  404: 'Not found',
  409: 'Not possible now',
  413: 'Too large',
  422: 'Not valid',
  429: 'Too many requests',
};

/** The /ui pages. Mount with `app.route('/', webRoutes(deps))`: the routes carry their full paths. */
export function webRoutes(deps: WebDeps): Hono<WebEnv> {
  const app = new Hono<WebEnv>();
  const web = { ...deps, csrf: deps.csrf ?? csrfTokens() };

  // Assets need no session: the sign-in refusal pages use the stylesheet too.
  app.get('/ui/assets/mechanic.css', (c) => {
    c.header('content-type', 'text/css; charset=utf-8');
    c.header('cache-control', 'public, max-age=3600');
    return c.body(STYLESHEET);
  });
  app.get('/ui/assets/live.js', (c) => {
    c.header('content-type', 'text/javascript; charset=utf-8');
    c.header('cache-control', 'public, max-age=3600');
    return c.body(LIVE_SCRIPT);
  });

  app.use('/ui/*', async (c: Context<WebEnv>, next) => {
    c.header('content-security-policy', CSP);
    c.header('cache-control', 'no-store');
    c.header('referrer-policy', 'same-origin');
    const user = deps.webSessions.userOf(c.req.raw);
    if (!user) {
      if (c.req.method === 'GET' || c.req.method === 'HEAD') {
        const url = new URL(c.req.url);
        return c.redirect(deps.webSessions.loginPath(`${url.pathname}${url.search}`), 302);
      }
      return html(
        c,
        ProblemPage({
          title: 'Sign-in needed',
          sentence: 'Your session has ended; sign in again, then send the form once more.',
        }),
        401,
      );
    }
    c.set('user', user);
    c.set('channel', 'web');
    c.set('refusalRecorded', false);
    c.set('refusalReason', undefined);
    c.set('web', web);
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      const type = c.req.header('content-type') ?? '';
      const form =
        type.startsWith('application/x-www-form-urlencoded') || type.startsWith('multipart/form-data')
          ? await c.req.parseBody()
          : {};
      const token = form[CSRF_FIELD];
      if (!web.csrf.check(c, typeof token === 'string' ? token : undefined)) {
        await recordRefusal(c, 403, 'FORBIDDEN', 'the form carried no valid CSRF token for this session');
        return html(
          c,
          ProblemPage({
            title: 'Form expired',
            sentence:
              'This form does not belong to your current session (it is old, or came from another site); reload the page and send it again.',
            user,
          }),
          403,
        );
      }
    }
    return next();
  });

  /** A refused request of a signed-in person, on the record like the API's (request.refused). */
  async function recordRefusal(c: Context<WebEnv>, status: number, code: string, reason: string): Promise<void> {
    const user = c.get('user');
    const id = /^\/ui\/runs\/([^/]+)/.exec(c.req.path)?.[1];
    try {
      await deps.denials.record({
        type: 'request.refused',
        actor: user.id,
        executionId: id !== undefined && /^[A-Za-z0-9._:-]{1,200}$/.test(id) ? id : null,
        kind: `${code} ${webRouteOf(c)}`,
        data: {
          method: c.req.method,
          path: c.req.path.slice(0, 300),
          channel: 'web',
          status,
          code,
          reason: reason.slice(0, 2000),
        },
      });
      c.set('refusalRecorded', true);
    } catch (e) {
      deps.log.error({ err: e }, 'could not record a refused web request');
    }
  }

  app.onError(async (err, c) => {
    const user = c.get('user') as User | undefined;
    if (!isMechanicError(err)) {
      deps.log.error({ err }, 'unhandled error in a web page');
      return html(
        c,
        ProblemPage({
          title: 'Something went wrong',
          sentence: 'The server failed to show this page; its log has the details. Try again shortly.',
          ...(user ? { user } : {}),
        }),
        500,
      );
    }
    const status = HTTP_STATUS[err.code];
    if (user && status >= 400 && status < 500 && !c.get('refusalRecorded')) {
      await recordRefusal(c, status, err.code, err.message);
    }
    return html(
      c,
      ProblemPage({
        title: TITLES[status] ?? 'Something went wrong',
        sentence: err.message,
        ...(user ? { user } : {}),
      }),
      status,
    );
  });

  app.get('/ui', (c) => c.redirect('/ui/runs', 302));
  // Page modules: one line each.
  runListPages(app, deps);
  runPage(app, deps);
  runbookPages(app, deps);
  searchPage(app, deps);
  reportPages(app, deps, deps.reports);
  packPages(app, deps);
  exportPages(app, deps);

  app.all('/ui/*', (c) =>
    html(
      c,
      ProblemPage({
        title: 'Not found',
        sentence: `There is no page ${c.req.path.slice(0, 200)} in mechanic; start from the runs.`,
        user: c.get('user'),
      }),
      404,
    ),
  );
  return app;
}
