import { access, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { AuditRecord } from '../../src/core/audit.ts';
import type { ExecutionView } from '../../src/core/execution.ts';
import { dataConverterFor, parseCodecKeys } from '../../src/temporal/codec.ts';
import { BUNDLE_MARK } from '../fixtures/workflows/marked-bundle.ts';
import {
  POSTGRES_MISSING_MESSAGE,
  createTestDatabase,
  startTestPostgres,
  type TestPostgres,
} from '../helpers/postgres.ts';
import { runCli, startDevStack, type DevStack } from '../helpers/cli.ts';

const MARKED_WORKFLOWS = fileURLToPath(new URL('../fixtures/workflows/marked-bundle.ts', import.meta.url));

/**
 * Production settings, checked where they land: with DATABASE_URL the worker and the API server
 * (two processes) write the audit log into PostgreSQL — read here with pg, not through mechanic
 * — and the worker runs the workflow bundle MECHANIC_WORKFLOW_BUNDLE names, not the sources
 * (the bundle is built from a fixture that marks each run's memo).
 */
describe('claims on the stack with DATABASE_URL and MECHANIC_WORKFLOW_BUNDLE', { timeout: 300_000 }, () => {
  let postgres: TestPostgres | undefined;
  let db: pg.Client | undefined;
  let stack: DevStack;
  let scratch: string | undefined;
  let connection: Connection | undefined;
  let id = '';
  let view: ExecutionView;
  const cli = (...args: string[]) => runCli(args, stack.env);

  beforeAll(async () => {
    postgres = await startTestPostgres();
    if (!postgres) throw new Error(POSTGRES_MISSING_MESSAGE);
    const url = await createTestDatabase(postgres.url, 'mechanic_claims');
    db = new pg.Client({ connectionString: url });
    await db.connect();
    scratch = await mkdtemp(path.join(tmpdir(), 'mechanic-claims-bundle-'));
    const bundle = path.join(scratch, 'workflows.js');
    const ignore = (): void => {};
    const logger = { log: ignore, trace: ignore, debug: ignore, info: ignore, warn: ignore, error: ignore };
    await writeFile(bundle, (await bundleWorkflowCode({ workflowsPath: MARKED_WORKFLOWS, logger })).code);
    stack = await startDevStack({ DATABASE_URL: url, MECHANIC_WORKFLOW_BUNDLE: bundle });

    const launched = await cli(
      'launch',
      'rotate-logs',
      '--param',
      'keep=2',
      '--reason',
      'pg claims',
      '--as',
      'alice',
      '--json',
    );
    expect(launched.stderr).toBe('');
    id = (JSON.parse(launched.stdout) as { executionId: string }).executionId;
    expect((await cli('approve', id, '--yes', '--as', 'carol')).code).toBe(0);
    view = JSON.parse((await cli('status', id, '--wait', '--as', 'alice', '--json')).stdout) as ExecutionView;
  }, 600_000);
  afterAll(async () => {
    await connection?.close();
    await db?.end();
    await stack?.stop();
    await postgres?.stop();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  test('the audit records of a run are rows PostgreSQL holds, written by the server and the worker', async () => {
    expect(view.status).toBe('completed');
    const rows = (
      await db!.query<{ type: string; actor: string }>(
        'select type, actor from audit_events where execution_id = $1 order by seq',
        [id],
      )
    ).rows;
    const story = rows.map((r) => `${r.type} ${r.actor}`);
    expect(story[0]).toBe('execution.requested alice'); // the API server's write
    expect(story).toContain('approval.granted carol');
    expect(story.filter((s) => s === 'step.instance mechanic')).toHaveLength(6); // the worker's writes
    expect(story.at(-1)).toBe('execution.completed mechanic');

    // What mechanic shows is what PostgreSQL holds, row for row.
    const listed = JSON.parse(
      (await cli('audit', 'list', '--execution', id, '--as', 'dave', '--json')).stdout,
    ) as AuditRecord[];
    expect(listed.map((r) => `${r.type} ${r.actor}`)).toEqual(story);
    const indexed = await db!.query<{ status: string; operator: string }>(
      'select status, operator from executions where id = $1',
      [id],
    );
    expect(indexed.rows).toEqual([{ status: 'completed', operator: 'alice' }]);
    expect((await cli('audit', 'verify', '--as', 'dave')).stdout).toMatch(/^audit chain intact/);
  });

  test('no SQLite audit database is made beside it', async () => {
    await expect(access(path.join(stack.home, 'audit.db'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('PostgreSQL refuses to change an audit row', async () => {
    await expect(db!.query("update audit_events set actor = 'mallory' where execution_id = $1", [id])).rejects.toThrow(
      /append-only/,
    );
    await expect(db!.query('delete from audit_events where execution_id = $1', [id])).rejects.toThrow(/append-only/);
  });

  test('the worker runs the workflow bundle it was told to load', async () => {
    const keys = parseCodecKeys((await readFile(path.join(stack.home, 'codec-keys'), 'utf8')).trim());
    connection = await Connection.connect({ address: stack.info.temporalAddress });
    const client = new Client({ connection, dataConverter: dataConverterFor(keys) });
    const described = await client.workflow.getHandle(id).describe();
    expect(described.memo).toEqual({ workflowBundle: BUNDLE_MARK });
  });

  test('the secrets the embedded stack makes are owner-only files', async () => {
    const files = ['codec-keys', 'users.json', path.join('devfleet', 'root.json')];
    for (const file of files) {
      expect({ file, mode: (await stat(path.join(stack.home, file))).mode & 0o777 }).toEqual({ file, mode: 0o600 });
    }
  });
});
