import type { Context, Hono } from 'hono';
import { isRecordedRefusal, type ExecutionService } from '../executions.ts';
import { register, type Env, type Guard } from '../route.ts';

/**
 * Runs a service call that asks the Authorizer again with what only the service knows (the
 * runbook's metadata, the run's facts); a denial it recorded is not recorded twice.
 */
async function recording<T>(c: Context<Env>, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if (isRecordedRefusal(e)) c.set('refusalRecorded', true);
    throw e;
  }
}

export function executionRoutes(app: Hono<Env>, guard: Guard, executions: ExecutionService): void {
  register(app, guard, 'plan', {
    authorize: () => ['launch', { kind: 'catalog' }],
    run: async (c, { user, body }) => recording(c, () => executions.plan(user, body, { channel: c.get('channel') })),
  });
  register(app, guard, 'launch', {
    authorize: () => ['launch', { kind: 'catalog' }],
    run: async (c, { user, body }) => recording(c, () => executions.launch(user, body, { channel: c.get('channel') })),
  });
  register(app, guard, 'listExecutions', {
    authorize: () => ['readRun', { kind: 'catalog' }],
    run: async (_c, { query }) => ({ executions: await executions.list(query) }),
  });
  register(app, guard, 'getExecution', {
    authorize: ({ params }) => ['readRun', { kind: 'execution', id: params.id }],
    run: async (_c, { params }) => ({ execution: await executions.get(params.id) }),
  });
  register(app, guard, 'vote', {
    authorize: ({ params }) => ['approve', { kind: 'execution', id: params.id }],
    run: async (c, { user, params, body }) => {
      // The workflow refuses a vote that must not count, and the service records that refusal.
      c.set('refusalRecorded', true);
      const approval = await executions.vote(user, params.id, body, { channel: c.get('channel') });
      c.set('refusalRecorded', false);
      return { approval };
    },
  });
  register(app, guard, 'cancel', {
    // Who may cancel depends on who requested the run, so the Authorizer sees the requester.
    authorize: async ({ params }) => [
      'cancel',
      { kind: 'execution', id: params.id, requester: (await executions.summary(params.id)).operator },
    ],
    run: async (c, { user, params, body }) =>
      recording(c, async () => ({
        status: await executions.cancel(user, params.id, body.reason, { channel: c.get('channel') }),
      })),
  });
}
