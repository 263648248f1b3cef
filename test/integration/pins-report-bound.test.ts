/**
 * A report reads at most 20,000 runs and says when it was cut short (README, "The record auditors
 * read"). A real SQLite log holds one run more than the bound in one week; the report query, the
 * reporting UI's page (the real app with browser sign-in over real HTTP) and `mechanic audit
 * report` (the real CLI against the real API) are read at the bound and one past it. The index
 * rows are written straight into SQLite in one transaction, as the bench fill does, since the
 * report reads only the index and the votes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { UsersFile } from '../../src/authz/users.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { openDatabase } from '../../src/store/db.ts';
import { REPORT_MAX_RUNS, loadReportInput } from '../../src/store/report-queries.ts';
import type { Database } from '../../src/store/schema.ts';
import { runCli } from '../helpers/cli.ts';
import { startWebUi, type WebUi } from '../helpers/web-ui.ts';
import { startTokenApp, type TokenApp } from '../helpers/token-app.ts';

/** The bound the README states. */
const BOUND = 20_000;
const WEEK = { from: '2026-11-02T00:00:00.000Z', to: '2026-11-09T00:00:00.000Z' };
/**
 * Run i's start: 5,000 runs a working day, 7 seconds apart from 08:00, Monday on. Within working
 * hours, so the report flags none of them as off-hours (a flag names each of its runs).
 */
const createdAt = (i: number) =>
  new Date(Date.parse(WEEK.from) + Math.floor(i / 5000) * 86_400_000 + 8 * 3_600_000 + (i % 5000) * 7000).toISOString();
const DAVE: UsersFile = {
  users: [{ id: 'dave', displayName: 'Dave', roles: ['auditor'], token: 'tok-dave-report-bound-0123456789abcdef' }],
};
const PAGE_SENTENCE =
  'This range holds more runs than one report reads; the numbers cover its oldest runs only. Narrow the range for a complete report.';
const CLI_SENTENCE = 'this range holds more runs than one report reads: the numbers cover its oldest runs only';

/** `runs` completed runs in the execution index, the oldest first, in one transaction. */
function fillIndex(file: string, runs: number): void {
  const sqlite = new SQLite(file);
  try {
    const insert = sqlite.prepare(
      'insert into executions (id, runbook_name, runbook_version, operator, reason, status, plan_digest, params, targets, approvals, created_at, updated_at, finished_at) values (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    sqlite.transaction(() => {
      for (let i = 0; i < runs; i++) {
        const at = createdAt(i);
        const id = `mx-r${String(i).padStart(8, '0')}`;
        insert.run(
          id,
          'rotate-logs',
          'alice',
          'bound test',
          'completed',
          `plan-${id}`,
          '{}',
          '["i-01"]',
          '[]',
          at,
          at,
          at,
        );
      }
    })();
  } finally {
    sqlite.close();
  }
}

describe('a report reads a bounded number of runs', () => {
  let home: string;
  let file: string;
  let db: Kysely<Database>;
  let ui: WebUi;
  let audit: AuditStore;
  let app: TokenApp;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'mechanic-report-bound-'));
    file = path.join(home, 'audit.db');
    db = await openDatabase({ kind: 'sqlite', file });
    fillIndex(file, BOUND + 1);
    // The reporting UI with browser sign-in, on this log.
    ui = await startWebUi({ storeFile: file });
    // The API the CLI talks to, on the same log.
    audit = await openAuditStore({ kind: 'sqlite', file });
    app = await startTokenApp(audit, DAVE);
    env = app.env(home, DAVE.users[0]!.token);
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await audit?.close();
    await ui?.close();
    await db?.destroy();
    if (home) await rm(home, { recursive: true, force: true });
  });

  test('the bound is 20,000 runs: a range of exactly that many is whole, one more is cut to its oldest 20,000', async () => {
    expect(REPORT_MAX_RUNS).toBe(BOUND);
    const whole = await loadReportInput(db, { from: WEEK.from, to: createdAt(BOUND) });
    expect(whole.runs).toHaveLength(BOUND);
    expect(whole.truncated).toBe(false);
    const cut = await loadReportInput(db, WEEK);
    expect(cut.truncated).toBe(true);
    expect(cut.runs).toHaveLength(BOUND);
    expect(cut.runs[0]!.id).toBe('mx-r00000000');
    expect(cut.runs.at(-1)!.id).toBe(`mx-r${String(BOUND - 1).padStart(8, '0')}`);
  });

  test('the reports page says when the report was cut short, and not when it was not', async () => {
    const browser = await ui.signIn('dave');
    const cut = await browser.request(`${ui.origin}/ui/reports?from=2026-11-02&to=2026-11-08`);
    expect(cut.status).toBe(200);
    const page = await cut.text();
    expect(page).toContain(`<strong>${BOUND}</strong> runs requested`);
    expect(page.replace(/\s+/g, ' ')).toContain(PAGE_SENTENCE);
    // The day the newest run was started on, alone: a few runs, no sentence.
    const last = createdAt(BOUND).slice(0, 10);
    const small = await (await browser.request(`${ui.origin}/ui/reports?from=${last}&to=${last}`)).text();
    expect(small).not.toContain('more runs than one report reads');
  });

  test('mechanic audit report says it too, and not for a range within the bound', async () => {
    const cut = await runCli(['audit', 'report', '--since', '2026-11-02', '--until', '2026-11-08'], env);
    expect(cut.stderr).toBe('');
    expect(cut.code).toBe(0);
    expect(cut.stdout.split('\n').slice(0, 2)).toEqual([
      `${BOUND} run(s) requested from ${WEEK.from} to ${WEEK.to} (end excluded); days and working hours (Mon-Fri 08:00-18:00) in UTC`,
      CLI_SENTENCE,
    ]);
    const whole = await runCli(['audit', 'report', '--since', WEEK.from, '--until', createdAt(BOUND)], env);
    expect(whole.code).toBe(0);
    expect(whole.stdout).toMatch(new RegExp(`^${BOUND} run\\(s\\) requested`));
    expect(whole.stdout).not.toContain(CLI_SENTENCE);
  });
});
