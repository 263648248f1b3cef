/**
 * Registers the contract's routes on the Hono app: parses path parameters, authorizes, then parses
 * the query and body, all with the contract's schemas. Authorization comes before the body, so a
 * caller who may not act learns nothing about what a valid request would look like.
 */
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import { routes, type RouteAnswer, type RouteName, type Routes, type RouteSpec } from '../api/contract.ts';
import type { Channel } from '../api/client.ts';
import type { Action, Resource } from '../authz/authorizer.ts';
import type { User } from '../authz/users.ts';
import { UserError } from '../core/errors.ts';

export type Env = {
  Variables: {
    user: User;
    channel: Channel;
    /** Set once a refusal of this request has been recorded, so it is recorded once. */
    refusalRecorded: boolean;
  };
};

type Parsed<T, K extends string> = T extends Record<K, infer S extends z.ZodType> ? z.output<S> : undefined;

export interface HandlerInput<N extends RouteName> {
  readonly user: User;
  readonly params: Parsed<Routes[N], 'params'>;
  readonly query: Parsed<Routes[N], 'query'>;
  readonly body: Parsed<Routes[N], 'body'>;
}

export interface RouteHandler<N extends RouteName> {
  /** The action and resource this request asks for, known from its path alone. */
  readonly authorize: (
    input: Pick<HandlerInput<N>, 'user' | 'params'>,
  ) => [Action, Resource] | Promise<[Action, Resource]>;
  readonly run: (c: Context<Env>, input: HandlerInput<N>) => Promise<RouteAnswer<N>>;
}

/** Asks the Authorizer; a denial is recorded (access.denied) and answered 403. */
export type Guard = (c: Context<Env>, action: Action, resource: Resource) => Promise<void>;

export function parseInput<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new UserError('USAGE', `the request's ${where} is invalid:\n${z.prettifyError(r.error)}`);
  return r.data;
}

async function readJson(c: Context): Promise<unknown> {
  try {
    return await c.req.json();
  } catch {
    throw new UserError('USAGE', 'the request body is not valid JSON');
  }
}

export function register<N extends RouteName>(app: Hono<Env>, guard: Guard, name: N, handler: RouteHandler<N>): void {
  const spec: RouteSpec = routes[name];
  app.on(spec.method, spec.path, async (c) => {
    const user = c.get('user');
    const params = spec.params ? parseInput(spec.params, c.req.param(), 'path') : undefined;
    const [action, resource] = await handler.authorize({ user, params } as Pick<HandlerInput<N>, 'user' | 'params'>);
    await guard(c, action, resource);
    const query = spec.query ? parseInput(spec.query, c.req.query(), 'query') : undefined;
    const body = spec.body ? parseInput(spec.body, await readJson(c), 'body') : undefined;
    const out = await handler.run(c, { user, params, query, body } as HandlerInput<N>);
    return c.json(out as object, spec.status);
  });
}
