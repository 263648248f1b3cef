import type { Hono } from 'hono';
import type {
  RunbookRegistry,
  RegisteredRunbook,
  RunbookStore,
  RunbookVersionInfo,
} from '../../store/runbook-registry.ts';
import type { RunbookInfo, RunbookVersionInfoBody } from '../../api/schemas.ts';
import { isMechanicError } from '../../core/errors.ts';
import { register, type Env, type Guard } from '../route.ts';

const info = (r: RegisteredRunbook): RunbookInfo => ({ ...r.runbook, digest: r.digest, source: r.source });
const versionBody = (v: RunbookVersionInfo): RunbookVersionInfoBody => ({
  ...v,
  source: { ...v.source },
  reviews: [...v.reviews],
  ...(v.deprecated ? { deprecated: { ...v.deprecated } } : {}),
});

export function runbookRoutes(app: Hono<Env>, guard: Guard, registry: RunbookRegistry, store?: RunbookStore): void {
  register(app, guard, 'listRunbooks', {
    authorize: () => ['readRunbook', { kind: 'catalog' }],
    run: async () => ({ runbooks: (await registry.list()).map(info), invalid: [...registry.invalid()] }),
  });
  register(app, guard, 'getRunbook', {
    authorize: ({ params }) => ['readRunbook', { kind: 'runbook', name: params.name }],
    run: async (_c, { params, query }) => ({ runbook: info(await registry.get(params.name, query.version)) }),
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
