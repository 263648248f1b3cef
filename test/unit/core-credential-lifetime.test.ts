import { describe, expect, test } from 'vitest';
import { digestOf } from '../../src/core/canonical.ts';
import { formatProblem, lintRunbookText } from '../../src/core/lint.ts';
import { buildPlan, type PlanInput } from '../../src/core/plan.ts';
import { parseRunbook, RunbookSchema, type Runbook } from '../../src/core/runbook.ts';

/**
 * `maxCredentialMinutes`: the longest STS session the author accepts for a run. A plan whose
 * credentials must last longer is refused; within it, the plan is exactly what it would be without
 * the field; lint says at the field when the steps' timeouts alone already exceed it.
 */

const base = {
  name: 'backup-db',
  version: 1,
  description: 'Back up the database.',
  roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
  targets: { tags: { Role: 'db' } },
};

function runbook(steps: Record<string, unknown>[], extra: Record<string, unknown> = {}): Runbook {
  return parseRunbook({ ...base, steps, ...extra });
}

function planInput(rb: Runbook, targets = 1): PlanInput {
  return {
    executionId: 'exec-0001',
    runbook: rb,
    runbookDigest: 'rb-digest-1',
    rawParams: {},
    targets: Array.from({ length: targets }, (_, i) => ({ instanceId: `i-0aaaaaaaaaaaaaaa${i + 1}` })),
    requester: 'alice@example.com',
    reason: 'INC-7: nightly backup missed',
    region: 'eu-west-1',
    now: new Date('2025-01-01T10:00:00.000Z'),
  };
}

function caught(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a throw, but nothing was thrown');
}

// One step of T seconds needs T + 60 (delivery and polling) + 300 (the run's overhead) seconds.
const step = (timeoutSeconds: number, more: Record<string, unknown> = {}) => ({
  name: 'backup',
  script: 'echo backing up',
  timeoutSeconds,
  ...more,
});

describe('maxCredentialMinutes', () => {
  test('the schema takes 15 to 720 whole minutes, and a runbook without it carries no such key', () => {
    for (const ok of [15, 720]) expect(runbook([step(60)], { maxCredentialMinutes: ok }).maxCredentialMinutes).toBe(ok);
    for (const bad of [14, 721, 30.5, '30'])
      expect(
        RunbookSchema.safeParse({ ...base, steps: [step(60)], maxCredentialMinutes: bad }).success,
        String(bad),
      ).toBe(false);
    // Absent stays absent: the runbook digest of every file written before the field is unchanged.
    expect(Object.keys(runbook([step(60)]))).not.toContain('maxCredentialMinutes');
  });

  test('a plan that fits exactly is made, and is the same plan (and digest) as without the field', () => {
    const fits = buildPlan(planInput(runbook([step(840)], { maxCredentialMinutes: 20 })));
    expect(fits.plan.budgetSeconds).toBe(1200);
    const without = buildPlan(planInput(runbook([step(840)])));
    expect(fits.plan).toEqual(without.plan);
    expect(fits.planDigest).toBe(without.planDigest);
    expect(fits.planDigest).toBe(digestOf(without.plan));
    expect(JSON.stringify(fits.plan)).not.toContain('maxCredential');
  });

  test('one second over is refused, in one sentence naming both numbers and what to change', () => {
    const e = caught(() => buildPlan(planInput(runbook([step(841)], { maxCredentialMinutes: 20 }))));
    expect(e.code).toBe('RUNBOOK_INVALID');
    expect(e.message).toBe(
      "this run of backup-db needs credentials for 21 minutes (every step's timeout, retry, pause and wave, plus 5 minutes of overhead), more than its maxCredentialMinutes of 20; shorten the steps' timeouts or retries, raise maxConcurrency, or raise maxCredentialMinutes",
    );
    expect(e.message).not.toContain('\n');
  });

  test('retries and waves count, not only the timeouts', () => {
    // 300 s fits 20 minutes alone (660 s); two retries with their pauses make it 3 × 360 + 2 × 10 + 300 = 1400 s.
    const retried = runbook([step(300, { retries: 2 })], { maxCredentialMinutes: 20 });
    expect(caught(() => buildPlan(planInput(retried))).message).toContain('needs credentials for 24 minutes');
    // Four instances one at a time: three more waves of 300 s.
    const waves = runbook([step(300)], { maxCredentialMinutes: 20, maxConcurrency: 1 });
    expect(buildPlan(planInput(waves, 1)).plan.budgetSeconds).toBe(900);
    expect(caught(() => buildPlan(planInput(waves, 4))).message).toContain('needs credentials for 26 minutes');
    // A step skipped by its condition needs no credentials.
    const optional = runbook([step(60), step(3000, { name: 'verify', condition: { param: 'verify' } })], {
      maxCredentialMinutes: 20,
      parameters: { verify: { type: 'boolean', default: false } },
    });
    expect(buildPlan(planInput(optional)).plan.budgetSeconds).toBe(900);
    expect(() => buildPlan({ ...planInput(optional), rawParams: { verify: true } })).toThrow(/needs credentials for/);
  });
});

describe('lint rule credential-lifetime', () => {
  const file = (minutes: number, steps: string) =>
    [
      'name: backup-db',
      'version: 1',
      'description: Back up the database.',
      'roleArn: arn:aws:iam::123456789012:role/mechanic-runner',
      `maxCredentialMinutes: ${minutes}`,
      'parameters:',
      '  verify: { type: boolean, default: false }',
      'targets: { tags: { Role: db } }',
      'steps:',
      steps,
    ].join('\n');
  const lint = (text: string) => lintRunbookText('x.yaml', text).problems.map(formatProblem);

  test('is reported at the field when the timeouts of the steps that always run exceed it', () => {
    const steps = [
      '  - { name: dump, timeoutSeconds: 1000, script: echo dump }',
      '  - { name: copy, timeoutSeconds: 201, script: echo copy }',
    ].join('\n');
    expect(lint(file(20, steps))).toEqual([
      'x.yaml:5:23: maxCredentialMinutes is 20, but the timeouts of the steps that always run (onFailure included) already add up to 21 minutes (1201 s), so every plan of it would be refused; shorten those timeouts or raise maxCredentialMinutes [credential-lifetime]',
    ]);
    // Advice about a runbook the registry accepts: the runbook is still read (an evidence pack needs it).
    expect(lintRunbookText('x.yaml', file(20, steps)).runbook?.maxCredentialMinutes).toBe(20);
  });

  test('is silent at the bound, for steps behind a condition, and without the field', () => {
    const exact = '  - { name: dump, timeoutSeconds: 1200, script: echo dump }';
    expect(lint(file(20, exact))).toEqual([]);
    const optional = `${exact}\n  - { name: verify, condition: { param: verify }, timeoutSeconds: 3000, script: echo v }`;
    expect(lint(file(20, optional))).toEqual([]);
    const without = file(20, '  - { name: dump, timeoutSeconds: 9000, script: echo dump }').replace(
      'maxCredentialMinutes: 20\n',
      '',
    );
    expect(lint(without)).toEqual([]);
  });
});
