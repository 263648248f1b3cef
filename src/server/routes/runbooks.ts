import type { Hono } from 'hono';
import type { RunbookRegistry, RegisteredRunbook } from '../../store/runbook-registry.ts';
import type { RunbookInfo } from '../../api/schemas.ts';
import { register, type Env, type Guard } from '../route.ts';

const info = (r: RegisteredRunbook): RunbookInfo => ({ ...r.runbook, digest: r.digest, source: r.source });

export function runbookRoutes(app: Hono<Env>, guard: Guard, registry: RunbookRegistry): void {
  register(app, guard, 'listRunbooks', {
    authorize: () => ['readRunbook', { kind: 'catalog' }],
    run: async () => ({ runbooks: registry.list().map(info), invalid: [...registry.invalid()] }),
  });
  register(app, guard, 'getRunbook', {
    authorize: ({ params }) => ['readRunbook', { kind: 'runbook', name: params.name }],
    run: async (_c, { params, query }) => ({ runbook: info(registry.get(params.name, query.version)) }),
  });
}
