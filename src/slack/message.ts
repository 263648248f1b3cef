/**
 * The Slack message of one run, built from its view alone (pure: no clock, no I/O), so the request
 * and every later update are the same function of the run's state. Text that came from a person
 * (reason, parameters, comments, names) passes the project's one neutralising function and is
 * escaped for mrkdwn, so it can never become a mention, a link, a channel ping or a button.
 */
import type { ExecutionView, StepView } from '../core/execution.ts';
import { planParamText } from '../core/params.ts';
import type { PlannedStep } from '../core/plan.ts';
import { plannedStepAt, plannedStepNotes, stepRunNotes } from '../core/step-controls-text.ts';
import { rateControlText } from '../core/targets.ts';
import { neutralize } from '../core/text.ts';

/** What the buttons carry: the run and the plan the approver saw. The server checks both. */
export interface VoteButtonValue {
  readonly executionId: string;
  readonly planDigest: string;
}

export const APPROVE_ACTION = 'mechanic.approve';
export const REJECT_ACTION = 'mechanic.reject';
export const REJECT_VIEW = 'mechanic.reject-reason';

/** The runbook facts helper C adds to the plan; read defensively so older plans still render. */
interface RunbookMeta {
  readonly risk?: 'low' | 'medium' | 'high';
  readonly owners?: readonly string[];
  readonly approvalGroups?: readonly string[];
}

export function runbookMeta(view: Pick<ExecutionView, 'plan'>): Required<RunbookMeta> {
  const r = view.plan.runbook as ExecutionView['plan']['runbook'] & RunbookMeta;
  return { risk: r.risk ?? 'medium', owners: r.owners ?? [], approvalGroups: r.approvalGroups ?? [] };
}

// Block Kit limits (api.slack.com/reference/block-kit): header 150, section text 3000, a field
// 2000, 10 fields per section, 50 blocks per message, a button value 2000.
const HEADER_MAX = 150;
const SECTION_MAX = 3000;
const FIELD_MAX = 2000;
const VALUE_MAX = 200;
const TARGETS_SHOWN = 5;
const PARAMS_SHOWN = 20;

function cut(s: string, max: number): string {
  const chars = Array.from(s);
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : s;
}

/**
 * Text from a person, made safe for mrkdwn: neutralised (no control, bidi or invisible characters)
 * and with `&`, `<` and `>` escaped as Slack requires, so `<!channel>`, `<@U123>` and
 * `<https://evil|Approve>` are shown as typed and never parsed. Cut to `max` characters first, so
 * an escape sequence is never split.
 */
export function slackText(s: string, max = VALUE_MAX): string {
  return cut(neutralize(s), max).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** For plain_text objects: neutralised and cut; Slack shows plain_text as is. */
function plain(s: string, max: number): { type: 'plain_text'; text: string; emoji: false } {
  return { type: 'plain_text', text: cut(neutralize(s), max), emoji: false };
}

function mrkdwn(text: string): { type: 'mrkdwn'; text: string; verbatim: true } {
  // verbatim: Slack does not turn bare URLs, #channels or @names into links or mentions.
  return { type: 'mrkdwn', text: cut(text, SECTION_MAX), verbatim: true };
}

export function encodeButtonValue(v: VoteButtonValue): string {
  return JSON.stringify({ e: v.executionId, d: v.planDigest });
}

/** Reads a button's value; undefined when it is not one of mechanic's. */
export function decodeButtonValue(value: unknown): VoteButtonValue | undefined {
  if (typeof value !== 'string' || value.length > 500) return undefined;
  try {
    const o = JSON.parse(value) as { e?: unknown; d?: unknown };
    if (
      typeof o.e === 'string' &&
      typeof o.d === 'string' &&
      /^mx-[a-z0-9]{1,40}$/.test(o.e) &&
      /^[0-9a-f]{64}$/.test(o.d)
    ) {
      return { executionId: o.e, planDigest: o.d };
    }
  } catch {
    // Not JSON: not a button of ours.
  }
  return undefined;
}

const STATUS_LINE: Readonly<Record<ExecutionView['status'], string>> = {
  awaiting_approval: ':hourglass_flowing_sand: Waiting for approval',
  running: ':arrow_forward: Running',
  completed: ':white_check_mark: Completed',
  failed: ':x: Failed',
  expired: ':alarm_clock: Expired: not approved in time',
  cancelled: ':no_entry_sign: Cancelled',
  rejected: ':no_entry: Rejected',
};

function duration(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds >= 3600) return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
  return `${Math.round(seconds / 60)} min`;
}

/** "1 of 2 approvals; 1 more needed from sre or dba" — what the approvers still have to do. */
export function approvalLine(view: ExecutionView): string {
  const { approvalGroups, risk } = runbookMeta(view);
  const required = view.plan.approval.required;
  const a = view.approval;
  const by = a.status === 'rejected' ? [] : a.approvedBy;
  const names = by.length ? ` (${by.map((u) => slackText(u, 60)).join(', ')})` : '';
  let line = `${by.length} of ${required} approval${required === 1 ? '' : 's'}${names}`;
  if (a.status === 'pending' && view.status === 'awaiting_approval') {
    const groups = approvalGroups.length ? ` from ${approvalGroups.map((g) => slackText(g, 60)).join(' or ')}` : '';
    line += `; ${a.missing} more needed${groups}`;
    if (risk === 'high') line += '; high risk: approvals from two different groups, confirmed on the mechanic page';
  }
  if (a.status === 'rejected') {
    line = `rejected by ${slackText(a.by, 60)}${a.comment ? `: “${slackText(a.comment, 500)}”` : ''}`;
  }
  return line;
}

export interface RunMessageOptions {
  /** Where the run can be seen in full (the web UI, or the API's execution URL). */
  readonly runUrl?: string | undefined;
}

export interface SlackMessage {
  /** The notification and screen-reader text; the blocks are what people see. */
  readonly text: string;
  readonly blocks: readonly Record<string, unknown>[];
}

/**
 * The message of a run: what is asked (runbook, risk, owners, requester, reason, parameters,
 * targets, role and credential lifetime, plan digest), where the approval stands, and — only while
 * it waits for approval — the Approve and Reject buttons carrying the execution id and plan digest.
 */
export function runMessage(view: ExecutionView, options: RunMessageOptions = {}): SlackMessage {
  const { plan } = view;
  const meta = runbookMeta(view);
  const name = `${plan.runbook.name}@${plan.runbook.version}`;
  const blocks: Record<string, unknown>[] = [];
  blocks.push({ type: 'header', text: plain(`mechanic run: ${name}`, HEADER_MAX) });
  blocks.push({
    type: 'section',
    text: mrkdwn(`*${STATUS_LINE[view.status]}*  ·  \`${slackText(plan.executionId, 60)}\``),
  });
  const field = (label: string, value: string) => mrkdwn(`*${label}*\n${cut(value, FIELD_MAX - label.length - 4)}`);
  blocks.push({
    type: 'section',
    fields: [
      field(
        'Runbook',
        `${slackText(name, 120)}${plan.runbook.description ? ` — ${slackText(plan.runbook.description, 300)}` : ''}`,
      ),
      field('Risk', meta.risk),
      field('Owners', meta.owners.length ? meta.owners.map((o) => slackText(o, 60)).join(', ') : 'none named'),
      field('Requested by', slackText(plan.requester, 60)),
      field('Role', `${slackText(plan.roleArn, 200)} in ${slackText(plan.region, 40)}`),
      field('Credentials live', duration(plan.budgetSeconds)),
      field('Plan digest', `\`${view.planDigest.slice(0, 12)}\``),
      field('Approvals', approvalLine(view)),
    ],
  });
  blocks.push({ type: 'section', text: mrkdwn(`*Reason*\n>${slackText(plan.reason, 500)}`) });
  const params = Object.entries(plan.params);
  if (params.length) {
    const lines = params.slice(0, PARAMS_SHOWN).map(([k, v]) =>
      // A secret's value is only the name of an SSM parameter, read on the instance: say so.
      plan.secretParams?.includes(k)
        ? `• ${slackText(planParamText(k, v, plan.secretParams), VALUE_MAX + 120)}`
        : `• ${slackText(k, 60)} = \`${slackText(String(v), VALUE_MAX).replace(/`/g, "'")}\``,
    );
    if (params.length > PARAMS_SHOWN) lines.push(`• …and ${params.length - PARAMS_SHOWN} more`);
    blocks.push({ type: 'section', text: mrkdwn(`*Parameters*\n${lines.join('\n')}`) });
  }
  const shown = plan.targets
    .slice(0, TARGETS_SHOWN)
    .map((t) => (t.name ? `${slackText(t.name, 60)} (${slackText(t.instanceId, 40)})` : slackText(t.instanceId, 40)));
  const more = plan.targets.length > TARGETS_SHOWN ? `, and ${plan.targets.length - TARGETS_SHOWN} more` : '';
  blocks.push({
    type: 'section',
    text: mrkdwn(`*Targets: ${plan.targets.length}*\n${shown.join(', ')}${more}`),
  });
  if (view.status === 'awaiting_approval') {
    blocks.push({ type: 'section', text: mrkdwn(`*Steps*\n${plannedStepLines(view).join('\n')}`) });
  }
  if (view.status !== 'awaiting_approval') {
    const steps = view.steps
      .map((s, index) => stepLine(s, plannedStepAt(plan, index)))
      .filter((_, index) => view.steps[index]!.status !== 'pending' || view.status === 'running');
    if (steps.length) blocks.push({ type: 'section', text: mrkdwn(`*Steps*\n${steps.join('\n')}`) });
    if (view.reason) blocks.push({ type: 'context', elements: [mrkdwn(slackText(view.reason, 500))] });
  }
  if (view.status === 'awaiting_approval') {
    const value = encodeButtonValue({ executionId: plan.executionId, planDigest: view.planDigest });
    blocks.push({
      type: 'actions',
      block_id: 'mechanic.vote',
      elements: [
        { type: 'button', action_id: APPROVE_ACTION, style: 'primary', text: plain('Approve', 75), value },
        { type: 'button', action_id: REJECT_ACTION, style: 'danger', text: plain('Reject', 75), value },
      ],
    });
  }
  if (options.runUrl && /^https?:\/\/[^\s|<>]+$/.test(options.runUrl)) {
    blocks.push({ type: 'context', elements: [mrkdwn(`<${options.runUrl}|Open the run in mechanic>`)] });
  }
  const text = `${neutralize(name)}: ${STATUS_LINE[view.status].replace(/^:[a-z_]+: /, '')} (${plan.executionId})`;
  return { text: cut(text, 300).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'), blocks };
}

/**
 * The plan's steps as `mechanic plan` says them (cli/format.ts formatPlanDetail), one line each and
 * without the scripts (the mechanic page shows those): a skipped step says only why it is never
 * sent; the others their timeout, rate control, condition, retries and continueOnError.
 */
export function plannedStepLines(view: Pick<ExecutionView, 'plan'>): string[] {
  const { plan } = view;
  const line = (s: PlannedStep, i: number, list: readonly PlannedStep[], label: string): string => {
    const head = `${label}${i + 1} of ${list.length}: ${slackText(s.name, 80)}`;
    if (s.skipped !== undefined) return `${head} — ${slackText(plannedStepNotes(s).join('; '), 300)}`;
    const rate = rateControlText(s, plan.targets.length);
    const notes = [rate, ...plannedStepNotes(s)].filter((n): n is string => n !== undefined);
    return `${head} — times out after ${s.timeoutSeconds} s${notes.map((n) => `, ${slackText(n, 300)}`).join('')}`;
  };
  return [
    ...plan.steps.map((s, i, list) => line(s, i, list, '')),
    ...plan.onFailure.map((s, i, list) => line(s, i, list, 'if a step fails, ')),
  ];
}

function stepLine(step: StepView, planned: PlannedStep | undefined): string {
  const mark: Record<StepView['status'], string> = {
    pending: '·',
    running: '…',
    succeeded: '✓',
    failed: '✗',
    cancelled: '⊘',
    skipped: '–',
  };
  const phase = step.phase === 'onFailure' ? ' (on failure)' : '';
  // A step on more than 50 instances lists only its unsuccessful ones; its summary counts them all.
  const total = step.summary?.total ?? step.instances.length;
  const ok = step.summary
    ? (step.summary.byStatus['Success'] ?? 0)
    : step.instances.filter((i) => i.status === 'Success').length;
  const counts = total ? ` — ${ok}/${total} instances ok` : '';
  // Its attempt of a retried step, a failure the run went past, why it was skipped: the shared wording.
  const notes = stepRunNotes(step, planned)
    .map((n) => `, ${slackText(n, 300)}`)
    .join('');
  return `${mark[step.status]} ${slackText(step.name, 80)}${phase}: ${step.status}${counts}${notes}`;
}

/** The threaded summary posted when a run ends: each step and each instance's result. */
export function summaryMessage(view: ExecutionView): SlackMessage {
  const lines = [`*${STATUS_LINE[view.status]}*${view.reason ? ` — ${slackText(view.reason, 500)}` : ''}`];
  for (const [index, step] of view.steps.entries()) {
    lines.push(stepLine(step, plannedStepAt(view.plan, index)));
    for (const i of step.instances.slice(0, 10)) {
      const out = (i.stderr || i.stdout).trim().split('\n').pop() ?? '';
      lines.push(
        `    ${slackText(i.instanceId, 40)}: ${slackText(i.status, 20)} (exit ${i.responseCode})${out ? ` \`${slackText(out, 150).replace(/`/g, "'")}\`` : ''}`,
      );
    }
  }
  const text = `${neutralize(view.plan.runbook.name)} ${view.plan.executionId}: ${view.status}`;
  return {
    text: slackText(text, 300),
    blocks: [{ type: 'section', text: mrkdwn(lines.join('\n')) }],
  };
}

/** The modal that asks a rejecting approver why. The run and digest ride in private_metadata. */
export function rejectModal(v: VoteButtonValue, runName: string, channel?: string): Record<string, unknown> {
  return {
    type: 'modal',
    callback_id: REJECT_VIEW,
    // The channel, so the outcome can be told to the approver where they clicked.
    private_metadata: JSON.stringify({ e: v.executionId, d: v.planDigest, ...(channel ? { c: channel } : {}) }),
    title: plain('Reject the run', 24),
    submit: plain('Reject', 24),
    close: plain('Cancel', 24),
    blocks: [
      {
        type: 'section',
        text: mrkdwn(`You are rejecting \`${slackText(v.executionId, 60)}\` (${slackText(runName, 120)}).`),
      },
      {
        type: 'input',
        block_id: 'reason',
        label: plain('Why?', 50),
        element: { type: 'plain_text_input', action_id: 'reason', min_length: 3, max_length: 500 },
      },
    ],
  };
}
