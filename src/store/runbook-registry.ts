import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { isMap, parseDocument, type YAMLError } from 'yaml';
import type { Kysely, Selectable } from 'kysely';
import { parseRunbook, type Runbook } from '../core/runbook.ts';
import { auditEvent } from '../core/audit-events.ts';
import { canonicalJson, digestOf } from '../core/canonical.ts';
import { UserError } from '../core/errors.ts';
import { closestWord, describeCharacter, findRefusedCharacter } from '../core/text.ts';
import type { AuditStore } from './audit-log.ts';
import type { Database, RunbookDeprecationsTable, RunbookReviewsTable, RunbookVersionsTable } from './schema.ts';

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
  /** The runbooks that can be launched, by name, newest version first. */
  list(): Promise<readonly RegisteredRunbook[]>;
  /** A runbook that can be launched: the named version, or the newest one. */
  get(name: string, version?: number): Promise<RegisteredRunbook>;
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
  return parseRunbookText(await readRunbookText(file, source), source);
}

/**
 * Parses the text of one runbook file (`source` names it in every error): refused characters,
 * YAML, the runbook schema. What the server runs on the text a publisher sends.
 */
export function parseRunbookText(text: string, source: string): RegisteredRunbook {
  refuseHiddenCharacters(text, source);
  const runbook = parseRunbook(parseYaml(text, source), source);
  return { runbook, digest: digestOf(runbook), source };
}

/** Reads a runbook file's text, refusing what is not a plain, small, UTF-8 file (see loadRunbookFile). */
export async function readRunbookText(file: string, source = path.basename(file)): Promise<string> {
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
  refuseHiddenCharacters(text, source);
  return text;
}

function refuseHiddenCharacters(text: string, source: string): void {
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

/** The YAML files of a runbooks folder, in name order; an unreadable folder is one sentence. */
async function runbookFilesIn(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
  } catch {
    throw new UserError(
      'CONFIG_INVALID',
      `the runbooks folder ${dir} cannot be read; set MECHANIC_RUNBOOKS_DIR to a folder of runbook YAML files`,
    );
  }
}

/**
 * The runbooks in a folder, one YAML file per runbook version. A file that cannot be loaded is
 * listed by `invalid()` with its one-sentence error (and logged), and the others are served: one
 * bad file must not take the API down. Two files claiming the same name and version are both
 * refused: which one ran would otherwise depend on file names. Only an unreadable folder fails.
 */
export async function loadRunbookRegistry(dir: string, options: { log?: RegistryLog } = {}): Promise<RunbookRegistry> {
  const files = await runbookFilesIn(dir);
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
    list: async () => sorted,
    invalid: () => invalidFiles,
    async get(name, version) {
      const versions = sorted.filter((r) => r.runbook.name === name);
      if (versions.length === 0) {
        const names = [...new Set(sorted.map((r) => r.runbook.name))];
        const refusedHint = invalidFiles.length
          ? `; ${invalidFiles.length} runbook file(s) were refused at load, see "mechanic runbooks"`
          : '';
        throw new UserError('RUNBOOK_NOT_FOUND', noRunbookNamed(name, names) + refusedHint);
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

// ---------------------------------------------------------------------------------------------
// The registry in the store: published versions, reviews by a second person, deprecations.

/** pending: waiting for review; approved: may be launched; rejected and deprecated: never again. */
export type VersionStatus = 'pending' | 'approved' | 'rejected' | 'deprecated';

/** One file a publisher sends: its path (as it names the file in errors and the record) and its text. */
export interface PublishFile {
  readonly path: string;
  readonly text: string;
}

/** The repository a publish came from: `git rev-parse HEAD` and whether the working tree was clean. */
export interface GitSource {
  readonly commit: string;
  readonly clean: boolean;
}

export interface PublishResult {
  readonly name: string;
  readonly version: number;
  readonly digest: string;
  readonly path: string;
  /** `unchanged`: the same content was already published as this version (a publish is idempotent). */
  readonly outcome: 'published' | 'unchanged';
}

export interface VersionReview {
  readonly reviewer: string;
  readonly decision: 'approve' | 'reject';
  readonly digest: string;
  readonly comment: string;
  readonly at: string;
}

export interface RunbookVersionInfo {
  readonly name: string;
  readonly version: number;
  readonly digest: string;
  readonly description: string;
  readonly author: string;
  readonly publishedAt: string;
  readonly source: {
    readonly kind: 'file' | 'git';
    readonly path: string;
    readonly commit?: string;
    readonly clean?: boolean;
  };
  readonly status: VersionStatus;
  readonly reviews: readonly VersionReview[];
  readonly deprecated?: { readonly by: string; readonly reason: string; readonly at: string };
  /** When this version last started a run, from the execution index. */
  readonly lastRunAt?: string;
}

export interface RunbookVersionDetail extends RunbookVersionInfo {
  /** The YAML as published. */
  readonly yaml: string;
}

export interface ReviewInput {
  readonly reviewer: string;
  readonly decision: 'approve' | 'reject';
  /** The digest the reviewer read; a review of other content than what is published is refused. */
  readonly digest: string;
  readonly comment: string;
}

/** The registry behind the API: launches read it through RunbookRegistry, authors and reviewers change it. */
export interface RunbookStore extends RunbookRegistry {
  /**
   * Publishes every file, all or nothing, in one transaction: a file that does not parse, or a
   * version already published with other content, leaves the registry as it was.
   */
  publish(author: string, files: readonly PublishFile[], git?: GitSource): Promise<PublishResult[]>;
  review(name: string, version: number, input: ReviewInput): Promise<RunbookVersionInfo>;
  deprecate(name: string, version: number, input: { by: string; reason: string }): Promise<RunbookVersionInfo>;
  /** Every version (of one runbook, or all), by name, newest version first, with status and reviews. */
  versions(name?: string): Promise<RunbookVersionInfo[]>;
  version(name: string, version: number): Promise<RunbookVersionDetail>;
  /**
   * Publishes the runbooks of a folder as `author` and approves them as `reviewer`: the embedded
   * stack's demo catalog. Files that cannot be published are refused one by one (invalid()).
   */
  seed(dir: string, people: { author: string; reviewer: string }, log?: RegistryLog): Promise<void>;
}

export interface RunbookStoreDeps {
  /** Where publishes, reviews and deprecations are recorded. */
  readonly audit: Pick<AuditStore, 'append'>;
  readonly now?: () => Date;
}

type VersionRow = Selectable<RunbookVersionsTable>;
type ReviewRow = Selectable<RunbookReviewsTable>;
type DeprecationRow = Selectable<RunbookDeprecationsTable>;

const short = (digest: string) => digest.slice(0, 12);
const ref = (name: string, version: number) => `${name}@${version}`;

function statusOf(reviews: readonly ReviewRow[], deprecation: DeprecationRow | undefined): VersionStatus {
  if (deprecation) return 'deprecated';
  // One rejection ends a version: a second reviewer's approval does not outvote the first's objection.
  if (reviews.some((r) => r.decision === 'reject')) return 'rejected';
  return reviews.some((r) => r.decision === 'approve') ? 'approved' : 'pending';
}

function sourceOf(row: VersionRow): RunbookVersionInfo['source'] {
  return row.git_commit === null
    ? { kind: 'file', path: row.source_path }
    : { kind: 'git', path: row.source_path, commit: row.git_commit, clean: Number(row.git_clean) === 1 };
}

/** Unique-key violations of PostgreSQL and SQLite: someone published the same version at the same moment. */
function isUniqueViolation(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/**
 * The runbook registry over an open database (see openDatabase). Every change is one transaction;
 * its audit event is appended right after the commit with an id derived from the change, so a
 * change whose event was lost (the server died in between) is recorded when it is repeated: a
 * publish of the same content is idempotent and re-records its event.
 */
export function createRunbookStore(db: Kysely<Database>, deps: RunbookStoreDeps): RunbookStore {
  const now = () => (deps.now?.() ?? new Date()).toISOString();
  let refused: InvalidRunbook[] = [];

  // `q` is the transaction when called inside one: SQLite has one connection, which it holds.
  async function rowsOf(name?: string, q: Kysely<Database> = db) {
    let versions = q.selectFrom('runbook_versions').selectAll();
    let reviews = q.selectFrom('runbook_reviews').selectAll();
    let deprecations = q.selectFrom('runbook_deprecations').selectAll();
    if (name !== undefined) {
      versions = versions.where('name', '=', name);
      reviews = reviews.where('name', '=', name);
      deprecations = deprecations.where('name', '=', name);
    }
    const v = await versions.execute();
    const r = await reviews.orderBy('reviewed_at', 'asc').execute();
    const d = await deprecations.execute();
    const key = (x: { name: string; version: number }) => ref(x.name, Number(x.version));
    return v
      .map((row) => ({
        row,
        reviews: r.filter((x) => key(x) === key(row)),
        deprecation: d.find((x) => key(x) === key(row)),
      }))
      .sort((a, b) => a.row.name.localeCompare(b.row.name) || Number(b.row.version) - Number(a.row.version));
  }

  function infoOf(
    row: VersionRow,
    reviews: readonly ReviewRow[],
    deprecation: DeprecationRow | undefined,
    lastRunAt?: string,
  ): RunbookVersionInfo {
    const runbook = JSON.parse(row.runbook) as { description?: unknown };
    return {
      name: row.name,
      version: Number(row.version),
      digest: row.digest,
      description: typeof runbook.description === 'string' ? runbook.description : '',
      author: row.author,
      publishedAt: row.published_at,
      source: sourceOf(row),
      status: statusOf(reviews, deprecation),
      reviews: reviews.map((r) => ({
        reviewer: r.reviewer,
        decision: r.decision,
        digest: r.digest,
        comment: r.comment,
        at: r.reviewed_at,
      })),
      ...(deprecation
        ? { deprecated: { by: deprecation.deprecated_by, reason: deprecation.reason, at: deprecation.deprecated_at } }
        : {}),
      ...(lastRunAt !== undefined ? { lastRunAt } : {}),
    };
  }

  async function lastRuns(names: readonly string[]): Promise<Map<string, string>> {
    if (names.length === 0) return new Map();
    const rows = await db
      .selectFrom('executions')
      .select(['runbook_name', 'runbook_version', (eb) => eb.fn.max('created_at').as('last')])
      .where('runbook_name', 'in', [...new Set(names)])
      .groupBy(['runbook_name', 'runbook_version'])
      .execute();
    return new Map(rows.map((r) => [ref(r.runbook_name, Number(r.runbook_version)), String(r.last)]));
  }

  async function one(name: string, version: number, q: Kysely<Database> = db) {
    const all = await rowsOf(name, q);
    const found = all.find((x) => Number(x.row.version) === version);
    if (found) return found;
    throw new UserError(
      'RUNBOOK_NOT_FOUND',
      all.length === 0
        ? `there is no runbook named "${name}" in the registry; publish it with "mechanic runbook publish <file>"`
        : `${name} has no version ${version}; its versions are ${all.map((x) => x.row.version).join(', ')}`,
    );
  }

  function publishedEvent(row: VersionRow) {
    const source = sourceOf(row);
    return auditEvent('runbook.published', {
      eventId: `runbook:${ref(row.name, Number(row.version))}:published`,
      executionId: null,
      actor: row.author,
      at: row.published_at,
      data: { name: row.name, version: Number(row.version), digest: row.digest, source },
    });
  }

  /**
   * A launchable version, or the sentence that says why it is not. The stored runbook is hashed
   * again and compared with the digest its reviewers approved: content changed behind the
   * registry's back (the tables are append-only, but a database owner can drop the guards) is
   * refused rather than run.
   */
  function launchable(found: { row: VersionRow; reviews: ReviewRow[]; deprecation: DeprecationRow | undefined }) {
    const { row, reviews, deprecation } = found;
    const at = ref(row.name, Number(row.version));
    const status = statusOf(reviews, deprecation);
    if (status === 'pending') {
      throw new UserError(
        'FORBIDDEN',
        `${at} has not been reviewed yet; an author other than ${row.author} must approve it ("mechanic runbook review ${at} --approve --comment …") before it can be launched`,
      );
    }
    if (status === 'rejected') {
      const by = reviews.filter((r) => r.decision === 'reject').map((r) => r.reviewer);
      throw new UserError(
        'FORBIDDEN',
        `${at} was rejected in review by ${by.join(', ')} and cannot be launched; publish a fixed version and have it reviewed`,
      );
    }
    if (status === 'deprecated') {
      throw new UserError(
        'FORBIDDEN',
        `${at} is deprecated (${deprecation?.reason ?? 'no reason given'}) and cannot be launched; launch a newer approved version`,
      );
    }
    let stored: unknown;
    try {
      stored = JSON.parse(row.runbook);
    } catch {
      stored = undefined;
    }
    const reviewed = reviews.filter((r) => r.decision === 'approve').map((r) => r.digest);
    const actual = stored === undefined ? 'unreadable' : digestOf(stored);
    const mismatch = [row.digest, ...reviewed].find((d) => d !== actual);
    if (mismatch !== undefined) {
      throw new UserError(
        'RUNBOOK_INVALID',
        `${at} in the registry does not match the digest it was reviewed with (reviewed ${short(mismatch)}, stored content ${short(actual)}), so it is not launched; publish it again as a new version and have it reviewed`,
      );
    }
    return { runbook: parseRunbook(stored, at), digest: row.digest, source: row.source_path };
  }

  async function append(events: readonly Parameters<AuditStore['append']>[0][]): Promise<void> {
    for (const e of events) await deps.audit.append(e);
  }

  return {
    invalid: () => refused,

    async list() {
      const out: RegisteredRunbook[] = [];
      for (const found of await rowsOf()) {
        if (statusOf(found.reviews, found.deprecation) !== 'approved') continue;
        try {
          out.push(launchable(found));
        } catch (e) {
          // Only a version whose content no longer matches lands here; get() names the problem.
          if (!(e instanceof UserError)) throw e;
        }
      }
      return out;
    },

    async get(name, version) {
      const all = await rowsOf(name);
      if (all.length === 0) {
        const names = [...new Set((await rowsOf()).map((x) => x.row.name))];
        throw new UserError('RUNBOOK_NOT_FOUND', noRunbookNamed(name, names));
      }
      if (version === undefined) {
        const newest = all.find((x) => statusOf(x.reviews, x.deprecation) === 'approved');
        if (!newest) {
          throw new UserError(
            'FORBIDDEN',
            `${name} has no approved version to launch (${all.map((x) => `${x.row.version} ${statusOf(x.reviews, x.deprecation)}`).join(', ')}); an author must review one first`,
          );
        }
        return launchable(newest);
      }
      return launchable(await one(name, version));
    },

    async publish(author, files, git) {
      if (files.length === 0)
        throw new UserError('USAGE', 'there is nothing to publish: name a runbook file or folder');
      // Everything is parsed before anything is written.
      const parsed = files.map((f) => ({ file: f, ...parseRunbookText(f.text, f.path) }));
      for (const p of parsed) {
        const twin = parsed.find(
          (q) => q !== p && q.runbook.name === p.runbook.name && q.runbook.version === p.runbook.version,
        );
        if (twin) {
          throw new UserError(
            'RUNBOOK_INVALID',
            `${p.file.path} and ${twin.file.path} both define ${ref(p.runbook.name, p.runbook.version)}; give one of them another version`,
          );
        }
      }
      const at = now();
      let written: { result: PublishResult; row: VersionRow }[];
      try {
        written = await db.transaction().execute(async (trx) => {
          const done: { result: PublishResult; row: VersionRow }[] = [];
          for (const p of parsed) {
            const { name, version } = p.runbook;
            const existing = await trx
              .selectFrom('runbook_versions')
              .selectAll()
              .where('name', '=', name)
              .where('version', '=', version)
              .executeTakeFirst();
            const base = { name, version, digest: p.digest, path: p.file.path };
            if (existing) {
              if (existing.digest !== p.digest) {
                // Thrown inside the transaction: the files written before this one are rolled back.
                throw new UserError(
                  'RUNBOOK_INVALID',
                  `${ref(name, version)} is already published with other content (digest ${short(existing.digest)}, ${p.file.path} has ${short(p.digest)}); a published version never changes, so give ${p.file.path} a new version number`,
                );
              }
              done.push({ result: { ...base, outcome: 'unchanged' }, row: existing });
              continue;
            }
            const row: VersionRow = {
              name,
              version,
              digest: p.digest,
              runbook: canonicalJson(p.runbook),
              yaml: p.file.text,
              author,
              published_at: at,
              source_path: p.file.path,
              git_commit: git?.commit ?? null,
              git_clean: git === undefined ? null : git.clean ? 1 : 0,
            };
            await trx.insertInto('runbook_versions').values(row).execute();
            done.push({ result: { ...base, outcome: 'published' }, row });
          }
          return done;
        });
      } catch (e) {
        if (!isUniqueViolation(e)) throw e;
        throw new UserError(
          'RUNBOOK_INVALID',
          'someone published one of these versions at the same moment; run the publish again to see which',
          { cause: e },
        );
      }
      // Repeats record their event too: it carries the stored author and time, so it lands once.
      await append(written.map((w) => publishedEvent(w.row)));
      return written.map((w) => w.result);
    },

    async review(name, version, input) {
      const comment = input.comment.trim();
      if (comment.length < 3) {
        throw new UserError('USAGE', 'say what you reviewed: add --comment "what you checked"');
      }
      const at = now();
      const row = await db
        .transaction()
        .execute(async (trx) => {
          const found = await trx
            .selectFrom('runbook_versions')
            .selectAll()
            .where('name', '=', name)
            .where('version', '=', version)
            .executeTakeFirst();
          if (!found) await one(name, version, trx); // throws the sentence that lists the versions
          const v = found!;
          const target = ref(name, version);
          if (v.author === input.reviewer) {
            throw new UserError(
              'FORBIDDEN',
              `${input.reviewer} published ${target} and may not review it; another author must`,
            );
          }
          if (input.digest !== v.digest) {
            throw new UserError(
              'APPROVAL_PLAN_MISMATCH',
              `the review names digest ${short(input.digest)}, but ${target} as published has digest ${short(v.digest)}; read the published version again and review that`,
            );
          }
          const deprecated = await trx
            .selectFrom('runbook_deprecations')
            .select('reason')
            .where('name', '=', name)
            .where('version', '=', version)
            .executeTakeFirst();
          if (deprecated) throw new UserError('FORBIDDEN', `${target} is deprecated and can no longer be reviewed`);
          const reviews = await trx
            .selectFrom('runbook_reviews')
            .selectAll()
            .where('name', '=', name)
            .where('version', '=', version)
            .execute();
          const mine = reviews.find((r) => r.reviewer === input.reviewer);
          if (mine) {
            throw new UserError(
              'APPROVAL_DUPLICATE',
              `${input.reviewer} already ${mine.decision === 'approve' ? 'approved' : 'rejected'} ${target}; each author reviews a version once`,
            );
          }
          const rejected = reviews.find((r) => r.decision === 'reject');
          if (rejected) {
            throw new UserError(
              'FORBIDDEN',
              `${target} was already rejected by ${rejected.reviewer}; publish a fixed version and have it reviewed`,
            );
          }
          const review: ReviewRow = {
            name,
            version,
            reviewer: input.reviewer,
            digest: input.digest,
            decision: input.decision,
            comment,
            reviewed_at: at,
          };
          await trx.insertInto('runbook_reviews').values(review).execute();
          return review;
        })
        .catch((e: unknown) => {
          // PostgreSQL: the same reviewer's second request, committed between our read and our insert.
          if (!isUniqueViolation(e)) throw e;
          throw new UserError('APPROVAL_DUPLICATE', `${input.reviewer} already reviewed ${ref(name, version)}`, {
            cause: e,
          });
        });
      await append([
        auditEvent('runbook.reviewed', {
          eventId: `runbook:${ref(name, version)}:review:${row.reviewer}`,
          executionId: null,
          actor: row.reviewer,
          at: row.reviewed_at,
          data: { name, version, digest: row.digest, decision: row.decision, comment: row.comment },
        }),
      ]);
      return (await this.versions(name)).find((v) => v.version === version)!;
    },

    async deprecate(name, version, input) {
      const reason = input.reason.trim();
      if (reason.length < 3) throw new UserError('USAGE', 'say why it is deprecated: add --reason "why"');
      const at = now();
      const { digest } = await db
        .transaction()
        .execute(async (trx) => {
          const found = await trx
            .selectFrom('runbook_versions')
            .select('digest')
            .where('name', '=', name)
            .where('version', '=', version)
            .executeTakeFirst();
          if (!found) await one(name, version, trx);
          const already = await trx
            .selectFrom('runbook_deprecations')
            .selectAll()
            .where('name', '=', name)
            .where('version', '=', version)
            .executeTakeFirst();
          if (already) {
            throw new UserError(
              'USAGE',
              `${ref(name, version)} is already deprecated (by ${already.deprecated_by}: ${already.reason})`,
            );
          }
          await trx
            .insertInto('runbook_deprecations')
            .values({ name, version, deprecated_by: input.by, reason, deprecated_at: at })
            .execute();
          return found!;
        })
        .catch((e: unknown) => {
          if (!isUniqueViolation(e)) throw e;
          throw new UserError('USAGE', `${ref(name, version)} is already deprecated`, { cause: e });
        });
      await append([
        auditEvent('runbook.deprecated', {
          eventId: `runbook:${ref(name, version)}:deprecated`,
          executionId: null,
          actor: input.by,
          at,
          data: { name, version, digest, reason },
        }),
      ]);
      return (await this.versions(name)).find((v) => v.version === version)!;
    },

    async versions(name) {
      const all = await rowsOf(name);
      const runs = await lastRuns(all.map((x) => x.row.name));
      return all.map((x) => infoOf(x.row, x.reviews, x.deprecation, runs.get(ref(x.row.name, Number(x.row.version)))));
    },

    async version(name, version) {
      const found = await one(name, version);
      const runs = await lastRuns([name]);
      return {
        ...infoOf(found.row, found.reviews, found.deprecation, runs.get(ref(name, version))),
        yaml: found.row.yaml,
      };
    },

    async seed(dir, people, log) {
      const files = await runbookFilesIn(dir);
      const problems: InvalidRunbook[] = [];
      const refuse = (file: string, error: string) => {
        problems.push({ file, error });
        log?.warn({ file, error }, 'runbook file not seeded');
      };
      // What is already there is read once: a restart of the server, which seeds again, then writes nothing.
      const existing = new Map((await this.versions()).map((v) => [ref(v.name, v.version), v]));
      const fresh: PublishFile[] = [];
      const claimed = new Map<string, string>();
      for (const f of files) {
        try {
          const file = { path: f, text: await readRunbookText(path.join(dir, f), f) };
          const { runbook, digest } = parseRunbookText(file.text, f);
          const at = ref(runbook.name, runbook.version);
          const twin = claimed.get(at);
          if (twin !== undefined) {
            throw new UserError(
              'RUNBOOK_INVALID',
              `${f} and ${twin} both define ${at}; give one of them another version`,
            );
          }
          claimed.set(at, f);
          const stored = existing.get(at);
          if (stored && stored.digest !== digest) {
            throw new UserError(
              'RUNBOOK_INVALID',
              `${at} is already published with other content (digest ${short(stored.digest)}, ${f} has ${short(digest)}); a published version never changes, so give ${f} a new version number`,
            );
          }
          if (!stored) fresh.push(file);
        } catch (e) {
          if (!(e instanceof UserError)) throw e;
          refuse(f, e.message);
        }
      }
      // One transaction for the new files: each was checked above, so none can fail the others.
      if (fresh.length > 0) await this.publish(people.author, fresh);
      for (const v of await this.versions()) {
        if (v.status !== 'pending' || v.author !== people.author || !claimed.has(ref(v.name, v.version))) continue;
        await this.review(v.name, v.version, {
          reviewer: people.reviewer,
          decision: 'approve',
          digest: v.digest,
          comment: 'example runbook, seeded by the embedded stack',
        });
      }
      refused = problems;
    },
  };
}

/** A typo gets the name it was probably meant to be; otherwise the names there are. */
function noRunbookNamed(name: string, known: readonly string[]): string {
  const near = closestWord(name, known);
  if (near !== undefined) return `there is no runbook named "${name}"; did you mean "${near}"?`;
  return `there is no runbook named "${name}"` + (known.length ? `; known runbooks: ${known.join(', ')}` : '');
}
