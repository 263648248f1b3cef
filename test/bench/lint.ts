/**
 * `npm run bench:lint`: how long `mechanic runbook lint` takes on the broken-runbook corpus (the
 * 40-odd files of test/corpus/broken-runbooks), the way a pre-commit hook runs it. Goal: under a
 * second for the whole command.
 *
 * - "command, compiled": the real CLI in a fresh process, loading lint from its compiled cache
 *   (cli/tui/bundle-cache.ts; what every run after the first one after an edit does): Node start,
 *   one pre-built file, the bash grammar, then linting — what an author waits for.
 * - "command, from sources": the same with MECHANIC_LINT_CACHE=off (the TypeScript loader
 *   transforming each source file): the first run after an edit, and every run before the cache.
 * - "lint only": the same files linted in this process once everything is loaded: the work itself.
 *
 * Not a test: it prints numbers and asserts nothing (tests never time anything).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildCache, cacheDir, inputsDigest, type Manifest } from '../../cli/tui/bundle-cache.ts';
import { lintRunbookBytes } from '../../src/core/lint.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CORPUS = path.join(ROOT, 'test/corpus/broken-runbooks');
const RUNS = Number(process.env['BENCH_RUNS'] ?? 10);

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (/\.ya?ml$/.test(e.name)) return statSync(full).isFile() ? [full] : [];
    return e.isDirectory() ? files(full) : [];
  });
}

function stats(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { n: sorted.length, median: at(0.5), p95: at(0.95) };
}
const ms = (v: number) => `${v.toFixed(v < 10 ? 2 : 0)} ms`;

// The compiled lint's cache is the bench's own, built fresh, so no earlier cache is measured.
const cacheHome = mkdtempSync(path.join(tmpdir(), 'mechanic-bench-lint-'));
const compiledEnv: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: cacheHome };
delete compiledEnv['MECHANIC_LINT_CACHE'];
const sourcesEnv: NodeJS.ProcessEnv = { ...compiledEnv, MECHANIC_LINT_CACHE: 'off' };
const dir = cacheDir('lint', compiledEnv);
let rebuilds = 0;
/** Sources edited meanwhile (a checkout being worked on) make the cache stale: rebuilt first, not measured. */
async function freshCache(): Promise<void> {
  let fresh = false;
  try {
    const m = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
    fresh = inputsDigest(ROOT, m.inputs, process.version, 'lint') === m.digest;
  } catch {
    // no cache yet, or an input is gone: stale
  }
  if (!fresh) {
    rebuilds++;
    await buildCache('lint', dir);
  }
}

/**
 * CPU time (user + system) of this process's finished children, in ms, from Linux's /proc (clock
 * ticks of 10 ms); undefined elsewhere. On a machine shared with other work, wall time says what an
 * author waits, CPU time what the command costs.
 */
function childrenCpuMs(): number | undefined {
  try {
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
    // After "pid (comm) ": state is field 3, cutime and cstime are fields 16 and 17.
    return (Number(fields[13]) + Number(fields[14])) * 10;
  } catch {
    return undefined;
  }
}

function lintCommand(env: NodeJS.ProcessEnv, cpu: number[]): number {
  const cpuBefore = childrenCpuMs();
  const start = performance.now();
  try {
    execFileSync(process.execPath, [path.join(ROOT, 'bin/mechanic.js'), 'runbook', 'lint', CORPUS], {
      stdio: 'pipe',
      env,
    });
  } catch (e) {
    // Exit 1 is the expected answer for a corpus of broken files; anything else is a real failure.
    if ((e as { status?: number }).status !== 1) throw e;
  }
  const elapsed = performance.now() - start;
  const cpuAfter = childrenCpuMs();
  if (cpuBefore !== undefined && cpuAfter !== undefined) cpu.push(cpuAfter - cpuBefore);
  return elapsed;
}

// Alternated, so a machine busier in one half of the run does not favour either.
const compiled: number[] = [];
const sources: number[] = [];
const compiledCpu: number[] = [];
const sourcesCpu: number[] = [];
try {
  for (let i = 0; i < RUNS; i++) {
    await freshCache();
    compiled.push(lintCommand(compiledEnv, compiledCpu));
    sources.push(lintCommand(sourcesEnv, sourcesCpu));
  }
} finally {
  rmSync(cacheHome, { recursive: true, force: true });
}

const corpus = files(CORPUS).map((f) => [f, readFileSync(f)] as const);
const inProcess: number[] = [];
for (let i = 0; i < RUNS * 5; i++) {
  const start = performance.now();
  let problems = 0;
  for (const [f, bytes] of corpus) problems += lintRunbookBytes(f, bytes).problems.length;
  inProcess.push(performance.now() - start);
  if (problems === 0) throw new Error('the corpus linted clean: the bench is not measuring lint');
}

const c = stats(compiled);
const s = stats(sources);
const l = stats(inProcess);
const cpu = (samples: number[]) => (samples.length ? ms(stats(samples).median) : '—');
console.log(`| lint bench (${corpus.length + 1} corpus files) | n | median | p95 | median CPU | goal |`);
console.log('| --- | --- | --- | --- | --- | --- |');
console.log(
  `| command: mechanic runbook lint <corpus>, fresh process, compiled | ${c.n} | ${ms(c.median)} | ${ms(c.p95)} | ${cpu(compiledCpu)} | < 1 s |`,
);
console.log(
  `| command: the same from sources (MECHANIC_LINT_CACHE=off) | ${s.n} | ${ms(s.median)} | ${ms(s.p95)} | ${cpu(sourcesCpu)} | — |`,
);
console.log(`| lint only, in process, everything loaded | ${l.n} | ${ms(l.median)} | ${ms(l.p95)} | — | — |`);
if (rebuilds > 1) console.log(`(the cache was rebuilt ${rebuilds - 1} time(s): sources changed during the run)`);
