/**
 * Audit exports end to end: a real SQLite audit store filled through its append path, the real app
 * (Cedar with the shipped policies, token sign-in) on a free port, and the real `mechanic` CLI
 * streaming each format to a file or stdout. The files are then read the way their consumers
 * read them: the JSON Lines chain re-verified, CSV parsed by RFC 4180, every OCSF event checked
 * against the class's JSON Schema with ajv, and the Parquet file read back with hyparquet (an
 * independent reader) and compared with the JSON Lines export.
 */
import { createServer } from 'node:http';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Ajv } from 'ajv';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { UsersFile } from '../../src/authz/users.ts';
import { GENESIS_HASH, verifyChain, type AuditRecord } from '../../src/core/audit-chain.ts';
import type { NewAuditEvent } from '../../src/core/audit-events.ts';
import { canonicalJson } from '../../src/core/canonical.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { auditExportChunks, auditExportPages } from '../../src/store/audit-export.ts';
import { everyTypeSample, runSample } from '../helpers/audit-samples.ts';
import { runCli } from '../helpers/cli.ts';
import { startTokenApp, type TokenApp } from '../helpers/token-app.ts';

const USERS: UsersFile = {
  users: [
    { id: 'dave', displayName: 'Dave', roles: ['auditor'], token: 'tok-dave-export-0123456789abcdef0123' },
    { id: 'mallory', displayName: 'Mallory', roles: ['operator'], token: 'tok-mallory-export-0123456789abcdef' },
  ],
};
const SCHEMA = JSON.parse(
  await readFile(new URL('../fixtures/ocsf/api_activity.schema.json', import.meta.url), 'utf8'),
) as object;
const validateOcsf = new Ajv({ allErrors: true, strict: false }).compile(SCHEMA);

/** RFC 4180: fields separated by commas, quoted fields may hold commas, CRLF and doubled quotes. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
      } else if (ch === '"') {
        quoted = false;
        i++;
      } else {
        field += ch;
        i++;
      }
    } else if (ch === '"') {
      quoted = true;
      i++;
    } else if (ch === ',') {
      row.push(field);
      field = '';
      i++;
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i += 2;
    } else {
      field += ch;
      i++;
    }
  }
  expect(field).toBe('');
  expect(row).toEqual([]);
  return rows;
}

const lines = (text: string): AuditRecord[] =>
  text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as AuditRecord);

describe('audit export', () => {
  let home: string;
  let audit: AuditStore;
  let app: TokenApp;
  let env: NodeJS.ProcessEnv;
  let events: NewAuditEvent[];
  const as = (user: 'dave' | 'mallory') => ({ ...env, MECHANIC_TOKEN: USERS.users.find((u) => u.id === user)!.token });

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'mechanic-export-'));
    audit = await openAuditStore({ kind: 'sqlite', file: path.join(home, 'audit.db') });
    // Every type of the vocabulary, then enough runs to span several pages of the export.
    events = everyTypeSample('mx-every', '2026-03-01T09:00:00.000Z');
    for (let i = 0; i < 150; i++) {
      events.push(
        ...runSample(
          `mx-bulk${String(i).padStart(4, '0')}`,
          new Date(Date.parse('2026-03-05T00:00:00Z') + i * 60_000).toISOString(),
        ),
      );
    }
    for (const e of events) await audit.append(e);
    app = await startTokenApp(audit, USERS);
    env = app.env(home);
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await audit?.close();
    await rm(home, { recursive: true, force: true });
  });

  test('pages never exceed their bound, and together are every record once, in chain order', async () => {
    const all = await audit.list({ limit: 10_000 });
    const seen: number[] = [];
    let pages = 0;
    for await (const page of auditExportPages(audit.db, {}, 97)) {
      expect(page.length).toBeGreaterThan(0);
      expect(page.length).toBeLessThanOrEqual(97);
      seen.push(...page.map((r) => r.seq));
      pages++;
    }
    expect(seen).toEqual(all.map((r) => r.seq));
    expect(pages).toBe(Math.ceil(all.length / 97));
  });

  test('by default a page holds at most 1,000 records, and the export the API serves is read in such pages', async () => {
    const all = await audit.list({ limit: 10_000 });
    // More than one default page, so a larger default would show as a longer first page.
    expect(all.length).toBeGreaterThan(1000);
    const sizes: number[] = [];
    for await (const page of auditExportPages(audit.db, {})) sizes.push(page.length);
    expect(sizes.every((n) => n <= 1000)).toBe(true);
    expect(sizes[0]).toBe(1000);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(all.length);
    // The route streams auditExportChunks with no page size of its own: jsonl is one chunk per page.
    const chunkLines: number[] = [];
    for await (const chunk of auditExportChunks(audit.db, {}, 'jsonl')) {
      chunkLines.push(new TextDecoder().decode(chunk).split('\n').length - 1);
    }
    expect(chunkLines).toEqual(sizes);
  });

  test('jsonl to a file: every record exactly as stored, and the whole chain re-verifies', async () => {
    const file = path.join(home, 'all.jsonl');
    const r = await runCli(['audit', 'export', '--format', 'jsonl', '--out', file], as('dave'));
    expect(r).toMatchObject({ code: 0, stdout: '' });
    expect(r.stderr).toBe(`wrote ${file} (jsonl)\n`);
    const records = lines(await readFile(file, 'utf8'));
    expect(records).toEqual(await audit.list({ limit: 10_000 }));
    expect(verifyChain(records, GENESIS_HASH, 1)).toEqual({ ok: true, count: events.length });
    const rows = await audit.db.selectFrom('audit_events').select(['seq', 'data']).orderBy('seq').execute();
    expect(records.map((x) => canonicalJson(x.data))).toEqual(rows.map((x) => x.data));
    // Nothing else is left beside it (the partial file was renamed into place).
    expect((await readdir(home)).filter((f) => f.includes('partial'))).toEqual([]);
  });

  test('filters: one execution, and a time range (since inclusive, until exclusive, as instants)', async () => {
    const one = await runCli(['audit', 'export', '--format', 'jsonl', '--execution', 'mx-every-1'], as('dave'));
    expect(one.code).toBe(0);
    const mine = lines(one.stdout);
    expect(mine.map((x) => x.eventId)).toEqual(
      events.filter((e) => e.executionId === 'mx-every-1').map((e) => e.eventId),
    );

    const since = '2026-03-05T00:10:00Z';
    const until = '2026-03-05T00:20:00.000+00:00';
    const ranged = await runCli(
      ['audit', 'export', '--format', 'jsonl', '--since', since, '--until', until],
      as('dave'),
    );
    expect(ranged.code).toBe(0);
    const expected = events
      .filter((e) => Date.parse(e.at) >= Date.parse(since) && Date.parse(e.at) < Date.parse(until))
      .map((e) => e.eventId);
    expect(expected.length).toBeGreaterThan(50);
    expect(lines(ranged.stdout).map((x) => x.eventId)).toEqual(expected);
  });

  test('csv to stdout: the documented header, RFC 4180 rows, formula-like cells made inert', async () => {
    const r = await runCli(['audit', 'export', '--format', 'csv', '--execution', 'mx-every-0'], as('dave'));
    expect(r.code).toBe(0);
    const rows = parseCsv(r.stdout);
    expect(rows[0]).toEqual([
      'seq',
      'event_id',
      'execution_id',
      'type',
      'actor',
      'at',
      'recorded_at',
      'prev_hash',
      'hash',
      'data',
    ]);
    const stored = await audit.list({ executionId: 'mx-every-0', limit: 10_000 });
    expect(rows.slice(1).map((row) => [Number(row[0]), row[1], row[9]])).toEqual(
      stored.map((s) => [s.seq, s.eventId, canonicalJson(s.data)]),
    );
    // No cell of the export starts a formula.
    expect(rows.flat().filter((cell) => /^[=+\-@]/.test(cell))).toEqual([]);
  });

  test('ocsf: one JSON array, every event valid against the OCSF API Activity schema, in chain order', async () => {
    const file = path.join(home, 'all.ocsf.json');
    const r = await runCli(['audit', 'export', '--format', 'ocsf', '--out', file], as('dave'));
    expect(r.code).toBe(0);
    const ocsf = JSON.parse(await readFile(file, 'utf8')) as {
      metadata: { sequence: number };
      unmapped: AuditRecord;
    }[];
    expect(ocsf).toHaveLength(events.length);
    const invalid = ocsf.filter((e) => !validateOcsf(e));
    expect(invalid).toEqual([]);
    expect(ocsf.map((e) => e.metadata.sequence)).toEqual(ocsf.map((_, i) => i + 1));
    expect(
      verifyChain(
        ocsf.map((e) => e.unmapped),
        GENESIS_HASH,
        1,
      ),
    ).toMatchObject({ ok: true });
  });

  test('parquet: row groups of bounded size, read back by hyparquet equal to the jsonl export', async () => {
    const file = path.join(home, 'all.parquet');
    const r = await runCli(['audit', 'export', '--format', 'parquet', '--out', file, '--json'], as('dave'));
    expect(r.code).toBe(0);
    const bytes = await readFile(file);
    // --json says what was written, for scripts.
    expect(JSON.parse(r.stdout)).toEqual({ file, format: 'parquet', bytes: bytes.byteLength });
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const rows = (await parquetReadObjects({ file: buffer })) as Record<string, unknown>[];
    const jsonl = await runCli(['audit', 'export', '--format', 'jsonl'], as('dave'));
    const records = lines(jsonl.stdout);
    expect(rows).toHaveLength(records.length);
    expect(rows.map((x) => JSON.parse(x['unmapped'] as string) as unknown)).toEqual(records);
    // The unmapped text is the jsonl line itself, byte for byte.
    expect(rows.map((x) => `${x['unmapped'] as string}\n`).join('')).toBe(jsonl.stdout);
    const first = rows[0]!;
    expect(first).toMatchObject({
      class_uid: 6003,
      category_uid: 6,
      activity_id: 1,
      type_uid: 600301n,
      time: new Date(records[0]!.at),
      metadata: { uid: records[0]!.eventId, version: '1.1.0', product: { name: 'mechanic' }, sequence: 1n },
      actor: { user: { uid: 'alice' } },
      api: { operation: 'execution.requested' },
    });
    // Optional leaves read back as null where the event has none.
    expect(first['resources']).toContainEqual({ uid: 'i-0abc', name: null, type: 'instance', version: null });

    // Bounded row groups, straight from the store's encoder.
    const chunks: Uint8Array[] = [];
    for await (const c of auditExportChunks(audit.db, {}, 'parquet', { rowGroupSize: 300, version: 'test' }))
      chunks.push(c);
    const whole = Buffer.concat(chunks);
    const meta = parquetMetadata(whole.buffer.slice(whole.byteOffset, whole.byteOffset + whole.byteLength));
    expect(meta.row_groups.length).toBe(Math.ceil(records.length / 300));
    expect(meta.row_groups.every((g) => Number(g.num_rows) <= 300)).toBe(true);
    expect(chunks).toHaveLength(meta.row_groups.length + 1);
  });

  test('an empty range still makes valid files', async () => {
    const q = ['--since', '2030-01-01'];
    const ocsf = await runCli(['audit', 'export', '--format', 'ocsf', ...q], as('dave'));
    expect(JSON.parse(ocsf.stdout)).toEqual([]);
    const csv = await runCli(['audit', 'export', '--format', 'csv', ...q], as('dave'));
    expect(csv.stdout).toBe('seq,event_id,execution_id,type,actor,at,recorded_at,prev_hash,hash,data\r\n');
    const file = path.join(home, 'empty.parquet');
    expect((await runCli(['audit', 'export', '--format', 'parquet', '--out', file, ...q], as('dave'))).code).toBe(0);
    const bytes = await readFile(file);
    expect(
      await parquetReadObjects({ file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) }),
    ).toEqual([]);
  });

  test('someone without exportAudit is refused (403) and the refusal is on the record; no file is left', async () => {
    const before = (await audit.list({ limit: 10_000 })).length;
    const file = path.join(home, 'refused.jsonl');
    const r = await runCli(['audit', 'export', '--format', 'jsonl', '--out', file], as('mallory'));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^mechanic: mallory \(operator\) may not export the audit log[^\n]*\n$/);
    await expect(readFile(file)).rejects.toMatchObject({ code: 'ENOENT' });
    const after = await audit.list({ afterSeq: before, limit: 100 });
    expect(after).toEqual([
      expect.objectContaining({
        type: 'access.denied',
        actor: 'mallory',
        data: expect.objectContaining({ action: 'exportAudit', path: '/api/audit/export' }),
      }),
    ]);
    // Over HTTP: 403 and the error body, before any byte of an export.
    const res = await fetch(`${env['MECHANIC_API_URL']}/api/audit/export?format=jsonl`, {
      headers: { authorization: `Bearer ${as('mallory')['MECHANIC_TOKEN']}` },
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: { code: 'FORBIDDEN' } });
  });

  test.each([
    [['--format', 'xml'], 'mechanic: --format must be one of jsonl, csv, ocsf, parquet, got "xml"\n'],
    [[], 'mechanic: name the format with --format jsonl|csv|ocsf|parquet\n'],
    [
      ['--format', 'csv', '--since', 'yesterday'],
      'mechanic: since must be an ISO 8601 date or time such as 2026-03-01 or 2026-03-01T12:00:00Z, got "yesterday"\n',
    ],
    [
      ['--format', 'csv', '--since', '2026-03-02', '--until', '2026-03-01'],
      'mechanic: until (2026-03-01) must be later than since (2026-03-02)\n',
    ],
    [
      ['--format', 'csv', '--execution', 'no such/run'],
      'mechanic: "no such/run" is not an execution id; they look like mx-ab12cd34ef (see mechanic audit list)\n',
    ],
    [['--format', 'parquet'], 'mechanic: Parquet is binary: name the file to write with --out <file>\n'],
  ])('bad input %j is one sentence and exit 2', async (args, stderr) => {
    const r = await runCli(['audit', 'export', ...args], as('dave'));
    expect(r).toEqual({ code: 2, stdout: '', stderr });
  });

  test('the API answers a bad range or format with 400 and one sentence', async () => {
    const get = (qs: string) =>
      fetch(`${env['MECHANIC_API_URL']}/api/audit/export?${qs}`, {
        headers: { authorization: `Bearer ${as('dave')['MECHANIC_TOKEN']}` },
      });
    const bad = await get('format=csv&until=tomorrow');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({
      error: {
        code: 'USAGE',
        message: 'until must be an ISO 8601 date or time such as 2026-03-01 or 2026-03-01T12:00:00Z, got "tomorrow"',
      },
    });
    expect((await get('format=xml')).status).toBe(400);
    const ok = await get('format=ocsf&execution=mx-every-2');
    expect(ok.headers.get('content-disposition')).toMatch(
      /^attachment; filename="mechanic-audit-\d{8}T\d{6}Z\.ocsf\.json"$/,
    );
    expect(ok.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect((JSON.parse(await ok.text()) as unknown[]).length).toBe(
      events.filter((e) => e.executionId === 'mx-every-2').length,
    );
  });

  test('an export the server cuts off part-way fails in one sentence and leaves no file', async () => {
    // A server that starts the download, then dies: what the real one does when a page fails mid-stream.
    const dying = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write('{"eventId":"a"}\n');
      setTimeout(() => res.destroy(), 50);
    });
    await new Promise<void>((resolve) => dying.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(dying.address() as AddressInfo).port}`;
      const file = path.join(home, 'cut.jsonl');
      const r = await runCli(['audit', 'export', '--format', 'jsonl', '--out', file], {
        ...as('dave'),
        MECHANIC_API_URL: url,
      });
      expect(r).toMatchObject({
        code: 3,
        stdout: '',
        stderr: `mechanic: the server stopped the export part-way (its log says why); nothing was written to ${file}; run the export again\n`,
      });
      await expect(readFile(file)).rejects.toMatchObject({ code: 'ENOENT' });
      expect((await readdir(home)).filter((f) => f.includes('partial'))).toEqual([]);
    } finally {
      await new Promise<void>((resolve) => dying.close(() => resolve()));
    }
  });

  test('show: one run in order as a timeline, and --json; list and verify take --json too', async () => {
    const r = await runCli(['audit', 'show', 'mx-every-0'], as('dave'));
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toContain(
      'execution mx-every-0\n  runbook  deploy-web@3\n  by       alice: "deploy =HYPERLINK("x") "quoted", with commas"\n  targets  i-0abc, i-0def\n',
    );
    expect(out).toMatch(
      /#\d+\s+2026-03-01T09:00:30\.000Z\s+\+30s\s+approval\.granted\s+carol\s+plan pppppppppppp "looks right"/,
    );
    expect(out).toMatch(/step\.instance\s+mechanic\s+restart on i-0abc: Success \(exit 0\)/);
    // Output a person could have typed is inert: no escape sequence, no bidi control reaches the terminal.
    expect(out).not.toMatch(/[\u001b\u202e]/);
    const json = await runCli(['audit', 'show', 'mx-every-0', '--json'], as('dave'));
    expect((JSON.parse(json.stdout) as AuditRecord[]).map((x) => x.eventId)).toEqual(
      events.filter((e) => e.executionId === 'mx-every-0').map((e) => e.eventId),
    );
    const list = await runCli(['audit', 'list', '--execution', 'mx-every-1', '--json'], as('dave'));
    expect((JSON.parse(list.stdout) as AuditRecord[]).length).toBe(
      events.filter((e) => e.executionId === 'mx-every-1').length,
    );
    const verify = await runCli(['audit', 'verify', '--json'], as('dave'));
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true });
    const missing = await runCli(['audit', 'show', 'mx-nothing'], as('dave'));
    expect(missing).toMatchObject({
      code: 1,
      stderr: 'mechanic: the audit log has no records of execution mx-nothing\n',
    });
    const bad = await runCli(['audit', 'show', '../etc'], as('dave'));
    expect(bad.code).toBe(2);
  });
});
