import type { Hono } from 'hono';
import type { AuditStore } from '../../store/audit-log.ts';
import { register, type Env, type Guard } from '../route.ts';

export function auditRoutes(app: Hono<Env>, guard: Guard, audit: AuditStore): void {
  register(app, guard, 'listAudit', {
    authorize: () => ['readAudit', { kind: 'audit' }],
    run: async (_c, { query }) => ({ records: await audit.list(query) }),
  });
  register(app, guard, 'verifyAudit', {
    authorize: () => ['readAudit', { kind: 'audit' }],
    run: async () => ({ verdict: await audit.verify() }),
  });
}
