import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readCommandLog } from '../../src/devfleet/command-log.ts';
import type { ExecutionView } from '../../src/core/execution.ts';
import type { AuditRecord } from '../../src/core/audit.ts';
import { runCli, startDevStack, type DevStack } from '../helpers/cli.ts';

/**
 * The spine, by hand: `mechanic dev --no-tui` in one "terminal", the CLI in another — against
 * the real Temporal dev server, devfleet (real SDK clients, real bash) and the SQLite audit store.
 */
describe('a runbook runs end to end on the embedded stack', () => {
  let stack: DevStack;
  const cli = (...args: string[]) => runCli(args, stack.env);

  beforeAll(async () => {
    stack = await startDevStack();
  });
  afterAll(async () => {
    const code = await stack?.stop();
    expect(code).toBe(0);
  });

  let executionId = '';

  test('alice launches deploy-web; the plan names both web instances', async () => {
    const r = await cli(
      'launch',
      'deploy-web',
      '--param',
      'release=v2.0.1',
      '--reason',
      'spine test',
      '--as',
      'alice',
      '--json',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const launched = JSON.parse(r.stdout) as { executionId: string; plan: { targets: { name: string }[] } };
    executionId = launched.executionId;
    expect(executionId).toMatch(/^mx-[a-z0-9]{10}$/);
    expect(launched.plan.targets.map((t) => t.name)).toEqual(['web-1', 'web-2']);
  });

  test('alice cannot approve her own change', async () => {
    const r = await cli('approve', executionId, '--yes', '--as', 'alice');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('mechanic: alice requested this execution and cannot approve or reject it\n');
    expect(r.stderr).not.toMatch(/\n\s+at /); // never a stack trace
  });

  test('an auditor cannot approve at all', async () => {
    const r = await cli('approve', executionId, '--yes', '--as', 'dave');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('mechanic: dave (auditor) may not approve or reject executions');
  });

  test('bob approves and the run completes with every step on every target', async () => {
    const approve = await cli('approve', executionId, '--yes', '--as', 'bob');
    expect(approve.code).toBe(0);
    expect(approve.stdout).toContain(`approved by bob — ${executionId} is running`);

    const status = await cli('status', executionId, '--wait', '--as', 'alice', '--json');
    expect(status.code).toBe(0);
    const view = JSON.parse(status.stdout) as ExecutionView;
    expect(view.status).toBe('completed');
    expect(view.steps.map((s) => [s.name, s.status])).toEqual([
      ['preflight', 'succeeded'],
      ['install', 'succeeded'],
      ['switch', 'succeeded'],
      ['verify', 'succeeded'],
      ['report', 'skipped'],
    ]);
    const verify = view.steps.find((s) => s.name === 'verify')!;
    expect(verify.instances.map((i) => [i.instanceId, i.status, i.responseCode, i.stdout.trim()])).toEqual([
      ['i-0d3f1ee7000000001', 'Success', 0, 'serving v2.0.1'],
      ['i-0d3f1ee7000000002', 'Success', 0, 'serving v2.0.1'],
    ]);

    // The human view shows the same outputs.
    const human = await cli('status', executionId, '--as', 'alice');
    expect(human.stdout).toContain('| serving v2.0.1');
  });

  test('devfleet ran each step exactly once on each target', async () => {
    const log = (await readCommandLog(path.join(stack.home, 'devfleet'))).filter((e) =>
      e.comment.startsWith(`mechanic ${executionId} `),
    );
    const runs = log.map((e) => `${e.comment.split(' ').slice(2).join(' ')} ${e.instanceId} ${e.status}`).sort();
    expect(runs).toEqual(
      [0, 1, 2, 3].flatMap((i) => [`step ${i} i-0d3f1ee7000000001 Success`, `step ${i} i-0d3f1ee7000000002 Success`]),
    );
    expect(log.every((e) => e.documentName === 'AWS-RunShellScript')).toBe(true);
  });

  test('the audit store tells the whole story, and its chain verifies', async () => {
    const r = await cli('audit', 'list', '--execution', executionId, '--as', 'dave', '--json');
    expect(r.code).toBe(0);
    const records = JSON.parse(r.stdout) as AuditRecord[];
    const story = records.map((e) => `${e.type} ${e.actor}`);
    expect(story[0]).toBe('execution.requested alice');
    expect(story).toContain('approval.refused alice'); // the self-approval, audited
    expect(story).toContain('access.denied dave');
    expect(story).toContain('approval.granted bob');
    expect(story).toContain('credentials.issued mechanic');
    expect(story.filter((s) => s === 'step.instance mechanic')).toHaveLength(8);
    expect(story.at(-1)).toBe('execution.completed mechanic');
    const refused = records.find((e) => e.type === 'approval.refused')!;
    expect(refused.data['code']).toBe('APPROVAL_SELF');
    const issued = records.find((e) => e.type === 'credentials.issued')!;
    expect(JSON.stringify(issued.data)).not.toMatch(/secret|sessionToken/i);

    const verify = await cli('audit', 'verify', '--as', 'dave');
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/^audit chain intact: \d+ records/);
  });

  test('a finished execution cannot be approved', async () => {
    const r = await cli('approve', executionId, '--yes', '--as', 'carol');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `mechanic: execution ${executionId} has already ended (completed); it can no longer be approved\n`,
    );
  });

  test('an API server whose port is taken says so in one sentence', async () => {
    const codecKeys = (await readFile(path.join(stack.home, 'codec-keys'), 'utf8')).trim();
    const port = new URL(stack.info.apiUrl).port;
    const r = await runCli(['server'], { ...stack.env, MECHANIC_CODEC_KEYS: codecKeys, MECHANIC_API_PORT: port });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `mechanic: the API cannot listen on 127.0.0.1:${port} (the port is in use); set MECHANIC_API_PORT to a free port\n`,
    );
  });

  describe('bad input gets one clear sentence, a non-zero exit, and leaves nothing behind', () => {
    const cases: [string, string[], RegExp][] = [
      [
        'unknown runbook',
        ['launch', 'deploy-wbe', '--reason', 'typo test'],
        /^mechanic: there is no runbook named "deploy-wbe"; did you mean "deploy-web"\?$/,
      ],
      [
        'missing parameter',
        ['launch', 'deploy-web', '--reason', 'missing param'],
        /^mechanic: parameter "release" is required: a string matching/,
      ],
      [
        'ill-typed parameter',
        ['launch', 'rotate-logs', '--param', 'keep=lots', '--reason', 'bad type'],
        /^mechanic: parameter "keep" must be an integer from 1 to 30; got "lots"$/,
      ],
      [
        'injection attempt',
        ['launch', 'deploy-web', '--param', 'release=v1.0.0; rm -rf /', '--reason', 'inject'],
        /^mechanic: parameter "release" must match/,
      ],
      [
        'unknown parameter',
        ['launch', 'rotate-logs', '--param', 'kep=3', '--reason', 'typo'],
        /^mechanic: "kep" is not a parameter of rotate-logs \(its parameters are: keep\)$/,
      ],
      [
        'unknown target',
        ['launch', 'deploy-web', '--param', 'release=v1.0.0', '--target', 'db-1', '--reason', 'wrong host'],
        /^mechanic: db-1 is not among the instances deploy-web may target: web-1 \(i-0d3f1ee7000000001\), web-2 \(i-0d3f1ee7000000002\)$/,
      ],
      ['missing reason', ['launch', 'deploy-web', '--param', 'release=v1.0.0'], /^mechanic: a reason is required/],
      ['unknown execution', ['approve', 'mx-doesnotexist'], /^mechanic: there is no execution mx-doesnotexist/],
      [
        'unknown flag',
        ['launch', 'deploy-web', '--frobnicate'],
        /^mechanic: Unknown option '--frobnicate'; usage: mechanic launch/,
      ],
      [
        'unknown user',
        ['list', '--as', 'mallory'],
        /^mechanic: there is no demo user "mallory"; the demo users are alice, bob, carol, dave$/,
      ],
    ];
    test.each(cases)('%s', async (_name, args, message) => {
      const before = await cli('list', '--as', 'alice', '--json');
      const as = args.includes('approve') ? 'bob' : 'alice';
      const r = await cli(...args, ...(args.includes('--as') ? [] : ['--as', as]));
      expect(r.code).not.toBe(0);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trim().split('\n');
      expect(lines[0]).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      const after = await cli('list', '--as', 'alice', '--json');
      expect(JSON.parse(after.stdout)).toEqual(JSON.parse(before.stdout));
    });
  });
});
