import { buildPlan, type Plan } from '../../src/core/plan.ts';
import { parseRunbook } from '../../src/core/runbook.ts';
import type { ExecutionInput } from '../../src/core/execution.ts';

/** A small two-step runbook with an onFailure step, planned for two instances. */
export function testInput(
  overrides: { executionId?: string; required?: number; expiresAfterSeconds?: number } = {},
): ExecutionInput {
  const runbook = parseRunbook({
    name: 'test-runbook',
    version: 3,
    description: 'a runbook for workflow tests',
    roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
    parameters: { word: { type: 'string', default: 'hello' } },
    targets: { tags: { Role: 'web' } },
    approval: { required: overrides.required ?? 1, expiresAfterMinutes: 60 },
    steps: [
      { name: 'first', script: 'echo {{ word }}', timeoutSeconds: 30 },
      { name: 'second', script: 'echo second', timeoutSeconds: 30 },
    ],
    onFailure: [{ name: 'cleanup', script: 'echo cleanup', timeoutSeconds: 30 }],
  });
  const { plan, planDigest } = buildPlan({
    executionId: overrides.executionId ?? `mx-test${Math.random().toString(36).slice(2, 8)}`,
    runbook,
    runbookDigest: 'f'.repeat(64),
    rawParams: {},
    targets: [
      { instanceId: 'i-0d3f1ee7000000001', name: 'web-1' },
      { instanceId: 'i-0d3f1ee7000000002', name: 'web-2' },
    ],
    requester: 'alice',
    reason: 'workflow test',
    region: 'us-east-1',
    now: new Date('2026-11-01T00:00:00Z'),
  });
  const adjusted: Plan = overrides.expiresAfterSeconds
    ? { ...plan, approval: { ...plan.approval, expiresAfterSeconds: overrides.expiresAfterSeconds } }
    : plan;
  return { plan: adjusted, planDigest };
}
