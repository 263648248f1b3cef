import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { secureHeaders } from 'hono/secure-headers';
import type { Logger } from 'pino';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { AuditStore } from '../store/audit-log.ts';
import type { RunbookRegistry, RunbookStore } from '../store/runbook-registry.ts';
import type { Authenticator } from '../authz/users.ts';
import type { Authorizer } from '../authz/authorizer.ts';
import type { Channel } from '../api/client.ts';
import { openApiDocument } from '../api/openapi.ts';
import { ExecutionIdSchema, type ErrorBody } from '../api/schemas.ts';
import { UserError, isMechanicError, type ErrorCode } from '../core/errors.ts';
import type { ExecutionService } from './executions.ts';
import type { AuditTail } from './audit-tail.ts';
import { HTTP_STATUS } from './errors.ts';
import type { WebSessions } from './web-session.ts';
import type { Env, Guard } from './route.ts';
import { auditRoutes } from './routes/audit.ts';
import { eventRoutes } from './routes/events.ts';
import { executionRoutes } from './routes/executions.ts';
import { runbookRoutes } from './routes/runbooks.ts';

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
  /** Browser sign-in (src/server/web-session.ts), mounted at /auth when configured. */
  readonly webSessions?: WebSessions;
  /** Slack's interactions and slash command (src/slack), mounted at /slack when configured. */
  readonly slack?: Hono;
}

const CHANNELS: readonly Channel[] = ['cli', 'tui', 'slack', 'web', 'api'];
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
  /** The face the caller says it uses (x-mechanic-channel); an unknown claim is plain 'api'. */
  const channelOf = (claimed: string | undefined): Channel => {
    return CHANNELS.find((ch) => ch === claimed) ?? 'api';
  };
  /** The execution a request is about, when its path names a well-formed one. */
  const executionOf = (c: Context<Env>): string | null => {
    const id = /^\/api\/executions\/([^/]+)/.exec(c.req.path)?.[1];
    return id !== undefined && ExecutionIdSchema.safeParse(id).success ? id : null;
  };

  const guard: Guard = async (c, action, resource) => {
    const user = c.get('user');
    const decision = deps.authorizer.authorize(user, action, resource, { channel: c.get('channel') });
    if (decision.allow) return;
    await deps.executions.auditRefusal(user, resource.kind === 'execution' ? resource.id : null, 'access.denied', {
      action,
      path: c.req.path.slice(0, 300),
      channel: c.get('channel'),
      reason: decision.reason,
      policies: decision.policies,
    });
    c.set('refusalRecorded', true);
    throw new UserError('FORBIDDEN', decision.reason);
  };

  app.use(secureHeaders());
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
        await deps.executions.auditRefusal(user, executionOf(c), 'request.refused', {
          method: c.req.method,
          path: c.req.path.slice(0, 300),
          channel: c.get('channel'),
          status,
          code: err.code,
          reason: err.message.slice(0, 2000),
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

  app.get('/api/me', (c) => c.json({ user: c.get('user') }));
  runbookRoutes(app, guard, deps.registry, deps.runbookStore);
  executionRoutes(app, guard, deps.executions);
  auditRoutes(app, guard, deps.audit);
  eventRoutes(app, guard, { audit: deps.audit, tail: deps.tail, authorizer: deps.authorizer });
  return app;
}
