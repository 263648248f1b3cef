/**
 * The audit store against real databases: a SQLite file in a temp dir, and a throwaway PostgreSQL
 * cluster (test/helpers/postgres.ts). The same suite runs on both.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { canonicalJson, chainHash, verifyChain, type NewAuditEvent } from '../../src/core/audit.ts';
import { loadAuditSigning } from '../../src/store/checkpoints.ts';
import { AuditEventConflictError, openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { openDatabase, type StoreLocation } from '../../src/store/db.ts';
import { postgresBackend, sqliteBackend, storeBackends, type StoreBackend } from '../helpers/postgres.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const storeModuleUrl = new URL('../../src/store/audit-log.ts', import.meta.url).href;

interface Backend extends StoreBackend {
  /** Runs SQL straight against the database, bypassing the store, as an attacker with DB access would. */
  raw(loc: StoreLocation, statement: string): Promise<void>;
  /** Statement that switches off the append-only guard for audit_events. */
  disableGuard: string;
  /** Statements that drop every append-only guard, of the log and of its checkpoints, as an owner could. */
  dropGuards: string;
}

const backends: Backend[] = storeBackends(
  'audit store',
  {
    // A nested folder that does not exist yet: openDatabase must create it.
    ...sqliteBackend('mechanic-store-', (dir, n) => join(dir, `case-${n}`, 'state', 'audit.db')),
    async raw(loc, statement) {
      if (loc.kind !== 'sqlite') throw new Error('not sqlite');
      const db = new BetterSqlite3(loc.file);
      try {
        db.exec(statement);
      } finally {
        db.close();
      }
    },
    disableGuard: 'drop trigger audit_events_no_update',
    dropGuards: [
      'drop trigger audit_events_no_update',
      'drop trigger audit_events_no_delete',
      'drop trigger audit_checkpoints_no_update',
      'drop trigger audit_checkpoints_no_delete',
    ].join(';\n'),
  },
  () => ({
    ...postgresBackend('case'),
    async raw(loc, statement) {
      if (loc.kind !== 'postgres') throw new Error('not postgres');
      const client = new pg.Client({ connectionString: loc.url });
      await client.connect();
      try {
        await client.query(statement);
      } finally {
        await client.end();
      }
    },
    disableGuard: 'alter table audit_events disable trigger audit_events_append_only',
    dropGuards: [
      'drop trigger audit_events_append_only on audit_events',
      'drop trigger audit_checkpoints_append_only on audit_checkpoints',
    ].join(';\n'),
  }),
);

const T0 = Date.parse('2025-03-01T09:00:00.000Z');
const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();

/** A plan as the request carries it; only its shape matters to the store. */
function planFor(executionId: string, requester: string, createdAt: string) {
  return {
    executionId,
    runbook: { name: 'rotate-logs', version: 2, digest: 'sha256:runbook', description: 'Rotate the logs.' },
    requester,
    reason: 'disk at 91%',
    params: { keepDays: 7, pattern: '*.log' },
    targets: [{ instanceId: 'i-01' }, { instanceId: 'i-02' }],
    roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
    region: 'eu-west-1',
    steps: [{ name: 'rotate', script: 'logrotate -f /etc/logrotate.conf', timeoutSeconds: 60 }],
    onFailure: [],
    approval: { required: 1, expiresAfterSeconds: 3600 },
    budgetSeconds: 900,
    sessionPolicy: '{}',
    createdAt,
  };
}

function requested(executionId: string, minutes: number, requester = 'alice'): NewAuditEvent {
  const plan = planFor(executionId, requester, at(minutes));
  return {
    eventId: `${executionId}:requested`,
    executionId,
    type: 'execution.requested',
    actor: requester,
    at: at(minutes),
    data: {
      runbook: plan.runbook,
      params: plan.params,
      targets: ['i-01', 'i-02'],
      planDigest: `plan-${executionId}`,
      reason: 'disk at 91%',
      requester,
      plan,
    },
  };
}

function event(executionId: string, type: NewAuditEvent['type'], minutes: number, extra: Partial<NewAuditEvent> = {}) {
  return {
    eventId: `${executionId}:${type}:${minutes}`,
    executionId,
    type,
    actor: 'mechanic',
    at: at(minutes),
    data: {},
    ...extra,
  } satisfies NewAuditEvent;
}

const rotate = { step: 'rotate', index: 0, phase: 'main', commandId: 'cmd-1' };

/** One instance's result of the rotate step, as the SSM activity records it. */
function instanceResult(instanceId: string, stdout: string, extra: Record<string, unknown> = {}) {
  return {
    ...rotate,
    instanceId,
    status: 'Success',
    statusDetails: 'Success',
    responseCode: 0,
    stdout,
    stderr: '',
    outputSha256: 'a'.repeat(64),
    ...extra,
  };
}

/** A whole run, seven records; it ends with `end` (completed unless told otherwise). */
function story(
  executionId: string,
  start: number,
  end: NewAuditEvent['type'] = 'execution.completed',
): NewAuditEvent[] {
  return [
    requested(executionId, start),
    event(executionId, 'approval.granted', start + 1, { actor: 'bob', data: { planDigest: `plan-${executionId}` } }),
    event(executionId, 'credentials.issued', start + 2, {
      data: {
        accessKeyId: 'ASIAEXAMPLE',
        expiration: at(start + 62),
        policyDigest: 'd'.repeat(64),
        roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
        reason: 'approved',
      },
    }),
    event(executionId, 'execution.running', start + 2, { data: { approvedBy: ['bob'] } }),
    event(executionId, 'step.started', start + 3, { data: rotate }),
    event(executionId, 'step.instance', start + 4, { data: instanceResult('i-01', 'rotated 3 files\n') }),
    event(executionId, end, start + 5, { data: { reason: 'all steps succeeded' } }),
  ];
}

/** Spawns a separate Node process (through tsx) that appends `count` events for its own execution. */
function spawnAppender(loc: StoreLocation, name: string, count: number) {
  const source = `
    const { openAuditStore } = await import(process.env.STORE_MODULE);
    const name = process.env.CHILD_NAME;
    const count = Number(process.env.CHILD_COUNT);
    const PLAN = JSON.parse(process.env.CHILD_PLAN);
    const store = await openAuditStore(JSON.parse(process.env.STORE_LOCATION));
    process.stdout.write('ready\\n');
    await new Promise((resolve) => process.stdin.once('data', resolve));
    const executionId = 'exec-' + name;
    for (let i = 0; i < count; i++) {
      const at = new Date(Date.UTC(2025, 2, 1, 12, 0, 0, i)).toISOString();
      await store.append(i === 0
        ? { eventId: executionId + ':requested', executionId, type: 'execution.requested', actor: name, at,
            data: { runbook: PLAN.runbook, params: {}, targets: ['i-01'], planDigest: 'p-' + name, reason: 'load',
                    requester: name, plan: { ...PLAN, executionId, requester: name } } }
        : { eventId: executionId + ':step.instance:' + i, executionId, type: 'step.instance', actor: 'mechanic', at,
            data: { step: 'noop', index: 0, phase: 'main', commandId: 'cmd-' + i, instanceId: 'i-' + i,
                    status: 'Success', statusDetails: name, responseCode: 0, stdout: 'x'.repeat(i % 50), stderr: '',
                    outputSha256: 'a'.repeat(64) } });
      // Real writers append between pieces of other work, not in a tight loop; a short pause lets
      // the two processes interleave instead of one finishing before the other gets the lock.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 2));
    }
    await store.close();
    process.stdout.write('done\\n');
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', source], {
    cwd: repoRoot,
    env: {
      ...process.env,
      STORE_MODULE: storeModuleUrl,
      STORE_LOCATION: JSON.stringify(loc),
      CHILD_NAME: name,
      CHILD_COUNT: String(count),
      CHILD_PLAN: JSON.stringify({
        ...planFor('exec-x', 'x', at(0)),
        runbook: { name: 'noop', version: 1, digest: 'd', description: 'nothing' },
      }),
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    const check = () => {
      if (stdout.includes('ready\n')) resolve();
    };
    child.stdout.on('data', check);
    child.on('close', (code) => reject(new Error(`appender ${name} exited (${code}) before ready:\n${stderr}`)));
  });
  const done = new Promise<void>((resolve, reject) => {
    child.on('close', (code) => {
      if (code === 0 && stdout.includes('done\n')) resolve();
      else reject(new Error(`appender ${name} exited with ${code}:\n${stderr}`));
    });
  });
  return { ready, done, go: () => child.stdin.end('go\n') };
}

describe.each(backends)('audit store on $name', (backend) => {
  const open: AuditStore[] = [];
  const keyDirs: string[] = [];
  async function openStore(loc: StoreLocation): Promise<AuditStore> {
    const store = await openAuditStore(loc);
    open.push(store);
    return store;
  }

  beforeAll(() => backend.setup());
  afterAll(async () => {
    await Promise.all(open.map((s) => s.close()));
    await backend.teardown();
    for (const dir of keyDirs) rmSync(dir, { recursive: true, force: true });
  });

  test('appends, lists in seq order and verifies', async () => {
    const store = await openStore(await backend.fresh());
    const events = [...story('exec-a', 0), ...story('exec-b', 10)];
    const records = [];
    for (const e of events) records.push(await store.append(e));

    expect(records.map((r) => r.seq)).toEqual(events.map((_, i) => i + 1));
    expect(records[0]!.prevHash).toBe('0'.repeat(64));
    for (let i = 1; i < records.length; i++) expect(records[i]!.prevHash).toBe(records[i - 1]!.hash);

    const listed = await store.list();
    expect(listed).toEqual(records);
    expect(listed[5]).toMatchObject({ type: 'step.instance', data: { stdout: 'rotated 3 files\n', responseCode: 0 } });
    expect((await store.list({ executionId: 'exec-b' })).map((r) => r.seq)).toEqual([8, 9, 10, 11, 12, 13, 14]);
    expect((await store.list({ afterSeq: 12 })).map((r) => r.seq)).toEqual([13, 14]);
    expect((await store.list({ afterSeq: 2, limit: 3 })).map((r) => r.seq)).toEqual([3, 4, 5]);

    expect(await store.verify()).toMatchObject({ ok: true, count: 14, executions: 2, checkpoints: null });
    await expect(store.list({ limit: 0 })).rejects.toMatchObject({ code: 'USAGE' });
    await expect(store.list({ afterSeq: Number.NaN })).rejects.toMatchObject({ code: 'USAGE' });
  });

  test('projects executions into the index in the same transaction', async () => {
    const store = await openStore(await backend.fresh());
    for (const e of story('exec-a', 0)) await store.append(e);
    for (const e of story('exec-b', 10).slice(0, 4)) await store.append(e);
    await store.append(requested('exec-c', 20, 'carol'));
    await store.append(event('exec-c', 'execution.rejected', 21, { actor: 'bob', data: { reason: 'not today' } }));

    expect(await store.getExecution('exec-a')).toEqual({
      id: 'exec-a',
      runbookName: 'rotate-logs',
      runbookVersion: 2,
      operator: 'alice',
      reason: 'disk at 91%',
      status: 'completed',
      planDigest: 'plan-exec-a',
      params: { keepDays: 7, pattern: '*.log' },
      targets: ['i-01', 'i-02'],
      approvals: ['bob'],
      createdAt: at(0),
      updatedAt: at(5),
      finishedAt: at(5),
    });
    expect(await store.getExecution('exec-b')).toMatchObject({ status: 'running', finishedAt: null });
    expect(await store.getExecution('nope')).toBeUndefined();

    expect((await store.listExecutions()).map((e) => e.id)).toEqual(['exec-c', 'exec-b', 'exec-a']);
    expect((await store.listExecutions({ status: 'running' })).map((e) => e.id)).toEqual(['exec-b']);
    expect((await store.listExecutions({ before: at(20) })).map((e) => e.id)).toEqual(['exec-b', 'exec-a']);
    expect((await store.listExecutions({ limit: 1 })).map((e) => e.id)).toEqual(['exec-c']);
    await expect(store.listExecutions({ before: 'last tuesday' })).rejects.toMatchObject({ code: 'USAGE' });
  });

  test('is idempotent on eventId', async () => {
    const store = await openStore(await backend.fresh());
    const first = await store.append(requested('exec-a', 0));
    const again = await store.append(requested('exec-a', 0));
    expect(again).toEqual(first);
    // Key order and undefined properties do not make an event different.
    const reordered = requested('exec-a', 0);
    const same = await store.append({
      data: { ...reordered.data, extra: undefined },
      at: reordered.at,
      actor: reordered.actor,
      type: reordered.type,
      executionId: reordered.executionId,
      eventId: reordered.eventId,
    });
    expect(same.seq).toBe(1);
    expect(await store.list()).toHaveLength(1);
    expect(await store.verify()).toMatchObject({ ok: true, count: 1 });
  });

  test('refuses the same eventId with different content', async () => {
    const store = await openStore(await backend.fresh());
    await store.append(requested('exec-a', 0));
    const conflicting = { ...requested('exec-a', 0), actor: 'mallory' };
    await expect(store.append(conflicting)).rejects.toBeInstanceOf(AuditEventConflictError);
    await expect(store.append(conflicting)).rejects.toMatchObject({ code: 'AUDIT_EVENT_CONFLICT', seq: 1 });
    expect(await store.list()).toHaveLength(1);
    expect(await store.getExecution('exec-a')).toMatchObject({ operator: 'alice' });
  });

  test('writes nothing for an invalid event', async () => {
    const store = await openStore(await backend.fresh());
    await expect(store.append({ ...requested('exec-a', 0), type: 'execution.exploded' } as never)).rejects.toThrow(
      /invalid audit event/,
    );
    await expect(store.append({ ...requested('exec-a', 0), data: { n: Number.NaN } })).rejects.toThrow(/not JSON-safe/);
    // An event that does not fit its type's schema is refused, naming the event.
    await expect(store.append({ ...requested('exec-a', 0), data: { reason: 'x' } })).rejects.toThrow(
      /execution.requested exec-a:requested does not fit its schema/,
    );
    await expect(
      store.append(event('exec-a', 'step.started', 1, { data: { ...rotate, comandId: 'typo' } })),
    ).rejects.toThrow(/step.started exec-a:step.started:1 does not fit its schema/);
    expect(await store.list()).toEqual([]);
    expect(await store.listExecutions()).toEqual([]);
  });

  test('the database itself refuses updates and deletes of audit rows', async () => {
    const loc = await backend.fresh();
    const store = await openStore(loc);
    await store.append(requested('exec-a', 0));
    await expect(backend.raw(loc, `update audit_events set actor = 'mallory' where seq = 1`)).rejects.toThrow(
      /append-only/,
    );
    await expect(backend.raw(loc, 'delete from audit_events')).rejects.toThrow(/append-only/);
    expect(await store.verify()).toMatchObject({ ok: true, count: 1 });
  });

  test('verify points at a record tampered with directly in the database', async () => {
    const loc = await backend.fresh();
    const store = await openStore(loc);
    for (const e of story('exec-a', 0)) await store.append(e);
    await backend.raw(loc, backend.disableGuard);
    await backend.raw(loc, `update audit_events set data = '{"accessKeyId":"ASIAOTHER"}' where seq = 3`);
    expect(await store.verify()).toEqual({
      ok: false,
      seq: 3,
      reason: "hash does not match the record's content",
      check: 'chain',
    });
  });

  test('verify notices non-canonical stored data and deleted rows', async () => {
    const loc = await backend.fresh();
    const store = await openStore(loc);
    for (const e of story('exec-a', 0)) await store.append(e);
    await backend.raw(loc, backend.disableGuard);
    // Same JSON value, different bytes: an export would no longer hash as stored.
    await backend.raw(
      loc,
      `update audit_events set data = '{ "step": "rotate", "index": 0, "phase": "main", "commandId": "cmd-1" }' where seq = 5`,
    );
    expect(await store.verify()).toEqual({
      ok: false,
      seq: 5,
      reason: 'data is not stored in canonical form',
      check: 'chain',
    });

    const other = await backend.fresh();
    const second = await openStore(other);
    for (const e of story('exec-a', 0)) await second.append(e);
    await backend.raw(other, backend.name === 'sqlite' ? 'drop trigger audit_events_no_delete' : backend.disableGuard);
    await backend.raw(other, 'delete from audit_events where seq = 4');
    expect(await second.verify()).toMatchObject({ ok: false, seq: 5, reason: expect.stringMatching(/expected seq 4/) });
  });

  test('concurrent appends from one process form one chain', async () => {
    const store = await openStore(await backend.fresh());
    await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        store.append(event(`exec-${i % 3}`, 'step.instance', i, { data: instanceResult(`i-${i}`, `${i}`) })),
      ),
    );
    const records = await store.list();
    expect(new Set(records.map((r) => r.seq)).size).toBe(60);
    expect(await store.verify()).toMatchObject({ ok: true, count: 60 });
  });

  test('appends asked at once share a commit, in the order asked; a conflicting one fails only its own caller', async () => {
    const store = await openStore(await backend.fresh());
    await store.append(requested('exec-g', 0));
    const conflicting = { ...requested('exec-g', 0), actor: 'mallory' };
    const settled = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) =>
        i === 20
          ? store.append(conflicting)
          : store.append(event('exec-g', 'step.instance', i + 1, { data: instanceResult(`i-${i}`, `${i}`) })),
      ),
    );
    // The group the conflict spoiled wrote nothing; each of its appends was tried again alone.
    expect(settled[20]).toMatchObject({ status: 'rejected', reason: { code: 'AUDIT_EVENT_CONFLICT', seq: 1 } });
    const written = settled.filter((r) => r.status === 'fulfilled').map((r) => r.value);
    // Each caller got its own record, chained in the order the appends were asked.
    expect(written.map((r) => r.data['instanceId'])).toEqual(
      Array.from({ length: 40 }, (_, i) => `i-${i}`).filter((_, i) => i !== 20),
    );
    expect(written.map((r) => r.seq)).toEqual(Array.from({ length: 39 }, (_, i) => i + 2));
    expect(await store.verify()).toMatchObject({ ok: true, count: 40 });
  });

  // SQLite only, the one test vitest reports as skipped: what it counts is SQLite's write-ahead
  // log. The group commit is the same code on both backends (audit-log.ts), and PostgreSQL offers
  // no count of one database's commits that the other test files writing to the same throwaway
  // cluster at the same time could not disturb (transaction ids are cluster-wide).
  test.runIf(backend.name === 'sqlite')('appends asked while one is written share one commit', async () => {
    const loc = await backend.fresh();
    const store = await openStore(loc);
    await store.append(requested('exec-h', 0));
    if (loc.kind !== 'sqlite') return;
    // Every commit adds at least one page to the write-ahead log: start from an empty one and count.
    const wal = new BetterSqlite3(loc.file);
    try {
      wal.pragma('wal_checkpoint(TRUNCATE)');
      await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          store.append(event('exec-h', 'step.instance', i + 1, { data: instanceResult(`i-${i}`, `${i}`) })),
        ),
      );
      const [{ log }] = wal.pragma('wal_checkpoint(PASSIVE)') as [{ log: number }];
      // One commit each would have written at least 100 pages; the first alone and the 99 asked
      // while it was written, together, write far fewer.
      expect(log).toBeGreaterThan(0);
      expect(log).toBeLessThan(50);
    } finally {
      wal.close();
    }
    expect(await store.verify()).toMatchObject({ ok: true, count: 101 });
  });

  test('two processes appending at once still form one unbroken chain', async () => {
    // Both children open (and migrate) the fresh database at the same time, then append together.
    const loc = await backend.fresh();
    const a = spawnAppender(loc, 'a', 200);
    const b = spawnAppender(loc, 'b', 200);
    await Promise.all([a.ready, b.ready]);
    a.go();
    b.go();
    await Promise.all([a.done, b.done]);

    const store = await openStore(loc);
    expect(await store.verify()).toMatchObject({ ok: true, count: 400, executions: 2 });
    const records: Awaited<ReturnType<AuditStore['list']>> = [];
    for (
      let page = await store.list({ limit: 150 });
      page.length > 0;
      page = await store.list({ afterSeq: records.at(-1)!.seq, limit: 150 })
    ) {
      records.push(...page);
    }
    const seqs = records.map((r) => r.seq);
    expect(new Set(seqs).size).toBe(400);
    expect(seqs).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    expect(records.filter((r) => r.executionId === 'exec-a')).toHaveLength(200);
    expect(records.filter((r) => r.executionId === 'exec-b')).toHaveLength(200);
    // Interleaved, not one process after the other, or the test proved nothing about locking.
    const switches = seqs.slice(1).filter((_, i) => records[i]!.executionId !== records[i + 1]!.executionId).length;
    expect(switches).toBeGreaterThan(1);
    expect((await store.listExecutions()).map((e) => e.id).sort()).toEqual(['exec-a', 'exec-b']);
  }, 120_000);

  test('a reopened store still verifies and extends the same chain', async () => {
    const loc = await backend.fresh();
    const first = await openAuditStore(loc);
    for (const e of story('exec-a', 0)) await first.append(e);
    await first.close();

    const second = await openStore(loc);
    expect(await second.verify()).toMatchObject({ ok: true, count: 7 });
    const next = await second.append(requested('exec-b', 30));
    expect(next.seq).toBe(8);
    expect(next.prevHash).toBe((await second.list({ afterSeq: 6 }))[0]!.hash);
    expect(await second.verify()).toMatchObject({ ok: true, count: 8 });
    expect(await second.getExecution('exec-a')).toMatchObject({ status: 'completed' });
  });

  /** A store that signs checkpoints with a fresh key in a folder of its own (the key and its checkpoint file). */
  async function openSigned(loc: StoreLocation, opts: { keyDir?: string } = {}) {
    const keyDir = opts.keyDir ?? mkdtempSync(join(tmpdir(), 'mechanic-key-'));
    keyDirs.push(keyDir);
    const keyFile = join(keyDir, 'audit-key.pem');
    const signing = await loadAuditSigning(keyFile, { create: true, store: loc });
    const store = await openAuditStore(loc, { signing });
    open.push(store);
    return { store, signing, keyFile, keyDir };
  }

  /** Appends a row straight into the database with a correctly recomputed hash: no key, no store. */
  async function forgeAppend(loc: StoreLocation, store: AuditStore, forged: NewAuditEvent): Promise<number> {
    const [head] = (await store.list({ afterSeq: 0, limit: 10_000 })).slice(-1);
    const seq = head!.seq + 1;
    const hash = chainHash(head!.hash, forged);
    const q = (v: string | null) => (v === null ? 'null' : `'${v.replace(/'/g, "''")}'`);
    await backend.raw(
      loc,
      `insert into audit_events (seq, event_id, execution_id, type, actor, at, data, prev_hash, hash, recorded_at)
       values (${seq}, ${q(forged.eventId)}, ${q(forged.executionId)}, ${q(forged.type)}, ${q(forged.actor)},
               ${q(forged.at)}, ${q(canonicalJson(forged.data))}, ${q(head!.hash)}, ${q(hash)}, ${q(at(99))})`,
    );
    return seq;
  }

  test('signs a checkpoint at every execution end; verify reports what it covers', async () => {
    const loc = await backend.fresh();
    const { store, keyFile, signing } = await openSigned(loc);
    for (const e of story('exec-a', 0)) await store.append(e);
    for (const e of story('exec-b', 10).slice(0, 4)) await store.append(e);
    const verdict = await store.verify();
    expect(verdict).toMatchObject({
      ok: true,
      count: 11,
      head: { seq: 11 },
      executions: 2,
      // Signed at the first record (a new log) and at exec-a's end (#7); exec-b has not ended yet.
      checkpoints: { latest: { seq: 7, keyId: signing.signer.keyId }, uncovered: 4, checked: 3 },
    });
    // The key and the checkpoint kept beside it are owner-only files outside the database.
    expect(statSync(keyFile).mode & 0o077).toBe(0);
    expect(statSync(signing.headFile!).mode & 0o077).toBe(0);
    expect(JSON.parse(readFileSync(signing.headFile!, 'utf8'))).toMatchObject({ seq: 7 });
    // An explicit checkpoint covers the head.
    expect(await store.checkpoint()).toMatchObject({ seq: 11 });
    expect(await store.verify()).toMatchObject({ ok: true, checkpoints: { latest: { seq: 11 }, uncovered: 0 } });
  });

  test('verify finds a deleted tail, even with the newest checkpoints deleted too', async () => {
    const loc = await backend.fresh();
    const { store, signing } = await openSigned(loc);
    for (const e of story('exec-a', 0)) await store.append(e);
    for (const e of story('exec-b', 10)) await store.append(e); // ends at #14, signed
    // An attacker with the database owner's rights (but not the key) drops the guards and the tail.
    await backend.raw(loc, backend.dropGuards);
    await backend.raw(loc, 'delete from audit_events where seq > 10');
    // The hash chain alone sees nothing wrong: what is left is a perfect chain.
    expect(verifyChain(await store.list())).toEqual({ ok: true, count: 10 });
    expect(await store.verify()).toEqual({
      ok: false,
      seq: 11,
      check: 'checkpoint',
      reason:
        'the log ends at #10, but a signed checkpoint in the database covers #14: records were deleted from the end',
    });
    // Deleting the checkpoints that cover the deleted records too leaves the one kept outside the database.
    await backend.raw(loc, 'delete from audit_checkpoints where seq > 10');
    await backend.raw(loc, "delete from executions where id = 'exec-b'");
    expect(await store.verify()).toEqual({
      ok: false,
      seq: 11,
      check: 'checkpoint',
      reason:
        'the log ends at #10, but a signed checkpoint kept outside the database covers #14: records were deleted from the end',
    });
    // …and the signer refuses to vouch for the shortened log.
    await store.append(requested('exec-c', 30));
    expect(await store.checkpoint()).toBeUndefined();
    expect(JSON.parse(readFileSync(signing.headFile!, 'utf8'))).toMatchObject({ seq: 14 });
  });

  test("verify finds a forged approval appended after an execution's end", async () => {
    const loc = await backend.fresh();
    const { store } = await openSigned(loc);
    for (const e of story('exec-a', 0, 'execution.failed')) await store.append(e); // ends at #7
    const seq = await forgeAppend(
      loc,
      store,
      event('exec-a', 'approval.granted', 6, { actor: 'carol', data: { planDigest: 'plan-exec-a' } }),
    );
    expect(seq).toBe(8);
    // The hash chain alone sees nothing wrong.
    expect(verifyChain(await store.list())).toEqual({ ok: true, count: 8 });
    const expected = {
      ok: false,
      seq: 8,
      check: 'checkpoint',
      reason:
        'record #8 (approval.granted by carol) follows the end (#7) of execution exec-a, but no signed checkpoint covers it (the newest covers #7): it was written without the signing key',
    };
    expect(await store.verify()).toEqual(expected);
    // Later genuine appends do not launder it: the signer will not sign over it.
    await store.append(requested('exec-b', 20));
    await store.append(event('exec-b', 'execution.expired', 21, { data: { reason: 'no approvals' } }));
    expect(await store.verify()).toEqual(expected);
  });

  test('verify finds a forged execution end, and a forged row that does not fit the vocabulary', async () => {
    const loc = await backend.fresh();
    const { store } = await openSigned(loc);
    for (const e of story('exec-a', 0).slice(0, 6)) await store.append(e);
    await forgeAppend(loc, store, event('exec-a', 'execution.completed', 9, { data: {} }));
    expect(await store.verify()).toMatchObject({
      ok: false,
      seq: 7,
      check: 'checkpoint',
      reason: expect.stringMatching(
        /^record #7 \(execution.completed by mechanic\) ends execution exec-a, but no signed/,
      ),
    });

    const other = await backend.fresh();
    const second = await openSigned(other);
    await second.store.append(requested('exec-a', 0));
    await forgeAppend(other, second.store, event('exec-a', 'approval.granted', 1, { actor: 'carol', data: {} }));
    expect(await second.store.verify()).toMatchObject({
      ok: false,
      seq: 2,
      check: 'schema',
      reason: expect.stringMatching(/^record #2: approval.granted exec-a:approval.granted:1 does not fit its schema/),
    });
  });

  test('verify finds an executions row edited to differ from the log', async () => {
    const loc = await backend.fresh();
    const { store } = await openSigned(loc);
    for (const e of story('exec-a', 0, 'execution.failed')) await store.append(e);
    for (const e of story('exec-b', 10)) await store.append(e);
    await backend.raw(loc, "update executions set status = 'completed' where id = 'exec-a'");
    // What `mechanic list` shows now:
    expect(await store.getExecution('exec-a')).toMatchObject({ status: 'completed' });
    expect(await store.verify()).toEqual({
      ok: false,
      seq: 7,
      check: 'index',
      reason: 'the executions index row of exec-a does not match the log: status is "completed", the log says "failed"',
    });
    await backend.raw(loc, "update executions set status = 'failed' where id = 'exec-a'");
    expect(await store.verify()).toMatchObject({ ok: true });
    await backend.raw(loc, "delete from executions where id = 'exec-b'");
    expect(await store.verify()).toMatchObject({
      ok: false,
      seq: 14,
      check: 'index',
      reason: 'the log has execution exec-b, but the executions index does not',
    });
  });

  test('verify finds a log rewritten with recomputed hashes at its checkpoint', async () => {
    const loc = await backend.fresh();
    const { store } = await openSigned(loc);
    for (const e of story('exec-a', 0)) await store.append(e);
    // Rewrite the approval to carol's and recompute every hash after it: a valid chain again.
    const records = await store.list();
    await backend.raw(loc, backend.dropGuards);
    let prev = records[0]!.hash;
    for (const r of records.slice(1)) {
      const changed = r.seq === 2 ? { ...r, actor: 'carol' } : r;
      const hash = chainHash(prev, changed);
      await backend.raw(
        loc,
        `update audit_events set actor = '${changed.actor}', prev_hash = '${prev}', hash = '${hash}' where seq = ${r.seq}`,
      );
      prev = hash;
    }
    await backend.raw(loc, "update executions set approvals = '[\"carol\"]' where id = 'exec-a'");
    expect(verifyChain(await store.list())).toEqual({ ok: true, count: 7 });
    expect(await store.verify()).toEqual({
      ok: false,
      seq: 7,
      check: 'checkpoint',
      reason: 'record #7 is not the record signed by the checkpoint in the database: the log was rewritten from here',
    });
  });

  test('verify while runs end and sign reports nothing broken', async () => {
    const loc = await backend.fresh();
    const { store } = await openSigned(loc);
    const runs = Promise.all(
      ['exec-a', 'exec-b', 'exec-c', 'exec-d'].map(async (id, i) => {
        for (const e of story(id, i * 10)) await store.append(e);
      }),
    );
    const verdicts = [];
    for (let i = 0; i < 6; i++) verdicts.push(await store.verify());
    await runs;
    verdicts.push(await store.verify());
    for (const v of verdicts) expect(v).toMatchObject({ ok: true });
    expect(verdicts.at(-1)).toMatchObject({ count: 28, executions: 4, checkpoints: { uncovered: 0 } });
  });

  test('a log written before checkpoints is signed once when a key first opens it', async () => {
    const loc = await backend.fresh();
    const plain = await openAuditStore(loc);
    for (const e of story('exec-a', 0)) await plain.append(e);
    await plain.close();
    const { store } = await openSigned(loc);
    expect(await store.verify()).toMatchObject({ ok: true, checkpoints: { latest: { seq: 7 }, uncovered: 0 } });
  });

  test('openDatabase can be called again on a migrated database', async () => {
    const loc = await backend.fresh();
    const db1 = await openDatabase(loc);
    const db2 = await openDatabase(loc);
    await db1.destroy();
    await db2.destroy();
  });
});

describe('openDatabase errors', () => {
  test('an unreachable PostgreSQL is a configuration error with the password hidden', async () => {
    const port = 1; // nothing listens on tcpmux
    const failure = openDatabase({
      kind: 'postgres',
      url: `postgres://u:s3cret@127.0.0.1:${port}/db?connect_timeout=2`,
    });
    await expect(failure).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await expect(failure).rejects.toThrow(/u:\*\*\*@127\.0\.0\.1/);
    await expect(failure).rejects.not.toThrow(/s3cret/);
  });

  test('an invalid location is a configuration error', async () => {
    await expect(openDatabase({ kind: 'sqlite', file: '' })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});
