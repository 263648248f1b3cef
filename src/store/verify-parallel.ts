/**
 * `audit verify`'s walk over a large SQLite log, split into ranges of seq walked at once on worker
 * threads (verify-worker.ts), each through its own read-only connection. Hashing and parsing a
 * million records is most of verify's time, and every record can be checked on its own given the
 * hash before it — which the range's first stored prev_hash stands in for until the main thread
 * checks it against the previous range's last hash (see mergeRanges).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { GENESIS_HASH } from '../core/audit-chain.ts';
import type { ExecutionSummary } from '../core/execution-index.ts';
import { checkRow, type CheckpointSource, type SignedAt, type WalkProblem } from './verify-rows.ts';
import type { RangeResult, RangeTask } from './verify-worker.ts';

/** Threads to walk with: one per core, at most 8 (reading one SQLite file stops scaling well before). */
export function verifyThreads(): number {
  return Math.min(8, availableParallelism());
}

/**
 * The workers load verify-worker.ts through tsx's loader, registered in the thread (a worker does
 * not inherit the loader of the process that starts it). Resolved from this file, not the
 * working directory.
 */
function bootCode(): string {
  const require = createRequire(import.meta.url);
  const pkgFile = require.resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as {
    exports: Record<string, { import: { default: string } }>;
  };
  const api = pathToFileURL(path.join(path.dirname(pkgFile), pkg.exports['./esm/api']!.import.default)).href;
  const worker = new URL('./verify-worker.ts', import.meta.url).href;
  return `import(${JSON.stringify(api)}).then(({ register }) => { register(); return import(${JSON.stringify(worker)}); });`;
}

function runRange(code: string, task: RangeTask): Promise<RangeResult> {
  return new Promise<RangeResult>((resolve, reject) => {
    const worker = new Worker(code, { eval: true, workerData: { verifyRange: task } });
    let settled = false;
    worker.once('message', (m: { ok: true; result: RangeResult } | { ok: false; error: string }) => {
      settled = true;
      if (m.ok) resolve(m.result);
      else reject(new Error(`audit verify's worker failed: ${m.error}`));
      void worker.terminate();
    });
    worker.once('error', (e) => {
      settled = true;
      reject(e);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`audit verify's worker stopped (exit code ${code}) before it answered`));
    });
  });
}

/** The state of the walk after the records up to a seq: where the sequential walk carries on from. */
export interface WalkState {
  prevHash: string;
  lastSeq: number | undefined;
  count: number;
  /** The first end of each execution, by seq. */
  readonly ended: Map<string, number>;
  /** Each execution's summary rebuilt from the log. */
  readonly rebuilt: Map<string, ExecutionSummary>;
  /** Executions seen in more than one range: their summaries must be rebuilt from all their records. */
  readonly spanning: Set<string>;
}

/** The walk's state before the first record: at genesis, nothing seen. */
export function freshWalkState(): WalkState {
  return {
    prevHash: GENESIS_HASH,
    lastSeq: undefined,
    count: 0,
    ended: new Map(),
    rebuilt: new Map(),
    spanning: new Set(),
  };
}

/**
 * Walks the records with seq up to `upTo` in `threads` ranges at once. Returns the first problem —
 * the one with the lowest seq, as a record-by-record walk finds it — or the state after `upTo`.
 */
export async function walkInParallel(
  file: string,
  upTo: number,
  threads: number,
  signed: SignedAt,
): Promise<{ problem: WalkProblem } | { state: WalkState }> {
  const code = bootCode();
  const bounds = Array.from({ length: threads + 1 }, (_, i) => Math.floor((upTo * i) / threads));
  const tasks: RangeTask[] = [];
  for (let i = 0; i < threads; i++) {
    const after = i === 0 ? null : bounds[i]!;
    const to = bounds[i + 1]!;
    const inRange: [number, string, CheckpointSource][] = [];
    for (const [seq, cps] of signed) {
      if ((after === null || seq > after) && seq <= to) for (const cp of cps) inRange.push([seq, cp.hash, cp.source]);
    }
    tasks.push({ file, after, upTo: to, signed: inRange });
  }
  const results = await Promise.all(tasks.map((t) => runRange(code, t)));
  return mergeRanges(results, signed);
}

/**
 * Joins the ranges in seq order. A range's first record was linked by its own stored prev_hash and
 * seq: it is checked here again against the previous range's last record, exactly as the walk
 * would have checked it, so a broken link at a boundary is named as anywhere else. The first
 * problem in seq order wins: a boundary before its range's own problems, an earlier range before
 * a later one.
 */
export function mergeRanges(
  results: readonly RangeResult[],
  signed: SignedAt,
): { problem: WalkProblem } | { state: WalkState } {
  const state = freshWalkState();
  const seen = new Set<string>();
  for (const r of results) {
    if (r.first) {
      const link = checkRow(r.first, state.prevHash, (state.lastSeq ?? 0) + 1, signed);
      if (!link.ok) return { problem: link.problem };
    }
    if (r.problem) return { problem: r.problem };
    if (r.count > 0) {
      state.prevHash = r.lastHash;
      state.lastSeq = r.lastSeq;
      state.count += r.count;
    }
    for (const [id, summary] of r.executions) {
      if (seen.has(id)) state.spanning.add(id);
      seen.add(id);
      if (summary) state.rebuilt.set(id, summary);
    }
    for (const [id, seq] of r.ends) if (!state.ended.has(id)) state.ended.set(id, seq);
  }
  return { state };
}
