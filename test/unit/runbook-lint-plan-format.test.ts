import { describe, expect, test } from 'vitest';
import { formatPlanDetail } from '../../cli/format.ts';
import { buildPlan } from '../../src/core/plan.ts';
import { parseRunbook } from '../../src/core/runbook.ts';

/** What `mechanic plan` prints for a plan: every step on every instance, the role, the policy, the lifetime. */
function planned() {
  const runbook = parseRunbook({
    name: 'restart-web',
    version: 4,
    description: 'Restart the web service.',
    owners: ['sre', 'web'],
    risk: 'high',
    environment: 'production',
    roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
    parameters: { service: { type: 'string', pattern: '^[a-z]+$' } },
    targets: { tags: { Role: 'web' } },
    approval: { required: 2, expiresAfterMinutes: 90, groups: ['sre', 'web'] },
    steps: [
      { name: 'restart', script: 'set -e\nsystemctl restart {{ service }}', timeoutSeconds: 120 },
      { name: 'check', script: 'systemctl is-active {{ service }}', timeoutSeconds: 30 },
    ],
    onFailure: [{ name: 'report', script: 'systemctl status {{ service }}', timeoutSeconds: 30 }],
  });
  return buildPlan({
    executionId: 'mx-plantest01',
    runbook,
    runbookDigest: 'a'.repeat(64),
    rawParams: { service: 'web' },
    targets: [{ instanceId: 'i-0d3f1ee7000000001', name: 'web-1' }, { instanceId: 'i-0d3f1ee7000000002' }],
    requester: 'alice',
    reason: 'preview',
    region: 'eu-west-1',
    now: new Date('2026-11-30T00:00:00Z'),
  });
}

describe('mechanic plan output', () => {
  const { plan, planDigest } = planned();
  const text = formatPlanDetail(plan, planDigest);
  const lines = text.split('\n');

  test('the header names the runbook and its metadata, the role and region, the lifetime and the approval', () => {
    expect(lines.slice(0, 7)).toEqual([
      'runbook    restart-web v4 (runbook digest aaaaaaaaaaaa) · risk high · environment production · owners sre, web',
      'requester  alice — "preview"',
      'params     service="web"',
      'role       arn:aws:iam::123456789012:role/mechanic-runner in eu-west-1',
      `lifetime   credentials last at most ${Math.round(plan.budgetSeconds / 60)} min (${plan.budgetSeconds} s), issued only after approval`,
      'approval   2 approval(s) within 90 min from members of sre, web; the requester never counts',
      'targets    2 instances',
    ]);
  });

  test('every step, then every onFailure step, lists each instance and the script exactly as it will run', () => {
    const from = (heading: string) => lines.slice(lines.indexOf(heading));
    expect(from('step 1 of 2: restart — times out after 120 s, runs on 2 instances:').slice(0, 6)).toEqual([
      'step 1 of 2: restart — times out after 120 s, runs on 2 instances:',
      '    web-1        i-0d3f1ee7000000001',
      '                 i-0d3f1ee7000000002',
      '  script, as it will run (parameters already quoted):',
      '    | set -e',
      "    | systemctl restart 'web'",
    ]);
    expect(text).toContain('step 2 of 2: check — times out after 30 s, runs on 2 instances:');
    expect(text).toContain(
      "if a step fails, step 1 of 1: report — times out after 30 s, runs on 2 instances:\n    web-1        i-0d3f1ee7000000001\n                 i-0d3f1ee7000000002\n  script, as it will run (parameters already quoted):\n    | systemctl status 'web'",
    );
  });

  test('the session policy is shown whole, and the digest ends the output', () => {
    const policy = text.slice(
      text.indexOf('session policy (the most these credentials may do):\n') + 52,
      text.indexOf('\n\nplan digest'),
    );
    expect(JSON.parse(policy)).toEqual(JSON.parse(plan.sessionPolicy));
    expect(lines.at(-1)).toBe(`plan digest ${planDigest}`);
  });

  test('text someone stored is shown inert: an escape in a reason cannot recolour the terminal', () => {
    const hostile = formatPlanDetail({ ...plan, reason: 'fix \u001b[2Jnow' }, planDigest);
    expect(hostile).not.toContain('\u001b');
  });
});
