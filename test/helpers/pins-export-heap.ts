/**
 * Run by test/integration/pins-export-memory.test.ts in a child process started with --expose-gc:
 * `node --expose-gc --import tsx pins-export-heap.ts <events> <dir> [rowGroupSize]` fills a new SQLite audit log
 * in <dir> with <events> chained records (realistic runs, as the export bench fills it), exports it
 * whole in every format through the store's encoder (its default page size; Parquet in row groups
 * of rowGroupSize rows, the default when not given) (what GET /api/audit/export streams) into a
 * sink that only counts bytes, and prints one JSON line: per format, the bytes written and the
 * most live heap the export held above where it started. Live means after a garbage collection,
 * taken after every chunk (every page; every row group for Parquet), so garbage does not count.
 */
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { GENESIS_HASH, chainHash } from '../../src/core/audit-chain.ts';
import { AUDIT_EXPORT_FORMATS, type AuditExportFormat } from '../../src/core/audit-export.ts';
import { canonicalJson } from '../../src/core/canonical.ts';
import { auditExportChunks } from '../../src/store/audit-export.ts';
import { openDatabase } from '../../src/store/db.ts';
import { runSample } from './audit-samples.ts';

const total = Number(process.argv[2]);
const dir = process.argv[3];
const rowGroupSize = process.argv[4] === undefined ? undefined : Number(process.argv[4]);
const gc = (globalThis as { gc?: () => void }).gc;
if (!Number.isInteger(total) || total < 1 || !dir)
  throw new Error('usage: pins-export-heap.ts <events> <dir> [rowGroupSize]');
if (!gc) throw new Error('run with node --expose-gc');

const file = path.join(dir, `audit-${total}.db`);
const db = await openDatabase({ kind: 'sqlite', file });
try {
  // Filled in one transaction outside the store: appends are not what is measured.
  const sqlite = new SQLite(file);
  const insert = sqlite.prepare(
    'insert into audit_events (seq, event_id, execution_id, type, actor, at, data, prev_hash, hash, recorded_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  sqlite.transaction(() => {
    let seq = 0;
    let prev = GENESIS_HASH;
    for (let run = 0; seq < total; run++) {
      const at = new Date(Date.parse('2026-01-01T00:00:00Z') + run * 60_000).toISOString();
      for (const e of runSample(`mx-h${run.toString(36).padStart(8, '0')}`, at)) {
        if (seq >= total) break;
        const hash = chainHash(prev, e);
        seq++;
        insert.run(seq, e.eventId, e.executionId, e.type, e.actor, e.at, canonicalJson(e.data), prev, hash, e.at);
        prev = hash;
      }
    }
  })();
  sqlite.close();

  /**
   * One export, in a function of its own: the loop's iterator lives in this frame, and a frame left
   * running (the module's) would keep the last export's generator, and what it holds, alive.
   */
  const measure = async (format: AuditExportFormat) => {
    gc();
    const before = process.memoryUsage().heapUsed;
    let live = before;
    let bytes = 0;
    for await (const chunk of auditExportChunks(db, {}, format, rowGroupSize ? { rowGroupSize } : {})) {
      bytes += chunk.byteLength;
      gc();
      live = Math.max(live, process.memoryUsage().heapUsed);
    }
    return { bytes, liveGrowth: live - before };
  };
  const result: Record<string, { bytes: number; liveGrowth: number }> = {};
  for (const format of AUDIT_EXPORT_FORMATS) result[format] = await measure(format);
  process.stdout.write(`${JSON.stringify({ events: total, formats: result })}\n`);
} finally {
  await db.destroy();
}
