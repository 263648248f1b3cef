import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { secureHeaders } from 'hono/secure-headers';
import { z } from 'zod';
import type { Logger } from 'pino';
import type { AuditStore } from '../store/audit-log.ts';
import type { RunbookRegistry } from '../store/runbook-registry.ts';
import type { Authenticator, User } from '../authz/users.ts';
import { authorize, type Action } from '../authz/policy.ts';
import { ExecutionStatusSchema } from '../core/audit.ts';
import { UserError, isMechanicError } from '../core/errors.ts';
import type { ExecutionService } from './executions.ts';
import { HTTP_STATUS } from './errors.ts';

export interface AppDeps {
  readonly authenticator: Authenticator;
  readonly executions: ExecutionService;
  readonly registry: RunbookRegistry;
  readonly audit: AuditStore;
  readonly log: Logger;
}

type Env = { Variables: { user: User } };

const LaunchBodySchema = z.strictObject({
  runbook: z.string().min(1),
  version: z.number().int().positive().optional(),
  params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
  targets: z.array(z.string().min(1)).max(50).optional(),
  reason: z.string(),
  dryRun: z.boolean().default(false),
});

const VoteBodySchema = z.strictObject({
  decision: z.enum(['approve', 'reject']),
  planDigest: z.string().regex(/^[0-9a-f]{64}$/, 'must be the 64-character plan digest shown with the plan'),
  comment: z.string().max(500).optional(),
});

const CancelBodySchema = z.strictObject({ reason: z.string().max(500) });

async function parseBody<T>(c: Context, schema: z.ZodType<T>): Promise<T> {
  let json: unknown;
  try {
    json = await c.req.json();
  } catch {
    throw new UserError('USAGE', 'the request body is not valid JSON');
  }
  const r = schema.safeParse(json);
  if (!r.success) throw new UserError('USAGE', `the request is invalid:\n${z.prettifyError(r.error)}`);
  return r.data;
}

/** The JSON API. Every route under /api authenticates the caller and authorizes the action. */
export function createApp(deps: AppDeps): Hono<Env> {
  const app = new Hono<Env>();
  app.use(secureHeaders());
  app.use(
    '/api/*',
    bodyLimit({
      maxSize: 256 * 1024,
      onError: (c) => c.json(errorBody('USAGE', 'the request body is larger than 256 KiB'), 413),
    }),
  );

  app.onError((err, c) => {
    if (isMechanicError(err)) return c.json(errorBody(err.code, err.message), HTTP_STATUS[err.code]);
    deps.log.error({ err }, 'unhandled error in API request');
    return c.json(
      errorBody('SERVER_UNAVAILABLE', 'the server failed to handle this request; its log has the details'),
      500,
    );
  });
  app.notFound((c) => c.json(errorBody('USAGE', `there is no ${c.req.method} ${c.req.path} in the mechanic API`), 404));

  app.get('/healthz', (c) => c.json({ ok: true }));

  app.use('/api/*', async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    const user = match ? deps.authenticator.authenticate(match[1]!) : undefined;
    if (!user) {
      return c.json(
        errorBody('UNAUTHENTICATED', 'a valid bearer token is required; pass --as <user> or set MECHANIC_TOKEN'),
        401,
      );
    }
    c.set('user', user);
    return next();
  });

  /** Refuses and audits an action the caller may not take. */
  const require = async (c: Context<Env>, action: Action, executionId: string | null = null): Promise<User> => {
    const user = c.get('user');
    const decision = authorize(user, action);
    if (!decision.allowed) {
      await deps.executions.auditRefusal(user, executionId, 'access.denied', {
        action,
        path: c.req.path,
        reason: decision.reason,
      });
      throw new UserError('FORBIDDEN', decision.reason);
    }
    return user;
  };

  app.get('/api/me', (c) => c.json({ user: c.get('user') }));

  app.get('/api/runbooks', async (c) => {
    await require(c, 'runbook:read');
    return c.json({
      runbooks: deps.registry.list().map((r) => ({ ...r.runbook, digest: r.digest, source: r.source })),
    });
  });

  app.get('/api/runbooks/:name', async (c) => {
    await require(c, 'runbook:read');
    const version = c.req.query('version');
    const entry = deps.registry.get(c.req.param('name'), version ? Number(version) : undefined);
    return c.json({ runbook: { ...entry.runbook, digest: entry.digest, source: entry.source } });
  });

  app.post('/api/executions', async (c) => {
    const user = await require(c, 'runbook:launch');
    const body = await parseBody(c, LaunchBodySchema);
    if (body.dryRun) return c.json(await deps.executions.plan(user, body), 200);
    return c.json(await deps.executions.launch(user, body), 201);
  });

  app.get('/api/executions', async (c) => {
    await require(c, 'execution:read');
    const status = c.req.query('status');
    const parsed = status === undefined ? undefined : ExecutionStatusSchema.safeParse(status);
    if (parsed && !parsed.success) throw new UserError('USAGE', `"${status}" is not an execution status`);
    const limit = Number(c.req.query('limit') ?? 50);
    return c.json({ executions: await deps.executions.list({ ...(parsed ? { status: parsed.data } : {}), limit }) });
  });

  app.get('/api/executions/:id', async (c) => {
    const id = c.req.param('id');
    await require(c, 'execution:read', id);
    return c.json({ execution: await deps.executions.get(id) });
  });

  app.post('/api/executions/:id/votes', async (c) => {
    const id = c.req.param('id');
    const user = await require(c, 'execution:vote', id);
    const body = await parseBody(c, VoteBodySchema);
    return c.json({ approval: await deps.executions.vote(user, id, body) });
  });

  app.post('/api/executions/:id/cancel', async (c) => {
    const id = c.req.param('id');
    const user = await require(c, 'execution:cancel', id);
    const body = await parseBody(c, CancelBodySchema);
    return c.json({ status: await deps.executions.cancel(user, id, body.reason) });
  });

  app.get('/api/audit', async (c) => {
    await require(c, 'audit:read');
    const executionId = c.req.query('executionId');
    const afterSeq = c.req.query('afterSeq');
    const limit = c.req.query('limit');
    const records = await deps.audit.list({
      ...(executionId ? { executionId } : {}),
      ...(afterSeq ? { afterSeq: Number(afterSeq) } : {}),
      ...(limit ? { limit: Number(limit) } : {}),
    });
    return c.json({ records });
  });

  app.get('/api/audit/verify', async (c) => {
    await require(c, 'audit:read');
    return c.json({ verdict: await deps.audit.verify() });
  });

  return app;
}

function errorBody(code: string, message: string) {
  return { error: { code, message } };
}
