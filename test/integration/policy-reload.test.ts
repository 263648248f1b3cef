/**
 * An admin changes the policies of a running API server with SIGHUP. Policies that validate take
 * effect at once; a file that does not validate is refused and the policies in force stay (a typo
 * must neither open nor lock the door). Both are on the audit record.
 */
import { copyFile, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEFAULT_POLICY_FILE } from '../../src/authz/cedar-authorizer.ts';
import { runCli, startDevStack, type DevStack } from '../helpers/cli.ts';
import { partPid, waitFor } from '../helpers/parts.ts';

const FREEZE = `
@id("change-freeze")
@reason("changes are frozen until the release is out")
forbid (principal, action == Action::"launch", resource);
`;

describe('reloading the policies of a running server', () => {
  let stack: DevStack;
  let file: string;
  const plan = () =>
    runCli(['plan', 'deploy-web', '--param', 'release=v1.0.0', '--reason', 'reload test', '--as', 'alice'], stack.env);
  const reloads = async () => {
    const r = await runCli(['audit', 'list', '--json', '--limit', '10000', '--as', 'dave'], stack.env);
    const records = JSON.parse(r.stdout) as { type: string; actor: string; data: Record<string, unknown> }[];
    return records.filter((x) => x.type === 'policy.reloaded');
  };

  beforeAll(async () => {
    const home = await mkdtemp(path.join(tmpdir(), 'mechanic-policy-'));
    file = path.join(home, 'policies.cedar');
    await copyFile(DEFAULT_POLICY_FILE, file);
    stack = await startDevStack({ MECHANIC_POLICY_FILE: file });
  }, 240_000);
  afterAll(async () => {
    await stack?.stop();
  });

  test('policies that validate take effect at SIGHUP, and the reload is audited', async () => {
    expect((await plan()).code).toBe(0);
    const shipped = await readFile(file, 'utf8');
    await writeFile(file, shipped + FREEZE);
    process.kill(partPid(stack, 'server'), 'SIGHUP');
    const refused = await waitFor('the freeze to apply', async () => {
      const r = await plan();
      return r.code !== 0 ? r : undefined;
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^mechanic: .*changes are frozen until the release is out.*\n$/);
    expect(await reloads()).toMatchObject([{ actor: 'system', data: { file, applied: true } }]);
  });

  test('a file that does not validate is refused, the policies in force stay, and the refusal is audited', async () => {
    await writeFile(file, 'permit (principal, action == Action::"launhc", resource);\n');
    process.kill(partPid(stack, 'server'), 'SIGHUP');
    const [, refusedReload] = await waitFor('the refused reload on the record', async () => {
      const r = await reloads();
      return r.length === 2 ? r : undefined;
    });
    expect(refusedReload).toMatchObject({ data: { applied: false } });
    expect(String(refusedReload!.data['reason'])).toMatch(/do not validate/);
    // Still frozen: the bad file neither replaced the freeze nor opened anything.
    const r = await plan();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/changes are frozen/);
  });
});
