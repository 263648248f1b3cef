/**
 * The export reader and encoders on PostgreSQL (DATABASE_URL), the other dialect the store speaks:
 * a throwaway cluster, the audit store's real append path, then every format read back as its
 * consumers read it. Fails (does not skip) when PostgreSQL is not installed, like the other
 * PostgreSQL tests: CI installs it.
 */
import { readFile } from 'node:fs/promises';
import { Ajv } from 'ajv';
import { parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { GENESIS_HASH, verifyChain, type AuditRecord } from '../../src/core/audit-chain.ts';
import type { AuditExportFormat } from '../../src/core/audit-export.ts';
import type { NewAuditEvent } from '../../src/core/audit-events.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { auditExportChunks, auditExportPages, type AuditExportQuery } from '../../src/store/audit-export.ts';
import { everyTypeSample, runSample } from '../helpers/audit-samples.ts';
import {
  POSTGRES_MISSING_MESSAGE,
  createTestDatabase,
  startTestPostgres,
  type TestPostgres,
} from '../helpers/postgres.ts';

const SCHEMA = JSON.parse(
  await readFile(new URL('../fixtures/ocsf/api_activity.schema.json', import.meta.url), 'utf8'),
) as object;
const validateOcsf = new Ajv({ allErrors: true, strict: false }).compile(SCHEMA);

describe('audit export on PostgreSQL', { timeout: 120_000 }, () => {
  let postgres: TestPostgres | undefined;
  let audit: AuditStore;
  let events: NewAuditEvent[];

  const exported = async (format: AuditExportFormat, q: AuditExportQuery = {}): Promise<Buffer> => {
    const chunks: Uint8Array[] = [];
    for await (const c of auditExportChunks(audit.db, q, format, { version: 'test', rowGroupSize: 100 }))
      chunks.push(c);
    return Buffer.concat(chunks);
  };

  beforeAll(async () => {
    postgres = await startTestPostgres();
    if (!postgres) throw new Error(POSTGRES_MISSING_MESSAGE);
    audit = await openAuditStore({ kind: 'postgres', url: await createTestDatabase(postgres.url, 'mechanic_export') });
    events = everyTypeSample('mx-pg', '2026-03-01T09:00:00.000Z');
    for (let i = 0; i < 30; i++) {
      events.push(
        ...runSample(`mx-pgbulk${i}`, new Date(Date.parse('2026-03-05T00:00:00Z') + i * 60_000).toISOString()),
      );
    }
    for (const e of events) await audit.append(e);
  }, 120_000);
  afterAll(async () => {
    await audit?.close();
    await postgres?.stop();
  });

  test('bounded pages, every record once in chain order; jsonl re-verifies', async () => {
    const seen: number[] = [];
    for await (const page of auditExportPages(audit.db, {}, 50)) {
      expect(page.length).toBeLessThanOrEqual(50);
      seen.push(...page.map((r) => r.seq));
    }
    const stored = await audit.list({ limit: 10_000 });
    expect(seen).toEqual(stored.map((r) => r.seq));
    const lines = (await exported('jsonl'))
      .toString('utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditRecord);
    expect(lines).toEqual(stored);
    expect(verifyChain(lines, GENESIS_HASH, 1)).toEqual({ ok: true, count: events.length });
  });

  test('an execution and a range filter as on SQLite', async () => {
    const q = { since: '2026-03-05T00:05:00Z', until: '2026-03-05T00:09:00Z' };
    const ranged = (await exported('jsonl', q)).toString('utf8').trimEnd().split('\n');
    expect(ranged.map((l) => (JSON.parse(l) as AuditRecord).eventId)).toEqual(
      events
        .filter((e) => Date.parse(e.at) >= Date.parse(q.since) && Date.parse(e.at) < Date.parse(q.until))
        .map((e) => e.eventId),
    );
    const one = (await exported('ocsf', { executionId: 'mx-pg-3' })).toString('utf8');
    const ocsf = JSON.parse(one) as { metadata: { correlation_uid: string } }[];
    expect(ocsf.map((e) => e.metadata.correlation_uid)).toEqual(
      events.filter((e) => e.executionId === 'mx-pg-3').map(() => 'mx-pg-3'),
    );
  });

  test('OCSF validates; Parquet reads back equal to the jsonl export', async () => {
    const ocsf = JSON.parse((await exported('ocsf')).toString('utf8')) as unknown[];
    expect(ocsf.filter((e) => !validateOcsf(e))).toEqual([]);
    const bytes = await exported('parquet');
    const file = new ArrayBuffer(bytes.byteLength);
    new Uint8Array(file).set(bytes);
    const rows = (await parquetReadObjects({ file })) as { unmapped: string }[];
    expect(rows.map((r) => `${r.unmapped}\n`).join('')).toBe((await exported('jsonl')).toString('utf8'));
  });
});
