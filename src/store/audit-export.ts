/**
 * Audit exports in constant memory: the log is read in pages of at most `pageSize` records by seq
 * (a keyset cursor, so page N costs the same as page 1), each page is encoded and handed on, and
 * nothing else is kept. Parquet is written in row groups of a bounded number of rows: each group
 * is encoded and its bytes handed on before the next is read; only the footer's small per-group
 * metadata stays until the end.
 */
import { readFileSync } from 'node:fs';
import type { Kysely } from 'kysely';
import { ParquetWriter, ByteWriter } from 'hyparquet-writer';
import {
  exportRange,
  csvHeader,
  csvRow,
  jsonlLine,
  ocsfJson,
  parquetRow,
  parquetSchema,
  PARQUET_COLUMNS,
  type AuditExportFormat,
  type AuditExportQuery,
  type StoredAuditRecord,
} from '../core/audit-export.ts';
import type { Database } from './schema.ts';

export { exportRange, type AuditExportQuery } from '../core/audit-export.ts';

export interface AuditExportOptions {
  /** Records per database page (default 1000). */
  readonly pageSize?: number;
  /** Rows per Parquet row group (default 10,000). */
  readonly rowGroupSize?: number;
  /** mechanic's version for OCSF's metadata.product.version (default: package.json's). */
  readonly version?: string;
}

export const EXPORT_PAGE_SIZE = 1000;
export const PARQUET_ROW_GROUP = 10_000;

let packageVersion: string | undefined;
/** mechanic's version, from package.json (read once). */
export function mechanicVersion(): string {
  packageVersion ??= (
    JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  ).version;
  return packageVersion;
}

/** "YYYY-MM-DDTHH:MM" of a time: a prefix every stored `at` of that minute starts with. */
function minutePrefix(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16);
}

/**
 * The records matching `q`, in chain order, as pages of at most `pageSize` records. Times are
 * compared as instants: `at` is stored as the writer gave it (any ISO precision), so the database
 * narrows by minute prefix — which text comparison gets right — and each row is then checked exactly.
 */
export async function* auditExportPages(
  db: Kysely<Database>,
  q: AuditExportQuery,
  pageSize: number = EXPORT_PAGE_SIZE,
): AsyncGenerator<StoredAuditRecord[]> {
  if (!Number.isInteger(pageSize) || pageSize < 1) throw new RangeError(`page size must be a positive integer`);
  const { since, until } = exportRange(q);
  let cursor = 0;
  for (;;) {
    let query = db
      .selectFrom('audit_events')
      .selectAll()
      .where('seq', '>', cursor)
      .orderBy('seq', 'asc')
      .limit(pageSize);
    if (q.executionId !== undefined) query = query.where('execution_id', '=', q.executionId);
    if (since !== undefined) query = query.where('at', '>=', minutePrefix(since));
    // Strictly before the minute after until's minute: every `at` before until passes, a few after are checked below.
    if (until !== undefined) query = query.where('at', '<', minutePrefix(until + 60_000));
    const rows = await query.execute();
    const page: StoredAuditRecord[] = [];
    for (const row of rows) {
      cursor = Number(row.seq);
      const at = Date.parse(row.at);
      if (since !== undefined && !(at >= since)) continue;
      if (until !== undefined && !(at < until)) continue;
      page.push({
        seq: Number(row.seq),
        eventId: row.event_id,
        executionId: row.execution_id,
        type: row.type,
        actor: row.actor,
        at: row.at,
        data: row.data,
        prevHash: row.prev_hash,
        hash: row.hash,
        recordedAt: row.recorded_at,
      });
    }
    if (page.length > 0) yield page;
    if (rows.length < pageSize) return;
  }
}

const encoder = new TextEncoder();

/** Parquet bytes, one row group at a time: a group's bytes are handed on before the next is read. */
async function* parquetChunks(
  pages: AsyncIterable<StoredAuditRecord[]>,
  version: string,
  rowGroupSize: number,
): AsyncGenerator<Uint8Array> {
  const writer = new ByteWriter();
  const pq = new ParquetWriter({
    writer,
    schema: parquetSchema(),
    kvMetadata: [
      { key: 'ocsf.class_uid', value: '6003' },
      { key: 'ocsf.version', value: '1.1.0' },
    ],
    createdBy: `mechanic ${version}`,
  });
  /** What the writer holds, taken out: its offset keeps counting, so file offsets stay right. */
  const take = (): Uint8Array => {
    const bytes = writer.getBytes().slice();
    writer.index = 0;
    return bytes;
  };
  let rows: Record<string, unknown>[] = [];
  const flush = async (): Promise<Uint8Array> => {
    const columnData = PARQUET_COLUMNS.map((name) => ({ name, data: rows.map((r) => r[name]) }));
    // Synchronous with this writer (it has no flush); awaited in case a later version is not.
    await pq.write({ columnData, rowGroupSize: rows.length });
    rows = [];
    return take();
  };
  for await (const page of pages) {
    for (const r of page) {
      rows.push(parquetRow(r, { version }));
      if (rows.length >= rowGroupSize) yield await flush();
    }
  }
  if (rows.length > 0) yield await flush();
  await pq.finish();
  yield take();
}

/**
 * The export of `q` in `format`, as chunks to write in order: one chunk per page of records (per
 * row group for Parquet). jsonl: one record per line exactly as stored. csv: a header then one row
 * per record (csvRow). ocsf: one JSON array of OCSF API Activity events. parquet: OCSF events in
 * the Security Lake columns (parquetSchema).
 */
export async function* auditExportChunks(
  db: Kysely<Database>,
  q: AuditExportQuery,
  format: AuditExportFormat,
  options: AuditExportOptions = {},
): AsyncGenerator<Uint8Array> {
  // Checked before the first byte, so a bad range is an error answer rather than a cut-off file.
  exportRange(q);
  const pages = auditExportPages(db, q, options.pageSize ?? EXPORT_PAGE_SIZE);
  const version = options.version ?? mechanicVersion();
  switch (format) {
    case 'jsonl':
      for await (const page of pages) yield encoder.encode(page.map(jsonlLine).join(''));
      return;
    case 'csv':
      yield encoder.encode(csvHeader());
      for await (const page of pages) yield encoder.encode(page.map(csvRow).join(''));
      return;
    case 'ocsf': {
      let first = true;
      yield encoder.encode('[');
      for await (const page of pages) {
        const text = page.map((r) => ocsfJson(r, { version })).join(',\n');
        yield encoder.encode(`${first ? '\n' : ',\n'}${text}`);
        first = false;
      }
      yield encoder.encode(first ? ']\n' : '\n]\n');
      return;
    }
    case 'parquet':
      yield* parquetChunks(pages, version, options.rowGroupSize ?? PARQUET_ROW_GROUP);
      return;
  }
}
