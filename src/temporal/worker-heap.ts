/**
 * The V8 flags that bound a worker's JavaScript heaps (MECHANIC_WORKER_HEAP_MB), in one place for the
 * two that apply them: the embedded stack, on the worker's command line (every heap of the process),
 * and the worker itself, for its workflow thread when it was started without them. No imports: the
 * stack's supervisor loads this without the Temporal worker.
 */

/**
 * The young generation's semi-spaces, in MB (V8's default on 64-bit: 16). Measured on the many-runs
 * bench (200 runs, 20 callers, one worker), two rounds of runs alternating with 16: peak RSS 380 → 349
 * and 364 → 348 MiB on average, the worker's CPU time and the throughput the same within the noise of
 * a shared machine.
 */
export const WORKER_SEMI_SPACE_MB = 8;

/** The node/V8 flags for a worker whose heaps are each limited to `heapMb` of old space. */
export function workerHeapFlags(heapMb: number): string[] {
  return [`--max-old-space-size=${heapMb}`, `--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`];
}
