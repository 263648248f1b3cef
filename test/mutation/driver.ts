/**
 * A helper for judging the mutants of one file quickly on a loaded machine; Stryker's own run
 * (`npm run mutate`, docs/mutation.md) stays the reference.
 *
 *   npx tsx test/mutation/driver.ts --mutate src/core/lint.ts[:from-to,…] \
 *     --tests 'test/unit/runbook-lint.test.ts,test/unit/mutants-lint*.test.ts' [--json out.json]
 *
 * It instruments the file with Stryker's own instrumenter (the same mutants, in the same order,
 * with the same ids as `stryker run --mutate` on that file alone), loads the test files in this
 * one process (vitest's `expect`, a small stand-in for the rest: vitest-shim.ts), and runs each
 * test once with no mutant to learn which mutants it reaches. Then it switches each mutant on in
 * turn (`globalThis.__stryker__.activeMutant`, the switch Stryker's instrumented code reads) and
 * runs the tests that reach it until one fails. As with `ignoreStatic`, a mutant reached only
 * while modules load is ignored; a mutant no test reaches has no coverage. A mutant that loops is
 * stopped by Stryker's hit limit (100 times the hits of its tests) and counts as timed out.
 *
 * What it cannot judge: a test that needs vitest's runner (inline snapshots) fails its first run
 * and is left out, and a test that spawns a child process runs the file unmutated. Both are
 * listed, so a kill Stryker would make and this driver cannot is a known, named gap.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { register } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { Instrumenter } from '@stryker-mutator/instrumenter';
import type { Logger } from '@stryker-mutator/api/logging';
import { transformSync } from 'esbuild';
import type * as Shim from './vitest-shim.ts';
import type { CollectedTest } from './vitest-shim.ts';

interface Namespace {
  activeMutant?: string | undefined;
  currentTestId?: string | undefined;
  hitCount?: number | undefined;
  hitLimit?: number | undefined;
  mutantCoverage?: { static: Record<string, number>; perTest: Record<string, Record<string, number>> };
}

type Status = 'Killed' | 'Timeout' | 'Survived' | 'NoCoverage' | 'Ignored';
interface Judged {
  readonly id: string;
  readonly line: number;
  readonly column: number;
  readonly endLine: number;
  readonly endColumn: number;
  readonly mutatorName: string;
  readonly original: string;
  readonly replacement: string;
  readonly status: Status;
  readonly killedBy?: string;
  readonly coveredBy: number;
}

const out = (s: string) => process.stdout.write(`${s}\n`);

const { values } = parseArgs({
  options: {
    mutate: { type: 'string' },
    tests: { type: 'string' },
    json: { type: 'string' },
    quiet: { type: 'boolean', default: false },
  },
});
if (!values.mutate || !values.tests) {
  process.stderr.write('usage: driver.ts --mutate file[:from-to,…] --tests a.test.ts,b*.test.ts [--json out.json]\n');
  process.exit(2);
}

// --- what to mutate, and which tests ----------------------------------------------------------------

const [fileArg, ...rangeArgs] = values.mutate.split(/[:,]/).filter((s) => s !== '');
const mutateFile = path.resolve(fileArg!);
const ranges = rangeArgs.map((r) => {
  const [from, to] = r.split('-').map(Number);
  if (!from || !to) throw new Error(`a line range is from-to, like 12-40; got ${r}`);
  return { start: { line: from - 1, column: 0 }, end: { line: to - 1, column: Number.MAX_SAFE_INTEGER } };
});

/** Test paths, with `*` allowed in the file name part. */
function testFiles(list: string): string[] {
  return list.split(',').flatMap((p) => {
    if (!p.includes('*')) return [path.resolve(p)];
    const dir = path.resolve(path.dirname(p));
    const re = new RegExp(
      `^${path
        .basename(p)
        .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')}$`,
    );
    return readdirSync(dir)
      .filter((f) => re.test(f))
      .sort()
      .map((f) => path.join(dir, f));
  });
}
const files = [...new Set(testFiles(values.tests))];

// --- instrument, and load the instrumented file in place of the original ---------------------------

const silent = () => false;
const logger = new Proxy({} as Logger, {
  get: (_t, key) => (String(key).startsWith('is') ? silent : () => undefined),
});
const source = readFileSync(mutateFile, 'utf8');
const instrumented = await new Instrumenter(logger).instrument(
  [{ name: mutateFile, content: source, mutate: ranges.length > 0 ? ranges : true }],
  { plugins: null, excludedMutations: [], ignorers: [] },
);
const code = transformSync(instrumented.files[0]!.content, {
  loader: 'ts',
  format: 'esm',
  target: 'node20',
  sourcefile: mutateFile,
}).code;

const ns: Namespace = {};
(globalThis as { __stryker__?: Namespace }).__stryker__ = ns;
const shimUrl = new URL('./vitest-shim.ts', import.meta.url).href;
register(new URL('./hooks.ts', import.meta.url), {
  data: { target: pathToFileURL(mutateFile).href, code, shim: shimUrl },
});
const shim = (await import(shimUrl)) as typeof Shim;
for (const f of files) {
  shim.collectFile(path.relative(process.cwd(), f));
  await import(pathToFileURL(f).href);
}
const tests = shim.collectedTests();

// --- running one test -----------------------------------------------------------------------------

async function runTest(t: CollectedTest): Promise<unknown> {
  let failure: unknown;
  let timer: NodeJS.Timeout | undefined;
  try {
    for (const scope of t.scopes) {
      if (!scope.ran) {
        scope.ran = true;
        for (const h of scope.beforeAll) await h();
      }
    }
    for (const scope of t.scopes) for (const h of scope.beforeEach) await h();
    const context = { expect: (await import('vitest')).expect, task: { name: t.name }, skip: () => undefined };
    const args = t.args.length > 0 ? t.args : [context];
    await Promise.race([
      (t.fn as (...a: unknown[]) => unknown)(...args),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`test timed out after ${t.timeoutMs} ms`)), t.timeoutMs);
      }),
    ]);
  } catch (e) {
    failure = e ?? new Error('a test threw nothing');
  } finally {
    clearTimeout(timer);
    for (const scope of [...t.scopes].reverse()) {
      for (const h of scope.afterEach) {
        try {
          await h();
        } catch (e) {
          failure ??= e;
        }
      }
    }
  }
  return failure;
}

// --- the first run: which tests pass, and which mutants each reaches -------------------------------

const started = Date.now();
const passing: CollectedTest[] = [];
const unjudged: { test: CollectedTest; why: string }[] = [];
for (const t of tests) {
  ns.currentTestId = t.id;
  const failure = await runTest(t);
  ns.currentTestId = undefined;
  if (failure === undefined) passing.push(t);
  else unjudged.push({ test: t, why: String((failure as Error).message ?? failure).split('\n')[0]! });
}
// A copy: the instrumented code keeps counting hits while mutants run.
const coverage = structuredClone(ns.mutantCoverage ?? { static: {}, perTest: {} });

// --- each mutant ------------------------------------------------------------------------------------

const lines = source.split('\n');
function textAt(start: { line: number; column: number }, end: { line: number; column: number }): string {
  if (start.line === end.line) return lines[start.line]!.slice(start.column, end.column);
  return [
    lines[start.line]!.slice(start.column),
    ...lines.slice(start.line + 1, end.line),
    lines[end.line]!.slice(0, end.column),
  ].join('\n');
}

const judged: Judged[] = [];
for (const m of instrumented.mutants) {
  const covering = passing.filter((t) => coverage.perTest[t.id]?.[m.id]);
  let status: Status;
  let killedBy: string | undefined;
  if (covering.length === 0) {
    status = coverage.static[m.id] ? 'Ignored' : 'NoCoverage';
  } else {
    const hits = covering.reduce((n, t) => n + (coverage.perTest[t.id]?.[m.id] ?? 0), 0);
    ns.activeMutant = m.id;
    ns.hitCount = 0;
    ns.hitLimit = Math.max(100_000, hits * 100);
    status = 'Survived';
    for (const t of covering) {
      ns.hitCount = 0;
      const failure = await runTest(t);
      if (failure !== undefined) {
        status = /Hit count limit reached|timed out after/.test(String((failure as Error).message))
          ? 'Timeout'
          : 'Killed';
        killedBy = t.name;
        break;
      }
    }
    ns.activeMutant = undefined;
    ns.hitCount = undefined;
    ns.hitLimit = undefined;
  }
  const { start, end } = m.location;
  judged.push({
    id: m.id,
    line: start.line + 1,
    column: start.column + 1,
    endLine: end.line + 1,
    endColumn: end.column + 1,
    mutatorName: m.mutatorName,
    original: textAt(start, end),
    replacement: m.replacement,
    status,
    ...(killedBy === undefined ? {} : { killedBy }),
    coveredBy: covering.length,
  });
}

// A mutant may leave state behind (a module-level cache): the tests must still pass unmutated.
const leaked: string[] = [];
for (const t of passing) if ((await runTest(t)) !== undefined) leaked.push(t.name);

// --- report -----------------------------------------------------------------------------------------

const count = (s: Status) => judged.filter((j) => j.status === s).length;
const detected = count('Killed') + count('Timeout');
const valid = detected + count('Survived') + count('NoCoverage');
const score = valid === 0 ? 100 : (100 * detected) / valid;
const rel = path.relative(process.cwd(), mutateFile);
out(`${rel}${rangeArgs.length > 0 ? `:${rangeArgs.join(',')}` : ''}: ${judged.length} mutants`);
out(
  `  killed ${count('Killed')}, timed out ${count('Timeout')}, survived ${count('Survived')}, ` +
    `no coverage ${count('NoCoverage')}, ignored (static) ${count('Ignored')}`,
);
out(`  score ${score.toFixed(2)} % (killed + timed out) / (killed + timed out + survived + no coverage)`);
out(
  `  ${tests.length} tests in ${files.length} files, ${passing.length} judged, ${Math.round((Date.now() - started) / 1000)} s`,
);
for (const u of unjudged) out(`  not judged (fails without a mutant): ${u.test.name}: ${u.why}`);
for (const l of leaked) out(`  WARNING: fails unmutated after the mutants ran (state left behind): ${l}`);
if (!values.quiet) {
  for (const j of judged.filter((x) => x.status === 'Survived' || x.status === 'NoCoverage')) {
    const flat = (s: string) => (s.length > 80 ? `${s.slice(0, 77).replace(/\s+/g, ' ')}…` : s.replace(/\s+/g, ' '));
    out(`  ${j.status} #${j.id} ${j.line}:${j.column} ${j.mutatorName}: ${flat(j.original)} → ${flat(j.replacement)}`);
  }
}
if (values.json) {
  writeFileSync(
    values.json,
    `${JSON.stringify({ file: rel, ranges: rangeArgs, tests: files.map((f) => path.relative(process.cwd(), f)), score, unjudged: unjudged.map((u) => ({ test: u.test.name, why: u.why })), leaked, mutants: judged }, null, 1)}\n`,
  );
}
process.exit(leaked.length > 0 ? 1 : 0);
