import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ExecutionView } from '../../src/core/execution.ts';
import type { AuditRecord } from '../../src/core/audit.ts';
import {
  POSTGRES_MISSING_MESSAGE,
  createTestDatabase,
  startTestPostgres,
  type TestPostgres,
} from '../helpers/postgres.ts';
import { runCli, startDevStack, type DevStack } from '../helpers/cli.ts';

/**
 * Production settings end to end: with DATABASE_URL the worker and the API server (two
 * processes) share one PostgreSQL audit log, the worker runs the bundle `mechanic bundle`
 * built, and a whole run is recorded there.
 */
describe('the stack on PostgreSQL, with a pre-built workflow bundle', () => {
  let postgres: TestPostgres | undefined;
  let stack: DevStack;
  let bundleDir: string | undefined;
  const cli = (...args: string[]) => runCli(args, stack.env);

  beforeAll(async () => {
    postgres = await startTestPostgres();
    if (!postgres) throw new Error(POSTGRES_MISSING_MESSAGE);
    const url = await createTestDatabase(postgres.url, 'mechanic_stack');
    // Production-like: the worker runs a pre-built workflow bundle, as MECHANIC_WORKFLOW_BUNDLE asks.
    bundleDir = await mkdtemp(path.join(tmpdir(), 'mechanic-bundle-'));
    const bundle = await runCli(['bundle', '--out', path.join(bundleDir, 'workflows.js')], process.env);
    expect(bundle.code).toBe(0);
    stack = await startDevStack({ DATABASE_URL: url, MECHANIC_WORKFLOW_BUNDLE: bundle.stdout.trim() });
  });
  afterAll(async () => {
    await stack?.stop();
    await postgres?.stop();
    if (bundleDir) await rm(bundleDir, { recursive: true, force: true });
  });

  test('a run is approved, runs, and its audit chain verifies', async () => {
    const launched = await cli(
      'launch',
      'rotate-logs',
      '--param',
      'keep=2',
      '--reason',
      'pg stack',
      '--as',
      'alice',
      '--json',
    );
    expect(launched.stderr).toBe('');
    const id = (JSON.parse(launched.stdout) as { executionId: string }).executionId;
    expect((await cli('approve', id, '--yes', '--as', 'carol')).code).toBe(0);
    const view = JSON.parse((await cli('status', id, '--wait', '--as', 'alice', '--json')).stdout) as ExecutionView;
    expect(view.status).toBe('completed');
    expect(view.plan.targets).toHaveLength(3);

    const records = JSON.parse(
      (await cli('audit', 'list', '--execution', id, '--as', 'dave', '--json')).stdout,
    ) as AuditRecord[];
    expect(records.map((r) => r.type)).toContain('credentials.issued');
    expect(records.filter((r) => r.type === 'step.instance')).toHaveLength(6);
    expect((await cli('audit', 'verify', '--as', 'dave')).stdout).toMatch(/^audit chain intact/);
    const listed = JSON.parse((await cli('list', '--as', 'alice', '--json')).stdout) as {
      id: string;
      status: string;
    }[];
    expect(listed.find((e) => e.id === id)?.status).toBe('completed');
  });
});
