import { describe, expect, test } from 'vitest';
import { buildPlan, type PlanInput } from '../../src/core/plan.ts';
import { parseRunbook, type Runbook } from '../../src/core/runbook.ts';

function caught(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a throw, but nothing was thrown');
}

const steps = [
  { name: 'restart', script: 'systemctl restart {{ service }} # {{ mechanic_step }}', timeoutSeconds: 120 },
  { name: 'check', script: 'echo {{ mechanic_execution_id }} {{ graceful }}', timeoutSeconds: 60 },
];

/** The fixture's steps with the first one changed. */
function firstStep(change: { script?: string; timeoutSeconds?: number }) {
  return [{ ...steps[0], ...change }, steps[1]];
}

function runbookWith(overrides: Record<string, unknown> = {}): Runbook {
  return parseRunbook({
    name: 'restart-web',
    version: 2,
    description: 'Restart the web service.',
    roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
    parameters: { service: { type: 'string' }, graceful: { type: 'boolean', default: true } },
    targets: { tags: { Role: 'web' } },
    approval: { required: 2, expiresAfterMinutes: 30 },
    steps,
    onFailure: [{ name: 'report', script: 'echo failed in {{ mechanic_step }}', timeoutSeconds: 30 }],
    ...overrides,
  });
}

function planInput(overrides: Partial<PlanInput> = {}): PlanInput {
  return {
    executionId: 'exec-0001',
    runbook: runbookWith(),
    runbookDigest: 'rb-digest-1',
    rawParams: { service: 'nginx' },
    targets: [{ instanceId: 'i-0aaaaaaaaaaaaaaa1', name: 'web-1' }, { instanceId: 'i-0aaaaaaaaaaaaaaa2' }],
    requester: 'alice@example.com',
    reason: 'INC-42: workers stuck',
    region: 'eu-west-1',
    now: new Date('2025-01-01T10:00:00.000Z'),
    ...overrides,
  };
}

describe('the plan', () => {
  test('renders every step with its parameters and built-ins', () => {
    const { plan } = buildPlan(planInput());
    expect(plan.steps).toEqual([
      { name: 'restart', script: "systemctl restart 'nginx' # 'restart'", timeoutSeconds: 120 },
      { name: 'check', script: "echo 'exec-0001' 'true'", timeoutSeconds: 60 },
    ]);
    expect(plan.onFailure).toEqual([{ name: 'report', script: "echo failed in 'report'", timeoutSeconds: 30 }]);
  });

  test('records what was asked for, as which role, and the approval rule in seconds', () => {
    const { plan } = buildPlan(planInput());
    expect(plan).toMatchObject({
      executionId: 'exec-0001',
      runbook: { name: 'restart-web', version: 2, digest: 'rb-digest-1', description: 'Restart the web service.' },
      requester: 'alice@example.com',
      reason: 'INC-42: workers stuck',
      params: { service: 'nginx', graceful: true },
      roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
      region: 'eu-west-1',
      approval: { required: 2, expiresAfterSeconds: 1800 },
      createdAt: '2025-01-01T10:00:00.000Z',
    });
  });

  test("carries the runbook's metadata the policies and approval rules read", () => {
    const runbook = runbookWith({
      owners: ['sre', 'alice'],
      risk: 'high',
      environment: 'production',
      tags: ['web'],
      approval: { required: 2, expiresAfterMinutes: 30, groups: ['sre', 'dba'] },
    });
    expect(buildPlan(planInput({ runbook })).plan.runbook).toEqual({
      name: 'restart-web',
      version: 2,
      digest: 'rb-digest-1',
      description: 'Restart the web service.',
      risk: 'high',
      owners: ['sre', 'alice'],
      approvalGroups: ['sre', 'dba'],
      environment: 'production',
      tags: ['web'],
    });
  });

  test('a runbook that says nothing gets medium risk, no owners and no approval groups', () => {
    expect(buildPlan(planInput()).plan.runbook).toMatchObject({
      risk: 'medium',
      owners: [],
      approvalGroups: [],
      environment: 'default',
      tags: [],
    });
  });

  test('the session policy names the planned instances in the plan region and account', () => {
    const { plan } = buildPlan(planInput());
    expect(plan.sessionPolicy).toContain('arn:aws:ec2:eu-west-1:123456789012:instance/i-0aaaaaaaaaaaaaaa1');
    expect(plan.sessionPolicy).toContain('arn:aws:ec2:eu-west-1:123456789012:instance/i-0aaaaaaaaaaaaaaa2');
  });

  test('the reason is trimmed', () => {
    expect(buildPlan(planInput({ reason: '  INC-42  ' })).plan.reason).toBe('INC-42');
  });

  test('bad parameters are refused before anything else is built', () => {
    expect(caught(() => buildPlan(planInput({ rawParams: {} })))).toMatchObject({ code: 'PARAMS_INVALID' });
  });
});

describe('digest', () => {
  test('is the same for the same input', () => {
    expect(buildPlan(planInput()).planDigest).toBe(buildPlan(planInput()).planDigest);
  });

  test('is the same whatever order the parameters were given in', () => {
    const a = buildPlan(planInput({ rawParams: { service: 'nginx', graceful: false } })).planDigest;
    const b = buildPlan(planInput({ rawParams: { graceful: false, service: 'nginx' } })).planDigest;
    expect(a).toBe(b);
  });

  test('is a sha256 hex digest', () => {
    expect(buildPlan(planInput()).planDigest).toMatch(/^[0-9a-f]{64}$/);
  });

  const base = buildPlan(planInput()).planDigest;

  test.each<[string, Partial<PlanInput>]>([
    ['a parameter value', { rawParams: { service: 'apache' } }],
    ['a defaulted parameter given explicitly with another value', { rawParams: { service: 'nginx', graceful: false } }],
    ['a target', { targets: [{ instanceId: 'i-0aaaaaaaaaaaaaaa1', name: 'web-1' }] }],
    [
      'a target name',
      { targets: [{ instanceId: 'i-0aaaaaaaaaaaaaaa1', name: 'web-one' }, { instanceId: 'i-0aaaaaaaaaaaaaaa2' }] },
    ],
    [
      'a step script',
      {
        runbook: runbookWith({ steps: firstStep({ script: 'systemctl reload {{ service }} # {{ mechanic_step }}' }) }),
      },
    ],
    [
      'an onFailure script',
      { runbook: runbookWith({ onFailure: [{ name: 'report', script: 'echo failed', timeoutSeconds: 30 }] }) },
    ],
    ['a step timeout', { runbook: runbookWith({ steps: firstStep({ timeoutSeconds: 121 }) }) }],
    ['the approval quorum', { runbook: runbookWith({ approval: { required: 1, expiresAfterMinutes: 30 } }) }],
    [
      'the approval groups',
      { runbook: runbookWith({ approval: { required: 2, expiresAfterMinutes: 30, groups: ['sre'] } }) },
    ],
    ['the risk', { runbook: runbookWith({ risk: 'low' }) }],
    ['the owners', { runbook: runbookWith({ owners: ['sre'] }) }],
    ['the environment', { runbook: runbookWith({ environment: 'production' }) }],
    ['the tags', { runbook: runbookWith({ tags: ['web'] }) }],
    ['the role', { runbook: runbookWith({ roleArn: 'arn:aws:iam::123456789012:role/other' }) }],
    ['the reason', { reason: 'INC-43: workers stuck' }],
    ['the requester', { requester: 'bob@example.com' }],
    ['the region', { region: 'us-east-1' }],
    ['the runbook digest', { runbookDigest: 'rb-digest-2' }],
    ['the execution id', { executionId: 'exec-0002' }],
    ['the time', { now: new Date('2025-01-01T10:00:00.001Z') }],
  ])('changes when %s changes', (_what, overrides) => {
    expect(buildPlan(planInput(overrides)).planDigest).not.toBe(base);
  });
});

describe('credential budget', () => {
  const withTimeouts = (timeouts: number[]) =>
    runbookWith({
      parameters: {},
      steps: timeouts.map((timeoutSeconds, i) => ({ name: `s${i}`, script: 'true', timeoutSeconds })),
      onFailure: [],
    });

  test.each([
    ['is at least 900 s', [1], 900],
    ['is the steps plus 60 s each plus 300 s', [1000, 1000], 2420],
  ])('%s', (_rule, timeouts, expected) => {
    expect(buildPlan(planInput({ runbook: withTimeouts(timeouts), rawParams: {} })).plan.budgetSeconds).toBe(expected);
  });

  test.each([
    ['one step longer than 12 hours', [172_800]],
    ['many steps adding up to more than 12 hours', Array.from({ length: 50 }, () => 900)],
  ])('is refused when credentials would have to outlive STS’s 12 hours: %s', (_rule, timeouts) => {
    expect(() => buildPlan(planInput({ runbook: withTimeouts(timeouts), rawParams: {} }))).toThrow(
      expect.objectContaining({ code: 'RUNBOOK_INVALID' }),
    );
  });

  test('counts onFailure steps too', () => {
    const runbook = runbookWith({
      parameters: {},
      steps: [{ name: 'a', script: 'true', timeoutSeconds: 1000 }],
      onFailure: [{ name: 'b', script: 'true', timeoutSeconds: 1000 }],
    });
    expect(buildPlan(planInput({ runbook, rawParams: {} })).plan.budgetSeconds).toBe(2420);
  });
});

describe('reason', () => {
  test.each(['', 'ab', '   ', '  ab  '])('%j is refused', (reason) => {
    expect(caught(() => buildPlan(planInput({ reason })))).toMatchObject({ code: 'USAGE' });
  });

  test('the message for a missing reason', () => {
    expect(caught(() => buildPlan(planInput({ reason: '' }))).message).toMatchInlineSnapshot(
      `"a reason is required: say in a few words why this run is needed"`,
    );
  });

  test.each([
    ['3 characters', 'abc'],
    ['500 characters', 'x'.repeat(500)],
  ])('%s are accepted', (_what, reason) => {
    expect(buildPlan(planInput({ reason })).plan.reason).toBe(reason);
  });

  test('501 characters are refused', () => {
    const error = caught(() => buildPlan(planInput({ reason: 'x'.repeat(501) })));
    expect(error).toMatchObject({ code: 'USAGE' });
    expect(error.message).toMatchInlineSnapshot(`"the reason is longer than 500 characters; shorten it"`);
  });
});
