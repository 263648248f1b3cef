import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createApiClient, type ApiClient } from '../../src/api/client.ts';
import type { ExecutionView } from '../../src/core/execution.ts';
import { TERMINAL_STATUSES } from '../../src/core/execution.ts';
import { lintRunbookText } from '../../src/core/lint.ts';
import type { Plan } from '../../src/core/plan.ts';
import { DEMO_INSTANCE_IDS } from '../../src/devfleet/config.ts';
import { seedHost } from '../../src/devfleet/seed.ts';
import { dataConverterFor, parseCodecKeys } from '../../src/temporal/codec.ts';
import { WORKFLOWS_PATH } from '../../src/temporal/worker.ts';
import { runCli, startDevStack, type DevStack } from '../helpers/cli.ts';
import { waitFor } from '../helpers/parts.ts';

/**
 * The catalog (runbooks/), each runbook linted, planned and run for real: `mechanic dev` with
 * devfleet, whose instances are seeded like the hosts these runbooks are written for (systemd
 * units, a container, packages, logs, temporary files, certificates, caches). devfleet's stand-ins
 * for systemctl, docker and apt-get keep their state in each instance's folder, so every effect a
 * runbook claims is checked there, on the host it was meant for and on no other.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CATALOG = [
  'restart-service',
  'rotate-logs',
  'collect-diagnostics',
  'patch-packages',
  'free-disk-space',
  'restart-container',
  'check-tls-expiry',
  'flush-cache',
] as const;
const WEB = ['web-1', 'web-2'] as const;
const ALL = ['web-1', 'web-2', 'db-1'] as const;
type Host = (typeof ALL)[number];
/** A test that waits for whole runs (two in some tests) on a shared, loaded machine. */
const RUN_TIMEOUT = 480_000;

let stack: DevStack;
let alice: ApiClient;
let bob: ApiClient;
const root = (host: Host) => path.join(stack.home, 'devfleet', 'instances', DEMO_INSTANCE_IDS[host], 'root');
const at = (host: Host, file: string) => path.join(root(host), file);
const read = (host: Host, file: string) => readFile(at(host, file), 'utf8');

async function put(host: Host, file: string, content: string): Promise<void> {
  await mkdir(path.dirname(at(host, file)), { recursive: true });
  await writeFile(at(host, file), content);
}

/**
 * Each host as the catalog expects to find it; db-1's certificate expires within a month. The
 * embedded stack has seeded every host already (with year-long certificates); they are laid out
 * again here, before anything ran, with this test's certificates.
 */
async function seed(): Promise<void> {
  for (const host of ALL) {
    await rm(at(host, '.devfleet-seeded'));
    const tags = { Role: host === 'db-1' ? 'db' : 'web', Env: 'staging' };
    await seedHost(root(host), { name: host, tags }, { certificateDays: host === 'db-1' ? 10 : 300 });
  }
}

/** Launches as alice, approves as bob (a second person), and waits for the run's end. */
async function run(
  runbook: string,
  params: Record<string, string | number | boolean | string[]>,
): Promise<ExecutionView> {
  const launched = await alice.call('launch', { body: { runbook, params, reason: `catalog test of ${runbook}` } });
  await bob.call('vote', {
    params: { id: launched.executionId },
    body: { decision: 'approve', planDigest: launched.planDigest },
  });
  return waitFor(
    `${runbook} to finish`,
    async () => {
      const { execution } = await alice.call('getExecution', { params: { id: launched.executionId } });
      return TERMINAL_STATUSES.has(execution.status) ? execution : undefined;
    },
    240_000,
  );
}

const hostOf = (instanceId: string) => ALL.find((h) => DEMO_INSTANCE_IDS[h] === instanceId);
/** One step's output per host: `{ 'web-1': 'stdout…' }`. */
function outputs(view: ExecutionView, step: string): Record<string, string> {
  const s = view.steps.find((x) => x.name === step);
  if (!s) throw new Error(`${view.plan.runbook.name} has no step ${step}`);
  return Object.fromEntries(s.instances.map((i) => [hostOf(i.instanceId) ?? i.instanceId, i.stdout + i.stderr]));
}
const stepStates = (view: ExecutionView) => view.steps.map((s) => `${s.name}:${s.status}`);
/** One step as it ran on one host. */
function onHost(view: ExecutionView, step: string, host: Host) {
  const found = view.steps.find((x) => x.name === step)?.instances.find((i) => hostOf(i.instanceId) === host);
  if (!found) throw new Error(`${step} has no result for ${host}`);
  return found;
}

beforeAll(async () => {
  stack = await startDevStack();
  const users = JSON.parse(await readFile(path.join(stack.home, 'users.json'), 'utf8')) as {
    users: { id: string; token: string }[];
  };
  const client = (id: string) =>
    createApiClient({ url: stack.info.apiUrl, token: users.users.find((u) => u.id === id)!.token, channel: 'cli' });
  alice = client('alice');
  bob = client('bob');
  await seed();
}, 300_000);

afterAll(async () => {
  expect(await stack?.stop()).toBe(0);
});

describe('the catalog', () => {
  test('holds the eight runbooks an SRE expects, each lint-clean and loaded by the server', async () => {
    for (const name of CATALOG) {
      const text = readFileSync(path.join(ROOT, 'runbooks', `${name}.yaml`), 'utf8');
      expect(lintRunbookText(`${name}.yaml`, text).problems, name).toEqual([]);
    }
    const { runbooks, invalid } = await alice.call('listRunbooks');
    expect(invalid).toEqual([]);
    expect(runbooks.map((r) => r.name)).toEqual(expect.arrayContaining([...CATALOG]));
    expect(readdirSync(path.join(ROOT, 'runbooks')).length).toBeGreaterThanOrEqual(CATALOG.length);
  });

  test('mechanic plan shows per step and per instance what would run, as which role, for how long, and starts nothing', async () => {
    const before = (await alice.call('listExecutions', { query: {} })).executions.length;
    const human = await runCli(
      [
        'plan',
        'restart-service',
        '--param',
        'hosts=web-1',
        '--param',
        'hosts=web-2',
        '--param',
        'service=web',
        '--param',
        'drain_seconds=2',
        '--as',
        'alice',
      ],
      stack.env,
    );
    expect(human.stderr).toBe('');
    expect(human.code).toBe(0);
    const text = human.stdout;
    expect(text).toMatch(
      /^plan only — nothing was started\nrunbook {4}restart-service v2 \(runbook digest [0-9a-f]{12}\)/,
    );
    expect(text).toContain('role       arn:aws:iam::123456789012:role/mechanic-runner in us-east-1');
    expect(text).toMatch(/lifetime {3}credentials last at most \d+ min \(\d+ s\), issued only after approval/);
    for (const [i, step] of ['preflight', 'drain', 'restart', 'health-check', 'undrain'].entries()) {
      expect(text).toContain(`step ${i + 1} of 5: ${step} — times out after`);
    }
    expect(text).toContain('if a step fails, step 1 of 1: report');
    // A rolling restart: every step one host at a time, none after the first failure.
    expect(text.match(/at most 1 instance at a time, no further instance after the first failure/g)).toHaveLength(6);
    // Per instance, under every step; the script as it will run, the parameter already quoted.
    expect(text.match(/ {4}web-1 {8}i-0d3f1ee7000000001/g)).toHaveLength(6);
    expect(text.match(/ {4}web-2 {8}i-0d3f1ee7000000002/g)).toHaveLength(6);
    expect(text).not.toContain('db-1');
    expect(text).toContain("    | systemctl restart 'web'");
    expect(text).toContain("    | sleep '2'");
    expect(text).toContain('"ssm:SendCommand"');
    const digest = /plan digest ([0-9a-f]{64})\n$/.exec(text)?.[1];
    expect(digest).toBeDefined();

    const json = await runCli(
      ['plan', 'check-tls-expiry', '--param', 'warn_days=14', '--target', 'db-1', '--as', 'alice', '--json'],
      stack.env,
    );
    expect(json.code).toBe(0);
    const planned = JSON.parse(json.stdout) as { plan: Plan; planDigest: string };
    expect(planned.planDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(planned.plan.targets).toEqual([{ instanceId: DEMO_INSTANCE_IDS['db-1'], name: 'db-1' }]);
    expect(planned.plan.params).toEqual({ warn_days: 14, cert_dir: 'etc/ssl/services' });
    expect(planned.plan.steps.map((s) => s.name)).toEqual(['check']);
    expect(JSON.parse(planned.plan.sessionPolicy)).toMatchObject({ Version: '2012-10-17' });

    // Nothing started: no execution, and a parameter the runbook refuses is one sentence, exit 1.
    expect((await alice.call('listExecutions', { query: {} })).executions.length).toBe(before);
    const bad = await runCli(
      ['plan', 'restart-service', '--param', 'hosts=web-1', '--param', 'service=web;reboot', '--as', 'alice'],
      stack.env,
    );
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toMatch(/^mechanic: parameter "service" must match .+\n$/);
    // The hosts come from the operator, but only inside the runbook's bound (staging web hosts).
    const outside = await runCli(
      [
        'plan',
        'restart-service',
        '--param',
        'hosts=web-1',
        '--param',
        'hosts=db-1',
        '--param',
        'service=web',
        '--as',
        'alice',
      ],
      stack.env,
    );
    expect({ code: outside.code, stdout: outside.stdout }).toEqual({ code: 1, stdout: '' });
    expect(outside.stderr).toMatch(
      /^mechanic: parameter "hosts" names [^\n]*db-1[^\n]*, outside what restart-service may target[^\n]*\n$/,
    );
    expect(outside.stderr).not.toContain('web-1');
    const unknown = await runCli(['plan', 'restart-servce', '--as', 'alice'], stack.env);
    expect({ code: unknown.code, stdout: unknown.stdout }).toEqual({ code: 1, stdout: '' });
    expect(unknown.stderr).toMatch(/^mechanic: there is no runbook named "restart-servce"[^\n]*\n$/);
  }, 240_000);

  describe('each runbook runs on devfleet and does what it says, where it says', () => {
    test(
      'restart-service drains each web host, restarts the unit, waits until active, and puts the host back, one host at a time',
      async () => {
        const view = await run('restart-service', { hosts: ['web-1', 'web-2'], service: 'web', drain_seconds: 1 });
        expect(view.plan.steps.map((s) => [s.maxConcurrency, s.maxErrors])).toEqual(Array(5).fill(['1', '0']));
        expect(stepStates(view)).toEqual([
          'preflight:succeeded',
          'drain:succeeded',
          'restart:succeeded',
          'health-check:succeeded',
          'undrain:succeeded',
          'report:skipped',
        ]);
        expect(outputs(view, 'health-check')).toEqual({
          'web-1': 'active after 1 check(s)\n',
          'web-2': 'active after 1 check(s)\n',
        });
        for (const host of WEB) {
          expect(await read(host, 'run/systemd/units/web.restarts')).toBe('1\n');
          expect(existsSync(at(host, 'srv/lb/DRAINING'))).toBe(false);
        }
        expect(existsSync(at('db-1', 'run/systemd/units/web.restarts'))).toBe(false);
      },
      RUN_TIMEOUT,
    );

    test(
      'restart-service stops the roll at the first host whose unit does not come back, leaves it drained, and reports it',
      async () => {
        await put('web-1', 'etc/systemd/system/web.fail', '');
        try {
          // Hosts go in the order given, one at a time: web-1 fails, so web-2 is never restarted.
          const view = await run('restart-service', { hosts: ['web-1', 'web-2'], service: 'web', drain_seconds: 0 });
          expect(view.status).toBe('failed');
          expect(stepStates(view)).toEqual([
            'preflight:succeeded',
            'drain:succeeded',
            'restart:failed',
            'health-check:skipped',
            'undrain:skipped',
            'report:succeeded',
          ]);
          expect(outputs(view, 'restart')['web-1']).toContain('Job for web.service failed');
          expect(await read('web-1', 'run/systemd/units/web.restarts')).toBe('2\n');
          expect(onHost(view, 'restart', 'web-2').status).not.toBe('Success');
          expect(await read('web-2', 'run/systemd/units/web.restarts')).toBe('1\n');
          expect(existsSync(at('web-1', 'srv/lb/DRAINING'))).toBe(true);
          expect(outputs(view, 'report')['web-1']).toContain('web-1: drained=yes');
        } finally {
          // The unit is fixed by hand, as an operator would, so later runbooks find a healthy host.
          await rm(at('web-1', 'etc/systemd/system/web.fail'));
          await put('web-1', 'run/systemd/units/web', 'active\n');
        }
      },
      RUN_TIMEOUT,
    );

    test(
      'collect-diagnostics leaves one bundle per host with the newest log lines and the listed services, going on past a host that lacks one',
      async () => {
        const view = await run('collect-diagnostics', { log_lines: 50, services: ['nginx', 'postgres'] });
        // No host has both services: the best-effort step fails everywhere, and the bundle is still built.
        expect(view.status).toBe('completed');
        expect(stepStates(view)).toEqual(['collect:succeeded', 'services:failed', 'bundle:succeeded']);
        expect(view.steps.find((s) => s.name === 'services')?.continuedOnError).toBe(true);
        expect(view.reason).toContain('step "services" failed');
        const id = view.executionId;
        for (const host of ALL) {
          const bundle = at(host, `var/tmp/mechanic-diagnostics/diagnostics-${id}.tar.gz`);
          const files = execFileSync('tar', ['-tzf', bundle], { encoding: 'utf8' }).split('\n').filter(Boolean).sort();
          expect(files).toEqual(
            [
              './',
              './app.log.tail',
              './containers.txt',
              './disk.txt',
              './memory.txt',
              './processes.txt',
              './services.txt',
              './system.txt',
            ].sort(),
          );
          const tail = execFileSync('tar', ['-xzOf', bundle, './app.log.tail'], { encoding: 'utf8' });
          expect(tail.trimEnd().split('\n')).toHaveLength(50);
          expect(tail).toContain(`${host} request 119`);
          const services = execFileSync('tar', ['-xzOf', bundle, './services.txt'], { encoding: 'utf8' });
          expect(services).toContain(host === 'db-1' ? '● postgres.service' : '● nginx.service');
          expect(services).toContain(`Unit ${host === 'db-1' ? 'nginx' : 'postgres'}.service not found`);
          expect(services).not.toContain('web.service'); // only the listed units
          expect(outputs(view, 'services')[host]).toContain('1 of the listed services are not running or not on');
          expect(outputs(view, 'bundle')[host]).toMatch(new RegExp(`[0-9a-f]{64}  diagnostics-${id}\\.tar\\.gz\\n$`));
          expect(existsSync(at(host, 'var/tmp/mechanic-diagnostics/collecting'))).toBe(false);
        }
      },
      RUN_TIMEOUT,
    );

    test(
      'patch-packages upgrades the canary first, then the rest, and every host ends on the new version',
      async () => {
        const view = await run('patch-packages', { package: 'openssl', canary: 'web-1' });
        expect(view.status).toBe('completed');
        // The rest goes in batches of half the hosts; no step starts on a host after a failure.
        expect(view.plan.steps.map((s) => `${s.name}:${s.maxConcurrency ?? '-'}/${s.maxErrors}`)).toEqual([
          'preview:-/0',
          'patch-canary:-/0',
          'verify-canary:-/0',
          'patch-rest:50%/0',
          'verify-all:-/0',
        ]);
        expect(outputs(view, 'preview')['web-2']).toContain('Inst openssl [3.0.11-1] (3.0.13-1)');
        expect(outputs(view, 'patch-canary')).toMatchObject({
          'web-1': expect.stringContaining('Setting up openssl (3.0.13-1)'),
          'web-2': 'not the canary; waiting\n',
          'db-1': 'not the canary; waiting\n',
        });
        expect(outputs(view, 'verify-canary')['web-1']).toContain('canary web-1 is healthy on the new version');
        expect(outputs(view, 'patch-rest')['web-1']).toBe('canary, already patched\n');
        for (const host of ALL) {
          expect(await read(host, 'var/lib/dpkg/installed/openssl')).toBe('3.0.13-1\n');
          expect(outputs(view, 'verify-all')[host]).toBe('openssl\t3.0.13-1\n');
        }
      },
      RUN_TIMEOUT,
    );

    test(
      'patch-packages stops at a failing canary: no other host is touched',
      async () => {
        for (const host of ALL) await put(host, 'var/lib/apt/available/curl', '8.5.0-2\n');
        for (const host of ALL) await put(host, 'var/lib/dpkg/installed/curl', '8.4.0-1\n');
        await put('web-2', 'var/lib/apt/broken/curl', '');
        const view = await run('patch-packages', { package: 'curl', canary: 'web-2' });
        expect(view.status).toBe('failed');
        expect(stepStates(view).slice(0, 3)).toEqual([
          'preview:succeeded',
          'patch-canary:failed',
          'verify-canary:skipped',
        ]);
        for (const host of ALL) expect(await read(host, 'var/lib/dpkg/installed/curl')).toBe('8.4.0-1\n');
      },
      RUN_TIMEOUT,
    );

    test(
      'free-disk-space lists by default, deletes only old temporary files and rotated logs when told',
      async () => {
        const listed = await run('free-disk-space', {});
        expect(listed.status).toBe('completed');
        for (const host of ALL) {
          expect(outputs(listed, 'clean')[host]).toBe(
            'would delete var/tmp/upload-old.tmp\nwould delete var/log/app/app.log.20260101T000000-seed.gz\n',
          );
          expect(existsSync(at(host, 'var/tmp/upload-old.tmp'))).toBe(true);
        }
        const cleaned = await run('free-disk-space', { delete: true, older_than_days: 7 });
        expect(cleaned.status).toBe('completed');
        for (const host of ALL) {
          expect(existsSync(at(host, 'var/tmp/upload-old.tmp'))).toBe(false);
          expect(existsSync(at(host, 'var/log/app/app.log.20260101T000000-seed.gz'))).toBe(false);
          // Recent files and the live log stay.
          expect(existsSync(at(host, 'var/tmp/session-new.tmp'))).toBe(true);
          expect(existsSync(at(host, 'var/log/app/app.log'))).toBe(true);
        }
      },
      RUN_TIMEOUT,
    );

    test(
      'rotate-logs compresses the live log and keeps the newest archives',
      async () => {
        const view = await run('rotate-logs', { keep: 2 });
        expect(view.status).toBe('completed');
        for (const host of ALL) {
          const archives = readdirSync(at(host, 'var/log/app')).filter((f) => f.endsWith(`-${view.executionId}.gz`));
          expect(archives).toHaveLength(1);
          const text = execFileSync('gzip', ['-dc', at(host, `var/log/app/${archives[0]}`)], { encoding: 'utf8' });
          expect(text).toContain(`${host} request 119`);
          expect(await read(host, 'var/log/app/app.log')).toBe('');
          // Seeding is once per host: seeding again (a restarted stack would) keeps what runs changed.
          await seedHost(root(host), { name: host, tags: { Role: 'web' } });
          expect(await read(host, 'var/log/app/app.log')).toBe('');
        }
      },
      RUN_TIMEOUT,
    );

    test(
      'restart-container restarts the container on each web host and waits for its health check',
      async () => {
        const view = await run('restart-container', { container: 'api' });
        expect(view.status).toBe('completed');
        expect(outputs(view, 'health-check')).toEqual({
          'web-1': 'healthy after 1 check(s)\n',
          'web-2': 'healthy after 1 check(s)\n',
        });
        for (const host of WEB) expect(await read(host, 'var/lib/docker/containers/api/restarts')).toBe('1\n');
      },
      RUN_TIMEOUT,
    );

    test(
      'check-tls-expiry fails on the host whose certificate expires within the window, naming it',
      async () => {
        const strict = await run('check-tls-expiry', { warn_days: 30 });
        expect(strict.status).toBe('failed');
        const out = outputs(strict, 'check');
        expect(out['db-1']).toMatch(/EXPIRING {2}site\.pem \(CN ?= ?db-1\.internal\) on /);
        expect(out['db-1']).toContain('1 certificate(s) checked, 1 expiring within 30 days');
        expect(out['web-1']).toMatch(/ok {8}site\.pem \(CN ?= ?web-1\.internal\) until /);
        const relaxed = await run('check-tls-expiry', { warn_days: 5 });
        expect(relaxed.status).toBe('completed');
        expect(outputs(relaxed, 'check')['db-1']).toContain('1 certificate(s) checked, 0 expiring within 5 days');
      },
      RUN_TIMEOUT,
    );

    test(
      'flush-cache empties the nginx cache on each web host and reloads nginx',
      async () => {
        const view = await run('flush-cache', { cache: 'nginx' });
        expect(view.status).toBe('completed');
        expect(stepStates(view)).toEqual([
          'measure:succeeded',
          'flush:succeeded',
          'reload-nginx:succeeded',
          'verify:succeeded',
        ]);
        expect(outputs(view, 'reload-nginx')).toEqual({ 'web-1': 'reloaded nginx\n', 'web-2': 'reloaded nginx\n' });
        for (const host of WEB) {
          expect(outputs(view, 'measure')[host]).toContain('cached files: 2');
          expect(readdirSync(at(host, 'var/cache/nginx'))).toEqual([]);
          expect(await read(host, 'var/log/systemd.log')).toMatch(/reloaded nginx\.service/);
          expect(outputs(view, 'verify')[host]).toBe('var/cache/nginx is empty\n');
        }
      },
      RUN_TIMEOUT,
    );

    test('flush-cache plans no nginx reload for the application cache', async () => {
      const planned = await runCli(
        ['plan', 'flush-cache', '--param', 'cache=app', '--as', 'alice', '--json'],
        stack.env,
      );
      expect(planned.code).toBe(0);
      const { plan } = JSON.parse(planned.stdout) as { plan: Plan };
      const reload = plan.steps.find((s) => s.name === 'reload-nginx');
      expect(reload).toMatchObject({ condition: 'cache is "nginx"', retries: 2, retryDelaySeconds: 5 });
      expect(reload?.skipped).toContain('cache is "app"');
      expect(plan.steps.filter((s) => s.skipped !== undefined).map((s) => s.name)).toEqual(['reload-nginx']);
    }, 240_000);

    test(
      'flush-cache tries a refused nginx reload again, three times in all, then stops before verifying',
      async () => {
        await put('web-2', 'run/systemd/units/nginx', 'inactive\n');
        try {
          const view = await run('flush-cache', { cache: 'nginx' });
          expect(view.status).toBe('failed');
          expect(stepStates(view)).toEqual([
            'measure:succeeded',
            'flush:succeeded',
            'reload-nginx:failed',
            'verify:skipped',
          ]);
          const reload = view.steps.find((s) => s.name === 'reload-nginx');
          expect(reload?.attempt).toBe(3);
          expect(onHost(view, 'reload-nginx', 'web-2').stderr).toContain('nginx.service is not active, cannot reload.');
        } finally {
          await put('web-2', 'run/systemd/units/nginx', 'active\n');
        }
      },
      RUN_TIMEOUT,
    );
  });

  test('every run above replays from its history alone, as a worker with an empty cache replays it', async () => {
    // A query or a worker restart replays a run from its history; a workflow change that orders
    // its commands differently on replay (a patch asked after a local record, met there in an
    // earlier workflow task than it was recorded in) fails here, and on the stack strands the run.
    const connection = await Connection.connect({ address: stack.info.temporalAddress });
    try {
      const client = new Client({ connection, namespace: 'default' });
      const keys = parseCodecKeys(await readFile(path.join(stack.home, 'codec-keys'), 'utf8'));
      const histories: { workflowId: string; history: Awaited<ReturnType<WorkflowHandle['fetchHistory']>> }[] = [];
      for await (const run of client.workflow.list({ query: 'WorkflowType = "runbookExecution"' })) {
        histories.push({
          workflowId: run.workflowId,
          history: await client.workflow.getHandle(run.workflowId).fetchHistory(),
        });
      }
      expect(histories.length).toBeGreaterThanOrEqual(CATALOG.length);
      const failures: string[] = [];
      for await (const result of Worker.runReplayHistories(
        { workflowsPath: WORKFLOWS_PATH, dataConverter: dataConverterFor(keys) },
        histories,
      )) {
        if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
      }
      expect(failures).toEqual([]);
    } finally {
      await connection.close();
    }
  }, 240_000);
});
