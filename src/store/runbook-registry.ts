import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { isMap, parseDocument, type YAMLError } from 'yaml';
import { parseRunbook, type Runbook } from '../core/runbook.ts';
import { digestOf } from '../core/canonical.ts';
import { UserError } from '../core/errors.ts';
import { describeCharacter, findRefusedCharacter } from '../core/text.ts';

export interface RegisteredRunbook {
  readonly runbook: Runbook;
  /** sha256 of the validated runbook's canonical JSON: what a plan pins. */
  readonly digest: string;
  readonly source: string;
}

/** A runbook file that could not be loaded: its file name and why, in one sentence that names the file. */
export interface InvalidRunbook {
  readonly file: string;
  readonly error: string;
}

export interface RunbookRegistry {
  /** The valid runbooks, by name, newest version first. */
  list(): readonly RegisteredRunbook[];
  get(name: string, version?: number): RegisteredRunbook;
  /** The files that were refused, by file name; the valid runbooks are served regardless. */
  invalid(): readonly InvalidRunbook[];
}

/** Where the registry reports refused files (a pino logger fits). */
export interface RegistryLog {
  warn(fields: { readonly file: string; readonly error: string }, message: string): void;
}

/** A runbook is a few KiB of YAML; anything much larger is a mistake, and is not read into memory. */
const MAX_FILE_BYTES = 1024 * 1024;
/** Aliases a runbook may use; far more is an alias bomb (a few lines expanding to millions of nodes). */
const MAX_ALIAS_COUNT = 100;

const invalid = (message: string) => new UserError('RUNBOOK_INVALID', message);

/**
 * Reads one runbook file. Every way a file can be wrong — not a regular file, unreadable, not
 * UTF-8, hidden direction or control characters, bad YAML, an alias bomb, not a runbook — is a
 * RUNBOOK_INVALID error whose message is one sentence naming the file.
 */
export async function loadRunbookFile(file: string): Promise<RegisteredRunbook> {
  const source = path.basename(file);
  const text = await readText(file, source);
  const runbook = parseRunbook(parseYaml(text, source), source);
  return { runbook, digest: digestOf(runbook), source };
}

async function readText(file: string, source: string): Promise<string> {
  let bytes: Buffer;
  try {
    // stat first: a FIFO named x.yaml would block a read forever, a directory fails it with EISDIR.
    const info = await stat(file);
    if (info.isDirectory()) {
      throw invalid(`${source} is a directory, not a runbook file; rename it or move it out of the runbooks folder`);
    }
    if (!info.isFile()) throw invalid(`${source} is not a regular file; runbooks must be plain YAML files`);
    if (info.size > MAX_FILE_BYTES) {
      throw invalid(`${source} is larger than 1 MiB, far more than any runbook; check that it is the right file`);
    }
    bytes = await readFile(file);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw invalid(`${source} cannot be read (${readFailure(e)}); fix the file or remove it from the runbooks folder`);
  }
  let text: string;
  try {
    // fatal: a byte that is not UTF-8 is an error, not a silent U+FFFD. A leading BOM is dropped.
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw invalid(`${source} is not UTF-8 text; save it as UTF-8`);
  }
  // The file is what reviewers read: a bidi override or zero-width character (Trojan Source) could
  // make it read differently than it runs, so it is refused like the same character in a value.
  const found = findRefusedCharacter(text.replace(/[\t\n\r]/g, ' '));
  if (found) {
    const line = text.slice(0, found.index).split('\n').length;
    throw invalid(
      `${source} contains ${describeCharacter(found.char)} on line ${line}; control, direction-changing and ` +
        `invisible characters can make a runbook read differently than it runs, so remove it`,
    );
  }
  return text;
}

function readFailure(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return 'it no longer exists, or is a link to a file that does not';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ELOOP':
      return 'it is a link that loops';
    default:
      return code ?? (e instanceof Error ? e.message : String(e));
  }
}

/** First line of a YAML error, without the code frame that follows it: "Map keys must be unique at line 2, column 1". */
function yamlProblem(e: YAMLError): string {
  return (e.message.split('\n')[0] ?? e.message).replace(/:$/, '');
}

function parseYaml(text: string, source: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  // Warnings (an unknown tag such as !foo) would otherwise be printed by the yaml library and ignored.
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem?.code === 'MULTIPLE_DOCS') {
    throw invalid(
      `${source} holds more than one YAML document (${yamlProblem(problem).replace(/^.* at /, 'a second one at ')}); keep one runbook per file`,
    );
  }
  if (problem) throw invalid(`${source} is not valid YAML: ${yamlProblem(problem)}`);
  if (doc.contents === null) {
    throw invalid(
      `${source} is empty; write a runbook in it (a YAML mapping with name, version, description, roleArn, targets and steps) or remove it`,
    );
  }
  if (!isMap(doc.contents)) {
    throw invalid(
      `${source} is not a YAML mapping of runbook fields; write it as "key: value" lines (name, version, steps, …)`,
    );
  }
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    // toJS throws a bare ReferenceError for both of these.
    const message = e instanceof Error ? e.message : String(e);
    if (/excessive alias count/i.test(message)) {
      throw invalid(
        `${source} expands its YAML aliases (*name) too many times, like an alias bomb; write the values out instead`,
      );
    }
    const unresolved = /^Unresolved alias.*: (.+)$/.exec(message);
    if (unresolved) {
      const name = unresolved[1] ?? '';
      throw invalid(`${source} is not valid YAML: the alias *${name} has no anchor &${name} before it`);
    }
    throw invalid(`${source} is not valid YAML: ${message}`);
  }
}

/**
 * The runbooks in a folder, one YAML file per runbook version. A file that cannot be loaded is
 * listed by `invalid()` with its one-sentence error (and logged), and the others are served: one
 * bad file must not take the API down. Two files claiming the same name and version are both
 * refused: which one ran would otherwise depend on file names. Only an unreadable folder fails.
 */
export async function loadRunbookRegistry(dir: string, options: { log?: RegistryLog } = {}): Promise<RunbookRegistry> {
  let files: string[];
  try {
    files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
  } catch {
    throw new UserError(
      'CONFIG_INVALID',
      `the runbooks folder ${dir} cannot be read; set MECHANIC_RUNBOOKS_DIR to a folder of runbook YAML files`,
    );
  }
  const loaded: RegisteredRunbook[] = [];
  const refused: InvalidRunbook[] = [];
  for (const f of files) {
    try {
      loaded.push(await loadRunbookFile(path.join(dir, f)));
    } catch (e) {
      refused.push({
        file: f,
        error:
          e instanceof UserError
            ? e.message
            : `${f} could not be loaded: ${e instanceof Error ? e.message : String(e)}`,
      });
    }
  }
  const valid: RegisteredRunbook[] = [];
  for (const entry of loaded) {
    const twins = loaded.filter(
      (r) => r !== entry && r.runbook.name === entry.runbook.name && r.runbook.version === entry.runbook.version,
    );
    if (twins.length === 0) valid.push(entry);
    else {
      refused.push({
        file: entry.source,
        error:
          `${entry.source} and ${twins.map((t) => t.source).join(', ')} both define ${entry.runbook.name} version ` +
          `${entry.runbook.version}; give one of them another version`,
      });
    }
  }
  refused.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  for (const r of refused) options.log?.warn(r, 'runbook file refused');
  return registryOf(valid, refused);
}

export function registryOf(
  all: readonly RegisteredRunbook[],
  refused: readonly InvalidRunbook[] = [],
): RunbookRegistry {
  const sorted = [...all].sort(
    (a, b) => a.runbook.name.localeCompare(b.runbook.name) || b.runbook.version - a.runbook.version,
  );
  const invalidFiles = [...refused];
  return {
    list: () => sorted,
    invalid: () => invalidFiles,
    get(name, version) {
      const versions = sorted.filter((r) => r.runbook.name === name);
      if (versions.length === 0) {
        const names = [...new Set(sorted.map((r) => r.runbook.name))];
        const refusedHint = invalidFiles.length
          ? `; ${invalidFiles.length} runbook file(s) were refused at load, see "mechanic runbooks"`
          : '';
        throw new UserError(
          'RUNBOOK_NOT_FOUND',
          `there is no runbook named "${name}"` +
            (names.length ? `; known runbooks: ${names.join(', ')}` : '') +
            refusedHint,
        );
      }
      if (version === undefined) return versions[0]!;
      const found = versions.find((r) => r.runbook.version === version);
      if (!found) {
        throw new UserError(
          'RUNBOOK_NOT_FOUND',
          `${name} has no version ${version}; its versions are ${versions.map((r) => r.runbook.version).join(', ')}`,
        );
      }
      return found;
    },
  };
}
