import type { Context, Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import { streams } from '../../api/contract.ts';
import { ExecutionParamsSchema } from '../../api/schemas.ts';
import type { AuditRecord } from '../../core/audit.ts';
import type { Authorizer } from '../../authz/authorizer.ts';
import type { AuditStore } from '../../store/audit-log.ts';
import type { AuditTail } from '../audit-tail.ts';
import { parseInput, type Env, type Guard } from '../route.ts';

const PAGE = 500;
const KEEPALIVE_MS = 15_000;
const LastEventIdSchema = z.coerce.number().int().nonnegative();

/**
 * The live event streams: each audit record the caller may see, as one server-sent event whose
 * id is its seq. A client that reconnects with Last-Event-ID resumes right after what it saw.
 */
export function eventRoutes(
  app: Hono<Env>,
  guard: Guard,
  deps: { audit: AuditStore; tail: AuditTail; authorizer: Authorizer },
): void {
  const follow = (c: Context<Env>, executionId: string | undefined, visible: (r: AuditRecord) => boolean) => {
    const lastEventId = c.req.header('last-event-id');
    let cursor = lastEventId === undefined ? 0 : parseInput(LastEventIdSchema, lastEventId, 'Last-Event-ID header');
    return streamSSE(c, async (stream) => {
      const aborted = new AbortController();
      stream.onAbort(() => aborted.abort());
      const keepalive = setInterval(() => void stream.write(': keep-alive\n\n'), KEEPALIVE_MS);
      try {
        while (!aborted.signal.aborted) {
          // The head is taken before reading, so a record appended meanwhile always wakes the wait.
          const head = deps.tail.head();
          const page = await deps.audit.list({
            ...(executionId !== undefined ? { executionId } : {}),
            afterSeq: cursor,
            limit: PAGE,
          });
          for (const r of page) {
            cursor = r.seq;
            if (visible(r)) await stream.writeSSE({ id: String(r.seq), event: 'audit', data: JSON.stringify(r) });
          }
          if (page.length === PAGE) continue;
          if (!(await deps.tail.waitBeyond(Math.max(head, cursor), aborted.signal))) break;
        }
      } finally {
        clearInterval(keepalive);
      }
    });
  };

  app.get(streams.all.path, async (c) => {
    await guard(c, 'readRun', { kind: 'catalog' });
    // Auditors see everything; others see the records of executions, not other people's refusals.
    const all = deps.authorizer.authorize(c.get('user'), 'readAudit', { kind: 'audit' }, { channel: c.get('channel') });
    return follow(c, undefined, (r) => all.allow || r.executionId !== null);
  });

  app.get(streams.execution.path, async (c) => {
    const { id } = parseInput(ExecutionParamsSchema, c.req.param(), 'path');
    await guard(c, 'readRun', { kind: 'execution', id });
    return follow(c, id, () => true);
  });
}
