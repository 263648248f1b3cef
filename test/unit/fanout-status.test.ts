import { expect, test } from 'vitest';
import { formatLargeExecution } from '../../cli/commands/status.ts';
import type { ExecutionView, InstanceResult } from '../../src/core/execution.ts';
import { buildPlan } from '../../src/core/plan.ts';
import { parseRunbook } from '../../src/core/runbook.ts';

/** Issue 11, part 1: `mechanic status` on a run of many instances summarises: counts and failures. */

const ids = Array.from({ length: 120 }, (_, i) => `i-${i.toString(16).padStart(17, '0')}`);
const result = (instanceId: string, statusDetails: string, responseCode: number): InstanceResult => ({
  instanceId,
  status: statusDetails === 'Terminated' ? 'Cancelled' : statusDetails,
  statusDetails,
  responseCode,
  stdout: '',
  stderr: '',
  outputSha256: '',
});

const { plan, planDigest } = buildPlan({
  executionId: 'mx-bigstatus',
  runbook: parseRunbook({
    name: 'fleet-wide',
    version: 1,
    description: 'a step on the fleet',
    roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
    targets: { tags: { Fleet: 'all' } },
    steps: [{ name: 'work', script: 'echo hi', timeoutSeconds: 60 }],
  }),
  runbookDigest: 'f'.repeat(64),
  rawParams: {},
  targets: ids.map((instanceId, n) => ({ instanceId, name: `node-${n}` })),
  requester: 'alice',
  reason: 'status summary',
  region: 'us-east-1',
  now: new Date('2026-11-30T12:00:00Z'),
});

const unsuccessful = [
  ...[0, 1, 60].map((n) => result(ids[n]!, 'Failed', 3)),
  ...ids.slice(100).map((id) => result(id, 'Terminated', -1)),
];
const view: ExecutionView = {
  executionId: plan.executionId,
  status: 'failed',
  reason: 'step "work" failed',
  planDigest,
  plan,
  approval: { status: 'approved', approvedBy: ['bob'] },
  votes: [],
  steps: [
    {
      name: 'work',
      phase: 'main',
      status: 'failed',
      instances: unsuccessful,
      summary: { total: 120, byStatus: { Success: 97, Failed: 3, Terminated: 20 } },
    },
  ],
};

test('counts by status, the first 20 that did not succeed, and how many more; the targets by count', () => {
  const text = formatLargeExecution(view);
  const lines = text.split('\n');
  expect(lines.find((l) => l.startsWith('targets'))).toBe(
    `targets   120 instances: node-0 (${ids[0]}), node-1 (${ids[1]}), node-2 (${ids[2]}), node-3 (${ids[3]}), node-4 (${ids[4]}), and 115 more`,
  );
  expect(lines.find((l) => l.includes('work  failed'))).toBe('✗ work  failed  (97 Success, 3 Failed, 20 Terminated)');
  const listed = lines.filter((l) => l.startsWith('    i-'));
  expect(listed).toHaveLength(20);
  expect(listed[0]).toBe(`    ${ids[0]}  Failed  exit 3`);
  expect(lines.at(-1)).toBe("    … and 3 more not successful (mechanic audit has every instance's result)");
  // No line per successful host: the text stays short however large the fleet.
  expect(lines.length).toBeLessThan(40);
});
