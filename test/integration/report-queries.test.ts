/**
 * The report queries against real databases: a SQLite file and a throwaway PostgreSQL cluster
 * (test/helpers/postgres.ts), with runs written through the real audit store.
 */
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildReport } from '../../src/core/reports.ts';
import { createAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { openDatabase } from '../../src/store/db.ts';
import { loadReportInput } from '../../src/store/report-queries.ts';
import type { Database } from '../../src/store/schema.ts';
import { postgresBackend, sqliteBackend, storeBackends } from '../helpers/postgres.ts';
import { storeRuns, type StoredRun } from '../helpers/report-runs.ts';

const RUNS: StoredRun[] = [
  // Before the range: what makes later runs familiar.
  {
    id: 'old-1',
    runbook: 'rotate-logs',
    operator: 'alice',
    at: '2026-10-20T09:00:00.000Z',
    targets: ['i-01'],
    approvers: ['bob'],
    end: 'completed',
  },
  {
    id: 'old-2',
    runbook: 'deploy-web',
    operator: 'dave',
    at: '2026-10-21T09:00:00.000Z',
    targets: ['i-09'],
    approvers: ['bob'],
    end: 'completed',
  },
  // The range: Monday 2 to Sunday 8 November 2026.
  {
    id: 'r1',
    runbook: 'rotate-logs',
    operator: 'alice',
    at: '2026-11-02T09:00:00.000Z',
    targets: ['i-01', 'i-02'],
    approvers: ['bob'],
    waitSeconds: 30,
    end: 'completed',
  },
  {
    id: 'r2',
    runbook: 'deploy-web',
    operator: 'alice',
    at: '2026-11-02T10:00:00.000Z',
    targets: ['i-01'],
    approvers: ['bob', 'erin'],
    waitSeconds: 120,
    end: 'failed',
  },
  {
    id: 'r3',
    runbook: 'rotate-logs',
    operator: 'carol',
    at: '2026-11-07T23:00:00.000Z',
    targets: ['i-03'],
    approvers: ['bob'],
    waitSeconds: 600,
    end: 'rejected',
  },
  {
    id: 'r4',
    runbook: 'rotate-logs',
    operator: 'alice',
    at: '2026-11-03T11:00:00.000Z',
    targets: ['i-01'],
    end: 'expired',
  },
  // Just after it.
  {
    id: 'after',
    runbook: 'rotate-logs',
    operator: 'zoe',
    at: '2026-11-09T00:00:00.000Z',
    targets: ['i-07'],
    approvers: ['bob'],
    end: 'completed',
  },
];
const RANGE = { from: '2026-11-02T00:00:00.000Z', to: '2026-11-09T00:00:00.000Z' };

for (const backend of storeBackends(
  'report queries',
  sqliteBackend('mechanic-report-', (dir, n) => join(dir, `case-${n}.db`)),
  () => postgresBackend('report'),
)) {
  describe(`report queries on ${backend.name}`, () => {
    let db: Kysely<Database>;
    let audit: AuditStore;

    beforeAll(async () => {
      await backend.setup();
      db = await openDatabase(await backend.fresh());
      audit = createAuditStore(db);
      await storeRuns(audit, RUNS);
    });
    afterAll(async () => {
      await db?.destroy();
      await backend.teardown();
    });

    test('the runs of the range, their votes and decisions, and what their operators did before', async () => {
      const input = await loadReportInput(db, RANGE);
      expect(input.truncated).toBe(false);
      expect(input.runs.map((r) => [r.id, r.runbook, r.operator, r.status, r.targets])).toEqual([
        ['r1', 'rotate-logs', 'alice', 'completed', ['i-01', 'i-02']],
        ['r2', 'deploy-web', 'alice', 'failed', ['i-01']],
        ['r4', 'rotate-logs', 'alice', 'expired', ['i-01']],
        ['r3', 'rotate-logs', 'carol', 'rejected', ['i-03']],
      ]);
      expect(input.events.map((e) => [e.executionId, e.type, e.actor, e.at])).toEqual([
        ['r1', 'approval.granted', 'bob', '2026-11-02T09:00:30.000Z'],
        ['r1', 'execution.running', 'mechanic', '2026-11-02T09:00:30.000Z'],
        ['r2', 'approval.granted', 'bob', '2026-11-02T10:02:00.000Z'],
        ['r2', 'approval.granted', 'erin', '2026-11-02T10:02:00.000Z'],
        ['r2', 'execution.running', 'mechanic', '2026-11-02T10:02:00.000Z'],
        ['r3', 'approval.rejected', 'bob', '2026-11-07T23:10:00.000Z'],
        ['r3', 'execution.rejected', 'bob', '2026-11-07T23:10:00.000Z'],
      ]);
      // Dave ran nothing in the range, zoe only after it: neither is read.
      expect(input.before).toEqual({
        runbooks: [{ operator: 'alice', runbook: 'rotate-logs' }],
        hosts: [{ operator: 'alice', host: 'i-01' }],
      });
    });

    test('the report built from them', async () => {
      const report = buildReport(await loadReportInput(db, RANGE));
      expect(report.mostRun).toEqual([
        { runbook: 'rotate-logs', runs: 3 },
        { runbook: 'deploy-web', runs: 1 },
      ]);
      expect(report.mostFailing).toEqual([{ runbook: 'deploy-web', failed: 1, ended: 1, rate: 1 }]);
      expect(report.approvalWaits.map((w) => [w.runbook, w.decided, w.medianSeconds, w.expired])).toEqual([
        ['rotate-logs', 2, 315, 1],
        ['deploy-web', 1, 120, 0],
      ]);
      expect(report.flags.map((f) => [f.kind, f.runs])).toEqual([
        ['off-hours', ['r3']],
        ['first-runbook', ['r2']],
        ['first-runbook', ['r3']],
        ['first-host', ['r1']],
        ['first-host', ['r3']],
      ]);
    });

    test('a range with more runs than the bound is reported on its oldest, marked truncated', async () => {
      const input = await loadReportInput(db, RANGE, { maxRuns: 2 });
      expect(input.truncated).toBe(true);
      expect(input.runs.map((r) => r.id)).toEqual(['r1', 'r2']);
      expect([...new Set(input.events.map((e) => e.executionId))]).toEqual(['r1', 'r2']);
    });

    test('a history longer than its bound marks the report truncated: an old habit could look like a first', async () => {
      // Alice's one earlier run is the whole history of the range's operators.
      const input = await loadReportInput(db, RANGE, { maxPairs: 0 });
      expect(input.truncated).toBe(true);
      expect(input.before).toEqual({ runbooks: [], hosts: [] });
      expect((await loadReportInput(db, RANGE, { maxPairs: 1 })).truncated).toBe(false);
    });

    test('an empty range reads nothing more', async () => {
      const input = await loadReportInput(db, { from: '2027-01-01T00:00:00.000Z', to: '2027-01-02T00:00:00.000Z' });
      expect(input).toMatchObject({ runs: [], events: [], before: { runbooks: [], hosts: [] }, truncated: false });
    });
  });
}
