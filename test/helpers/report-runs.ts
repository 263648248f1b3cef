/**
 * Runs written into a real audit store the way the workflow writes them (request with its plan,
 * votes, the decision, the end), for the report tests of the store, the web page and the browser.
 */
import type { NewAuditEvent } from '../../src/core/audit.ts';
import type { AuditStore } from '../../src/store/audit-log.ts';

export interface StoredRun {
  readonly id: string;
  readonly runbook: string;
  readonly operator: string;
  readonly at: string;
  readonly targets: readonly string[];
  /** Approvers, each voting after `waitSeconds`; none: the run expires. */
  readonly approvers?: readonly string[];
  readonly waitSeconds?: number;
  readonly end: 'completed' | 'failed' | 'rejected' | 'expired';
}

const plus = (iso: string, seconds: number) => new Date(Date.parse(iso) + seconds * 1000).toISOString();

/** The records of one run, in the order the workflow appends them. */
export function runEvents(r: StoredRun): NewAuditEvent[] {
  const planDigest = `plan-${r.id}`;
  const runbook = {
    name: r.runbook,
    version: 1,
    digest: `sha256:${r.runbook}`,
    description: `The ${r.runbook} runbook.`,
  };
  const plan = {
    executionId: r.id,
    runbook,
    requester: r.operator,
    reason: 'report test',
    params: {},
    targets: r.targets.map((instanceId) => ({ instanceId })),
    roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
    region: 'eu-west-1',
    steps: [{ name: 'work', script: 'true', timeoutSeconds: 60 }],
    onFailure: [],
    approval: { required: 1, expiresAfterSeconds: 3600 },
    budgetSeconds: 900,
    sessionPolicy: '{}',
    createdAt: r.at,
  };
  const base = (n: number, type: NewAuditEvent['type'], actor: string, at: string, data: Record<string, unknown>) => ({
    eventId: `${r.id}:${String(n).padStart(4, '0')}:${type}`,
    executionId: r.id,
    type,
    actor,
    at,
    data,
  });
  const events: NewAuditEvent[] = [
    base(0, 'execution.requested', r.operator, r.at, {
      runbook,
      params: {},
      targets: [...r.targets],
      planDigest,
      reason: 'report test',
      requester: r.operator,
      plan,
    }),
  ];
  const decidedAt = plus(r.at, r.waitSeconds ?? 60);
  const approvers = r.approvers ?? [];
  if (r.end === 'expired' || approvers.length === 0) {
    events.push(base(1, 'execution.expired', 'mechanic', plus(r.at, 3600), { reason: 'not enough approvals' }));
    return events;
  }
  let n = 1;
  if (r.end === 'rejected') {
    events.push(base(n++, 'approval.rejected', approvers[0]!, decidedAt, { planDigest }));
    events.push(base(n++, 'execution.rejected', approvers[0]!, decidedAt, { reason: 'no' }));
    return events;
  }
  for (const a of approvers) events.push(base(n++, 'approval.granted', a, decidedAt, { planDigest }));
  events.push(base(n++, 'execution.running', 'mechanic', decidedAt, { approvedBy: [...approvers] }));
  events.push(
    base(n++, r.end === 'completed' ? 'execution.completed' : 'execution.failed', 'mechanic', plus(decidedAt, 30), {}),
  );
  return events;
}

export async function storeRuns(audit: AuditStore, runs: readonly StoredRun[]): Promise<void> {
  for (const r of runs) for (const e of runEvents(r)) await audit.append(e);
}
