/**
 * `mechanic audit verify` and `--all-signatures`, end to end: the real CLI against the real app
 * (Cedar with the shipped policies, token sign-in) on a free port, over a real signed SQLite log
 * with a checkpoint row forged below the genuine ones. By default verify checks the newest
 * signature, which proves every record up to it, and passes; `--all-signatures` checks every one
 * and names the forged row.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { UsersFile } from '../../src/authz/users.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { loadAuditSigning } from '../../src/store/checkpoints.ts';
import { runCli } from '../helpers/cli.ts';
import { runEvents } from '../helpers/web-ui.ts';
import { startTokenApp, type TokenApp } from '../helpers/token-app.ts';

const USERS: UsersFile = {
  users: [{ id: 'dave', displayName: 'Dave', roles: ['auditor'], token: 'tok-dave-verify-0123456789abcdef01234' }],
};

describe('mechanic audit verify --all-signatures', () => {
  let home: string;
  let audit: AuditStore;
  let app: TokenApp;
  let env: NodeJS.ProcessEnv;
  let checkpoints: number;

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'mechanic-verify-cli-'));
    const loc = { kind: 'sqlite' as const, file: path.join(home, 'audit.db') };
    const signing = await loadAuditSigning(path.join(home, 'audit-key.pem'), { create: true, store: loc });
    audit = await openAuditStore(loc, { signing });
    for (const [i, id] of ['mx-a', 'mx-b'].entries()) {
      const events = runEvents({
        id,
        runbook: 'rb',
        operator: 'alice',
        approvers: ['bob'],
        at: `2026-01-0${i + 1}T00:00:00.000Z`,
        targets: ['i-1'],
        end: 'completed',
      });
      for (const e of events) await audit.append(e);
    }
    // A checkpoint row forged below the genuine ones, naming record #3's true hash.
    const db = new SQLite(loc.file);
    try {
      const at3 = db.prepare('select hash from audit_events where seq = 3').get() as { hash: string };
      db.prepare(
        'insert into audit_checkpoints (seq, key_id, hash, at, signature, recorded_at) values (?, ?, ?, ?, ?, ?)',
      ).run(3, signing.signer.keyId, at3.hash, '2026-01-01T00:00:03.000Z', Buffer.alloc(64, 7).toString('base64'), '');
      checkpoints = (db.prepare('select count(*) as n from audit_checkpoints').get() as { n: number }).n;
    } finally {
      db.close();
    }
    app = await startTokenApp(audit, USERS);
    env = app.env(home, USERS.users[0]!.token);
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await audit?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  test('by default the newest signature is checked (and the copy beside the key): the buried forged row proves nothing, verify passes', async () => {
    const json = await runCli(['audit', 'verify', '--json'], env);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      ok: true,
      checkpoints: { checked: checkpoints + 1, signaturesChecked: 2 },
    });
    const text = await runCli(['audit', 'verify'], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(
      `; 2 of ${checkpoints + 1} checkpoint signatures checked (the newest; --all-signatures checks every one)\n`,
    );
  });

  test('--all-signatures checks every one and names the forged row, exit 1, with --json too', async () => {
    const reason = 'the checkpoint of record #3 has a signature that does not match its seq, hash and time';
    const json = await runCli(['audit', 'verify', '--all-signatures', '--json'], env);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({ ok: false, seq: 3, check: 'checkpoint', reason });
    const text = await runCli(['audit', 'verify', '--all-signatures'], env);
    expect(text).toMatchObject({
      code: 1,
      stdout: `audit chain BROKEN (signed checkpoints) at record #3: ${reason}\n`,
    });
  });

  test('--all-signatures belongs to verify: elsewhere it is a usage error in one sentence', async () => {
    const r = await runCli(['audit', 'list', '--all-signatures'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^mechanic: --all-signatures is an option of mechanic audit verify; usage: /);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
