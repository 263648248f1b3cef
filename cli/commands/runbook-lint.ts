import { lstat, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../../src/core/errors.ts';
import {
  fileProblem,
  formatProblem,
  lintRunbookBytes,
  lintVersionClashes,
  MAX_RUNBOOK_BYTES,
  type LintProblem,
  type LintResult,
} from '../../src/core/lint.ts';
import { runbookJsonSchemaText } from '../../src/core/runbook-json-schema.ts';
import { neutralize } from '../../src/core/text.ts';
import { parse } from '../args.ts';
import { out } from '../output.ts';

const LINT_USAGE = 'mechanic runbook lint <file-or-folder>… [--json]';
const SCHEMA_USAGE = 'mechanic runbook schema [--out file]';

const RUNBOOK_FILE = /\.ya?ml$/;

/**
 * `mechanic runbook lint`: every problem of every runbook file named (a folder: each .yaml/.yml
 * file under it), one line each, `file:line:column: sentence [rule]`, and exit 1 if there is any.
 * Works offline and loads only the runbook schema and the YAML parser, so a pre-commit hook can run it.
 */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } }, LINT_USAGE);
  if (positionals.length === 0)
    throw new UserError('USAGE', `name the runbook files or folders to check; usage: ${LINT_USAGE}`);
  // A file named twice (a folder and a file in it) is linted once: it cannot clash with itself.
  const named = new Set<string>();
  for (const arg of positionals) for (const f of await runbookFiles(arg)) named.add(path.normalize(f));
  const files = [...named];
  const results: { file: string; result: LintResult }[] = [];
  for (const file of files) results.push({ file, result: await lintFile(file) });
  const problems = [...results.flatMap((r) => r.result.problems), ...lintVersionClashes(results)].sort(
    (a, b) => compare(a.file, b.file) || a.line - b.line || a.column - b.column,
  );
  const failing = new Set(problems.map((p) => p.file)).size;
  if (values.json) out.json({ files: files.length, problems });
  else {
    // File names and messages can quote what an author typed: shown inert.
    for (const p of problems) out.line(neutralize(formatProblem(p)));
    out.info(
      problems.length === 0
        ? `${files.length} runbook file${files.length === 1 ? '' : 's'} checked, no problems`
        : `${problems.length} problem${problems.length === 1 ? '' : 's'} in ${failing} of ${files.length} runbook files`,
    );
  }
  return problems.length === 0 ? 0 : 1;
}

/** `mechanic runbook schema`: the runbook JSON Schema, for editors (stdout, or a file with --out). */
export async function schema(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { out: { type: 'string', short: 'o' } }, SCHEMA_USAGE);
  if (positionals.length > 0) throw new UserError('USAGE', `schema takes no arguments; usage: ${SCHEMA_USAGE}`);
  const text = runbookJsonSchemaText();
  if (values.out === undefined) {
    out.line(text.trimEnd());
    return 0;
  }
  try {
    await writeFile(values.out, text);
  } catch (e) {
    throw new UserError(
      'USAGE',
      `cannot write ${values.out} (${(e as NodeJS.ErrnoException).code ?? String(e)}); name a file in a folder you can write`,
    );
  }
  out.info(`wrote the runbook JSON Schema to ${values.out}`);
  return 0;
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** A file as named; a folder: every .yaml/.yml entry under it (hidden folders skipped), sorted. */
async function runbookFiles(arg: string): Promise<string[]> {
  let info;
  try {
    info = await stat(arg);
  } catch {
    throw new UserError('USAGE', `${arg} does not exist; name a runbook file or a folder of them`);
  }
  if (!info.isDirectory() || RUNBOOK_FILE.test(arg)) return [arg];
  const found: string[] = [];
  const walk = async (dir: string) => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => compare(a.name, b.name));
    for (const e of entries) {
      const full = path.join(dir, e.name);
      if (RUNBOOK_FILE.test(e.name)) found.push(full);
      else if (e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules') await walk(full);
    }
  };
  await walk(arg);
  return found;
}

async function lintFile(file: string): Promise<LintResult> {
  const one = (p: LintProblem): LintResult => ({ problems: [p] });
  try {
    // stat first: a FIFO named x.yaml would block a read forever, a directory fails it.
    const info = await stat(file);
    if (info.isDirectory()) return one(fileProblem(file, 'directory'));
    if (!info.isFile()) return one(fileProblem(file, 'not-regular'));
    if (info.size > MAX_RUNBOOK_BYTES) return one(fileProblem(file, 'too-large'));
    return lintRunbookBytes(file, await readFile(file));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const broken = code === 'ENOENT' && (await lstat(file).catch(() => undefined))?.isSymbolicLink();
    return one(
      fileProblem(
        file,
        'unreadable',
        broken
          ? 'it is a link to a file that does not exist'
          : code === 'EACCES' || code === 'EPERM'
            ? 'permission denied'
            : (code ?? String(e)),
      ),
    );
  }
}
