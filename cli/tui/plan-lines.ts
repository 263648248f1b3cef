/**
 * A plan as lines of text: exactly what approvers are shown (what runs where, as which role, for
 * how long, under which session policy, its digest). The plan review, the vote dialog and the run
 * view all scroll through these same lines, so the operator and the approvers read the same thing.
 */
import { approvalGroupsOf, ownersOf, riskOf, riskText } from './risk.ts';
import { duration, inert, inertLines } from './text.ts';
import { plannedStepNotes } from '../../src/core/step-controls-text.ts';
import { rateControlText } from '../../src/core/targets.ts';
import { planParamText } from '../../src/core/params.ts';
import type { PlanInfo } from './types.ts';

export interface PlanLine {
  readonly text: string;
  readonly style?: 'title' | 'dim' | 'code';
}

export function planLines(plan: PlanInfo, planDigest: string | undefined): PlanLine[] {
  const lines: PlanLine[] = [];
  const add = (text: string, style?: PlanLine['style']) => lines.push(style ? { text, style } : { text });
  add(`${plan.runbook.name} v${plan.runbook.version}  (runbook digest ${plan.runbook.digest.slice(0, 12)})`, 'title');
  add(`plan digest  ${planDigest ?? '(given when submitted)'}`);
  const owners = ownersOf(plan.runbook);
  add(
    `${riskText(riskOf(plan.runbook)).padEnd(12)} owners ${owners === undefined ? 'unknown' : owners.length ? inert(owners.join(', ')) : 'none named'}`,
  );
  add(`requested by ${inert(plan.requester)}: ${inert(plan.reason)}`);
  const params = Object.entries(plan.params);
  add(
    `parameters   ${params.length ? params.map(([k, v]) => inert(planParamText(k, v, plan.secretParams))).join('  ') : 'none'}`,
  );
  add(
    `targets      ${plan.targets.length}: ${plan.targets.map((t) => (t.name ? `${inert(t.name)} (${t.instanceId})` : t.instanceId)).join(', ')}`,
  );
  add(`runs as      ${plan.roleArn} in ${plan.region}`);
  add(`time budget  ${duration(plan.budgetSeconds)} (credentials live no longer)`);
  const groups = approvalGroupsOf(plan.runbook);
  add(
    `approval     ${plan.approval.required} approver(s), not ${inert(plan.requester)}, within ${duration(plan.approval.expiresAfterSeconds)}${
      groups?.length
        ? `, from ${riskOf(plan.runbook) === 'high' ? 'two different groups of' : 'the groups'} ${inert(groups.join(', '))}`
        : ''
    }`,
  );
  add('');
  const steps = (title: string, list: PlanInfo['steps']) => {
    if (list.length === 0) return;
    add(title, 'title');
    list.forEach((s, i) => {
      // Step controls: a step the plan skips is one line (it is never sent); the others say when they
      // run, how often they are retried and whether a failure stops the run.
      if (s.skipped !== undefined) {
        add(`${i + 1}. ${inert(s.name)}  skipped, never sent: ${inert(s.skipped)}`, 'dim');
        return;
      }
      const rate = rateControlText(s, plan.targets.length);
      add(
        `${i + 1}. ${inert(s.name)}  (timeout ${duration(s.timeoutSeconds)}) on every target${rate ? `, ${rate}` : ''}:`,
      );
      for (const note of plannedStepNotes(s)) add(`   ${inert(note)}`, 'dim');
      for (const l of inertLines(s.script)) add(`   │ ${l}`, 'code');
    });
  };
  steps('Steps', plan.steps);
  steps('On failure', plan.onFailure);
  add('');
  add('Session policy (the only AWS calls these credentials allow)', 'title');
  let policy = plan.sessionPolicy;
  try {
    policy = JSON.stringify(JSON.parse(plan.sessionPolicy), null, 2);
  } catch {
    // shown as it came
  }
  for (const l of inertLines(policy)) add(`   ${l}`, 'code');
  return lines;
}
