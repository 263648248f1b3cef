import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { AuditRecord } from '../../src/core/audit.ts';
import type { ExecutionView } from '../../src/core/execution.ts';
import { readCallLog, type CallLogEntry } from '../../src/devfleet/call-log.ts';
import { readCommandLog } from '../../src/devfleet/command-log.ts';
import { DEMO_INSTANCE_IDS, defaultFleetConfig } from '../../src/devfleet/config.ts';
import { usersFile, writeOwnerOnly } from '../helpers/claims.ts';
import { runCli, startDevStack, type DevStack } from '../helpers/cli.ts';

/**
 * A four-hour runbook completes on the embedded stack, whose worker runs as AWS will run it: its own
 * credentials are a role session (devfleet's container-credentials endpoint, read by the AWS SDK's
 * default chain), so every lease of a run is role chaining, one hour at most. devfleet scales STS
 * lifetimes (stsTimeScale): an hour lasts 10.8 s here, and each step outlasts its lease, so the run
 * lives on refreshed leases — each audited, each taken before the last expired — and devfleet's call
 * log shows every SSM call signed with a key that had not expired.
 */

const SCALE = 0.003; // 3600 s → 10.8 s; the planner's 900 s → 2.7 s; the worker's own 6 h → 65 s.
const STEP_SECONDS = 14;

const RUNBOOKS: Record<string, string> = {
  'four-hours.yaml': `
name: four-hours
version: 1
description: Two steps of up to two hours each; here each outlasts a lease.
roleArn: arn:aws:iam::123456789012:role/mechanic-runner
targets:
  tags: { Role: web }
steps:
  - name: first-half
    timeoutSeconds: 7200
    script: sleep ${STEP_SECONDS} && echo first half done
  - name: second-half
    timeoutSeconds: 7200
    script: sleep ${STEP_SECONDS} && echo second half done
`,
};

describe('a four-hour runbook on role-chained credentials', { timeout: 300_000 }, () => {
  let stack: DevStack;
  let home: string;
  let scratch: string;
  let id = '';
  let view: ExecutionView;
  let audit: AuditRecord[];
  let calls: CallLogEntry[];
  const cli = (...args: string[]) => runCli(args, stack.env);

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'mechanic-credentials-'));
    home = path.join(scratch, 'home');
    const root = {
      accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
      secretAccessKey: 'y'.repeat(40),
    };
    const fleet = { ...defaultFleetConfig(root), stsTimeScale: SCALE, callLog: true };
    await writeOwnerOnly(path.join(home, 'devfleet', 'root.json'), JSON.stringify(root));
    await writeOwnerOnly(path.join(home, 'devfleet', 'fleet.json'), JSON.stringify(fleet));
    const users = usersFile({ alice: ['operator'], bob: ['approver'], dave: ['auditor'] });
    const usersPath = path.join(scratch, 'users.json');
    await writeOwnerOnly(usersPath, JSON.stringify(users));
    const runbooksDir = path.join(scratch, 'runbooks');
    for (const [file, text] of Object.entries(RUNBOOKS)) await writeOwnerOnly(path.join(runbooksDir, file), text);
    stack = await startDevStack({
      MECHANIC_HOME: home,
      MECHANIC_USERS_FILE: usersPath,
      MECHANIC_RUNBOOKS_DIR: runbooksDir,
      // A session token left in the shell (another account's) must not reach any part.
      AWS_SESSION_TOKEN: 'a-token-of-some-real-account',
    });

    const launched = await cli('launch', 'four-hours', '--reason', 'long run', '--as', 'alice', '--json');
    expect(launched.stderr).toBe('');
    id = (JSON.parse(launched.stdout) as { executionId: string }).executionId;
    expect((await cli('approve', id, '--yes', '--as', 'bob')).code).toBe(0);
    const status = await cli('status', id, '--wait', '--as', 'alice', '--json');
    view = JSON.parse(status.stdout) as ExecutionView;
    audit = JSON.parse(
      (await cli('audit', 'list', '--execution', id, '--as', 'dave', '--json')).stdout,
    ) as AuditRecord[];
    calls = await readCallLog(path.join(home, 'devfleet'));
  }, 600_000);
  afterAll(async () => {
    const code = await stack?.stop();
    await rm(scratch, { recursive: true, force: true });
    expect(code).toBe(0);
  });

  test('the run completes, each step once on each instance', async () => {
    expect(view.status).toBe('completed');
    expect(view.steps.map((s) => [s.name, s.status])).toEqual([
      ['first-half', 'succeeded'],
      ['second-half', 'succeeded'],
    ]);
    // Its plan needs four hours and more: far beyond what one role-chained session may last.
    expect(audit[0]!.data['plan']).toMatchObject({ budgetSeconds: expect.any(Number) });
    expect((audit[0]!.data['plan'] as { budgetSeconds: number }).budgetSeconds).toBeGreaterThanOrEqual(4 * 3600);
    const ran = (await readCommandLog(path.join(home, 'devfleet'))).filter((e) =>
      e.comment.startsWith(`mechanic ${id} `),
    );
    expect(ran.map((e) => `${e.comment} ${e.instanceId}`).sort()).toEqual(
      [0, 1]
        .flatMap((step) =>
          [DEMO_INSTANCE_IDS['web-1'], DEMO_INSTANCE_IDS['web-2']].map((i) => `mechanic ${id} step ${step} ${i}`),
        )
        .sort(),
    );
  });

  test('it lived on refreshed leases: each audited in order, each taken before the one it replaced expired', () => {
    const issued = audit.filter((r) => r.type === 'credentials.issued');
    expect(issued[0]!.data['reason']).toBe('approved');
    const refreshed = issued.slice(1);
    expect(refreshed.length).toBeGreaterThanOrEqual(2);
    expect(refreshed.every((r) => r.data['reason'] === 'refreshed')).toBe(true);
    expect(new Set(issued.map((r) => r.data['accessKeyId'])).size).toBe(issued.length);
    expect(new Set(issued.map((r) => r.data['policyDigest'])).size).toBe(1);
    for (const [i, r] of refreshed.entries()) {
      const before = issued[i]!;
      expect(Date.parse(String(r.data['expiration']))).toBeGreaterThan(Date.parse(String(before.data['expiration'])));
      expect(Date.parse(r.at)).toBeLessThan(Date.parse(String(before.data['expiration'])));
    }
    // No secret in the record: key id, expiry, digest, role and reason only.
    for (const r of issued)
      expect(Object.keys(r.data).sort()).toEqual(['accessKeyId', 'expiration', 'policyDigest', 'reason', 'roleArn']);
  });

  test('devfleet saw every SSM call signed with an unexpired key, and no AssumeRole asked for more than an hour', () => {
    const ssm = calls.filter((c) => c.service === 'ssm');
    expect(ssm.length).toBeGreaterThan(10);
    const stale = ssm.filter(
      (c) => c.outcome === 'ExpiredTokenException' || Date.parse(c.at) >= Date.parse(c.keyExpiresAt ?? ''),
    );
    expect(stale).toEqual([]);
    const asked = calls.filter((c) => c.operation === 'AssumeRole');
    expect(asked.filter((c) => Number(c.durationSeconds ?? '3600') > 3600)).toEqual([]);
    const assumed = asked.filter((c) => c.outcome === 'ok');
    expect(assumed.length).toBeGreaterThanOrEqual(3);
    // The run's leases were asked for by the worker as a role session (ASIA keys, from the container endpoint).
    const runLeases = assumed.filter((c) => c.durationSeconds === '3600');
    expect(runLeases.length).toBeGreaterThanOrEqual(3);
    expect(runLeases.every((c) => c.accessKeyId?.startsWith('ASIA') === true && c.keyExpiresAt !== undefined)).toBe(
      true,
    );
    expect(calls.some((c) => c.service === 'container-credentials' && c.outcome === 'ok')).toBe(true);
  });

  test('the first step was followed on more than one key, and the later step was sent with a fresh one', () => {
    const sends = calls.filter((c) => c.operation === 'SendCommand' && c.outcome === 'ok');
    expect(sends).toHaveLength(2);
    expect(sends[1]!.accessKeyId).not.toBe(sends[0]!.accessKeyId);
    // Between the two sends the worker followed the first command: its polls moved to refreshed keys.
    const first = calls.indexOf(sends[0]!);
    const second = calls.indexOf(sends[1]!);
    const follow = calls.slice(first + 1, second).filter((c) => c.service === 'ssm' && c.outcome === 'ok');
    expect(new Set(follow.map((c) => c.accessKeyId)).size).toBeGreaterThanOrEqual(2);
  });

  test("the audit chain verifies, and the worker never held devfleet's long-term keys", async () => {
    const verified = await cli('audit', 'verify', '--as', 'dave', '--json');
    expect(verified.code).toBe(0);
    expect((JSON.parse(verified.stdout) as { ok: boolean }).ok).toBe(true);
    const root = JSON.parse(await readFile(path.join(home, 'devfleet', 'root.json'), 'utf8')) as {
      accessKeyId: string;
    };
    const byRoot = calls.filter((c) => c.accessKeyId === root.accessKeyId);
    // Only the API server's planner signs with them (describe-only sessions of 900 s).
    expect(byRoot.every((c) => c.operation === 'AssumeRole' && c.durationSeconds === '900')).toBe(true);
  });
});
