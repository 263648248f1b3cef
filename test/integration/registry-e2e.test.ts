/**
 * The registry end to end on the embedded stack (`mechanic dev --no-tui`, real Temporal, devfleet,
 * the SQLite store, real HTTP, the real CLI): an author publishes a new version from a git
 * repository, is refused reviewing it (and the refusal is audited), another author approves it, an
 * operator launches it, and the run records the digest that was reviewed.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEMO_USERS } from '../../src/authz/users.ts';
import type { ExecutionView } from '../../src/core/execution.ts';
import type { AuditRecord } from '../../src/core/audit.ts';
import { runCli, startDevStack, type DevStack } from '../helpers/cli.ts';

const DEPLOY_WEB = fileURLToPath(new URL('../../runbooks/deploy-web.yaml', import.meta.url));

interface Version {
  name: string;
  version: number;
  digest: string;
  status: string;
  author: string;
  reviews: { reviewer: string; decision: string; digest: string }[];
  source: { kind: string; path: string; commit?: string; clean?: boolean };
  lastRunAt?: string;
}

describe('a new runbook version goes from an author, through review, to a run that pins its digest', () => {
  let stack: DevStack;
  let repo = '';
  let commit = '';
  const cli = (...args: string[]) => runCli(args, stack.env);
  const git = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=Frank', '-c', 'user.email=frank@example.test', ...args], {
      cwd: repo,
      encoding: 'utf8',
    }).trim();
  const versions = async (name: string): Promise<Version[]> => {
    const r = await cli('runbook', 'list', name, '--as', 'dave', '--json');
    expect(r.stderr).toBe('');
    return (JSON.parse(r.stdout) as { versions: Version[] }).versions;
  };
  const audit = async (): Promise<AuditRecord[]> =>
    JSON.parse((await cli('audit', 'list', '--as', 'dave', '--json')).stdout) as AuditRecord[];

  beforeAll(async () => {
    // The demo users and Frank, a second author: the demo has only one (carol).
    const home = await mkdtemp(path.join(tmpdir(), 'mechanic-test-'));
    const users = [
      ...DEMO_USERS,
      { id: 'frank', displayName: 'Frank (author)', roles: ['author'], groups: ['platform'] },
    ];
    await writeFile(
      path.join(home, 'users.json'),
      JSON.stringify({ users: users.map((u) => ({ ...u, token: `mk_${randomBytes(24).toString('base64url')}` })) }),
      { mode: 0o600 },
    );
    stack = await startDevStack({ MECHANIC_HOME: home });

    // A team's runbooks repository, with version 2 of deploy-web committed.
    repo = await mkdtemp(path.join(tmpdir(), 'mechanic-runbooks-repo-'));
    await mkdir(path.join(repo, 'runbooks'));
    const v1 = await readFile(DEPLOY_WEB, 'utf8');
    const v2 = v1
      .replace(/^version: 1$/m, 'version: 2')
      .replace(/^description: .*$/m, 'description: Install a release of the web service (reviewed version 2).');
    expect(v2).not.toBe(v1);
    await writeFile(path.join(repo, 'runbooks', 'deploy-web.yaml'), v2);
    git('init', '-q');
    git('add', '.');
    git('commit', '-q', '-m', 'deploy-web v2');
    commit = git('rev-parse', 'HEAD');
  }, 300_000);
  afterAll(async () => {
    const code = await stack?.stop();
    if (repo) await rm(repo, { recursive: true, force: true });
    expect(code).toBe(0);
  });

  let digest = '';

  test('the embedded stack seeded the examples, published by carol and approved by bob', async () => {
    expect(await versions('deploy-web')).toMatchObject([
      {
        name: 'deploy-web',
        version: 1,
        status: 'approved',
        author: 'carol',
        reviews: [{ reviewer: 'bob', decision: 'approve' }],
      },
    ]);
  });

  test('frank publishes version 2 from the repository: its commit and clean tree are recorded, and it waits for review', async () => {
    const r = await cli('runbook', 'publish', path.join(repo, 'runbooks'), '--as', 'frank', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const { published } = JSON.parse(r.stdout) as {
      published: { name: string; version: number; digest: string; outcome: string }[];
    };
    expect(published).toMatchObject([{ name: 'deploy-web', version: 2, outcome: 'published' }]);
    digest = published[0]!.digest;
    expect((await versions('deploy-web'))[0]).toMatchObject({
      version: 2,
      status: 'pending',
      author: 'frank',
      digest,
      source: { kind: 'git', path: 'runbooks/deploy-web.yaml', commit, clean: true },
    });
    // Publishing the same commit again changes nothing.
    const again = await cli('runbook', 'publish', path.join(repo, 'runbooks'), '--as', 'frank');
    expect(again.stdout).toMatch(/^unchanged deploy-web@2 /);
  });

  test('an unreviewed version cannot be launched', async () => {
    const r = await cli(
      'launch',
      'deploy-web',
      '--version',
      '2',
      '--param',
      'release=v2.0.1',
      '--reason',
      'too early',
      '--as',
      'alice',
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'mechanic: deploy-web@2 has not been reviewed yet; an author other than frank must approve it ("mechanic runbook review deploy-web@2 --approve --comment …") before it can be launched\n',
    );
  });

  test('frank may not review his own version, and the refusal is on the record', async () => {
    const r = await cli(
      'runbook',
      'review',
      'deploy-web@2',
      '--approve',
      '--comment',
      'looks right to me',
      '--as',
      'frank',
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('mechanic: frank owns deploy-web and may not review it; another author must\n');
    const denied = (await audit()).filter((e) => e.type === 'access.denied' && e.actor === 'frank');
    expect(denied).toHaveLength(1);
    expect(denied[0]!.data).toMatchObject({ action: 'review', policies: ['no-self-review'] });
    expect((await versions('deploy-web'))[0]?.status).toBe('pending');
  });

  test('a review naming other content than what is published is refused', async () => {
    const r = await cli(
      'runbook',
      'review',
      'deploy-web@2',
      '--approve',
      '--comment',
      'read it',
      '--digest',
      'a'.repeat(12),
      '--as',
      'carol',
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `mechanic: deploy-web@2 as published has digest ${digest.slice(0, 12)}, not aaaaaaaaaaaa; read it again ("mechanic runbook diff deploy-web <v> 2") and review what is published\n`,
    );
  });

  test('carol reads the diff and approves exactly that digest', async () => {
    const diff = await cli('runbook', 'diff', 'deploy-web', '1', '2', '--as', 'carol');
    expect(diff.code).toBe(0);
    expect(diff.stdout.split('\n').slice(0, 2)).toEqual([
      `--- deploy-web@1  approved  by carol  digest ${(await versions('deploy-web'))[1]!.digest.slice(0, 12)}`,
      `+++ deploy-web@2  pending  by frank  digest ${digest.slice(0, 12)}`,
    ]);
    const changed = diff.stdout.split('\n').filter((l) => /^[-+]/.test(l) && !/^(---|\+\+\+) /.test(l));
    expect(changed.sort()).toEqual([
      '+description: Install a release of the web service (reviewed version 2).',
      '+version: 2',
      expect.stringMatching(/^-description: /) as unknown as string,
      '-version: 1',
    ]);
    expect(diff.stdout).toContain('+description: Install a release of the web service (reviewed version 2).');
    const r = await cli(
      'runbook',
      'review',
      'deploy-web@2',
      '--approve',
      '--comment',
      'only the description changed',
      '--digest',
      digest.slice(0, 16),
      '--as',
      'carol',
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`approved deploy-web@2 (digest ${digest.slice(0, 12)}) — it is now approved\n`);
    const reviewed = (await audit()).filter((e) => e.type === 'runbook.reviewed' && e.actor === 'carol');
    expect(reviewed.map((e) => e.data)).toEqual([
      { name: 'deploy-web', version: 2, digest, decision: 'approve', comment: 'only the description changed' },
    ]);
  });

  let executionId = '';

  test('alice launches the newest approved version; bob approves the run; it completes and records the reviewed digest', async () => {
    const launched = await cli(
      'launch',
      'deploy-web',
      '--param',
      'release=v2.0.1',
      '--reason',
      'ship v2',
      '--as',
      'alice',
      '--json',
    );
    expect(launched.stderr).toBe('');
    const out = JSON.parse(launched.stdout) as {
      executionId: string;
      plan: { runbook: { version: number; digest: string } };
    };
    executionId = out.executionId;
    expect(out.plan.runbook).toMatchObject({ version: 2, digest });
    expect((await cli('approve', executionId, '--yes', '--as', 'bob')).code).toBe(0);
    const status = await cli('status', executionId, '--wait', '--as', 'alice', '--json');
    const view = JSON.parse(status.stdout) as ExecutionView;
    expect(view.status).toBe('completed');
    expect(view.plan.runbook).toMatchObject({ name: 'deploy-web', version: 2, digest });
    const requested = (await audit()).find((e) => e.type === 'execution.requested' && e.executionId === executionId);
    expect(requested?.data['runbook']).toMatchObject({ version: 2, digest });
    expect((await versions('deploy-web'))[0]?.lastRunAt).toEqual(expect.any(String));
  });

  test('once deprecated, the version is no longer launched', async () => {
    const r = await cli('runbook', 'deprecate', 'deploy-web@2', '--reason', 'superseded by v3', '--as', 'frank');
    expect(r.stdout).toBe('deprecated deploy-web@2: it can no longer be launched\n');
    const launch = await cli(
      'launch',
      'deploy-web',
      '--version',
      '2',
      '--param',
      'release=v2.0.1',
      '--reason',
      'again',
      '--as',
      'alice',
    );
    expect(launch.code).toBe(1);
    expect(launch.stderr).toBe(
      'mechanic: deploy-web@2 is deprecated (superseded by v3) and cannot be launched; launch a newer approved version\n',
    );
    const types = (await audit()).filter(
      (e) => e.type.startsWith('runbook.') && e.actor !== 'bob' && e.actor !== 'carol',
    );
    expect(types.map((e) => `${e.type} ${e.actor}`)).toEqual(['runbook.published frank', 'runbook.deprecated frank']);
  });

  test('a malformed file in a publish is named in one sentence, and nothing of that publish is registered', async () => {
    await writeFile(
      path.join(repo, 'runbooks', 'a-new.yaml'),
      (await readFile(DEPLOY_WEB, 'utf8')).replace(/^name: .*$/m, 'name: brand-new'),
    );
    await writeFile(path.join(repo, 'runbooks', 'broken.yaml'), 'name: [\n');
    const r = await cli('runbook', 'publish', path.join(repo, 'runbooks'), '--as', 'frank');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'mechanic: runbooks/broken.yaml is not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ] at line 2, column 1\n',
    );
    expect(await versions('brand-new')).toEqual([]);
  });
});
