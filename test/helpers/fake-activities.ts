import { Context } from '@temporalio/activity';
import type { MechanicActivities } from '../../src/activities/index.ts';
import type { NewAuditEvent } from '../../src/core/audit.ts';
import type { StepOutcome, StepRequest } from '../../src/core/execution.ts';

/** Object-literal activities for workflow-logic tests: they record what the workflow asked. */
export interface Fake {
  readonly events: NewAuditEvent[];
  readonly dispatched: StepRequest[];
  readonly cancelled: string[];
  readonly activities: MechanicActivities;
}

export function outcome(req: StepRequest & { commandId: string }, status: string, responseCode: number): StepOutcome {
  return {
    commandId: req.commandId,
    ok: status === 'Success',
    instances: req.instanceIds.map((instanceId) => ({
      instanceId,
      status,
      statusDetails: status,
      responseCode,
      stdout: status === 'Success' ? `${req.step.name} on ${instanceId}` : '',
      stderr: '',
      outputSha256: '0'.repeat(64),
    })),
  };
}

/** Activities that record what they were asked; `failStep` makes that step's outcome fail. */
export function fakeActivities(failStep?: string, hangStep?: string): Fake {
  const events: NewAuditEvent[] = [];
  const dispatched: StepRequest[] = [];
  const cancelled: string[] = [];
  const seen = new Set<string>();
  const activities = {
    async recordEvent(e: NewAuditEvent) {
      if (seen.has(e.eventId)) return;
      seen.add(e.eventId);
      events.push(e);
    },
    async recordEvents(list: readonly NewAuditEvent[]) {
      for (const e of list) await activities.recordEvent(e);
    },
    async issueCredentials() {
      return { accessKeyId: 'ASIATEST', expiration: '2026-11-01T01:00:00.000Z', policyDigest: 'd'.repeat(64) };
    },
    async releaseCredentials() {},
    /** The plan's ids, from the request this fake recorded (as the real one reads the audit log). */
    async planTargets({ executionId }: { executionId: string; planDigest: string }): Promise<string[]> {
      const request = events.find((e) => e.type === 'execution.requested' && e.executionId === executionId);
      if (!request) throw new Error(`the request of ${executionId} is not recorded yet`);
      return (request.data as { plan: { targets: { instanceId: string }[] } }).plan.targets.map((t) => t.instanceId);
    },
    async dispatchStep(req: StepRequest) {
      dispatched.push(req);
      return { commandId: `cmd-${req.stepIndex}`, adopted: false };
    },
    async awaitStep(req: StepRequest & { commandId: string }): Promise<StepOutcome> {
      if (req.step.name === hangStep) {
        // Like following a long command: heartbeats, and sleeps that end when cancelled.
        for (;;) {
          Context.current().heartbeat();
          await Context.current().sleep(100);
        }
      }
      const ok = req.step.name !== failStep;
      return outcome(req, ok ? 'Success' : 'Failed', ok ? 0 : 1);
    },
    async cancelStep(req: StepRequest & { commandId: string }): Promise<StepOutcome> {
      cancelled.push(req.commandId);
      return outcome(req, 'Cancelled', -1);
    },
  } as unknown as MechanicActivities;
  return { events, dispatched, cancelled, activities };
}
