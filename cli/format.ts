import type { ExecutionView } from '../src/core/execution.ts';
import type { Plan } from '../src/core/plan.ts';
import type { AuditRecord, ExecutionSummary } from '../src/core/audit.ts';

export function formatPlan(plan: Plan, planDigest: string): string {
  const lines = [
    `runbook   ${plan.runbook.name} v${plan.runbook.version}  (${plan.runbook.digest.slice(0, 12)})`,
    `requester ${plan.requester} — "${plan.reason}"`,
    `params    ${
      Object.entries(plan.params)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(' ') || '(none)'
    }`,
    `targets   ${plan.targets.map((t) => (t.name ? `${t.name} (${t.instanceId})` : t.instanceId)).join(', ')}`,
    `role      ${plan.roleArn}, credentials for at most ${Math.round(plan.budgetSeconds / 60)} min`,
    `approval  ${plan.approval.required} approval(s) within ${Math.round(plan.approval.expiresAfterSeconds / 60)} min`,
    `steps     ${plan.steps.map((s, i) => `${i + 1}. ${s.name}`).join('  ')}`,
    ...(plan.onFailure.length ? [`on failure ${plan.onFailure.map((s) => s.name).join(', ')}`] : []),
    `plan      ${planDigest}`,
  ];
  return lines.join('\n');
}

const MARK: Record<string, string> = {
  pending: '·',
  running: '…',
  succeeded: '✓',
  failed: '✗',
  cancelled: '⊘',
  skipped: '-',
};

export function formatExecution(view: ExecutionView, opts: { output?: boolean } = {}): string {
  const lines = [
    `${view.executionId}  ${view.status.toUpperCase()}${view.reason ? ` — ${view.reason}` : ''}`,
    formatPlan(view.plan, view.planDigest),
  ];
  const a = view.approval;
  lines.push(
    a.status === 'pending'
      ? `approvals ${a.approvedBy.join(', ') || 'none yet'}; ${a.missing} more needed`
      : a.status === 'approved'
        ? `approvals ${a.approvedBy.join(', ')}`
        : `rejected  by ${a.by}${a.comment ? `: ${a.comment}` : ''}`,
  );
  if (view.credentials) lines.push(`creds     ${view.credentials.accessKeyId}, expire ${view.credentials.expiration}`);
  for (const step of view.steps) {
    lines.push(
      `${MARK[step.status] ?? '?'} ${step.phase === 'onFailure' ? '[on failure] ' : ''}${step.name}  ${step.status}${step.commandId ? `  (${step.commandId})` : ''}`,
    );
    for (const inst of step.instances) {
      lines.push(`    ${inst.instanceId}  ${inst.statusDetails || inst.status}  exit ${inst.responseCode}`);
      if (opts.output !== false) {
        for (const l of inst.stdout.trimEnd().split('\n').filter(Boolean)) lines.push(`      | ${l}`);
        for (const l of inst.stderr.trimEnd().split('\n').filter(Boolean)) lines.push(`      ! ${l}`);
      }
    }
  }
  return lines.join('\n');
}

export function formatSummaries(rows: readonly ExecutionSummary[]): string {
  if (rows.length === 0) return 'no executions yet';
  return rows
    .map(
      (r) =>
        `${r.id}  ${r.status.padEnd(17)} ${`${r.runbookName} v${r.runbookVersion}`.padEnd(20)} by ${r.operator.padEnd(8)} ${r.createdAt}`,
    )
    .join('\n');
}

export function formatAudit(records: readonly AuditRecord[]): string {
  if (records.length === 0) return 'no audit records';
  return records
    .map((r) => {
      const d = r.data;
      const detail =
        r.type === 'step.instance'
          ? `${String(d['step'])} on ${String(d['instanceId'])}: ${String(d['statusDetails'] ?? d['status'])} (exit ${String(d['responseCode'])})`
          : r.type === 'credentials.issued'
            ? `${String(d['accessKeyId'])} until ${String(d['expiration'])} (${String(d['reason'])})`
            : typeof d['reason'] === 'string'
              ? d['reason']
              : typeof d['step'] === 'string'
                ? String(d['step'])
                : '';
      return `#${String(r.seq).padEnd(4)} ${r.at}  ${(r.executionId ?? '-').padEnd(13)} ${r.type.padEnd(20)} ${r.actor.padEnd(9)} ${detail}`;
    })
    .join('\n');
}
