/**
 * /ui/reports through the real app (createApp with browser sign-in against the real development
 * provider) over real HTTP, with runs written into a real SQLite audit store: the numbers on the
 * page, a malformed range (400 page), a person without readAudit (403 page and a recorded
 * denial), and the page in Chromium checked with axe.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AxeBuilder } from '@axe-core/playwright';
import { serve, type ServerType } from '@hono/node-server';
import { Client, Connection } from '@temporalio/client';
import { parseHTML } from 'linkedom';
import { chromium } from 'playwright-core';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createInventory } from '../../src/activities/inventory.ts';
import { createStsClient, ssmClients } from '../../src/activities/aws.ts';
import { loadCedarAuthorizer } from '../../src/authz/cedar-authorizer.ts';
import { WEB_CLIENT_ID, startDevIdp, type DevIdp } from '../../src/authz/dev-idp.ts';
import { oidcAuthenticator } from '../../src/authz/oidc.ts';
import { DEMO_USERS, tokenAuthenticator } from '../../src/authz/users.ts';
import { parseWorkingHours } from '../../src/core/reports.ts';
import { createApp } from '../../src/server/app.ts';
import { createAuditTail, type AuditTail } from '../../src/server/audit-tail.ts';
import { createExecutionService } from '../../src/server/executions.ts';
import { createWebSessions, type WebSessions } from '../../src/server/web-session.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { loadRunbookRegistry } from '../../src/store/runbook-registry.ts';
import { Browser } from '../helpers/browser.ts';
import { storeRuns, type StoredRun } from '../helpers/report-runs.ts';

const CHROMIUM = '/usr/bin/chromium';

// Monday 2 to Sunday 8 November 2026. Alice's Saturday run is off-hours; bob approves carol fast.
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
    operator: 'alice',
    at: '2026-11-03T11:00:00.000Z',
    targets: ['i-02'],
    approvers: ['carol'],
    waitSeconds: 1200,
    end: 'completed',
  },
  {
    id: 'r4',
    runbook: 'rotate-logs',
    operator: 'alice',
    at: '2026-11-07T22:00:00.000Z',
    targets: ['i-01'],
    approvers: ['bob'],
    waitSeconds: 20,
    end: 'rejected',
  },
  {
    id: 'r5',
    runbook: '<b>odd</b>',
    operator: 'carol',
    at: '2026-11-04T12:00:00.000Z',
    targets: ['i-03'],
    end: 'expired',
  },
];
const RANGE = '?from=2026-11-02&to=2026-11-08';

/** The page's tables as text: caption → rows of cells (header cells included). */
function tables(page: string): Map<string, string[][]> {
  const { document } = parseHTML(page) as unknown as {
    document: {
      querySelectorAll(s: string): Iterable<{
        querySelector(s: string): { textContent: string } | null;
        querySelectorAll(s: string): Iterable<{ querySelectorAll(s: string): Iterable<{ textContent: string }> }>;
      }>;
    };
  };
  const out = new Map<string, string[][]>();
  for (const table of document.querySelectorAll('table')) {
    const caption = table.querySelector('caption')?.textContent.trim() ?? '';
    const rows = [...table.querySelectorAll('tbody tr')].map((tr) =>
      [...tr.querySelectorAll('th, td')].map((c) => c.textContent.trim()),
    );
    out.set(caption, rows);
  }
  return out;
}

describe('the reports page', () => {
  let home: string;
  let idp: DevIdp;
  let audit: AuditStore;
  let tail: AuditTail;
  let temporal: Client;
  let sessions: WebSessions;
  let server: ServerType;
  let origin: string;
  let deps: Parameters<typeof createApp>[0];

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'mechanic-web-reports-'));
    idp = await startDevIdp({ users: DEMO_USERS });
    audit = await openAuditStore({ kind: 'sqlite', file: path.join(home, 'audit.db') });
    await storeRuns(audit, RUNS);
    tail = createAuditTail(audit, 50);
    temporal = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }) });
    const aws = { region: 'us-east-1', endpoint: 'http://127.0.0.1:1' };
    const registry = await loadRunbookRegistry('runbooks');
    sessions = createWebSessions(
      {
        issuer: idp.issuer,
        clientId: WEB_CLIENT_ID,
        clientSecret: undefined,
        publicUrl: () => origin,
        key: randomBytes(32),
        sessionTtlSeconds: 600,
      },
      {
        verifier: oidcAuthenticator({
          issuer: idp.issuer,
          audience: WEB_CLIENT_ID,
          jwksUrl: undefined,
          userClaim: 'sub',
          groupsClaim: 'groups',
          algorithms: ['ES256'],
          clockSkewSeconds: 30,
        }),
      },
    );
    // The shipped Cedar policies, as the server runs them: auditors may readAudit, operators may not.
    const authorizer = await loadCedarAuthorizer();
    deps = {
      authenticator: tokenAuthenticator({ users: [] }),
      authorizer,
      executions: createExecutionService({
        client: temporal,
        taskQueue: 'unused',
        registry,
        inventory: createInventory({ sts: createStsClient(aws), ssmFor: ssmClients(aws) }),
        audit,
        region: 'us-east-1',
        settings: { heartbeatTimeoutSeconds: 60 },
        authorizer,
      }),
      registry,
      audit,
      tail,
      log: pino({ level: 'silent' }),
      webSessions: sessions,
    };
    const app = createApp(deps);
    server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    tail?.stop();
    await temporal?.connection.close();
    await audit?.close();
    await idp?.close();
    await rm(home, { recursive: true, force: true });
  });

  /** A browser signed in as `who`, on `page`. */
  async function signedIn(who: string, page: string): Promise<{ browser: Browser; res: Response; url: string }> {
    const browser = new Browser();
    const atProvider = await browser.go(`${origin}${page}`);
    const callback = await browser.signIn(atProvider, who, idp.password);
    const back = await browser.go(callback);
    return { browser, ...back };
  }

  test('an auditor sees the numbers of the range in the tables', async () => {
    const { res, url } = await signedIn('dave', `/ui/reports${RANGE}`);
    expect(url).toBe(`${origin}/ui/reports${RANGE}`);
    expect(res.status).toBe(200);
    const page = await res.text();
    expect(page).toContain('<strong>5</strong> runs requested from');
    const t = tables(page);
    expect(t.get('Runs per runbook, most first')).toEqual([
      ['rotate-logs', '3'],
      ['<b>odd</b>', '1'],
      ['deploy-web', '1'],
    ]);
    expect(t.get('Failed runs, and their share of the runs that ran to an end (completed or failed)')).toEqual([
      ['rotate-logs', '1', '2', '50%'],
    ]);
    expect(t.get('From the request to the approval decision, per runbook (95th percentile by nearest rank)')).toEqual([
      ['deploy-web', '1', '20 min', '20 min', '20 min', '0'],
      ['rotate-logs', '3', '30 s', '1 min 30 s', '1 min 30 s', '0'],
      ['<b>odd</b>', '0', '—', '—', '—', '1'],
    ]);
    expect(t.get('Runs started each day (UTC), by their status now')).toEqual([
      ['2026-11-02', '1', '1', '0', '0', '2'],
      ['2026-11-03', '1', '0', '0', '0', '1'],
      ['2026-11-04', '0', '0', '1', '0', '1'],
      ['2026-11-05', '0', '0', '0', '0', '0'],
      ['2026-11-06', '0', '0', '0', '0', '0'],
      ['2026-11-07', '0', '0', '0', '1', '1'],
      ['2026-11-08', '0', '0', '0', '0', '0'],
    ]);
    expect(t.get('Decided runs by how long they waited for the decision')?.map((r) => r[1])).toEqual([
      '2',
      '1',
      '0',
      '1',
      '0',
      '0',
      '0',
    ]);
    // The stored name is text, never markup, in the tables and in the charts.
    expect(page).not.toContain('<b>odd</b>');
    // Three charts, each a labelled standalone SVG.
    expect(
      page
        .match(/<svg [^>]*>/g)
        ?.map((svg) => [svg.includes('xmlns="http://www.w3.org/2000/svg"'), svg.includes('role="img"')]),
    ).toEqual([
      [true, true],
      [true, true],
      [true, true],
    ]);
    // The off-hours flag names its run and links to it.
    expect(page).toContain(
      'alice started rotate-logs on Saturday 2026-11-07 at 22:00 UTC, outside working hours (Mon-Fri 08:00-18:00).',
    );
    expect(page).toContain('<a href="/ui/runs/r4" class="mono">r4</a>');
  });

  test('a malformed range is a 400 page saying what to write', async () => {
    const { browser } = await signedIn('dave', '/ui/reports');
    for (const [query, sentence] of [
      [
        '?from=last-week',
        'from &quot;last-week&quot; is not a date; write a day (2026-11-30) or an ISO time (2026-11-30T08:00:00Z)',
      ],
      ['?from=2026-11-09&to=2026-11-01', 'the report range is empty'],
      ['?from=2020-01-01&to=2026-11-01', 'ask for at most 366 days at a time'],
    ] as const) {
      const res = await browser.request(`${origin}/ui/reports${query}`);
      expect(res.status, query).toBe(400);
      const page = await res.text();
      expect(page).toContain(sentence);
      expect(page).not.toMatch(/at \S+\.ts:\d+/);
    }
  });

  test('without readAudit: a 403 page and a recorded denial', async () => {
    const before = (await audit.list({ limit: 10_000 })).length;
    const { res } = await signedIn('alice', `/ui/reports${RANGE}`);
    expect(res.status).toBe(403);
    const page = await res.text();
    expect(page).toContain('Not allowed');
    expect(page).not.toContain('Runs per runbook');
    const denied = (await audit.list({ limit: 10_000 })).slice(before).filter((r) => r.type === 'access.denied');
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({
      actor: 'alice',
      executionId: null,
      data: { action: 'readAudit', channel: 'web', path: '/ui/reports' },
    });
  });

  test('the configured working hours and time zone reach the page', async () => {
    // The real app with other hours: Tuesday to Saturday in Berlin.
    const app = createApp({
      ...deps,
      reports: { workingHours: parseWorkingHours('Tue-Sat 08:00-23:30'), timeZone: 'Europe/Berlin' },
    });
    const { browser } = await signedIn('dave', '/ui/reports');
    const cookie = [...browser.cookies].map(([k, c]) => `${k}=${c.value}`).join('; ');
    const res = await app.request(`/ui/reports${RANGE}`, { headers: { cookie } });
    expect(res.status).toBe(200);
    const page = await res.text();
    expect(page).toContain('Working hours Tue-Sat 08:00-23:30 (Europe/Berlin)');
    // Saturday 23:00 in Berlin is inside those hours; Monday 10:00 in Berlin is not.
    expect(page).not.toContain('on Saturday');
    expect(page).toContain('alice started rotate-logs on Monday 2026-11-02 at 10:00 Europe/Berlin');
  });

  // Skipped only off CI: .ci/run installs Chromium, so there a missing browser fails the launch.
  test.skipIf(!existsSync(CHROMIUM) && !process.env['CI'])(
    'in Chromium, the page has no serious or critical accessibility violations',
    async () => {
      const chrome = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
      });
      try {
        const page = await (await chrome.newContext()).newPage();
        await page.goto(`${origin}/ui/reports${RANGE}`);
        await page.fill('input[name=login]', 'dave');
        await page.fill('input[name=password]', idp.password);
        await Promise.all([page.waitForURL(`${origin}/ui/reports${RANGE}`), page.click('button[type=submit]')]);
        expect(await page.locator('h1').textContent()).toBe('Reports');
        expect(await page.locator('figure.chart svg').count()).toBe(3);
        const results = await new AxeBuilder({ page }).analyze();
        const serious = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
        expect(serious.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join('; ')})`)).toEqual(
          [],
        );
      } finally {
        await chrome.close();
      }
    },
  );
});
