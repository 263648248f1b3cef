import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { credentialsFile, readSession } from '../../src/authz/credentials.ts';
import { approveDeviceCode } from '../../src/authz/dev-idp.ts';
import type { ExecutionView } from '../../src/core/execution.ts';
import { BIN, runCli, startDevStack, type DevStack } from '../helpers/cli.ts';

/**
 * The spine with OIDC from the embedded stack's own provider: `mechanic dev` runs a real OpenID
 * provider (oidc-provider) as one of its parts, and its API server verifies that provider's ID
 * tokens. Each person signs in on "their own machine" (their own config folder) with `mechanic
 * login` through the device flow — the test plays their browser — and then uses the CLI with the
 * sign-in it stored, neither --as nor MECHANIC_TOKEN.
 */
describe('a runbook runs end to end with OIDC sign-in at the embedded provider', () => {
  let stack: DevStack;
  let issuer: string;
  let password: string;
  let machines: string;
  const tokens: Record<string, string> = {};
  const machine = (user: string) => ({ ...stack.env, XDG_CONFIG_HOME: path.join(machines, user) });
  const as = (user: string, ...args: string[]) => runCli(args, machine(user));

  /** `mechanic login` on `user`'s machine; the device code is approved in "the browser" by the test. */
  async function login(user: string): Promise<void> {
    const env = machine(user);
    const child = spawn(process.execPath, [BIN, 'login'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /or open (\S+)/.exec(stderr);
        if (m) resolve(m[1]!);
      });
      void exited.then(() => reject(new Error(`mechanic login exited before showing a code: ${stderr}`)));
    });
    expect(url.startsWith(`${issuer}/device?user_code=`)).toBe(true);
    await approveDeviceCode(url, user, password);
    expect(await exited).toBe(0);
    expect(stdout).toMatch(new RegExp(`^signed in to ${issuer} as ${user} `));
    tokens[user] = (await readSession(credentialsFile(env), issuer))!.idToken;
  }

  beforeAll(async () => {
    machines = await mkdtemp(path.join(tmpdir(), 'mechanic-machines-'));
    stack = await startDevStack();
    issuer = stack.info.idpIssuer!;
    password = (await readFile(path.join(stack.home, 'idp', 'password'), 'utf8')).trim();
  });
  afterAll(async () => {
    const code = await stack?.stop();
    await rm(machines, { recursive: true, force: true });
    expect(code).toBe(0);
  });

  test('alice, bob and dave sign in with the device flow', async () => {
    for (const user of ['alice', 'bob', 'dave']) await login(user);
  });

  let executionId = '';

  test("alice launches with her token; the server knows her from the provider's groups", async () => {
    const r = await as(
      'alice',
      'launch',
      'deploy-web',
      '--param',
      'release=v2.0.2',
      '--reason',
      'oidc spine',
      '--json',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    executionId = (JSON.parse(r.stdout) as { executionId: string }).executionId;
  });

  test('dave, an auditor, may not approve: Cedar says so', async () => {
    const r = await as('dave', 'approve', executionId, '--yes');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'mechanic: dave (auditor) may not approve or reject executions; that needs the approver role\n',
    );
  });

  test('alice may not approve her own run', async () => {
    const r = await as('alice', 'approve', executionId, '--yes');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^mechanic: alice requested this execution and cannot approve or reject it\n$/);
  });

  test('a token altered to claim more is refused with one sentence', async () => {
    const [h, p, s] = tokens['dave']!.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, groups: ['approver'] })).toString('base64url')}.${s}`;
    const r = await runCli(['approve', executionId, '--yes'], { ...stack.env, MECHANIC_TOKEN: forged });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      "mechanic: the token's signature does not verify; it was altered or signed by someone else\n",
    );
  });

  test('bob approves with his token and the run completes', async () => {
    const approve = await as('bob', 'approve', executionId, '--yes');
    expect(approve.stderr).toBe('');
    expect(approve.stdout).toContain(`approved by bob — ${executionId} is running`);
    const status = await as('alice', 'status', executionId, '--wait', '--json');
    expect(status.code).toBe(0);
    expect((JSON.parse(status.stdout) as ExecutionView).status).toBe('completed');
  });
});
