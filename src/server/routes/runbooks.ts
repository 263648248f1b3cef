import type { Context, Hono } from 'hono';
import type {
  RunbookRegistry,
  RegisteredRunbook,
  RunbookStore,
  RunbookVersionInfo,
} from '../../store/runbook-registry.ts';
import type { LaunchDecision, RunbookInfo, RunbookVersionInfoBody } from '../../api/schemas.ts';
import type { Authorizer, Resource } from '../../authz/authorizer.ts';
import type { Runbook } from '../../core/runbook.ts';
import { isMechanicError } from '../../core/errors.ts';
import { register, type Env, type Guard } from '../route.ts';

const info = (r: RegisteredRunbook): RunbookInfo => ({ ...r.runbook, digest: r.digest, source: r.source });

/** The runbook as the policies see it when someone launches it: the facts the execution service sends. */
export function launchResource(runbook: Runbook): Resource {
  return {
    kind: 'runbook',
    name: runbook.name,
    owners: runbook.owners,
    risk: runbook.risk,
    environment: runbook.environment,
    tags: runbook.tags,
    approvalGroups: runbook.approval.groups,
  };
}

/**
 * Whether the caller may launch this runbook, asked exactly as a launch asks (src/server/executions.ts
 * and the launch route): first of the catalog, then of the runbook with its facts, from the
 * request's channel. A catalog read changes nothing, so these decisions go to the server log (the
 * logged Authorizer), never to the audit chain; only a refused launch itself is on the record.
 */
function launchDecision(authorizer: Authorizer, c: Context<Env>, runbook: Runbook): LaunchDecision {
  const user = c.get('user');
  const context = { channel: c.get('channel'), time: new Date() };
  for (const resource of [{ kind: 'catalog' } as const, launchResource(runbook)]) {
    const decision = authorizer.authorize(user, 'launch', resource, context);
    if (!decision.allow) return { allowed: false, reason: decision.reason };
  }
  return { allowed: true };
}
const versionBody = (v: RunbookVersionInfo): RunbookVersionInfoBody => ({
  ...v,
  source: { ...v.source },
  reviews: [...v.reviews],
  ...(v.deprecated ? { deprecated: { ...v.deprecated } } : {}),
});

/**
 * The runbook routes. With the Authorizer, each runbook the catalog lists (and the one getRunbook
 * answers) carries the caller's launch decision, so a client can show what it may not launch, and why.
 */
export function runbookRoutes(
  app: Hono<Env>,
  guard: Guard,
  registry: RunbookRegistry,
  store?: RunbookStore,
  authorizer?: Authorizer,
): void {
  const shown = (c: Context<Env>, r: RegisteredRunbook): RunbookInfo =>
    authorizer ? { ...info(r), launch: launchDecision(authorizer, c, r.runbook) } : info(r);
  register(app, guard, 'listRunbooks', {
    authorize: () => ['readRunbook', { kind: 'catalog' }],
    run: async (c) => ({
      runbooks: (await registry.list()).map((r) => shown(c, r)),
      invalid: [...registry.invalid()],
    }),
  });
  register(app, guard, 'getRunbook', {
    authorize: ({ params }) => ['readRunbook', { kind: 'runbook', name: params.name }],
    run: async (c, { params, query }) => ({ runbook: shown(c, await registry.get(params.name, query.version)) }),
  });
  if (!store) return;

  // The registry: authors publish, another author reviews, anyone who reads runbooks sees the record.
  register(app, guard, 'publishRunbooks', {
    // The names are in the body, read only after authorization: publishing is asked of the catalog.
    authorize: () => ['publish', { kind: 'catalog' }],
    run: async (_c, { user, body }) => ({
      published: await store.publish(user.id, body.files, body.git),
    }),
  });
  register(app, guard, 'listRunbookVersions', {
    authorize: () => ['readRunbook', { kind: 'catalog' }],
    run: async (_c, { query }) => ({ versions: (await store.versions(query.name)).map(versionBody) }),
  });
  register(app, guard, 'getRunbookVersion', {
    authorize: ({ params }) => ['readRunbook', { kind: 'runbook', name: params.name }],
    run: async (_c, { params }) => {
      const v = await store.version(params.name, params.version);
      return { version: { ...versionBody(v), yaml: v.yaml } };
    },
  });
  register(app, guard, 'reviewRunbook', {
    // The policies see who published this version as its owner: nobody reviews their own (the
    // store refuses it too, so a permissive policy file cannot let it through).
    authorize: async ({ params }) => {
      let owners: string[] = [];
      try {
        owners = [(await store.version(params.name, params.version)).author];
      } catch (e) {
        // An unknown version is answered after authorization, so a caller who may not review learns nothing.
        if (!isMechanicError(e) || e.code !== 'RUNBOOK_NOT_FOUND') throw e;
      }
      return ['review', { kind: 'runbook', name: params.name, owners }];
    },
    run: async (_c, { user, params, body }) => ({
      version: versionBody(
        await store.review(params.name, params.version, {
          reviewer: user.id,
          decision: body.decision,
          digest: body.digest,
          comment: body.comment,
        }),
      ),
    }),
  });
  register(app, guard, 'deprecateRunbook', {
    // Withdrawing a version is an author's act, like publishing one.
    authorize: ({ params }) => ['publish', { kind: 'runbook', name: params.name }],
    run: async (_c, { user, params, body }) => ({
      version: versionBody(await store.deprecate(params.name, params.version, { by: user.id, reason: body.reason })),
    }),
  });
}
