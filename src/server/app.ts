import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { secureHeaders } from 'hono/secure-headers';
import type { Logger } from 'pino';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { AuditStore } from '../store/audit-log.ts';
import type { RunbookRegistry, RunbookStore } from '../store/runbook-registry.ts';
import type { Authenticator } from '../authz/users.ts';
import type { Authorizer } from '../authz/authorizer.ts';
import {
  DEFAULT_RATE_LIMITS,
  addressLimit,
  addressOf,
  principalLimit,
  type ApiRateLimits,
  type Limited,
} from '../authz/rate-limit.ts';
import type { Channel } from '../api/client.ts';
import { openApiDocument } from '../api/openapi.ts';
import { ExecutionIdSchema, type ErrorBody } from '../api/schemas.ts';
import { UserError, isMechanicError, type ErrorCode } from '../core/errors.ts';
import type { ExecutionService } from './executions.ts';
import type { AuditTail } from './audit-tail.ts';
import { HTTP_STATUS } from './errors.ts';
import { DEFAULT_DENIAL_WINDOW_MS, createDenialRecorder, routeOf, type DenialRecorder } from './denials.ts';
import type { WebSessions } from './web-session.ts';
import type { Env, Guard } from './route.ts';
import { auditRoutes } from './routes/audit.ts';
import { reportRoutes } from './routes/reports.ts';
import { eventRoutes } from './routes/events.ts';
import { executionRoutes } from './routes/executions.ts';
import { runbookRoutes } from './routes/runbooks.ts';
import { packRoutes } from './routes/pack.ts';
import { codecRoutes, type CodecEndpointDeps } from './codec-endpoint.ts';
import { createEvidenceSource } from '../store/evidence.ts';
import { webRoutes } from './web/index.ts';
import type { ReportPageSettings } from './web/reports.tsx';

export interface AppDeps {
  readonly authenticator: Authenticator;
  readonly authorizer: Authorizer;
  readonly executions: ExecutionService;
  readonly registry: RunbookRegistry;
  /** The registry's publish, review and deprecate routes; without it only the catalog is served. */
  readonly runbookStore?: RunbookStore;
  readonly audit: AuditStore;
  readonly tail: AuditTail;
  readonly log: Logger;
  readonly version?: string;
  /** Rate limits per principal and per address (the config's `limits`); unset, DEFAULT_RATE_LIMITS. */
  readonly limits?: ApiRateLimits;
  /**
   * Folds one caller's repeated refusals into counted audit records. Whoever passes it closes it
   * before the audit store, so no count is lost at shutdown; unset, the app makes its own.
   */
  readonly denials?: DenialRecorder;
  /** Milliseconds, for the rate limits: tests inject a clock so time passes without waiting. */
  readonly now?: () => number;
  /** Browser sign-in (src/server/web-session.ts), mounted at /auth when configured. */
  readonly webSessions?: WebSessions;
  /** Slack's interactions and slash command (src/slack), mounted at /slack when configured. */
  readonly slack?: Hono;
  /** The reports' working hours and time zone (config.reports); unset, Mon–Fri 08:00–18:00 UTC. */
  readonly reports?: ReportPageSettings;
  /** The codec endpoint for Temporal's Web UI and CLI (/codec, src/server/codec-endpoint.ts); unset, not served. */
  readonly codec?: Pick<CodecEndpointDeps, 'codec' | 'namespace' | 'allowedOrigins'>;
}

/**
 * The channels a bearer-token caller may claim (x-mechanic-channel). `web` and `slack` are set by
 * the server itself, on its browser pages and Slack's signed requests: a policy about them must not
 * be satisfied, or dodged, by a header.
 */
const CLAIMABLE_CHANNELS: readonly Channel[] = ['cli', 'tui', 'api'];
const MAX_BODY_BYTES = 256 * 1024;

function errorBody(code: ErrorCode, message: string): ErrorBody {
  return { error: { code, message } };
}

/**
 * The HTTP API. Every route under /api authenticates the caller, asks the one Authorizer, and
 * speaks the contract in src/api; every refusal of an authenticated caller is recorded.
 */
export function createApp(deps: AppDeps): Hono<Env> {
  const app = new Hono<Env>();
  /** The face the caller says it uses (x-mechanic-channel); an unknown or server-only claim is plain 'api'. */
  const channelOf = (claimed: string | undefined): Channel => {
    return CLAIMABLE_CHANNELS.find((ch) => ch === claimed) ?? 'api';
  };
  /** The execution a request is about, when its path names a well-formed one. */
  const executionOf = (c: Context<Env>): string | null => {
    const id = /^\/api\/executions\/([^/]+)/.exec(c.req.path)?.[1];
    return id !== undefined && ExecutionIdSchema.safeParse(id).success ? id : null;
  };

  // Refusals of one caller go on the record folded: the first of a kind at once, repeats as a count.
  const denials =
    deps.denials ??
    createDenialRecorder({
      audit: deps.audit,
      windowMs: DEFAULT_DENIAL_WINDOW_MS,
      onError: (err, count) => deps.log.error({ err, count }, 'could not record counted refusals'),
    });

  const guard: Guard = async (c, action, resource) => {
    const user = c.get('user');
    const decision = deps.authorizer.authorize(user, action, resource, { channel: c.get('channel') });
    if (decision.allow) return;
    await denials.record({
      type: 'access.denied',
      actor: user.id,
      executionId: resource.kind === 'execution' ? resource.id : null,
      kind: `${action} ${routeOf(c.req.method, c.req.path)}`,
      data: {
        action,
        path: c.req.path.slice(0, 300),
        channel: c.get('channel'),
        reason: decision.reason,
        policies: decision.policies,
      },
    });
    c.set('refusalRecorded', true);
    throw new UserError('FORBIDDEN', decision.reason);
  };

  /** A request over a rate limit is a security refusal too: on the record, folded like the others. */
  const recordLimited = async (c: Context<Env>, limited: Limited, signedIn: boolean): Promise<void> => {
    const user = signedIn ? c.get('user') : undefined;
    try {
      await denials.record({
        type: 'request.refused',
        actor: user?.id ?? 'anonymous',
        executionId: user ? executionOf(c) : null,
        // Per principal one kind whatever the route; per address one kind per address.
        kind: user ? 'RATE_LIMITED' : `RATE_LIMITED ${limited.key}`,
        data: {
          method: c.req.method,
          path: c.req.path.slice(0, 300),
          channel: user ? c.get('channel') : channelOf(c.req.header('x-mechanic-channel')),
          status: 429,
          code: 'RATE_LIMITED',
          reason: limited.message,
          address: addressOf(c),
        },
      });
    } catch (e) {
      deps.log.error({ err: e }, 'could not record a rate-limited request');
    }
  };
  const limits = deps.limits ?? DEFAULT_RATE_LIMITS;
  const clock = deps.now ? { now: deps.now } : {};

  app.use(secureHeaders());
  // Per address first, before any token is looked at: a flood of bad tokens costs the server little.
  const byAddress = addressLimit<Env>(limits.address, { ...clock, onLimited: (c, l) => recordLimited(c, l, false) });
  app.use('/api/*', byAddress);
  app.use('/auth/*', byAddress);
  app.use('/slack/*', byAddress);
  app.use('/codec/*', byAddress);
  app.use('/ui/*', byAddress);
  app.use(
    '/api/*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) => c.json(errorBody('USAGE', 'the request body is larger than 256 KiB'), 413),
    }),
  );

  app.onError(async (err, c) => {
    if (!isMechanicError(err)) {
      deps.log.error({ err }, 'unhandled error in API request');
      return c.json(errorBody('INTERNAL', 'the server failed to handle this request; its log has the details'), 500);
    }
    const status = HTTP_STATUS[err.code];
    const user = c.get('user') as Env['Variables']['user'] | undefined;
    if (user && status >= 400 && status < 500 && !c.get('refusalRecorded')) {
      // Every refusal of a known caller is on the record, whatever refused it.
      try {
        await denials.record({
          type: 'request.refused',
          actor: user.id,
          executionId: executionOf(c),
          kind: `${err.code} ${routeOf(c.req.method, c.req.path)}`,
          data: {
            method: c.req.method,
            path: c.req.path.slice(0, 300),
            channel: c.get('channel'),
            status,
            code: err.code,
            reason: err.message.slice(0, 2000),
          },
        });
      } catch (e) {
        deps.log.error({ err: e }, 'could not record a refused request');
      }
    }
    return c.json(errorBody(err.code, err.message), status as ContentfulStatusCode);
  });
  app.notFound((c) =>
    c.json(errorBody('USAGE', `there is no ${c.req.method} ${c.req.path.slice(0, 200)} in the mechanic API`), 404),
  );

  app.get('/healthz', (c) => c.json({ ok: true }));
  // Slack signs its own requests: its routes verify them and never see the API's bearer tokens.
  if (deps.slack) app.route('/slack', deps.slack);
  const openapi = openApiDocument(deps.version ?? '0');
  app.get('/api/openapi.json', (c) => c.json(openapi));
  if (deps.webSessions) app.route('/auth', deps.webSessions.routes);
  if (deps.webSessions) {
    // The reporting UI (src/server/web): its own sign-in redirect, pages and error pages under /ui.
    app.route(
      '/',
      webRoutes({
        webSessions: deps.webSessions,
        authorizer: deps.authorizer,
        audit: deps.audit,
        db: deps.audit.db,
        trustedKeys: deps.audit.trustedKeys,
        executions: deps.executions,
        registry: deps.registry,
        runbookStore: deps.runbookStore,
        tail: deps.tail,
        denials,
        log: deps.log,
        reports: deps.reports,
      }),
    );
    app.get('/', (c) => c.redirect('/ui/runs', 302));
  }

  // Temporal's Web UI and CLI decrypt payloads here: its own sign-in (token or session cookie), CORS and readRun.
  if (deps.codec) {
    codecRoutes(app, guard, { ...deps.codec, authenticator: deps.authenticator, webSessions: deps.webSessions });
  }

  app.use('/api/*', async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    const user = match ? await deps.authenticator.authenticate(match[1]!) : undefined;
    if (!user) {
      return c.json(
        errorBody('UNAUTHENTICATED', 'a valid bearer token is required; pass --as <user> or set MECHANIC_TOKEN'),
        401,
      );
    }
    c.set('user', user);
    c.set('channel', channelOf(c.req.header('x-mechanic-channel')));
    c.set('refusalRecorded', false);
    return next();
  });
  // Per principal, once the caller is known; an event stream takes one request however long it runs.
  app.use(
    '/api/*',
    principalLimit<Env>(limits.principal, { ...clock, onLimited: (c, l) => recordLimited(c, l, true) }),
  );

  app.get('/api/me', (c) => c.json({ user: c.get('user') }));
  runbookRoutes(app, guard, deps.registry, deps.runbookStore, deps.authorizer);
  executionRoutes(app, guard, deps.executions);
  auditRoutes(app, guard, deps.audit);
  reportRoutes(app, guard, deps.audit, deps.reports);
  packRoutes(app, guard, createEvidenceSource(deps.audit.db, { audit: deps.audit, keys: deps.audit.trustedKeys }));
  eventRoutes(app, guard, { audit: deps.audit, tail: deps.tail, authorizer: deps.authorizer });
  return app;
}
