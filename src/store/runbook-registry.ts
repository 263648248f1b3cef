import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { parseRunbook, type Runbook } from '../core/runbook.ts';
import { digestOf } from '../core/canonical.ts';
import { UserError } from '../core/errors.ts';

export interface RegisteredRunbook {
  readonly runbook: Runbook;
  /** sha256 of the validated runbook's canonical JSON: what a plan pins. */
  readonly digest: string;
  readonly source: string;
}

export interface RunbookRegistry {
  list(): readonly RegisteredRunbook[];
  get(name: string, version?: number): RegisteredRunbook;
}

/** Reads one runbook file; the error names the file and what is wrong with it. */
export async function loadRunbookFile(file: string): Promise<RegisteredRunbook> {
  const source = path.basename(file);
  let value: unknown;
  try {
    value = parseYaml(await readFile(file, 'utf8'));
  } catch (e) {
    if (e instanceof YAMLParseError)
      throw new UserError('RUNBOOK_INVALID', `${source} is not valid YAML: ${e.message}`);
    throw e;
  }
  const runbook = parseRunbook(value, source);
  return { runbook, digest: digestOf(runbook), source };
}

/**
 * The runbooks in a folder, one YAML file per runbook version. Two files claiming the same
 * name and version are refused: which one ran would otherwise depend on directory order.
 */
export async function loadRunbookRegistry(dir: string): Promise<RunbookRegistry> {
  let files: string[];
  try {
    files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
  } catch {
    throw new UserError(
      'CONFIG_INVALID',
      `the runbooks folder ${dir} cannot be read; set MECHANIC_RUNBOOKS_DIR to a folder of runbook YAML files`,
    );
  }
  const all: RegisteredRunbook[] = [];
  for (const f of files) {
    const entry = await loadRunbookFile(path.join(dir, f));
    const twin = all.find((r) => r.runbook.name === entry.runbook.name && r.runbook.version === entry.runbook.version);
    if (twin) {
      throw new UserError(
        'RUNBOOK_INVALID',
        `${entry.source} and ${twin.source} both define ${entry.runbook.name} version ${entry.runbook.version}`,
      );
    }
    all.push(entry);
  }
  return registryOf(all);
}

export function registryOf(all: readonly RegisteredRunbook[]): RunbookRegistry {
  const sorted = [...all].sort(
    (a, b) => a.runbook.name.localeCompare(b.runbook.name) || b.runbook.version - a.runbook.version,
  );
  return {
    list: () => sorted,
    get(name, version) {
      const versions = sorted.filter((r) => r.runbook.name === name);
      if (versions.length === 0) {
        const names = [...new Set(sorted.map((r) => r.runbook.name))];
        throw new UserError(
          'RUNBOOK_NOT_FOUND',
          `there is no runbook named "${name}"` + (names.length ? `; known runbooks: ${names.join(', ')}` : ''),
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
