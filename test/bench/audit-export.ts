/**
 * `npm run bench:export [-- <events>]`: audit export throughput, events per second per format, over
 * a real SQLite log of 200,000 events by default (at least 100,000), and the heap the export used.
 *
 * The log is filled directly with chained rows (realistic runs: request with its plan, votes,
 * credentials, steps with output, end), since appends are not what is measured here. Each format
 * is then exported whole through the store's encoder — what GET /api/audit/export streams — into
 * a sink that only counts bytes. The heap is sampled after every chunk (peak heap, garbage
 * included) and, every 20 chunks (Parquet: every row group), after a garbage collection whose time is not counted (peak live:
 * what the export still holds). If the export held the log, peak live would grow with the count.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Insertable } from 'kysely';
import { GENESIS_HASH, chainHash } from '../../src/core/audit-chain.ts';
import { AUDIT_EXPORT_FORMATS } from '../../src/core/audit-export.ts';
import { canonicalJson } from '../../src/core/canonical.ts';
import { auditExportChunks } from '../../src/store/audit-export.ts';
import { openDatabase } from '../../src/store/db.ts';
import type { AuditEventsTable } from '../../src/store/schema.ts';
import { runSample } from '../helpers/audit-samples.ts';

const total = Number(process.argv[2] ?? 200_000);
if (!Number.isInteger(total) || total < 1000) throw new Error('the event count must be an integer of at least 1000');
const gc = (globalThis as { gc?: () => void }).gc;

const home = await mkdtemp(path.join(tmpdir(), 'mechanic-bench-export-'));
const db = await openDatabase({ kind: 'sqlite', file: path.join(home, 'audit.db') });
try {
  const fillStart = performance.now();
  let seq = 0;
  let prevHash = GENESIS_HASH;
  let batch: Insertable<AuditEventsTable>[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await db.insertInto('audit_events').values(batch).execute();
    batch = [];
  };
  for (let run = 0; seq < total; run++) {
    const at = new Date(Date.parse('2026-01-01T00:00:00Z') + run * 60_000).toISOString();
    for (const e of runSample(`mx-b${run.toString(36).padStart(8, '0')}`, at)) {
      if (seq >= total) break;
      const hash = chainHash(prevHash, e);
      seq++;
      batch.push({
        seq,
        event_id: e.eventId,
        execution_id: e.executionId,
        type: e.type,
        actor: e.actor,
        at: e.at,
        data: canonicalJson(e.data),
        prev_hash: prevHash,
        hash,
        recorded_at: e.at,
      });
      prevHash = hash;
      if (batch.length >= 500) await flush();
    }
  }
  await flush();
  const fillSeconds = (performance.now() - fillStart) / 1000;

  const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  process.stdout.write(
    `audit export of ${total.toLocaleString('en')} events (SQLite, filled in ${fillSeconds.toFixed(1)} s; ` +
      `Node ${process.version}, load ${loadavg()[0]!.toFixed(2)}${gc ? '' : '; run with --expose-gc for comparable heap numbers'})\n`,
  );
  process.stdout.write('format   events/s   MB/s    output      time    heap before  peak heap  peak live\n');
  for (const format of AUDIT_EXPORT_FORMATS) {
    gc?.();
    const before = process.memoryUsage().heapUsed;
    let peak = before;
    let live = before;
    let gcMs = 0;
    let bytes = 0;
    let chunks = 0;
    const t = performance.now();
    for await (const chunk of auditExportChunks(db, {}, format)) {
      bytes += chunk.byteLength;
      peak = Math.max(peak, process.memoryUsage().heapUsed);
      // Every 20 chunks (every row group for Parquet), what is still reachable: collected first, its time left out.
      if (gc && (++chunks % 20 === 0 || format === 'parquet')) {
        const g = performance.now();
        gc();
        live = Math.max(live, process.memoryUsage().heapUsed);
        gcMs += performance.now() - g;
      }
    }
    const seconds = (performance.now() - t - gcMs) / 1000;
    process.stdout.write(
      `${format.padEnd(8)} ${Math.round(total / seconds)
        .toLocaleString('en')
        .padStart(9)}  ${(bytes / 1e6 / seconds).toFixed(1).padStart(5)}  ${mib(bytes).padStart(10)}  ${seconds
        .toFixed(2)
        .padStart(
          6,
        )} s  ${mib(before).padStart(10)}  ${mib(peak).padStart(9)}  ${gc ? mib(live).padStart(9) : '      n/a'}\n`,
    );
  }
} finally {
  await db.destroy();
  await rm(home, { recursive: true, force: true });
}
