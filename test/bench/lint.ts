/**
 * `npm run bench:lint`: how long `mechanic runbook lint` takes on the broken-runbook corpus (the
 * 40-odd files of test/corpus/broken-runbooks), the way a pre-commit hook runs it. Goal: under a
 * second for the whole command.
 *
 * - "command": the real CLI in a fresh process (Node start, the TypeScript loader, loading the
 *   runbook schema and the bash grammar, then linting) — what an author waits for.
 * - "lint only": the same files linted in this process once everything is loaded: the work itself.
 *
 * Not a test: it prints numbers and asserts nothing (tests never time anything).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
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

const command: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const start = performance.now();
  try {
    execFileSync(process.execPath, [path.join(ROOT, 'bin/mechanic.js'), 'runbook', 'lint', CORPUS], { stdio: 'pipe' });
  } catch (e) {
    // Exit 1 is the expected answer for a corpus of broken files; anything else is a real failure.
    if ((e as { status?: number }).status !== 1) throw e;
  }
  command.push(performance.now() - start);
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

const c = stats(command);
const l = stats(inProcess);
console.log(`| lint bench (${corpus.length + 1} corpus files) | n | median | p95 | goal |`);
console.log('| --- | --- | --- | --- | --- |');
console.log(
  `| command: mechanic runbook lint <corpus>, fresh process | ${c.n} | ${ms(c.median)} | ${ms(c.p95)} | < 1 s |`,
);
console.log(`| lint only, in process, everything loaded | ${l.n} | ${ms(l.median)} | ${ms(l.p95)} | — |`);
