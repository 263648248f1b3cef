/**
 * The live run, rebuilt from its event stream with the same function the server uses for a run
 * Temporal no longer holds (core/execution-view `viewFromAudit`), so what the TUI shows is what the
 * audit log says, record by record, with no polling.
 */
import { ExecutionViewSchema, type AuditRecordInfo } from '../../src/api/schemas.ts';
import type { NewAuditEvent } from '../../src/core/audit-events.ts';
import { viewFromAudit } from '../../src/core/execution-view.ts';
import { TERMINAL_STATUSES } from '../../src/core/execution.ts';
import type { Execution, ExecutionSummary, Me } from './types.ts';

export function viewFromRecords(records: readonly AuditRecordInfo[]): Execution | undefined {
  // Only the envelope the audit vocabulary reads (the chain fields are not part of the event).
  const events = records.map((r): NewAuditEvent => ({
    eventId: r.eventId,
    executionId: r.executionId,
    type: r.type as NewAuditEvent['type'],
    actor: r.actor,
    at: r.at,
    data: r.data,
  }));
  const view = viewFromAudit(events);
  if (!view) return undefined;
  const parsed = ExecutionViewSchema.safeParse(view);
  return parsed.success ? parsed.data : undefined;
}

export function isFinal(view: Execution): boolean {
  return TERMINAL_STATUSES.has(view.status);
}

/** When each step started and ended, from its records: `index:phase` → times in ms. */
export function stepTimes(records: readonly AuditRecordInfo[]): Map<number, { start?: number; end?: number }> {
  const times = new Map<number, { start?: number; end?: number }>();
  for (const r of records) {
    const index = r.data['index'];
    if (typeof index !== 'number') continue;
    const at = Date.parse(r.at);
    const t = times.get(index) ?? {};
    if (r.type === 'step.started') t.start = at;
    if (r.type === 'step.completed') t.end = at;
    times.set(index, t);
  }
  return times;
}

export type VoteRight = { readonly can: true } | { readonly can: false; readonly why: string };

/** Whether `me` may vote on this run, and if not, why: the option is absent, its reason shown. */
export function voteRight(view: Execution, me: Me): VoteRight {
  if (view.status !== 'awaiting_approval') return { can: false, why: 'it is no longer waiting for approval' };
  if (view.plan.requester === me.id) return { can: false, why: 'you requested this run; someone else must approve it' };
  if (!me.roles.includes('approver') && !me.roles.includes('admin'))
    return { can: false, why: 'you are not an approver' };
  const mine = view.votes.find((v) => v.approver === me.id);
  if (mine) return { can: false, why: `you already voted (${mine.decision})` };
  return { can: true };
}

export function cancelRight(view: Execution, me: Me): VoteRight {
  if (isFinal(view)) return { can: false, why: `it has already ended (${view.status})` };
  if (view.plan.requester !== me.id && !me.roles.includes('admin'))
    return { can: false, why: 'only the requester or an admin can cancel it' };
  return { can: true };
}

/** Whoever may approve runs at all (the API and Cedar decide each vote; this only shapes the screens). */
export function isApprover(me: Me): boolean {
  return me.roles.includes('approver') || me.roles.includes('admin');
}

/**
 * A run in the inbox: waiting for approval, requested by someone else, and not yet approved by
 * me (my own runs never appear there: the requester never counts as an approver).
 */
export function inInbox(run: ExecutionSummary, me: Me): boolean {
  return run.status === 'awaiting_approval' && run.operator !== me.id && !run.approvals.includes(me.id);
}
