import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, test } from 'vitest';
import { formatProblem, lintRunbookBytes, lintRunbookText, type LintProblem } from '../../src/core/lint.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CORPUS = 'test/corpus/broken-runbooks';
const BIN = path.join(ROOT, 'bin/mechanic.js');

/**
 * The exact output `mechanic runbook lint test/corpus/broken-runbooks` must print (run from the
 * repository root): every broken file of the corpus with each of its problems located.
 */
const EXPECTED = readFileSync(path.join(ROOT, CORPUS, 'lint-expected.txt'), 'utf8');
const expectedLines = EXPECTED.trimEnd().split('\n');
const LINE = /^(?<file>[^:]+):(?<line>\d+):(?<column>\d+): (?<message>.+) \[(?<rule>[a-z0-9-]+)\]$/;

/** Every runbook file of the corpus, as lint finds them (recursively, sorted). */
function corpusFiles(dir = CORPUS): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .flatMap((e) =>
      /\.ya?ml$/.test(e.name)
        ? [path.join(dir, e.name)]
        : e.isDirectory() && !e.name.startsWith('.')
          ? corpusFiles(path.join(dir, e.name))
          : [],
    );
}
const broken = corpusFiles().filter((f) => !f.endsWith('/valid.yaml'));
const expectedFor = (file: string) => expectedLines.filter((l) => l.startsWith(`${file}:`));

function runLint(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'runbook', 'lint', ...args], { cwd: ROOT, timeout: 60_000 }, (e, stdout, stderr) =>
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe('the broken-runbook corpus, linted', () => {
  test('holds at least 40 broken runbooks, each with its exact located error', () => {
    expect(broken.length).toBeGreaterThanOrEqual(40);
    for (const file of broken) expect(expectedFor(file), file).not.toEqual([]);
    for (const line of expectedLines) expect(line).toMatch(LINE);
    expect(expectedLines.some((l) => l.startsWith(`${CORPUS}/valid.yaml:`))).toBe(false);
  });

  test.each(broken.filter((f) => !/twin-[ab]\.yaml$/.test(f) && !f.endsWith('directory.yaml')))(
    '%s gives exactly its expected lines',
    (file) => {
      const { problems } = lintRunbookBytes(file, readFileSync(path.join(ROOT, file)));
      expect(problems.map(formatProblem)).toEqual(expectedFor(file));
    },
  );

  test('the command prints the 40-odd located errors, exits 1 and counts them', async () => {
    const r = await runLint([CORPUS]);
    expect(r.stdout).toBe(EXPECTED);
    expect(r.code).toBe(1);
    const files = new Set(
      r.stdout
        .trimEnd()
        .split('\n')
        .map((l) => LINE.exec(l)?.groups?.['file']),
    );
    expect(files.has(undefined)).toBe(false);
    expect(files.size).toBeGreaterThanOrEqual(40);
    expect(r.stderr).toBe(`${expectedLines.length} problems in ${files.size} of ${broken.length + 1} runbook files\n`);
  });

  test('--json gives the same problems as data; a file named twice is linted once', async () => {
    const r = await runLint([
      `${CORPUS}/located`,
      `${CORPUS}/twin-a.yaml`,
      `./${CORPUS}/located/min-above-max.yaml`,
      `${CORPUS}/twin-b.yaml`,
      '--json',
    ]);
    expect(r.code).toBe(1);
    const body = JSON.parse(r.stdout) as { files: number; problems: LintProblem[] };
    expect(body.files).toBe(corpusFiles(`${CORPUS}/located`).length + 2);
    expect(body.problems.map(formatProblem)).toEqual(
      expectedLines.filter((l) => l.startsWith(`${CORPUS}/located/`) || /twin-[ab]\.yaml:/.test(l)),
    );
  });

  test('the example runbooks and the valid corpus file pass, exit 0', async () => {
    const r = await runLint(['runbooks', `${CORPUS}/valid.yaml`]);
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: '' });
    expect(r.stderr).toMatch(/^\d+ runbook files checked, no problems\n$/);
  });

  test('a path that does not exist is a usage error, in one sentence', async () => {
    const r = await runLint(['no-such-runbooks']);
    expect(r).toEqual({
      code: 2,
      stdout: '',
      stderr: 'mechanic: no-such-runbooks does not exist; name a runbook file or a folder of them\n',
    });
  });
});

describe('locating problems', () => {
  const lint = (text: string) => lintRunbookText('x.yaml', text).problems.map(formatProblem);
  const head = [
    'name: located',
    'version: 1',
    'description: A runbook to locate problems in.',
    'roleArn: arn:aws:iam::123456789012:role/mechanic-runner',
    'targets: { tags: { Role: web } }',
  ];

  test('every problem of a file is reported, not only the first', () => {
    expect(
      lint(
        [
          ...head,
          'parameters:',
          '  svc: { type: string, pattern: "^[a-z]+$" }',
          'steps:',
          '  - name: one',
          '    timeotSeconds: 5',
          '    script: |',
          '        echo ok',
          '        {{ svc }} --help',
        ].join('\n'),
      ),
    ).toEqual([
      'x.yaml:10:5: "timeotSeconds" is not a field of steps[0]; did you mean "timeoutSeconds"? [unknown-field]',
      'x.yaml:13:9: step "one", line 2: {{ svc }} stands as the command name, where the value would choose what runs; put it where a plain argument goes, e.g. echo {{ svc }} [command-name]',
    ]);
    expect(
      lint(
        [
          ...head,
          'parameters:',
          '  svc: { type: string, pattern: "^[a-z]+$" }',
          'steps:',
          '  - name: one',
          '    script: |',
          '        echo ok',
          '        {{ svc }} --help',
          '  - name: two',
          "    script: 'echo {{ svc }} && {{ svc }} --help'",
        ].join('\n'),
      ),
    ).toEqual([
      'x.yaml:12:9: step "one", line 2: {{ svc }} stands as the command name, where the value would choose what runs; put it where a plain argument goes, e.g. echo {{ svc }} [command-name]',
      // The second use on the line is the refused one, and is the one pointed at.
      'x.yaml:14:32: step "two", line 1: {{ svc }} stands as the command name, where the value would choose what runs; put it where a plain argument goes, e.g. echo {{ svc }} [command-name]',
    ]);
  });

  test('a line inside a block script is found under its indentation, with Windows line ends too', () => {
    const text = [
      ...head,
      'parameters: { n: { type: string } }',
      'steps:',
      '  - name: count',
      '    script: |2',
      '        # deeper indentation than the step',
      '        echo $(( {{ n }} + 1 ))',
    ].join('\r\n');
    expect(lint(text)).toEqual([
      'x.yaml:11:18: step "count", line 2: {{ n }} stands in arithmetic or an assignment, where bash evaluates a value such as a[$(cmd)] as code; only an integer parameter may stand there, so declare it type: integer or pass it as a plain argument [integer-only]',
    ]);
  });

  test('a byte that is not UTF-8 is located, after a BOM and multibyte characters', () => {
    const bytes = Buffer.concat([Buffer.from('\ufeffname: é\n# ok\nversion: 1 \u00e9'), Buffer.from([0xff, 0x0a])]);
    expect(lintRunbookBytes('x.yaml', bytes).problems.map(formatProblem)).toEqual([
      'x.yaml:3:13: this byte is not UTF-8 text; save the file as UTF-8 [not-utf8]',
    ]);
  });

  test('a clean runbook has no problems and comes back parsed', () => {
    const r = lintRunbookText('x.yaml', [...head, 'steps: [{ name: ok, script: "true" }]'].join('\n'));
    expect(r.problems).toEqual([]);
    expect(r.runbook?.name).toBe('located');
    expect(r.versionAt).toEqual({ line: 2, column: 10 });
  });
});

describe('files lint cannot read as text', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('a FIFO and a dangling link are each one located problem; nothing blocks', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'mechanic-lint-'));
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [path.join(dir, 'pipe.yaml')]);
    const { symlinkSync } = await import('node:fs');
    symlinkSync('nowhere.yaml', path.join(dir, 'gone.yaml'));
    writeFileSync(path.join(dir, 'huge.yaml'), `# ${'x'.repeat(1024 * 1024)}\n`);
    expect(statSync(path.join(dir, 'huge.yaml')).size).toBeGreaterThan(1024 * 1024);
    const r = await runLint([dir]);
    expect(r.code).toBe(1);
    expect(r.stdout.replaceAll(dir, 'D')).toBe(
      [
        'D/gone.yaml:1:1: this file cannot be read (it is a link to a file that does not exist); fix the file or remove it from the runbooks folder [file-unreadable]',
        'D/huge.yaml:1:1: this file is larger than 1 MiB, far more than any runbook; check that it is the right file [file-too-large]',
        'D/pipe.yaml:1:1: this is not a regular file; runbooks must be plain YAML files [file-not-regular]',
        '',
      ].join('\n'),
    );
  });
});

describe('what lint loads', () => {
  /** Every module `from` reaches through static and dynamic imports, resolved inside the repository. */
  function importGraph(from: string): { files: Set<string>; packages: Set<string> } {
    const files = new Set<string>();
    const packages = new Set<string>();
    const visit = (file: string) => {
      if (files.has(file)) return;
      files.add(file);
      const source = readFileSync(file, 'utf8');
      for (const m of source.matchAll(
        /(?:^|\n)\s*(?:import|export)\s+(?:[^'"]*?\sfrom\s+)?'([^']+)'|import\('([^']+)'\)/g,
      )) {
        const spec = m[1] ?? m[2]!;
        if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec));
        else if (!spec.startsWith('node:')) packages.add(spec);
      }
    };
    visit(path.join(ROOT, from));
    return { files, packages };
  }

  test('mechanic runbook lint needs no Temporal, server, store, AWS or API client (a pre-commit hook stays fast)', () => {
    const { files, packages } = importGraph('cli/commands/runbook-lint.ts');
    const inRepo = [...files].map((f) => path.relative(ROOT, f));
    expect(inRepo.filter((f) => !/^(cli\/commands\/runbook-lint|cli\/args|cli\/output|src\/core\/)/.test(f))).toEqual(
      [],
    );
    expect([...packages].sort()).toEqual(['re2js', 'web-tree-sitter', 'yaml', 'zod']);
  });
});
