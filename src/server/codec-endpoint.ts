/**
 * The codec endpoint for Temporal's Web UI and the `temporal` CLI: the Temporal codec server protocol
 * (POST /codec/decode and /codec/encode, body `{ payloads: [{ metadata: { key: base64 }, data: base64 }] }`,
 * the same shape back), served by the API server with the worker's own codec, so people who may read
 * runs can read their workflow histories in clear, and nobody else can.
 *
 * Who may call it:
 * - a bearer token (the `temporal` CLI's `--codec-auth "Bearer …"`, or the Web UI's "pass access token"),
 *   verified like every API token;
 * - the mechanic session cookie of a browser signed in at /auth/login, but only on a request whose Origin
 *   is an allowed Temporal Web UI origin: a page elsewhere cannot spend the cookie (and without a CORS
 *   grant could not read the answer either).
 * Then Cedar decides `readRun`. A payload does not say which run it belongs to, and the server cannot
 * tell before decrypting it, so the resource is the catalog — "read executions" as a whole, the right to
 * list every run — and a policy that lets someone read only some runs does not open the codec to them.
 * A refusal is recorded (access.denied, channel web for the cookie, api for a token), as on the API.
 *
 * CORS: only the configured Web UI origins (MECHANIC_TEMPORAL_UI_ORIGIN) get Access-Control-Allow-Origin,
 * with credentials; any other origin gets no grant, so its browser never hands the answer to its page.
 */
import type { Payload, PayloadCodec } from '@temporalio/common';
import type { Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { z } from 'zod';
import type { Authenticator, User } from '../authz/users.ts';
import { UserError, isMechanicError } from '../core/errors.ts';
import type { Env, Guard } from './route.ts';
import type { WebSessions } from './web-session.ts';

export interface CodecEndpointDeps {
  /** The same codec the worker and clients use (src/temporal/codec.ts). */
  readonly codec: PayloadCodec;
  /** The Temporal namespace mechanic's runs live in; a request for another is refused. */
  readonly namespace: string;
  /** Origins of the Temporal Web UI allowed to call from a browser (e.g. http://127.0.0.1:8233). */
  readonly allowedOrigins: readonly string[];
  readonly authenticator: Authenticator;
  /** Browser sign-in; without it only bearer tokens are accepted. */
  readonly webSessions?: WebSessions | undefined;
}

/** A payload batch may hold a whole history page; Temporal caps one payload at 2 MiB and a message at 4 MB. */
const MAX_BODY_BYTES = 8 * 1024 * 1024;
const MAX_PAYLOADS = 10_000;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const Base64Schema = z.string().regex(BASE64, 'must be base64');

/** proto3 JSON of temporal.api.common.v1.Payloads: bytes as base64. */
const PayloadsBodySchema = z.object({
  payloads: z
    .array(
      z.object({
        metadata: z.record(z.string(), Base64Schema).nullish(),
        data: Base64Schema.nullish(),
      }),
    )
    .max(MAX_PAYLOADS),
});

type JsonPayload = { metadata: Record<string, string>; data: string };

function fromJson(p: z.infer<typeof PayloadsBodySchema>['payloads'][number]): Payload {
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) metadata[k] = Buffer.from(v, 'base64');
  return { metadata, data: Buffer.from(p.data ?? '', 'base64') };
}

function toJson(p: Payload): JsonPayload {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) {
    if (v != null) metadata[k] = Buffer.from(v).toString('base64');
  }
  return { metadata, data: Buffer.from(p.data ?? new Uint8Array()).toString('base64') };
}

const unauthenticated = (message: string): Response =>
  Response.json({ error: { code: 'UNAUTHENTICATED', message } }, { status: 401 });

/**
 * Registers /codec/decode and /codec/encode (and /codec/{namespace}/decode|encode, for the CLI's
 * `{namespace}` templating of --codec-endpoint) on the API app. `guard` is the app's: it asks Cedar and
 * records a refusal.
 */
export function codecRoutes(app: Hono<Env>, guard: Guard, deps: CodecEndpointDeps): void {
  const allowed = new Set(deps.allowedOrigins);
  app.use(
    '/codec/*',
    cors({
      origin: (origin) => (allowed.has(origin) ? origin : null),
      allowMethods: ['POST', 'OPTIONS'],
      allowHeaders: ['Content-Type', 'X-Namespace', 'Authorization'],
      credentials: true,
      maxAge: 600,
    }),
  );
  app.use(
    '/codec/*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) => c.json({ error: { code: 'USAGE', message: 'the request body is larger than 8 MiB' } }, 413),
    }),
  );
  app.use('/codec/*', async (c, next) => {
    const header = c.req.header('authorization');
    let user: User | undefined;
    let channel: Env['Variables']['channel'] = 'api';
    if (header !== undefined) {
      const match = /^Bearer\s+(\S+)$/i.exec(header);
      user = match ? await deps.authenticator.authenticate(match[1]!) : undefined;
      if (!user)
        return unauthenticated(
          'the bearer token is not valid; pass a mechanic token with --codec-auth "Bearer <token>"',
        );
    } else {
      const origin = c.req.header('origin');
      // The cookie counts only from the Web UI: any other page's request carries it too, unasked.
      if (deps.webSessions && origin !== undefined && allowed.has(origin)) {
        user = deps.webSessions.userOf(c.req.raw);
        channel = 'web';
      }
      if (!user) {
        return unauthenticated(
          'sign in first: a bearer token (temporal --codec-auth "Bearer <token>"), or mechanic sign-in in this browser (/auth/login) with the Web UI\'s "include cross-origin credentials" on',
        );
      }
    }
    c.set('user', user);
    c.set('channel', channel);
    c.set('refusalRecorded', false);
    return next();
  });

  const handle = (direction: 'decode' | 'encode') => async (c: Context<Env, string>) => {
    await guard(c, 'readRun', { kind: 'catalog' });
    const namespace = c.req.param('namespace') ?? c.req.header('x-namespace');
    if (namespace !== undefined && namespace !== '' && namespace !== deps.namespace) {
      throw new UserError(
        'USAGE',
        `this codec endpoint serves the Temporal namespace ${deps.namespace}, not ${namespace.slice(0, 100)}`,
      );
    }
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw new UserError('USAGE', 'the request body is not JSON; send {"payloads": [...]}');
    }
    const parsed = PayloadsBodySchema.safeParse(body);
    if (!parsed.success) {
      throw new UserError('USAGE', `the request body is not a list of payloads: ${z.prettifyError(parsed.error)}`);
    }
    const payloads = parsed.data.payloads.map(fromJson);
    let result: Payload[];
    try {
      result = direction === 'decode' ? await deps.codec.decode(payloads) : await deps.codec.encode(payloads);
    } catch (e) {
      // A payload altered, or encrypted with a key this server does not hold: the caller's input, not a bug.
      const why = isMechanicError(e) || e instanceof Error ? e.message : String(e);
      throw new UserError('USAGE', `a payload could not be ${direction}d: ${why}`);
    }
    return c.json({ payloads: result.map(toJson) });
  };
  for (const direction of ['decode', 'encode'] as const) {
    app.post(`/codec/${direction}`, handle(direction));
    app.post(`/codec/:namespace/${direction}`, handle(direction));
  }
}
