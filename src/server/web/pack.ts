/**
 * The evidence pack download of the reporting UI: GET /ui/runs/:id/pack answers the same file as
 * `mechanic audit pack` (src/core/evidence-pack.ts), as an attachment. Like the API route it asks for
 * `exportAudit` on the whole log, since the chain proof holds the other records written meanwhile.
 */
import type { Hono } from 'hono';
import { ExecutionIdSchema } from '../../api/schemas.ts';
import { serializeEvidencePack } from '../../core/evidence-pack.ts';
import { UserError } from '../../core/errors.ts';
import { createEvidenceSource } from '../../store/evidence.ts';
import { requireAction } from './auth.ts';
import type { WebDeps, WebEnv } from './index.ts';

export function packPages(app: Hono<WebEnv>, deps: WebDeps): void {
  const evidence = createEvidenceSource(deps.db, { audit: deps.audit, keys: deps.trustedKeys });
  app.get('/ui/runs/:id/pack', async (c) => {
    const id = c.req.param('id');
    if (!ExecutionIdSchema.safeParse(id).success) {
      throw new UserError('USAGE', 'that is not an execution id; open the run from the list of runs');
    }
    await requireAction(c, 'exportAudit', { kind: 'audit' });
    const text = serializeEvidencePack(await evidence.pack(id, c.get('user').id));
    c.header('content-type', 'application/json; charset=utf-8');
    c.header('content-disposition', `attachment; filename="${id}.evidence-pack.json"`);
    return c.body(text);
  });
}
