import type { Hono } from 'hono';
import type { EvidenceSource } from '../../store/evidence.ts';
import { register, type Env, type Guard } from '../route.ts';

/**
 * GET /api/executions/:id/pack: one run's evidence pack. A pack holds every record of the log between
 * the run's request and the checkpoint that covers its end, other runs' records included (the chain
 * proof needs them in full), so it asks for `exportAudit` on the whole log, not `readRun` on the run.
 */
export function packRoutes(app: Hono<Env>, guard: Guard, evidence: EvidenceSource): void {
  register(app, guard, 'executionPack', {
    authorize: () => ['exportAudit', { kind: 'audit' }],
    run: async (_c, { user, params }) => evidence.pack(params.id, user.id),
  });
}
