/**
 * `audit verify`'s walk over a large SQLite log, split into ranges of seq walked at once on worker
 * threads (verify-worker.ts), each through its own read-only connection. Hashing and parsing a
 * million records is most of verify's time, and every record can be checked on its own given the
 * hash before it — which the range's first stored prev_hash stands in for until the main thread
 * checks it against the previous range's last hash (see mergeRanges).
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { GENESIS_HASH } from '../core/audit-chain.ts';
import type { ExecutionSummary } from '../core/execution-index.ts';
import type { SignedCheckpoints } from './signed-checkpoints.ts';
import { checkRow, type SignedAt, type WalkProblem } from './verify-rows.ts';
import type { RangeResult, RangeTask } from './verify-worker.ts';

/** Threads to walk with: one per core, at most 8 (reading one SQLite file stops scaling well before). */
export function verifyThreads(): number {
  return Math.min(8, availableParallelism());
}

/**
 * What a walk thread runs: verify-worker.ts and everything it imports, bundled by esbuild in memory
 * and loaded as one module from a data: URL — no file written, no loader thread, no module resolved
 * one by one (through tsx's loader, registered in each thread, that was about 0.4 s of CPU per
 * thread). better-sqlite3 (native) is imported from its installed file, resolved from this file.
 * Built once per process; undefined when esbuild fails, and verify then walks on one thread.
 */
let bundled: Promise<URL | undefined> | undefined;

async function walkerModule(): Promise<URL | undefined> {
  bundled ??= bundleWalker();
  const module = await bundled;
  if (!module) bundled = undefined; // tried again by the next verify
  return module;
}

async function bundleWalker(): Promise<URL | undefined> {
  const require = createRequire(import.meta.url);
  try {
    const { build } = await import('esbuild');
    const out = await build({
      entryPoints: [fileURLToPath(new URL('./verify-worker.ts', import.meta.url))],
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: `node${process.versions.node.split('.')[0]}`,
      write: false,
      logLevel: 'silent',
      plugins: [
        {
          name: 'installed-native',
          setup(b) {
            b.onResolve({ filter: /^better-sqlite3$/ }, (a) => ({
              path: pathToFileURL(require.resolve(a.path)).href,
              external: true,
            }));
          },
        },
      ],
    });
    return new URL(`data:text/javascript,${encodeURIComponent(out.outputFiles[0]!.text)}`);
  } catch {
    return undefined;
  }
}

/** One walk thread, started before its range is known: it loads its module while verify reads the checkpoints. */
interface Walker {
  run(task: RangeTask): Promise<RangeResult>;
  stop(): Promise<void>;
}

function startWalker(module: URL): Walker {
  // A young generation larger than V8's default: a range allocates a few strings and objects per
  // record, nearly all short-lived, and collecting them less often saved about a tenth of the walk
  // (64 MB: about 70 MB more at peak for two threads over a million records).
  const worker = new Worker(module, {
    workerData: { verifyWalker: true },
    resourceLimits: { maxYoungGenerationSizeMb: 64 },
  });
  // The thread walks one range and answers once; an error or exit before that (while it loads,
  // or once stopped unused) is its answer too, and what settles first stands.
  const answer = new Promise<RangeResult>((resolve, reject) => {
    worker.once('message', (m: { ok: true; result: RangeResult } | { ok: false; error: string }) =>
      m.ok ? resolve(m.result) : reject(new Error(`audit verify's worker failed: ${m.error}`)),
    );
    worker.once('error', reject);
    worker.once('exit', (code) =>
      reject(new Error(`audit verify's worker stopped (exit code ${code}) before it answered`)),
    );
  });
  answer.catch(() => undefined); // a thread stopped unused is not an unhandled rejection
  return {
    run(task) {
      worker.postMessage(task);
      return answer;
    },
    stop: async () => {
      await worker.terminate();
    },
  };
}

/** Walk threads, started ahead of the walk; `close` stops them all, used or not. */
export interface Walkers {
  /**
   * Walks the records with seq up to `upTo` in ranges, one per thread (fewer when there are fewer
   * records than threads). Returns the first problem — the one with the lowest seq, as a
   * record-by-record walk finds it — or the state after `upTo`.
   */
  walk(upTo: number, signed: SignedCheckpoints): Promise<{ problem: WalkProblem } | { state: WalkState }>;
  close(): Promise<void>;
}

/** Walk threads for `file`, started at once; undefined when their module cannot be built. */
export async function startWalkers(file: string, threads: number): Promise<Walkers | undefined> {
  const module = await walkerModule();
  if (!module) return undefined;
  const walkers = Array.from({ length: threads }, () => startWalker(module));
  return {
    async walk(upTo, signed) {
      const n = Math.min(threads, upTo);
      const bounds = Array.from({ length: n + 1 }, (_, i) => Math.floor((upTo * i) / n));
      const tasks: RangeTask[] = [];
      for (let i = 0; i < n; i++) {
        const after = i === 0 ? null : bounds[i]!;
        const to = bounds[i + 1]!;
        tasks.push({ file, after, upTo: to, signed: signed.slice(after, to) });
      }
      return mergeRanges(await Promise.all(tasks.map((t, i) => walkers[i]!.run(t))), signed);
    },
    async close() {
      await Promise.all(walkers.map((w) => w.stop()));
    },
  };
}

/** The state of the walk after the records up to a seq: where the sequential walk carries on from. */
export interface WalkState {
  prevHash: string;
  lastSeq: number | undefined;
  count: number;
  /** The first end of each execution, by seq. */
  readonly ended: Map<string, number>;
  /** Each execution's summary rebuilt from the log, but for those matched. */
  readonly rebuilt: Map<string, ExecutionSummary>;
  /**
   * Executions whose index row a range's worker found, in its read transaction, equal to the
   * summary of the range's records of theirs; their summaries are not kept (never also in
   * `rebuilt`). One seen in another range too is spanning, rebuilt whole and compared again. A
   * record appended after the worker read is the store's own write, made in one transaction with
   * the row's update.
   */
  readonly matched: Set<string>;
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
    matched: new Set(),
    spanning: new Set(),
  };
}

/** Walks the records with seq up to `upTo` on `threads` threads started for it (Walkers.walk). */
export async function walkInParallel(
  file: string,
  upTo: number,
  threads: number,
  signed: SignedCheckpoints,
): Promise<{ problem: WalkProblem } | { state: WalkState }> {
  const walkers = await startWalkers(file, threads);
  if (!walkers) throw new Error("audit verify's walk threads could not be built");
  try {
    return await walkers.walk(upTo, signed);
  } finally {
    await walkers.close();
  }
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
    for (const id of r.matched) {
      if (seen.has(id)) state.spanning.add(id);
      seen.add(id);
      state.matched.add(id);
    }
    for (const [id, seq] of r.ends) if (!state.ended.has(id)) state.ended.set(id, seq);
  }
  return { state };
}
