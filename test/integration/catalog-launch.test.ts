/**
 * The catalog's launch decision is the launch's own answer (issue 6, catalog): on the embedded
 * stack (`mechanic dev --no-tui`: real Temporal, devfleet, the store, real HTTP) with Cedar
 * policies that refuse one runbook from the TUI only, each runbook the API lists says whether the
 * caller may launch it, and launching it then answers the same — a refusal with the same sentence,
 * or a run. Catalog reads stay out of the audit chain; the refused launch is on it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createApiClient, type ApiClient, type Channel } from '../../src/api/client.ts';
import type { LaunchDecision } from '../../src/api/schemas.ts';
import { DEFAULT_POLICY_FILE } from '../../src/authz/cedar-authorizer.ts';
import { DEMO_USERS } from '../../src/authz/users.ts';
import { runCli, startDevStack, type DevStack } from '../helpers/cli.ts';

/** A team rule: medium-risk runbooks are launched from the CLI only, where the whole plan is printed. */
const TUI_RULE = `
@id("medium-risk-from-cli")
@reason("{resource} is medium risk and is launched from the CLI only, where its whole plan is printed; use mechanic launch")
forbid (principal, action == Action::"launch", resource is Runbook)
when { resource.risk == "medium" && context.channel != "cli" };
`;

describe('the catalog says who may launch what, as the launch itself does', () => {
  let stack: DevStack;
  const tokens = new Map<string, string>();
  const as = (id: string, channel: Channel): ApiClient =>
    createApiClient({ url: stack.info.apiUrl, token: tokens.get(id)!, channel });
  const decisions = async (api: ApiClient): Promise<Map<string, LaunchDecision | undefined>> =>
    new Map((await api.call('listRunbooks')).runbooks.map((r) => [r.name, r.launch]));
  const auditCount = async () => (await as('dave', 'cli').call('listAudit', { query: { limit: 10_000 } })).records;

  beforeAll(async () => {
    const home = await mkdtemp(path.join(tmpdir(), 'mechanic-test-'));
    const users = DEMO_USERS.map((u) => {
      const token = `mk_${randomBytes(24).toString('base64url')}`;
      tokens.set(u.id, token);
      return { ...u, token };
    });
    await writeFile(path.join(home, 'users.json'), JSON.stringify({ users }), { mode: 0o600 });
    const policies = path.join(home, 'policies.cedar');
    await writeFile(policies, `${await readFile(DEFAULT_POLICY_FILE, 'utf8')}\n${TUI_RULE}`, { mode: 0o600 });
    stack = await startDevStack({ MECHANIC_HOME: home, MECHANIC_POLICY_FILE: policies });
  }, 300_000);
  afterAll(async () => {
    await stack?.stop();
  });

  test('an allowed and a refused runbook: the catalog and the launch agree, reason and all', async () => {
    const tui = as('alice', 'tui');
    const listed = await decisions(tui);
    const refusal =
      'deploy-web is medium risk and is launched from the CLI only, where its whole plan is printed; use mechanic launch';
    expect(listed.get('rotate-logs')).toEqual({ allowed: true });
    expect(listed.get('deploy-web')).toEqual({ allowed: false, reason: refusal });
    // getRunbook says the same as the list.
    expect((await tui.call('getRunbook', { params: { name: 'deploy-web' } })).runbook.launch).toEqual({
      allowed: false,
      reason: refusal,
    });

    await expect(
      tui.call('launch', {
        body: { runbook: 'deploy-web', params: { release: 'v1.2.3' }, reason: 'catalog said no' },
      }),
    ).rejects.toMatchObject({ code: 'FORBIDDEN', message: refusal });
    const launched = await tui.call('launch', {
      body: { runbook: 'rotate-logs', params: { keep: 3 }, reason: 'catalog said yes' },
    });
    expect(launched.executionId).toMatch(/^mx-/);

    // The rule is about the channel: from the CLI, the catalog and a dry run both say yes.
    const cli = as('alice', 'cli');
    expect((await decisions(cli)).get('deploy-web')).toEqual({ allowed: true });
    const planned = await cli.call('plan', {
      body: { runbook: 'deploy-web', params: { release: 'v1.2.3' }, reason: 'from the CLI' },
    });
    expect(planned.plan.runbook.name).toBe('deploy-web');
  });

  test('someone who may launch nothing sees every runbook refused with the launch’s own sentence', async () => {
    const bob = as('bob', 'tui');
    const listed = await decisions(bob);
    expect(listed.size).toBeGreaterThanOrEqual(8);
    const reasons = new Set([...listed.values()].map((d) => (d && !d.allowed ? d.reason : 'allowed')));
    expect(reasons.size).toBe(1);
    const [reason] = reasons;
    expect(reason).toMatch(/^bob .* may not launch runbooks; that needs the operator role$/);
    await expect(
      bob.call('launch', { body: { runbook: 'rotate-logs', params: {}, reason: 'not mine to launch' } }),
    ).rejects.toMatchObject({ code: 'FORBIDDEN', message: reason });
  });

  test('mechanic runbooks names what the caller may not launch, and why', async () => {
    const bob = await runCli(['runbooks', '--as', 'bob'], stack.env);
    expect(bob.code).toBe(0);
    expect(bob.stdout).toMatch(/^you may not launch any of these:$/m);
    expect(bob.stdout).toMatch(/^⊘ rotate-logs {2}bob .* may not launch runbooks; that needs the operator role$/m);
    // From the CLI, the team rule does not apply: alice may launch every one.
    const alice = await runCli(['runbooks', '--as', 'alice'], stack.env);
    expect(alice.code).toBe(0);
    expect(alice.stdout).toContain('deploy-web v');
    expect(alice.stdout).not.toContain('you may not launch');
  });

  test('reading the catalog is not on the audit record; a refused launch is', async () => {
    // Dave, the auditor, may launch nothing and has not tried yet (a repeated refusal is folded
    // into a count written later, so a first one is what shows at once).
    const dave = as('dave', 'tui');
    const before = (await auditCount()).length;
    const listed = await decisions(dave);
    await decisions(as('alice', 'tui'));
    expect([...listed.values()].every((d) => d?.allowed === false)).toBe(true);
    expect((await auditCount()).length).toBe(before);
    await expect(
      dave.call('launch', { body: { runbook: 'rotate-logs', params: {}, reason: 'on the record' } }),
    ).rejects.toMatchObject({ code: 'FORBIDDEN' });
    const after = (await auditCount()).slice(before);
    expect(after.map((r) => [r.type, r.actor])).toEqual([['access.denied', 'dave']]);
  });
});
