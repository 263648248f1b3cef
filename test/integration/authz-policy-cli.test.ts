import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEFAULT_POLICY_FILE } from '../../src/authz/cedar-authorizer.ts';
import { runCli } from '../helpers/cli.ts';

const CASES = 'src/authz/cedar/cases.yaml';

describe('mechanic policy', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mechanic-policy-'));
    env = { ...process.env, MECHANIC_HOME: dir };
    delete env['MECHANIC_POLICY_FILE'];
    await writeFile(
      path.join(dir, 'bad.cedar'),
      '@id("typo")\npermit (principal in Group::"operator", action == Action::"launch", resource)\nwhen { context.chanel == "cli" };\n',
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('validate accepts the shipped policies', async () => {
    const r = await runCli(['policy', 'validate'], env);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/policies\.cedar: valid against mechanic's schema\n$/);
  });

  test('test passes the shipped cases', async () => {
    const r = await runCli(['policy', 'test', CASES], env);
    expect(r.stdout).toMatch(/^(\d+) of \1 cases pass against /m);
    expect(r.code).toBe(0);
  });

  test('a policy broken on purpose fails the case that covers it, by name', async () => {
    const broken = path.join(dir, 'broken.cedar');
    // Admins lose the right to cancel other people's runs.
    const text = (await readFile(DEFAULT_POLICY_FILE, 'utf8')).replace('     Action::"cancel",\n', '');
    await writeFile(broken, text);
    const r = await runCli(['policy', 'test', CASES, '--policies', broken], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('FAIL  an admin cancels any execution: expected allow, got deny');
    expect(r.stdout).toMatch(/^\d+ of \d+ cases pass against /m);
  });

  test('validate names the policy and the problem of a file that does not validate', async () => {
    const bad = path.join(dir, 'bad.cedar');
    const r = await runCli(['policy', 'validate', bad], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/bad\.cedar, policy "typo": .*chanel/);
  });

  test('a server refuses to start with a policy file that does not validate', async () => {
    const bad = path.join(dir, 'bad.cedar');
    const r = await runCli(['server'], { ...env, MECHANIC_POLICY_FILE: bad });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^mechanic: the policies do not validate against mechanic's schema: .*policy "typo".*\n$/);
  });

  test('usage errors are one sentence', async () => {
    const r = await runCli(['policy', 'test'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^mechanic: name the case file; usage: mechanic policy /);
  });
});
