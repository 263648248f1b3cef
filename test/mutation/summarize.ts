/**
 * Turns Stryker's JSON report into the tables docs/mutation.md and docs/mutation-survivors.md
 * print, so that those figures come from the report and not from a hand count:
 *
 *   npx tsx test/mutation/summarize.ts [reports/mutation/mutation.json] --scores
 *   npx tsx test/mutation/summarize.ts [reports/mutation/mutation.json] --survivors
 *
 * Score = (killed + timed out) / (killed + timed out + survived + no coverage), as Stryker
 * computes its "mutation score"; static mutants left out by `ignoreStatic` are counted apart.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface Mutant {
  readonly mutatorName: string;
  readonly replacement?: string;
  readonly status: string;
  readonly location: { readonly start: { readonly line: number; readonly column: number } };
}
interface FileResult {
  readonly source: string;
  readonly mutants: readonly Mutant[];
}
interface Report {
  readonly files: Readonly<Record<string, FileResult>>;
}

const COUNTED = ['Killed', 'Timeout', 'Survived', 'NoCoverage', 'CompileError', 'RuntimeError', 'Ignored'] as const;
type Counted = (typeof COUNTED)[number];
type Counts = Record<Counted, number> & { total: number };

const GROUPS: readonly { readonly name: string; readonly has: (file: string) => boolean }[] = [
  { name: '`src/core`', has: (f) => f.startsWith('src/core/') },
  { name: '`src/activities`', has: (f) => f.startsWith('src/activities/') },
  { name: '`workflows/state.ts`', has: (f) => f.startsWith('workflows/') },
  { name: 'workflows + activities', has: (f) => !f.startsWith('src/core/') },
];

function emptyCounts(): Counts {
  return { Killed: 0, Timeout: 0, Survived: 0, NoCoverage: 0, CompileError: 0, RuntimeError: 0, Ignored: 0, total: 0 };
}

function add(into: Counts, status: string): void {
  if (!(COUNTED as readonly string[]).includes(status)) throw new Error(`unknown mutant status ${status}`);
  into[status as Counted] += 1;
  into.total += 1;
}

function sum(all: readonly Counts[]): Counts {
  const out = emptyCounts();
  for (const c of all) {
    for (const k of COUNTED) out[k] += c[k];
    out.total += c.total;
  }
  return out;
}

export function score(c: Counts): string {
  const judged = c.Killed + c.Timeout + c.Survived + c.NoCoverage;
  return judged === 0 ? '—' : ((100 * (c.Killed + c.Timeout)) / judged).toFixed(2);
}

function row(name: string, c: Counts): string {
  const errors = c.CompileError + c.RuntimeError;
  const cells = [name, c.total, c.Killed, c.Timeout, c.Survived, c.NoCoverage, errors, c.Ignored, score(c)];
  return `| ${cells.join(' | ')} |`;
}

function scores(report: Report): string {
  const files = Object.keys(report.files).sort();
  const perFile = new Map(files.map((f) => [f, countsOf(report.files[f]!)]));
  const lines = [
    '| group | mutants | killed | timeout | survived | no coverage | errors | ignored | score |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...GROUPS.map((g) => row(`**${g.name}**`, sum(files.filter(g.has).map((f) => perFile.get(f)!)))),
    '',
    '| file | mutants | killed | timeout | survived | no coverage | errors | ignored | score |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...files.map((f) => row(`\`${f}\``, perFile.get(f)!)),
  ];
  return lines.join('\n');
}

function countsOf(file: FileResult): Counts {
  const c = emptyCounts();
  for (const m of file.mutants) add(c, m.status);
  return c;
}

/** One line of source text, cut to `max` characters, as the survivors list quotes it. */
function cut(text: string, max = 90): string {
  const oneLine = JSON.stringify(text);
  return oneLine.length > max ? `${oneLine.slice(0, max - 1)}…"` : oneLine;
}

function originalText(source: string, m: Mutant & { location: { end?: { line: number; column: number } } }): string {
  const lines = source.split('\n');
  const { start } = m.location;
  const end = m.location.end ?? start;
  if (start.line === end.line) return lines[start.line - 1]!.slice(start.column - 1, end.column - 1);
  return `${lines[start.line - 1]!.slice(start.column - 1)} …`;
}

function survivors(report: Report): string {
  const out: string[] = [];
  for (const f of Object.keys(report.files).sort()) {
    const file = report.files[f]!;
    const alive = file.mutants
      .filter((m) => m.status === 'Survived' || m.status === 'NoCoverage')
      .sort(
        (a, b) => a.location.start.line - b.location.start.line || a.location.start.column - b.location.start.column,
      );
    if (alive.length === 0) continue;
    out.push(`## ${f} (${alive.length})`, '');
    for (const m of alive) {
      const where = `${m.location.start.line}:${m.location.start.column}`;
      const nc = m.status === 'NoCoverage' ? 'NC ' : '';
      out.push(
        `- \`${where} ${nc}${m.mutatorName}: ${cut(originalText(file.source, m))} → ${cut(m.replacement ?? '')}\``,
      );
    }
    out.push('');
  }
  return out.join('\n');
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { scores: { type: 'boolean' }, survivors: { type: 'boolean' } },
});
const report = JSON.parse(readFileSync(positionals[0] ?? 'reports/mutation/mutation.json', 'utf8')) as Report;
if (values.survivors === true) console.log(survivors(report));
else console.log(scores(report));
