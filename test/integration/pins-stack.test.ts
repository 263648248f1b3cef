/**
 * Promises of the README that only the whole embedded stack can show (issue 12's claim table), on
 * one `mechanic dev --no-tui` (Temporal, devfleet, worker, API server, the development provider)
 * started with the default policies plus one team rule that refuses approving rotate-logs from
 * the web pages:
 * - a vote from the web pages is decided with `channel: web` (the rule refuses it there, and on
 *   the record, while the same vote from the CLI passes);
 * - the pages work in Chromium with JavaScript off: sign in, filter, open a run, vote by the form;
 * - a run's page prints without navigation and forms, with its timeline and proof;
 * - restart-service refuses a host outside its staging web bound; collect-diagnostics and
 *   check-tls-expiry change nothing on the hosts (the diagnostics bundle aside);
 * - a rate-limited step's SendCommand asks SSM for one more step timeout per later wave.
 */
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ListCommandsCommand, SSMClient, type Command } from '@aws-sdk/client-ssm';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { createApiClient, type ApiClient } from '../../src/api/client.ts';
import { DEFAULT_POLICY_FILE } from '../../src/authz/cedar-authorizer.ts';
import { TERMINAL_STATUSES, type ExecutionView } from '../../src/core/execution.ts';
import { DEMO_INSTANCE_IDS, DEMO_ROLE_ARN } from '../../src/devfleet/config.ts';
import { readCommandLog } from '../../src/devfleet/command-log.ts';
import { runCli, startDevStack, type DevStack } from '../helpers/cli.ts';
import { waitFor } from '../helpers/parts.ts';

const CHROMIUM = '/usr/bin/chromium';
/** The stack's delivery timeout (MECHANIC_DELIVERY_TIMEOUT_SECONDS), set apart from the default to be seen. */
const DELIVERY_TIMEOUT = 45;
/** A whole run on a shared, loaded machine. */
const RUN_TIMEOUT = 300_000;

/** A team rule that needs the vote's channel: housekeeping (rotate-logs) is approved from the CLI or the TUI, never the web. */
const WEB_RULE = `
@id("housekeeping-not-from-the-web")
@reason("{resource} runs a housekeeping runbook, which is approved from the CLI or the TUI only; use mechanic approve")
forbid (principal, action == Action::"approve", resource is Execution)
when { context.channel == "web" && resource has runbook && resource.runbook.tags.contains("housekeeping") };
`;

type Host = 'web-1' | 'web-2' | 'db-1';
const HOSTS: readonly Host[] = ['web-1', 'web-2', 'db-1'];

let stack: DevStack;
let password: string;
const tokens = new Map<string, string>();
const api = (id: string): ApiClient =>
  createApiClient({ url: stack.info.apiUrl, token: tokens.get(id)!, channel: 'cli' });
const hostRoot = (host: Host) => path.join(stack.home, 'devfleet', 'instances', DEMO_INSTANCE_IDS[host], 'root');

/** A launch's parameters, as the API takes them. */
type Params = Record<string, string | number | boolean | (string | number | boolean)[]>;

/** Launches as alice through the API (the CLI's channel). */
async function launch(runbook: string, params: Params, reason: string) {
  return api('alice').call('launch', { body: { runbook, params, reason } });
}

/** Waits for the run's end and returns it. */
function ended(executionId: string): Promise<ExecutionView> {
  return waitFor(`${executionId} to end`, async () => {
    const { execution } = await api('alice').call('getExecution', { params: { id: executionId } });
    return TERMINAL_STATUSES.has(execution.status) ? execution : undefined;
  });
}

/** Launches as alice, approves as bob from the CLI's channel, and waits for the end. */
async function run(runbook: string, params: Params): Promise<ExecutionView> {
  const launched = await launch(runbook, params, `pins test of ${runbook}`);
  await api('bob').call('vote', {
    params: { id: launched.executionId },
    body: { decision: 'approve', planDigest: launched.planDigest },
  });
  return ended(launched.executionId);
}

async function auditOf(executionId: string) {
  return (await api('dave').call('listAudit', { query: { executionId, limit: 10_000 } })).records;
}

/**
 * Every file, folder and link under a host's root: its kind, mode and content hash. Two snapshots
 * that are equal mean nothing on the host was written, removed, renamed or re-permissioned.
 */
async function snapshot(host: Host): Promise<Map<string, string>> {
  const root = hostRoot(host);
  const out = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      const rel = path.relative(root, full);
      const st = await lstat(full);
      const mode = (st.mode & 0o7777).toString(8);
      if (entry.isDirectory()) {
        out.set(rel, `dir ${mode}`);
        await walk(full);
      } else if (entry.isSymbolicLink()) {
        out.set(rel, `link -> ${await readlink(full)}`);
      } else {
        out.set(
          rel,
          `file ${mode} ${createHash('sha256')
            .update(await readFile(full))
            .digest('hex')}`,
        );
      }
    }
  };
  await walk(root);
  return out;
}

/** What changed between two snapshots of one host, one line per path. */
function changes(before: Map<string, string>, after: Map<string, string>): string[] {
  const lines: string[] = [];
  for (const [p, v] of after) {
    if (!before.has(p)) lines.push(`added ${p}`);
    else if (before.get(p) !== v) lines.push(`changed ${p}`);
  }
  for (const p of before.keys()) if (!after.has(p)) lines.push(`removed ${p}`);
  return lines.sort();
}

/** Every SSM command devfleet holds, as the runner role lists them (what SendCommand asked for). */
async function listCommands(): Promise<Command[]> {
  const root = JSON.parse(await readFile(path.join(stack.home, 'devfleet', 'root.json'), 'utf8')) as {
    accessKeyId: string;
    secretAccessKey: string;
  };
  const sts = new STSClient({ region: 'us-east-1', endpoint: stack.info.devfleetEndpoint, credentials: root });
  const assumed = await sts.send(new AssumeRoleCommand({ RoleArn: DEMO_ROLE_ARN, RoleSessionName: 'pins-test' }));
  sts.destroy();
  const ssm = new SSMClient({
    region: 'us-east-1',
    endpoint: stack.info.devfleetEndpoint,
    credentials: {
      accessKeyId: assumed.Credentials!.AccessKeyId!,
      secretAccessKey: assumed.Credentials!.SecretAccessKey!,
      sessionToken: assumed.Credentials!.SessionToken!,
    },
  });
  try {
    const all: Command[] = [];
    let NextToken: string | undefined;
    do {
      const page = await ssm.send(new ListCommandsCommand({ NextToken }));
      all.push(...(page.Commands ?? []));
      NextToken = page.NextToken;
    } while (NextToken);
    return all;
  } finally {
    ssm.destroy();
  }
}

/** Step name → the TimeoutSeconds its SendCommand asked for, from the run's step.started records. */
async function timeoutsOf(executionId: string, commands: readonly Command[]): Promise<Record<string, number>> {
  const started = (await auditOf(executionId)).filter((r) => r.type === 'step.started');
  return Object.fromEntries(
    started.map((r) => {
      const { step, commandId } = r.data as { step: string; commandId: string };
      const command = commands.find((c) => c.CommandId === commandId);
      if (!command) throw new Error(`devfleet has no command ${commandId} (step ${step})`);
      return [step, command.TimeoutSeconds!];
    }),
  );
}

beforeAll(async () => {
  const home = await mkdtemp(path.join(tmpdir(), 'mechanic-test-'));
  const policies = path.join(home, 'policies.cedar');
  await writeFile(policies, `${await readFile(DEFAULT_POLICY_FILE, 'utf8')}\n${WEB_RULE}`, { mode: 0o600 });
  try {
    stack = await startDevStack({
      MECHANIC_HOME: home,
      MECHANIC_POLICY_FILE: policies,
      MECHANIC_DELIVERY_TIMEOUT_SECONDS: String(DELIVERY_TIMEOUT),
      // The API server looks for runs Temporal ended every second, not every minute.
      MECHANIC_ENDED_RUNS_SWEEP_SECONDS: '1',
    });
  } catch (e) {
    await rm(home, { recursive: true, force: true });
    throw e;
  }
  const users = JSON.parse(await readFile(path.join(stack.home, 'users.json'), 'utf8')) as {
    users: { id: string; token: string }[];
  };
  for (const u of users.users) tokens.set(u.id, u.token);
  password = (await readFile(path.join(stack.home, 'idp', 'password'), 'utf8')).trim();
}, 300_000);

afterAll(async () => {
  expect(await stack?.stop()).toBe(0);
});

describe('the catalog on devfleet', () => {
  let tlsRun = '';

  test('restart-service refuses a host outside its staging web bound, by Name tag or by id: nothing starts, and the refusal is on the record', async () => {
    const before = (await api('alice').call('listExecutions', { query: {} })).executions.length;
    const sentence = `parameter "hosts" names db-1 (${DEMO_INSTANCE_IDS['db-1']}), outside what restart-service may target (tags Env=staging, Role=web); name instances inside that bound`;
    for (const db of ['db-1', DEMO_INSTANCE_IDS['db-1']]) {
      const r = await runCli(
        [
          'launch',
          'restart-service',
          '--param',
          'hosts=web-1',
          '--param',
          `hosts=${db}`,
          '--param',
          'service=web',
          '--reason',
          'reach the database',
          '--as',
          'alice',
        ],
        stack.env,
      );
      expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
        code: 1,
        stdout: '',
        stderr: `mechanic: ${sentence}\n`,
      });
    }
    expect((await api('alice').call('listExecutions', { query: {} })).executions.length).toBe(before);
    const refused = (await api('dave').call('listAudit', { query: { limit: 10_000 } })).records.filter(
      (r) => r.type === 'request.refused' && r.actor === 'alice',
    );
    expect(refused.map((r) => [r.data['code'], r.data['reason']])).toContainEqual(['TARGETS_INVALID', sentence]);
  }, 240_000);

  test(
    'collect-diagnostics and check-tls-expiry change nothing on the hosts; the diagnostics bundle is the one file written',
    async () => {
      const before = new Map(await Promise.all(HOSTS.map(async (h) => [h, await snapshot(h)] as const)));
      const diagnostics = await run('collect-diagnostics', { log_lines: 20 });
      expect(diagnostics.status).toBe('completed');
      const afterDiagnostics = new Map(await Promise.all(HOSTS.map(async (h) => [h, await snapshot(h)] as const)));
      for (const host of HOSTS) {
        const bundle = `var/tmp/mechanic-diagnostics/diagnostics-${diagnostics.executionId}.tar.gz`;
        const folder = before.get(host)!.has('var/tmp/mechanic-diagnostics')
          ? []
          : ['added var/tmp/mechanic-diagnostics'];
        expect(changes(before.get(host)!, afterDiagnostics.get(host)!), host).toEqual(
          [...folder, `added ${bundle}`].sort(),
        );
      }

      const tls = await run('check-tls-expiry', { warn_days: 30 });
      expect(tls.steps.map((s) => `${s.name}:${s.status}`)).toEqual(['check:succeeded']);
      tlsRun = tls.executionId;
      for (const host of HOSTS) {
        expect(changes(afterDiagnostics.get(host)!, await snapshot(host)), host).toEqual([]);
      }
    },
    2 * RUN_TIMEOUT,
  );

  test(
    'a rate-limited step asks SSM for the delivery timeout plus one step timeout per later wave; a step without rate control for the delivery timeout alone',
    async () => {
      // restart-service rolls one host at a time: two hosts are two waves.
      const view = await run('restart-service', { hosts: ['web-1', 'web-2'], service: 'web', drain_seconds: 0 });
      expect(view.status).toBe('completed');
      const steps = view.plan.steps.map((s) => [s.name, s.timeoutSeconds, s.maxConcurrency] as const);
      expect(steps.map(([name, , concurrency]) => [name, concurrency])).toEqual([
        ['preflight', '1'],
        ['drain', '1'],
        ['restart', '1'],
        ['health-check', '1'],
        ['undrain', '1'],
      ]);
      const commands = await listCommands();
      expect(await timeoutsOf(view.executionId, commands)).toEqual(
        Object.fromEntries(steps.map(([name, timeout]) => [name, DELIVERY_TIMEOUT + timeout])),
      );
      // check-tls-expiry has no rate control: its three hosts are one wave.
      expect(tlsRun).not.toBe('');
      expect(await timeoutsOf(tlsRun, commands)).toEqual({ check: DELIVERY_TIMEOUT });
      // The bound held on the hosts too: no restart-service command ever started on db-1.
      const log = await readCommandLog(path.join(stack.home, 'devfleet'));
      const ours = log.filter((e) => e.comment.includes(view.executionId));
      expect(new Set(ours.map((e) => e.instanceId))).toEqual(
        new Set([DEMO_INSTANCE_IDS['web-1'], DEMO_INSTANCE_IDS['web-2']]),
      );
    },
    RUN_TIMEOUT,
  );
});

// Skipped only off CI: .ci/run installs Chromium, so there a missing browser fails the launch.
describe.skipIf(!existsSync(CHROMIUM) && !process.env['CI'])('the reporting UI in Chromium', () => {
  let browser: Browser;
  let completed = '';

  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    });
  });
  afterAll(async () => {
    await browser?.close();
  });

  /** A new browser context signed in as `user` through the provider's form, on `target`. */
  async function signedIn(user: string, target: string, options: BrowserContextOptions = {}): Promise<Page> {
    const page = await (await browser.newContext(options)).newPage();
    await page.goto(`${stack.info.apiUrl}${target}`);
    await page.fill('input[name=login]', user);
    await page.fill('input[name=password]', password);
    await Promise.all([page.waitForURL(`${stack.info.apiUrl}${target}`), page.click('button[type=submit]')]);
    return page;
  }

  test(
    'a vote on the web page is decided with channel web: a rule against web approvals refuses it, on the record with its channel; the same vote from the CLI passes',
    async () => {
      const launched = await launch('rotate-logs', { keep: 2 }, 'rotate before the audit');
      const id = launched.executionId;
      const page = await signedIn('bob', `/ui/runs/${id}`);
      const refusal = `${id} runs a housekeeping runbook, which is approved from the CLI or the TUI only; use mechanic approve`;
      // The page asks the same rule before offering the vote: no Approve button, the rule's reason, Reject still there.
      expect(await page.locator('button[value=approve]').count()).toBe(0);
      expect(await page.locator('#vote-note').textContent()).toBe(
        `You cannot approve this run: ${refusal}. You may still reject it.`,
      );
      // An approval posted anyway (a stale page, a crafted form) is decided with channel web, refused and recorded.
      await page.fill('#comment', 'from the web');
      await page
        .locator('button[value=reject]')
        .evaluate((b: { setAttribute(name: string, value: string): void }) => b.setAttribute('value', 'approve'));
      const [response] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith(`/ui/runs/${id}/vote`)),
        page.click('button[name=decision]'),
      ]);
      expect(response.status()).toBe(403);
      expect(await page.locator('[role=alert]').textContent()).toBe(refusal);

      const records = await auditOf(id);
      expect(records.map((r) => r.type)).not.toContain('approval.granted');
      const denied = records.filter((r) => r.type === 'access.denied');
      expect(denied.map((r) => [r.actor, r.data])).toEqual([
        [
          'bob',
          expect.objectContaining({
            action: 'approve',
            channel: 'web',
            reason: refusal,
            policies: ['housekeeping-not-from-the-web'],
          }),
        ],
      ]);
      expect((await api('alice').call('getExecution', { params: { id } })).execution.status).toBe('awaiting_approval');

      // The same person, the same vote, from the CLI: the rule does not apply, and the run goes on.
      const cli = await runCli(['approve', id, '--yes', '--as', 'bob'], stack.env);
      expect(cli.code, cli.stderr).toBe(0);
      expect((await ended(id)).status).toBe('completed');
      expect((await auditOf(id)).filter((r) => r.type === 'approval.granted').map((r) => r.actor)).toEqual(['bob']);
      completed = id;
    },
    RUN_TIMEOUT,
  );

  test(
    'with JavaScript off, an auditor signs in, filters the runs and opens one; an approver opens it from the approvals and approves it by the form',
    async () => {
      const launched = await launch('deploy-web', { release: 'v3.0.1' }, 'deploy without scripts');
      const id = launched.executionId;
      const noScript = { javaScriptEnabled: false };
      const dave = await signedIn('dave', '/ui/runs', noScript);
      // No script ran: the live note is only ever written by the page's script.
      expect(await dave.locator('.live-note').count()).toBe(0);
      await dave.selectOption('#f-status', 'awaiting_approval');
      await dave.fill('#f-runbook', 'deploy-web');
      await Promise.all([dave.waitForURL(/status=awaiting_approval/), dave.click('button:has-text("Filter")')]);
      expect(dave.url()).toContain('runbook=deploy-web');
      const row = dave.locator(`a[href="/ui/runs/${id}"]`);
      expect(await row.count()).toBe(1);
      if (completed) expect(await dave.locator(`a[href="/ui/runs/${completed}"]`).count()).toBe(0);
      await Promise.all([dave.waitForURL(`${stack.info.apiUrl}/ui/runs/${id}`), row.click()]);
      expect(await dave.locator('h1').textContent()).toBe(`Run ${id}`);
      expect(await dave.locator('#plan-h').textContent()).toBe('Plan');

      const bob = await signedIn('bob', '/ui/approvals', noScript);
      await Promise.all([bob.waitForURL(`${stack.info.apiUrl}/ui/runs/${id}`), bob.click(`a[href="/ui/runs/${id}"]`)]);
      expect(await bob.locator('.live-note').count()).toBe(0);
      await bob.fill('#comment', 'approved with scripts off');
      await Promise.all([bob.waitForURL(/voted=approve/), bob.click('button[value=approve]')]);
      expect(await bob.locator('.notice[role=status]').textContent()).toContain('Your approval was recorded');
      expect((await ended(id)).status).toBe('completed');
      const vote = (await auditOf(id)).find((r) => r.type === 'approval.granted');
      expect(vote).toMatchObject({ actor: 'bob', data: { comment: 'approved with scripts off' } });
    },
    RUN_TIMEOUT,
  );

  test('a run’s page prints without navigation or forms, with its steps, timeline and proof', async () => {
    // Any completed run of this stack (the catalog's runs above), or one of its own when run alone.
    const done =
      (await api('alice').call('listExecutions', { query: { status: 'completed' } })).executions[0]?.id ??
      (await run('check-tls-expiry', { warn_days: 5 })).executionId;
    const page = await signedIn('dave', `/ui/runs/${done}`);
    // On screen: the navigation, the sign-out form and the live note are there (the script ran).
    await page.locator('.live-note').waitFor();
    const shown = async (selector: string) => page.locator(selector).first().isVisible();
    for (const selector of ['header.banner nav', 'form.who', '.live-note'])
      expect(await shown(selector), selector).toBe(true);

    await page.emulateMedia({ media: 'print' });
    for (const selector of ['header.banner nav', 'form.who', '.live-note', '.skip']) {
      expect(await shown(selector), selector).toBe(false);
    }
    // Evaluated in the page as text: this project's types have no DOM.
    const inPage = <T>(script: string): Promise<T> => page.evaluate<T>(script);
    expect(await inPage<number>('[...document.forms].filter((f) => f.checkVisibility()).length')).toBe(0);
    expect(await shown('h1')).toBe(true);
    expect(await shown('ol.timeline')).toBe(true);
    const timeline = await page.locator('ol.timeline').innerText();
    expect(timeline).toContain('Approved');
    expect(timeline).toContain('Ended: completed');
    expect(await shown('#proof-result')).toBe(true);
    expect(await page.locator('#proof-result').innerText()).toMatch(/Verified: \d+ of the run's \d+ records/);
    // Output is printed whole, not cut at the screen's scroll box, and links print where they go.
    const pres = await inPage<string[]>(
      "[...document.querySelectorAll('pre')].map((e) => getComputedStyle(e).maxHeight)",
    );
    expect(pres.length).toBeGreaterThan(0);
    expect(new Set(pres)).toEqual(new Set(['none']));
    const after = await inPage<string>(
      "getComputedStyle(document.querySelector('main a[href^=\"/\"]'), '::after').content",
    );
    expect(after).toMatch(/^" \(" attr\(href\) "\)"$|^" \(\/ui\//);
    // Headless Chromium prints it.
    const pdf = await page.pdf({ format: 'A4' });
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');

    // A waiting run printed by an approver: the vote box goes with its form, the plan stays.
    const waiting = await launch('deploy-web', { release: 'v3.0.2' }, 'print the waiting run');
    const bob = await signedIn('bob', `/ui/runs/${waiting.executionId}`);
    expect(await bob.locator('#vote-h').isVisible()).toBe(true);
    await bob.emulateMedia({ media: 'print' });
    expect(await bob.locator('#vote-h').isVisible()).toBe(false);
    expect(await bob.locator('#plan-h').isVisible()).toBe(true);
    await api('alice').call('cancel', { params: { id: waiting.executionId }, body: { reason: 'printed, not needed' } });
  });

  test(
    'a run terminated with the temporal CLI is failed in status, list and the audit log, naming who terminated it and why',
    async () => {
      const waiting = await launch('deploy-web', { release: 'v3.0.3' }, 'terminated from Temporal');
      const id = waiting.executionId;
      const terminated = await new Promise<{ code: number | null; out: string }>((resolve) => {
        execFile(
          inject('temporalCli'),
          [
            'workflow',
            'terminate',
            '--address',
            stack.info.temporalAddress,
            '--workflow-id',
            id,
            '--reason',
            'wedged',
            '--identity',
            'erin',
          ],
          (error, stdout, stderr) => resolve({ code: error ? 1 : 0, out: stdout + stderr }),
        );
      });
      expect(terminated).toMatchObject({ code: 0 });
      // The CLI sends its own identity (pid@host) with the reason.
      const reason = expect.stringMatching(
        /^it ended in Temporal without recording its end: terminated by "\d+@[^"]+": "wedged"$/,
      ) as unknown as string;
      const status = await waitFor('the terminated run to be failed in its status', async () => {
        const r = await runCli(['status', id, '--json', '--as', 'alice'], stack.env);
        const view = JSON.parse(r.stdout) as ExecutionView;
        return view.status === 'failed' ? view : undefined;
      });
      expect(status.reason).toEqual(reason);
      const listed = JSON.parse(
        (await runCli(['list', '--status', 'failed', '--json', '--as', 'alice'], stack.env)).stdout,
      ) as { id: string }[];
      expect(listed.map((e) => e.id)).toContain(id);
      const records = await runCli(['audit', 'list', '--execution', id, '--json', '--as', 'dave'], stack.env);
      expect(JSON.parse(records.stdout)).toContainEqual(
        expect.objectContaining({ type: 'execution.failed', actor: 'mechanic', data: { reason } }),
      );
    },
    RUN_TIMEOUT,
  );
});
