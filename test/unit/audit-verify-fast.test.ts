/**
 * The shortcuts `audit verify` takes over a million records must give exactly the answers of the
 * full path: isCanonicalText is canonicalJson(JSON.parse(text)) === text, and chainHashOfStored
 * hashes the bytes chainHash would. The store-level breaks (tampered, non-canonical, deleted rows)
 * are pinned in test/integration/store.test.ts; here, the cases the fast path must hand back.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { GENESIS_HASH, chainHash, chainHashOfStored } from '../../src/core/audit-chain.ts';
import { checkpointSigner, type Checkpoint } from '../../src/core/audit-checkpoint.ts';
import type { NewAuditEvent } from '../../src/core/audit-events.ts';
import { canonicalJson, isCanonicalText } from '../../src/core/canonical.ts';
import SQLite from 'better-sqlite3';
import { openAuditStore } from '../../src/store/audit-log.ts';
import { signingWith } from '../../src/store/checkpoints.ts';

describe('isCanonicalText', () => {
  test.each([
    ['{"a":1,"b":[true,null,"x"]}', true],
    ['{"b":1,"a":2}', false],
    ['{"a":{"d":1,"c":2}}', false],
    ['[{"b":1,"a":2}]', false],
    ['{"a": 1}', false],
    ['{"a":1.0}', false],
    ['{"a":1e3}', false],
    ['{"a":"\\u00e9"}', false],
    ['{"a":"é"}', true],
    ['{"a":"\\/"}', false],
    ['{"a":1,"a":1}', false],
    ['{"a":1,"a":2}', false],
    ['{"a":1e999}', false],
    ['{"__proto__":{"x":1},"a":1}', true],
    ['{"a":1,"__proto__":1}', false],
    // Integer-like keys: V8 lists them first, so the native writer puts "9" before "10" while
    // canonical order (UTF-16 code units) puts "10" first. The exact path must answer.
    ['{"10":"a","9":"b"}', true],
    ['{"9":"b","10":"a"}', false],
    ['{"params":{"10":"a","9":"b","x":1}}', true],
    // UTF-16 code units, not code points: a surrogate pair sorts before U+FFFF.
    ['{"😀":1,"\uffff":2}', true],
    ['{"\uffff":2,"😀":1}', false],
    ['"text"', true],
    ['12', true],
    ['null', true],
    ['[]', true],
    ['{}', true],
    [' {}', false],
  ])('%s is canonical: %s', (text, canonical) => {
    const parsed: unknown = JSON.parse(text);
    let exact: boolean;
    try {
      exact = canonicalJson(parsed) === text;
    } catch {
      exact = false;
    }
    expect(exact).toBe(canonical);
    expect(isCanonicalText(text, parsed)).toBe(canonical);
  });
});

describe('chainHashOfStored', () => {
  const events: NewAuditEvent[] = [
    {
      eventId: 'e-1',
      executionId: 'mx-1',
      type: 'approval.granted',
      actor: 'bob',
      at: '2026-01-01T00:00:00.000Z',
      data: { planDigest: 'p', comment: 'fine' },
    },
    {
      eventId: 'none:access.denied:1',
      executionId: null,
      type: 'access.denied',
      actor: 'mallory "the" \\ \n\u2028 \ud800 😀',
      at: '2026-01-01T00:00:00Z',
      data: { zeta: [1, { b: 2, a: 1 }], alpha: 'é' },
    },
  ];
  test.each(events)('hashes the same bytes as chainHash ($eventId)', (event) => {
    const stored = canonicalJson(event.data);
    expect(chainHashOfStored(GENESIS_HASH, event, stored)).toBe(chainHash(GENESIS_HASH, event));
    expect(chainHashOfStored('f'.repeat(64), event, stored)).toBe(chainHash('f'.repeat(64), event));
  });

  test('hands back a row whose fields are not strings, for chainHash to judge', () => {
    const event = events[0]!;
    for (const field of ['eventId', 'executionId', 'type', 'actor', 'at'] as const) {
      const odd = { ...event, [field]: 5 };
      expect(chainHashOfStored(GENESIS_HASH, odd, '{}')).toBeUndefined();
    }
  });
});

describe('audit verify takes the exact path when the fast one cannot tell', () => {
  test('a log whose params have integer-like keys verifies; bytes hashed as stored but not canonical do not', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mechanic-verify-fast-'));
    const store = await openAuditStore({ kind: 'sqlite', file: path.join(dir, 'audit.db') });
    try {
      const runbook = { name: 'rb', version: 1, digest: 'sha256:rb', description: 'A runbook.' };
      const params = { '10': 'ten', '9': 'nine', x: 'y' };
      const plan = {
        executionId: 'mx-1',
        runbook,
        requester: 'alice',
        reason: 'test',
        params,
        targets: [{ instanceId: 'i-1' }],
        roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
        region: 'eu-west-1',
        steps: [{ name: 'work', script: 'true', timeoutSeconds: 60 }],
        onFailure: [],
        approval: { required: 1, expiresAfterSeconds: 3600 },
        budgetSeconds: 900,
        sessionPolicy: '{}',
        createdAt: '2026-01-01T00:00:00.000Z',
      };
      await store.append({
        eventId: 'mx-1:0000:execution.requested',
        executionId: 'mx-1',
        type: 'execution.requested',
        actor: 'alice',
        at: '2026-01-01T00:00:00.000Z',
        data: { runbook, params, targets: ['i-1'], planDigest: 'p', reason: 'test', requester: 'alice', plan },
      });
      expect(await store.verify()).toMatchObject({ ok: true, count: 1, executions: 1 });

      // The same value stored with its keys swapped, and a hash recomputed over those bytes: the
      // chain hashes the canonical form, so this is a hash that does not match, as it always was.
      await store.append({
        eventId: 'mx-1:0001:approval.granted',
        executionId: 'mx-1',
        type: 'approval.granted',
        actor: 'bob',
        at: '2026-01-01T00:00:01.000Z',
        data: { comment: 'ok', planDigest: 'p' },
      });
      expect(await store.verify()).toMatchObject({ ok: true, count: 2 });
      const raw = new SQLite(path.join(dir, 'audit.db'));
      try {
        raw.exec('drop trigger audit_events_no_update');
        const row = raw.prepare('select * from audit_events where seq = 2').get() as Record<string, string>;
        const swapped = '{"planDigest":"p","comment":"ok"}';
        const fields = {
          eventId: row['event_id']!,
          executionId: row['execution_id']!,
          type: row['type']! as NewAuditEvent['type'],
          actor: row['actor']!,
          at: row['at']!,
        };
        const forged = chainHashOfStored(row['prev_hash']!, fields, swapped);
        raw.prepare('update audit_events set data = ?, hash = ? where seq = 2').run(swapped, forged);
      } finally {
        raw.close();
      }
      expect(await store.verify()).toEqual({
        ok: false,
        seq: 2,
        reason: "hash does not match the record's content",
        check: 'chain',
      });
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('audit verify checks every checkpoint signature in the database (in parallel)', () => {
  const signer = checkpointSigner(generateKeyPairSync('ed25519').privateKey);
  const stranger = checkpointSigner(generateKeyPairSync('ed25519').privateKey);
  const flip = (b64: string) => {
    const bytes = Buffer.from(b64, 'base64');
    bytes[10] = bytes[10]! ^ 1;
    return bytes.toString('base64');
  };
  test.each<[string, (cp: Checkpoint) => Checkpoint, string]>([
    [
      'a signature changed',
      (cp) => ({ ...cp, signature: flip(cp.signature) }),
      'has a signature that does not match its seq, hash and time',
    ],
    [
      'a time changed',
      (cp) => ({ ...cp, at: '2030-01-01T00:00:00.000Z' }),
      'has a signature that does not match its seq, hash and time',
    ],
    [
      'a key not trusted',
      () => stranger.sign({ seq: 3, hash: 'a'.repeat(64) }, new Date()),
      `is signed by key ${stranger.keyId}, which is not a trusted audit key`,
    ],
    ['a malformed hash', (cp) => ({ ...cp, hash: 'not a hash' }), 'is malformed'],
  ])('a checkpoint row with %s is named', async (_what, forge, reason) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mechanic-verify-cp-'));
    const file = path.join(dir, 'audit.db');
    const store = await openAuditStore(
      { kind: 'sqlite', file },
      { signing: signingWith(signer, undefined), checkpointEveryRecords: 1000 },
    );
    try {
      for (let i = 0; i < 5; i++) {
        await store.append({
          eventId: `none:access.denied:${i}`,
          executionId: null,
          type: 'access.denied',
          actor: 'mallory',
          at: `2026-01-01T00:00:0${i}.000Z`,
          data: { action: 'readAudit', resource: 'audit', reason: 'no' },
        });
      }
      expect(await store.verify()).toMatchObject({ ok: true, count: 5 });
      const raw = new SQLite(file);
      try {
        const head = raw.prepare('select hash from audit_events where seq = 3').get() as { hash: string };
        const taken = (raw.prepare('select seq from audit_checkpoints').all() as { seq: number }[]).map((r) => r.seq);
        expect(taken).not.toContain(3);
        const cp = forge(signer.sign({ seq: 3, hash: head.hash }, new Date('2026-01-01T00:00:03.000Z')));
        raw
          .prepare(
            'insert into audit_checkpoints (seq, key_id, hash, at, signature, recorded_at) values (?, ?, ?, ?, ?, ?)',
          )
          .run(cp.seq, cp.keyId, cp.hash, cp.at, cp.signature, cp.at);
      } finally {
        raw.close();
      }
      expect(await store.verify()).toEqual({
        ok: false,
        seq: 3,
        check: 'checkpoint',
        reason: expect.stringContaining(`the checkpoint of record #3 ${reason}`) as unknown,
      });
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
