/**
 * Small values the core's unit tests share: a runbook around some parameters, a run's index
 * summary, the exact canonical-text answer, a promise's rejection of an expected class, the head
 * of a runbook file the lint tests locate problems in, and a run's `execution.running` event.
 * Build them inside a test, not when a file loads: under mutation testing a mutant that breaks
 * parsing must fail a test, not the loading of a file (which Stryker does not count as a kill).
 */
import { expect } from 'vitest';
import { canonicalJson } from '../../src/core/canonical.ts';
import type { ExecutionSummary } from '../../src/core/execution-index.ts';
import { parseRunbook, type Runbook } from '../../src/core/runbook.ts';

/** A one-step runbook with `parameters`. */
export function runbookWith(parameters: Record<string, unknown>): Runbook {
  return parseRunbook({
    name: 'tune',
    version: 1,
    description: 'Tune the service.',
    roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
    parameters,
    targets: { tags: { Role: 'api' } },
    steps: [{ name: 'tune', script: 'echo tuned' }],
  });
}

/** A running run's index summary, `over` changed. */
export function executionSummary(over: Partial<ExecutionSummary> = {}): ExecutionSummary {
  return {
    id: 'exec-1',
    runbookName: 'restart-web',
    runbookVersion: 1,
    operator: 'alice',
    reason: 'r',
    status: 'running',
    planDigest: 'p',
    params: {},
    targets: ['i-1'],
    approvals: ['bob'],
    createdAt: '2025-01-01T10:00:00.000Z',
    updatedAt: '2025-01-01T10:00:00.000Z',
    finishedAt: null,
    ...over,
  };
}

/** The exact answer the canonical fast paths must agree with: the text parses, and canonicalJson writes it back unchanged. */
export function isExactlyCanonical(text: string): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return false;
  }
  try {
    return canonicalJson(parsed) === text;
  } catch {
    return false;
  }
}

/** What `p` rejects with, which must be a `type`. */
export async function rejectionOf<T>(p: Promise<unknown>, type: abstract new (...args: never[]) => T): Promise<T> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(type);
  return e as T;
}

/** The lines of a runbook file before its steps, for the lint tests that locate problems after them. */
export const LINT_HEAD: readonly string[] = [
  'name: located',
  'version: 1',
  'description: A runbook to locate problems in.',
  'roleArn: arn:aws:iam::123456789012:role/mechanic-runner',
  'targets: { tags: { Role: web } }',
];

/** The `execution.running` event of run exec-1, at `at`. */
export const runningEvent = (at: string) =>
  ({
    eventId: 'exec-1:run',
    executionId: 'exec-1',
    type: 'execution.running',
    actor: 'mechanic',
    at,
    data: { approvedBy: [] },
  }) as const;
