/**
 * The audit report over the API (GET /api/audit/report) and from the command line (`mechanic audit
 * report`), against the real app with the shipped Cedar policies and a real SQLite store: the
 * numbers, a refusal without readAudit (recorded), and a range that cannot be read.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { UsersFile } from '../../src/authz/users.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { runCli } from '../helpers/cli.ts';
import { storeRuns, type StoredRun } from '../helpers/report-runs.ts';
import { startTokenApp, type TokenApp } from '../helpers/token-app.ts';

const USERS: UsersFile = {
  users: [
    {
      id: 'alice',
      displayName: 'Alice',
      roles: ['operator', 'approver'],
      token: 'tok-alice-0123456789abcdef0123456789',
    },
    { id: 'dave', displayName: 'Dave', roles: ['auditor'], token: 'tok-dave-0123456789abcdef01234567890' },
  ],
};
const token = (id: string) => USERS.users.find((u) => u.id === id)!.token;

const RUNS: StoredRun[] = [
  {
    id: 'r1',
    runbook: 'rotate-logs',
    operator: 'alice',
    at: '2026-11-02T09:00:00.000Z',
    targets: ['i-01'],
    approvers: ['bob'],
    waitSeconds: 30,
    end: 'completed',
  },
  {
    id: 'r2',
    runbook: 'rotate-logs',
    operator: 'alice',
    at: '2026-11-02T10:00:00.000Z',
    targets: ['i-01'],
    approvers: ['bob'],
    waitSeconds: 90,
    end: 'failed',
  },
  {
    id: 'r3',
    runbook: 'deploy-web',
    operator: 'carol',
    at: '2026-11-07T22:00:00.000Z',
    targets: ['i-02'],
    approvers: ['bob'],
    waitSeconds: 1200,
    end: 'completed',
  },
];

describe('the audit report', () => {
  let home: string;
  let audit: AuditStore;
  let app: TokenApp;
  let url: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'mechanic-report-'));
    audit = await openAuditStore({ kind: 'sqlite', file: path.join(home, 'audit.db') });
    await storeRuns(audit, RUNS);
    app = await startTokenApp(audit, USERS);
    url = app.url;
    env = app.env(home);
  });
  afterAll(async () => {
    await app?.close();
    await audit?.close();
    await rm(home, { recursive: true, force: true });
  });

  const get = (query: string, who: string) =>
    fetch(`${url}/api/audit/report${query}`, { headers: { authorization: `Bearer ${token(who)}` } });

  test('GET /api/audit/report: the report of the range', async () => {
    const res = await get('?from=2026-11-02&to=2026-11-08', 'dave');
    expect(res.status).toBe(200);
    const { report } = (await res.json()) as { report: Record<string, unknown> };
    expect(report).toMatchObject({
      range: { from: '2026-11-02T00:00:00.000Z', to: '2026-11-09T00:00:00.000Z' },
      totals: { runs: 3 },
      mostRun: [
        { runbook: 'rotate-logs', runs: 2 },
        { runbook: 'deploy-web', runs: 1 },
      ],
      mostFailing: [{ runbook: 'rotate-logs', failed: 1, ended: 2, rate: 0.5 }],
    });
    expect((report['flags'] as { kind: string; runs: string[] }[]).filter((f) => f.kind === 'off-hours')).toEqual([
      expect.objectContaining({ runs: ['r3'] }),
    ]);
  });

  test('without readAudit: 403, and the refusal is on the record', async () => {
    const before = (await audit.list({ limit: 10_000 })).length;
    const res = await get('', 'alice');
    expect(res.status).toBe(403);
    const denied = (await audit.list({ limit: 10_000 })).slice(before).filter((r) => r.type === 'access.denied');
    expect(denied).toEqual([
      expect.objectContaining({ actor: 'alice', data: expect.objectContaining({ action: 'readAudit' }) }),
    ]);
  });

  test('a range that cannot be read: 400 with the sentence', async () => {
    const res = await get('?from=2026-13-01', 'dave');
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: {
        code: 'USAGE',
        message: 'from "2026-13-01" is not a date; write a day (2026-11-30) or an ISO time (2026-11-30T08:00:00Z)',
      },
    });
  });

  test('mechanic audit report: text and --json', async () => {
    const args = ['audit', 'report', '--since', '2026-11-02', '--until', '2026-11-08'];
    const text = await runCli(args, { ...env, MECHANIC_TOKEN: token('dave') });
    expect(text.stderr).toBe('');
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('3 run(s) requested from 2026-11-02T00:00:00.000Z to 2026-11-09T00:00:00.000Z');
    expect(text.stdout).toContain('Most failing\n  rotate-logs: 1 failed of 2 that ran to an end (50%)');
    expect(text.stdout).toContain(
      '[Started off-hours] carol started deploy-web on Saturday 2026-11-07 at 22:00 UTC, outside working hours (Mon-Fri 08:00-18:00). (r3)',
    );
    const json = await runCli([...args, '--json'], { ...env, MECHANIC_TOKEN: token('dave') });
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ totals: { runs: 3 } });
  });

  test('mechanic audit report refuses a bad range and a refused caller in one sentence', async () => {
    const bad = await runCli(['audit', 'report', '--since', 'soon'], { ...env, MECHANIC_TOKEN: token('dave') });
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toBe(
      'mechanic: from "soon" is not a date; write a day (2026-11-30) or an ISO time (2026-11-30T08:00:00Z)\n',
    );
    // The CLI says what the server said: one sentence, no stack.
    const { error } = (await (await get('', 'alice')).json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('FORBIDDEN');
    const refused = await runCli(['audit', 'report'], { ...env, MECHANIC_TOKEN: token('alice') });
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toBe(`mechanic: ${error.message}\n`);
  });
});
