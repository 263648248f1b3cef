import type { ExecutionView } from '../src/core/execution.ts';
import type { Plan } from '../src/core/plan.ts';
import type { ExecutionSummary } from '../src/core/audit.ts';
import { neutralize } from '../src/core/text.ts';
import { planParamText } from '../src/core/params.ts';
import { plannedStepAt, plannedStepNotes, stepRunNotes } from '../src/core/step-controls-text.ts';
import { rateControlText } from '../src/core/targets.ts';
import { truncationNote } from '../src/core/ssm-output.ts';

/*
 * Every text here was stored by someone (a reason, a comment, a parameter, an instance's Name tag,
 * command output, a runbook's description) and goes to a terminal: each passes `neutralize`, so
 * an escape sequence, a newline or a direction override in it cannot recolour, move, clear or
 * reorder what the reader sees. `t` is for one-line fields; output keeps its lines.
 */
const t = (value: unknown): string => neutralize(String(value));
const lines = (value: string): string[] =>
  neutralize(value, { multiline: true })
    .trimEnd()
    .split('\n')
    .filter((l) => l.trim() !== '');

export function formatPlan(plan: Plan, planDigest: string): string {
  const out = [
    `runbook   ${t(plan.runbook.name)} v${plan.runbook.version}  (${t(plan.runbook.digest.slice(0, 12))})`,
    `requester ${t(plan.requester)} — "${t(plan.reason)}"`,
    `params    ${
      Object.entries(plan.params)
        .map(([k, v]) => t(planParamText(k, v, plan.secretParams)))
        .join(' ') || '(none)'
    }`,
    `targets   ${plan.targets.map((x) => (x.name ? `${t(x.name)} (${t(x.instanceId)})` : t(x.instanceId))).join(', ')}`,
    `role      ${t(plan.roleArn)}, credentials for at most ${Math.round(plan.budgetSeconds / 60)} min`,
    `approval  ${plan.approval.required} approval(s) within ${Math.round(plan.approval.expiresAfterSeconds / 60)} min`,
    `steps     ${plan.steps.map((s, i) => `${i + 1}. ${t(s.name)}${s.skipped !== undefined ? ' (skipped)' : ''}`).join('  ')}`,
    ...(plan.onFailure.length ? [`on failure ${plan.onFailure.map((s) => t(s.name)).join(', ')}`] : []),
    `plan      ${t(planDigest)}`,
  ];
  return out.join('\n');
}

/** The mark before a step's line, by its status. */
export const MARK: Record<string, string> = {
  pending: '·',
  running: '…',
  succeeded: '✓',
  failed: '✗',
  cancelled: '⊘',
  skipped: '-',
};

export function formatExecution(view: ExecutionView, opts: { output?: boolean } = {}): string {
  const out = [
    `${t(view.executionId)}  ${t(view.status.toUpperCase())}${view.reason ? ` — ${t(view.reason)}` : ''}`,
    formatPlan(view.plan, view.planDigest),
  ];
  const a = view.approval;
  out.push(
    a.status === 'pending'
      ? `approvals ${a.approvedBy.map(t).join(', ') || 'none yet'}; ${a.missing} more needed`
      : a.status === 'approved'
        ? `approvals ${a.approvedBy.map(t).join(', ')}`
        : `rejected  by ${t(a.by)}${a.comment ? `: ${t(a.comment)}` : ''}`,
  );
  if (view.credentials) {
    out.push(`creds     ${t(view.credentials.accessKeyId)}, expire ${t(view.credentials.expiration)}`);
  }
  for (const [index, step] of view.steps.entries()) {
    // Its attempt, a failure the run went past, why it was skipped (step controls).
    const notes = stepRunNotes(step, plannedStepAt(view.plan, index));
    out.push(
      `${MARK[step.status] ?? '?'} ${step.phase === 'onFailure' ? '[on failure] ' : ''}${t(step.name)}  ${t(step.status)}${step.commandId ? `  (${t(step.commandId)})` : ''}${notes.length ? ` — ${notes.map(t).join('; ')}` : ''}`,
    );
    for (const inst of step.instances) {
      out.push(`    ${t(inst.instanceId)}  ${t(inst.statusDetails || inst.status)}  exit ${t(inst.responseCode)}`);
      if (opts.output !== false) {
        for (const l of lines(inst.stdout)) out.push(`      | ${l}`);
        for (const l of lines(inst.stderr)) out.push(`      ! ${l}`);
        for (const s of inst.truncatedBySsm ?? []) out.push(`      [${truncationNote(s)}]`);
      }
    }
  }
  return out.join('\n');
}

export function formatSummaries(rows: readonly ExecutionSummary[]): string {
  if (rows.length === 0) return 'no executions yet';
  return rows
    .map(
      (r) =>
        `${t(r.id)}  ${t(r.status).padEnd(17)} ${`${t(r.runbookName)} v${r.runbookVersion}`.padEnd(20)} by ${t(r.operator).padEnd(8)} ${t(r.createdAt)}`,
    )
    .join('\n');
}

/** What formatAudit reads of a record: the store's records and the API's alike. */
export interface AuditLine {
  readonly seq: number;
  readonly at: string;
  readonly executionId: string | null;
  readonly type: string;
  readonly actor: string;
  readonly data: Readonly<Record<string, unknown>>;
}

export function formatAudit(records: readonly AuditLine[]): string {
  if (records.length === 0) return 'no audit records';
  return records
    .map((r) => {
      const d = r.data;
      // Registry events name the version and the digest it concerns, then the decision or reason.
      const registry = r.type.startsWith('runbook.')
        ? `${t(d['name'])}@${t(d['version'])} ${t(String(d['digest']).slice(0, 12))}` +
          (typeof d['decision'] === 'string'
            ? ` ${t(d['decision'])}: "${t(d['comment'])}"`
            : typeof d['reason'] === 'string'
              ? `: ${t(d['reason'])}`
              : '')
        : undefined;
      const detail =
        registry ??
        (r.type === 'step.instance'
          ? `${t(d['step'])} on ${t(d['instanceId'])}: ${t(d['statusDetails'] ?? d['status'])} (exit ${t(d['responseCode'])})`
          : r.type === 'credentials.issued'
            ? `${t(d['accessKeyId'])} until ${t(d['expiration'])} (${t(d['reason'])})`
            : typeof d['reason'] === 'string'
              ? t(d['reason'])
              : typeof d['comment'] === 'string'
                ? `"${t(d['comment'])}"`
                : typeof d['step'] === 'string'
                  ? t(d['step'])
                  : '');
      // A folded refusal stands for several: say how many, and over which span.
      const folded = typeof d['count'] === 'number' ? ` (×${d['count']}, ${t(d['since'])} – ${t(d['until'])})` : '';
      return `#${String(r.seq).padEnd(4)} ${t(r.at)}  ${t(r.executionId ?? '-').padEnd(13)} ${t(r.type).padEnd(20)} ${t(r.actor).padEnd(9)} ${detail}${folded}`;
    })
    .join('\n');
}

/** What formatRunbooks reads of a runbook: the API's catalog entries. */
export interface RunbookLine {
  readonly name: string;
  readonly version: number;
  readonly description: string;
  readonly parameters: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  readonly steps: readonly { readonly name: string }[];
}

/**
 * The catalog for `mechanic runbooks`: each valid runbook, then each refused file marked with ✗
 * and its error (which names the file), so an author sees at once why their runbook is missing.
 */
export function formatRunbooks(
  runbooks: readonly RunbookLine[],
  invalid: readonly { readonly file: string; readonly error: string }[] = [],
): string {
  const out = runbooks.map((r) => {
    const params = Object.entries(r.parameters)
      .map(([k, p]) => `${t(k)}${p['default'] === undefined ? '' : `=${t(JSON.stringify(p['default']))}`}`)
      .join(' ');
    return (
      `${t(r.name)} v${r.version}  ${t(r.description)}\n` +
      `    params: ${params || '(none)'}; steps: ${r.steps.map((s) => t(s.name)).join(', ')}`
    );
  });
  if (runbooks.length === 0) out.push('no runbooks');
  if (invalid.length) {
    out.push(
      `${invalid.length} runbook file${invalid.length === 1 ? ' was' : 's were'} refused; the others are served:`,
      ...invalid.map(
        (i) =>
          `✗ ${t(i.file)}  INVALID\n${lines(i.error)
            .map((l) => `    ${l}`)
            .join('\n')}`,
      ),
    );
  }
  return out.join('\n');
}

/**
 * `mechanic plan`: everything a run of this plan would do, in full — per step, the instances it
 * runs on and the exact script; the role, region and the session policy its credentials carry;
 * how long they live; the approval it waits for — and the digest approvers would vote on.
 */
export function formatPlanDetail(plan: Plan, planDigest: string): string {
  const rb = plan.runbook as Plan['runbook'] & {
    risk?: string;
    owners?: readonly string[];
    approvalGroups?: readonly string[];
    environment?: string;
  };
  const minutes = (s: number) => `${Math.round(s / 60)} min`;
  const targets = plan.targets.map((x) => `${x.name ? t(x.name).padEnd(12) : ''.padEnd(12)} ${t(x.instanceId)}`);
  // SSM rate control, when the runbook sets it: how many at once, when no further instance starts.
  const rateText = (s: Plan['steps'][number]) => {
    const text = rateControlText(s, plan.targets.length);
    return text === undefined ? '' : `, ${text}`;
  };
  // Step controls: a step the plan skips is one line (never sent: no instances, no script); the
  // others say when they run, how often they are retried, whether a failure stops the run.
  const notesText = (s: Plan['steps'][number]) =>
    plannedStepNotes(s)
      .map((n) => `, ${t(n)}`)
      .join('');
  const steps = (list: Plan['steps'], label: string) =>
    list.flatMap((s, i) =>
      s.skipped !== undefined
        ? ['', `${label} ${i + 1} of ${list.length}: ${t(s.name)} — ${t(plannedStepNotes(s).join('; '))}`]
        : [
            '',
            `${label} ${i + 1} of ${list.length}: ${t(s.name)} — times out after ${s.timeoutSeconds} s, runs on ${plan.targets.length} instance${plan.targets.length === 1 ? '' : 's'}${rateText(s)}${notesText(s)}:`,
            ...targets.map((x) => `    ${x}`),
            '  script, as it will run (parameters already quoted):',
            ...neutralize(s.script, { multiline: true })
              .trimEnd()
              .split('\n')
              .map((l) => `    | ${l}`),
          ],
    );
  let policy = plan.sessionPolicy;
  try {
    policy = JSON.stringify(JSON.parse(plan.sessionPolicy), null, 2);
  } catch {
    // Shown as it is: the digest below covers it either way.
  }
  return [
    `runbook    ${t(rb.name)} v${rb.version} (runbook digest ${t(rb.digest.slice(0, 12))})` +
      (rb.risk ? ` · risk ${t(rb.risk)}` : '') +
      (rb.environment ? ` · environment ${t(rb.environment)}` : '') +
      (rb.owners?.length ? ` · owners ${rb.owners.map(t).join(', ')}` : ''),
    `requester  ${t(plan.requester)} — "${t(plan.reason)}"`,
    `params     ${
      Object.entries(plan.params)
        .map(([k, v]) => t(planParamText(k, v, plan.secretParams)))
        .join(' ') || '(none)'
    }`,
    `role       ${t(plan.roleArn)} in ${t(plan.region)}`,
    `lifetime   credentials last at most ${minutes(plan.budgetSeconds)} (${plan.budgetSeconds} s), issued only after approval`,
    `approval   ${plan.approval.required} approval(s) within ${minutes(plan.approval.expiresAfterSeconds)}` +
      (rb.approvalGroups?.length ? ` from members of ${rb.approvalGroups.map(t).join(', ')}` : '') +
      '; the requester never counts',
    `targets    ${plan.targets.length} instance${plan.targets.length === 1 ? '' : 's'}`,
    ...steps(plan.steps, 'step'),
    ...(plan.onFailure.length ? steps(plan.onFailure, 'if a step fails, step') : []),
    '',
    'session policy (the most these credentials may do):',
    ...neutralize(policy, { multiline: true })
      .split('\n')
      .map((l) => `    ${l}`),
    '',
    `plan digest ${t(planDigest)}`,
  ].join('\n');
}
