/**
 * An audit export's memory stays flat whatever the size of the log (README, "Exports"): the same
 * export of a real SQLite log of N events and of 8N events, each in a child process started with
 * --expose-gc (test/helpers/pins-export-heap.ts), holds about the same live heap — a page of
 * records (1,000, the default) or a Parquet row group, never the log. The bound is a ratio with a
 * generous margin, not a time: an export that kept what it read would hold eight times as much.
 * Parquet is written in row groups of 1,000 rows here (10,000 by default) so that both logs span
 * several groups while staying cheap to fill.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AUDIT_EXPORT_FORMATS } from '../../src/core/audit-export.ts';
import { EXPORT_PAGE_SIZE } from '../../src/store/audit-export.ts';

const CHILD = fileURLToPath(new URL('../helpers/pins-export-heap.ts', import.meta.url));
const N = 2000;
const ROW_GROUP = 1000;
const MiB = 1024 * 1024;

interface Measured {
  readonly events: number;
  readonly formats: Record<string, { bytes: number; liveGrowth: number }>;
}

function measure(events: number, dir: string): Promise<Measured> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', CHILD, String(events), dir, String(ROW_GROUP)],
      { env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' }, timeout: 600_000 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`the export child failed: ${stderr}`));
        else resolve(JSON.parse(stdout) as Measured);
      },
    );
  });
}

describe('an audit export holds a page, not the log', () => {
  let dir: string;
  let small: Measured;
  let large: Measured;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mechanic-export-heap-'));
    // One after the other: each measures its own process's heap, undisturbed by the other.
    small = await measure(N, dir);
    large = await measure(8 * N, dir);
  }, 600_000);
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test.each(AUDIT_EXPORT_FORMATS)('%s: eight times the events, about the same live heap', (format) => {
    // Both logs span several pages (and row groups): the export really read page after page.
    expect(N / EXPORT_PAGE_SIZE).toBeGreaterThanOrEqual(2);
    expect(N / ROW_GROUP).toBeGreaterThanOrEqual(2);
    const a = small.formats[format]!;
    const b = large.formats[format]!;
    // The larger export wrote about eight times the bytes ...
    expect(b.bytes).toBeGreaterThan(7 * a.bytes);
    // ... and held at most half as much live heap again as the smaller one, plus 3 MiB for the
    // noise of a heap measured to the byte (compiled code, caches). Holding the log would add
    // about 10 MiB for the 14,000 more records.
    expect(b.liveGrowth, `${format}: ${a.liveGrowth} → ${b.liveGrowth} bytes`).toBeLessThan(
      1.5 * a.liveGrowth + 3 * MiB,
    );
  });
});
