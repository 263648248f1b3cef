/**
 * `mechanic runbook publish|review|diff|list|deprecate`: the registry's commands. Authors publish
 * versions from files or a git repository, another author reviews each one, operators launch only
 * approved versions. Everything goes through the API, which checks, records and audits it.
 */
import { execFile } from 'node:child_process';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { UserError } from '../../src/core/errors.ts';
import { lineDiff } from '../../src/core/line-diff.ts';
import { neutralize } from '../../src/core/text.ts';
import type { RunbookVersionInfoBody } from '../../src/api/schemas.ts';
import type { RouteOutput } from '../../src/api/contract.ts';
import { connectApi } from '../api.ts';
import { parse } from '../args.ts';
import { out } from '../output.ts';

const t = (value: unknown): string => neutralize(String(value));
const short = (digest: string) => digest.slice(0, 12);
type VersionDetail = RouteOutput<'getRunbookVersion'>['version'];
/** The shortest digest prefix --digest accepts: enough that other content cannot match by luck. */
const MIN_DIGEST_PREFIX = 12;

/** `name@version`, as every registry command names one version. */
function versionRef(arg: string | undefined, usage: string): { name: string; version: number } {
  const m = arg === undefined ? null : /^([a-z][a-z0-9-]{1,62})@([1-9][0-9]{0,8})$/.exec(arg);
  if (!m) {
    throw new UserError(
      'USAGE',
      `${arg === undefined ? 'name a version' : `"${t(arg)}" is not a version`} like deploy-web@3; usage: ${usage}`,
    );
  }
  return { name: m[1]!, version: Number(m[2]) };
}

// publish ---------------------------------------------------------------------------------------

function git(cwd: string, args: readonly string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('git', ['-C', cwd, ...args], { timeout: 30_000 }, (error, stdout) =>
      resolve(error ? undefined : stdout.trim()),
    );
  });
}

/** The YAML files a publish names: files as given, folders by their *.yaml / *.yml files. */
async function filesOf(args: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const arg of args) {
    let info;
    try {
      info = await stat(arg);
    } catch {
      throw new UserError('USAGE', `${t(arg)} does not exist; name a runbook file or a folder of them`);
    }
    if (!info.isDirectory()) {
      files.push(arg);
      continue;
    }
    const found = (await readdir(arg)).filter((f) => /\.ya?ml$/.test(f)).sort();
    if (found.length === 0) throw new UserError('USAGE', `${t(arg)} holds no runbook files (*.yaml or *.yml)`);
    files.push(...found.map((f) => path.join(arg, f)));
  }
  return files;
}

/** Runbooks are a few KiB; the server refuses more than this per file, and the API more than 256 KiB per request. */
const MAX_FILE_BYTES = 1024 * 1024;

/**
 * A file's text, refusing what is not a plain, small, UTF-8 file; the server checks the text itself
 * (hidden characters, YAML, the runbook schema) and names the file in its sentence.
 */
async function readText(file: string, shown: string): Promise<string> {
  const info = await stat(file);
  if (!info.isFile())
    throw new UserError('RUNBOOK_INVALID', `${t(shown)} is not a regular file; runbooks must be plain YAML files`);
  if (info.size > MAX_FILE_BYTES) {
    throw new UserError(
      'RUNBOOK_INVALID',
      `${t(shown)} is larger than 1 MiB, far more than any runbook; check that it is the right file`,
    );
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(await readFile(file));
  } catch {
    throw new UserError('RUNBOOK_INVALID', `${t(shown)} is not UTF-8 text; save it as UTF-8`);
  }
}

/**
 * Where the files come from: in a git repository, the commit (`git rev-parse HEAD`), whether the
 * working tree was clean, and each path relative to the repository's root — so the registry says
 * which commit a version was published from. Files in two repositories at once are refused.
 */
async function gitSource(
  files: readonly string[],
): Promise<{ git?: { commit: string; clean: boolean }; pathOf: (f: string) => string }> {
  const roots = new Set<string | undefined>();
  for (const f of files) roots.add(await git(path.dirname(path.resolve(f)), ['rev-parse', '--show-toplevel']));
  const [root] = roots;
  if (roots.size > 1) {
    throw new UserError(
      'USAGE',
      'the files come from more than one git repository (or only some from one); publish each repository separately',
    );
  }
  // Outside a repository: the path as it was given, tidied.
  const plain = { pathOf: (f: string) => path.normalize(f) };
  if (root === undefined) return plain;
  const commit = await git(root, ['rev-parse', 'HEAD']);
  // A repository without a commit yet: there is nothing to record, so the files count as plain files.
  if (commit === undefined || !/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(commit)) return plain;
  const status = await git(root, ['status', '--porcelain']);
  return {
    git: { commit, clean: status === '' },
    pathOf: (f: string) => path.relative(root, path.resolve(f)).split(path.sep).join('/'),
  };
}

export async function publish(argv: string[]): Promise<number> {
  const usage = 'mechanic runbook publish <file-or-folder>… [--as user] [--json]';
  const { values, positionals } = parse(argv, { as: { type: 'string' }, json: { type: 'boolean' } }, usage);
  if (positionals.length === 0) throw new UserError('USAGE', `name a runbook file or folder; usage: ${usage}`);
  const files = await filesOf(positionals);
  const source = await gitSource(files);
  const body = await Promise.all(
    files.map(async (f) => ({ path: source.pathOf(f), text: await readText(f, source.pathOf(f)) })),
  );
  const api = await connectApi(loadConfig(), values.as);
  const { published } = await api.call('publishRunbooks', {
    body: { files: body, ...(source.git ? { git: source.git } : {}) },
  });
  if (values.json) {
    out.json({ published, ...(source.git ? { git: source.git } : {}) });
    return 0;
  }
  const from = source.git
    ? ` from git ${source.git.commit.slice(0, 12)}${source.git.clean ? '' : ' (working tree not clean)'}`
    : '';
  for (const p of published) {
    out.line(
      `${p.outcome === 'published' ? 'published' : 'unchanged'} ${t(p.name)}@${p.version}  digest ${short(p.digest)}  ${t(p.path)}${from}`,
    );
  }
  const fresh = published.filter((p) => p.outcome === 'published');
  if (fresh.length > 0) {
    out.info(
      `each new version waits for review by another author: mechanic runbook review ${t(fresh[0]!.name)}@${fresh[0]!.version} --approve --comment "what you checked"`,
    );
  }
  return 0;
}

// review ----------------------------------------------------------------------------------------

export async function review(argv: string[]): Promise<number> {
  const usage =
    'mechanic runbook review <name>@<version> --approve|--reject --comment "what you checked" [--digest <prefix>] [--as user] [--json]';
  const { values, positionals } = parse(
    argv,
    {
      approve: { type: 'boolean' },
      reject: { type: 'boolean' },
      comment: { type: 'string' },
      digest: { type: 'string' },
      as: { type: 'string' },
      json: { type: 'boolean' },
    },
    usage,
  );
  if (positionals.length !== 1) throw new UserError('USAGE', `name exactly one version; usage: ${usage}`);
  const { name, version } = versionRef(positionals[0], usage);
  if (values.approve === values.reject)
    throw new UserError('USAGE', `say --approve or --reject (one of them); usage: ${usage}`);
  if (values.comment === undefined)
    throw new UserError('USAGE', 'a review needs a comment: add --comment "what you checked"');
  if (values.digest !== undefined && !new RegExp(`^[0-9a-f]{${MIN_DIGEST_PREFIX},64}$`).test(values.digest)) {
    throw new UserError(
      'USAGE',
      `--digest takes at least the first ${MIN_DIGEST_PREFIX} characters of the version's digest`,
    );
  }
  const api = await connectApi(loadConfig(), values.as);
  const { version: published } = await api.call('getRunbookVersion', { params: { name, version: String(version) } });
  if (values.digest !== undefined && !published.digest.startsWith(values.digest)) {
    throw new UserError(
      'APPROVAL_PLAN_MISMATCH',
      `${name}@${version} as published has digest ${short(published.digest)}, not ${values.digest}; read it again ("mechanic runbook diff ${name} <v> ${version}") and review what is published`,
    );
  }
  // The review names the digest of exactly the content shown here (and read with --digest).
  const { version: reviewed } = await api.call('reviewRunbook', {
    params: { name, version: String(version) },
    body: { decision: values.approve ? 'approve' : 'reject', digest: published.digest, comment: values.comment },
  });
  if (values.json) {
    out.json({ version: reviewed });
    return 0;
  }
  out.line(
    `${values.approve ? 'approved' : 'rejected'} ${t(name)}@${version} (digest ${short(published.digest)}) — it is now ${reviewed.status}`,
  );
  return 0;
}

// deprecate -------------------------------------------------------------------------------------

export async function deprecate(argv: string[]): Promise<number> {
  const usage = 'mechanic runbook deprecate <name>@<version> --reason "why" [--as user] [--json]';
  const { values, positionals } = parse(
    argv,
    { reason: { type: 'string' }, as: { type: 'string' }, json: { type: 'boolean' } },
    usage,
  );
  if (positionals.length !== 1) throw new UserError('USAGE', `name exactly one version; usage: ${usage}`);
  const { name, version } = versionRef(positionals[0], usage);
  if (values.reason === undefined) throw new UserError('USAGE', 'say why it is deprecated: add --reason "why"');
  const api = await connectApi(loadConfig(), values.as);
  const { version: info } = await api.call('deprecateRunbook', {
    params: { name, version: String(version) },
    body: { reason: values.reason },
  });
  if (values.json) out.json({ version: info });
  else out.line(`deprecated ${t(name)}@${version}: it can no longer be launched`);
  return 0;
}

// list ------------------------------------------------------------------------------------------

/** One line per version: status, author, reviewers and the last run, newest version first. */
export function formatVersions(versions: readonly RunbookVersionInfoBody[]): string {
  if (versions.length === 0)
    return 'no runbook versions are published; publish one with "mechanic runbook publish <file>"';
  const rows = versions.map((v) => [
    `${t(v.name)}@${v.version}`,
    v.status,
    t(v.author),
    v.reviews.map((r) => `${t(r.reviewer)} ${r.decision === 'approve' ? '✓' : '✗'}`).join(', ') || '-',
    v.lastRunAt ?? 'never',
    short(v.digest),
    v.source.kind === 'git'
      ? `${t(v.source.path)} @ ${v.source.commit?.slice(0, 12) ?? ''}${v.source.clean === false ? ' (dirty)' : ''}`
      : t(v.source.path),
  ]);
  const header = ['VERSION', 'STATUS', 'AUTHOR', 'REVIEWERS', 'LAST RUN', 'DIGEST', 'SOURCE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows]
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '))
    .join('\n');
}

export async function list(argv: string[]): Promise<number> {
  const usage = 'mechanic runbook list [<name>] [--as user] [--json]';
  const { values, positionals } = parse(argv, { as: { type: 'string' }, json: { type: 'boolean' } }, usage);
  if (positionals.length > 1) throw new UserError('USAGE', `name at most one runbook; usage: ${usage}`);
  const api = await connectApi(loadConfig(), values.as);
  const { versions } = await api.call('listRunbookVersions', {
    query: positionals[0] === undefined ? {} : { name: positionals[0] },
  });
  if (values.json) out.json({ versions });
  else out.line(formatVersions(versions));
  return 0;
}

// diff ------------------------------------------------------------------------------------------

export async function diff(argv: string[]): Promise<number> {
  const usage = 'mechanic runbook diff <name> <version> <version> [--as user] [--json]';
  const { values, positionals } = parse(argv, { as: { type: 'string' }, json: { type: 'boolean' } }, usage);
  const [name, v1, v2, ...extra] = positionals;
  if (name === undefined || v1 === undefined || v2 === undefined || extra.length > 0) {
    throw new UserError('USAGE', `name a runbook and two of its versions; usage: ${usage}`);
  }
  const from = versionRef(`${name}@${v1}`, usage);
  const to = versionRef(`${name}@${v2}`, usage);
  const api = await connectApi(loadConfig(), values.as);
  const fetch = async (v: { version: number }): Promise<VersionDetail> =>
    (await api.call('getRunbookVersion', { params: { name, version: String(v.version) } })).version;
  const a = await fetch(from);
  const b = await fetch(to);
  const lines = lineDiff(a.yaml, b.yaml);
  if (values.json) {
    const strip = ({ yaml: _yaml, ...rest }: VersionDetail) => rest;
    out.json({ from: strip(a), to: strip(b), diff: lines });
    return 0;
  }
  const head = (v: VersionDetail, sign: string) =>
    `${sign} ${t(v.name)}@${v.version}  ${v.status}  by ${t(v.author)}  digest ${short(v.digest)}`;
  out.line([head(a, '---'), head(b, '+++'), ...lines.map((l) => neutralize(l))].join('\n'));
  return 0;
}
