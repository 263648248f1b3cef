import {
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  visit,
  type Document,
  type Node as YamlNode,
  type YAMLError,
} from 'yaml';
import type { z } from 'zod';
import { RunbookSchema, type Runbook } from './runbook.ts';
import { runbookJsonSchema } from './runbook-json-schema.ts';
import { analyzeScript, type PlaceholderUse } from './shell-placement.ts';
import { describeSelector, lookupsFor } from './targets.ts';
import { closestWord, describeCharacter } from './text.ts';

/**
 * `mechanic runbook lint`: every problem of a runbook file, each at the line and column of the
 * YAML source it is about, with one sentence and the rule it breaks. The registry refuses a file
 * with its first problem; an author fixing a file wants all of them, where they are.
 *
 * Pure: the caller reads the bytes (and says when a path is a directory or unreadable); this
 * module decodes, parses and checks. Positions are 1-based, columns count UTF-16 code units from
 * the start of the line (what editors call the column of plain text).
 */

export interface LintProblem {
  /** The path as the caller named it. */
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** A short stable id of the broken rule, e.g. `unknown-field`, `command-name`. */
  readonly rule: string;
  /** One sentence: what is wrong and what to do. */
  readonly message: string;
}

export interface LintResult {
  readonly problems: readonly LintProblem[];
  /**
   * The runbook, when the file is one the registry accepts; `problems` then holds only lint's
   * advice about it (credential-lifetime, secret-without-prefix, within-unreachable).
   */
  readonly runbook?: Runbook;
  /** Where the file's `version` value stands, to locate a clash with another file. */
  readonly versionAt?: { readonly line: number; readonly column: number };
}

/** A runbook is a few KiB of YAML; the registry refuses anything over 1 MiB unread. */
export const MAX_RUNBOOK_BYTES = 1024 * 1024;
/** Aliases a runbook may use, as the registry allows; far more is an alias bomb. */
const MAX_ALIAS_COUNT = 100;
/** Enough of one kind of problem to act on; more only buries the rest. */
const MAX_CHARACTER_PROBLEMS = 10;

/** A problem with the file as a whole (not readable as a file at all): located at its start. */
export function fileProblem(
  file: string,
  kind: 'directory' | 'not-regular' | 'too-large' | 'unreadable',
  detail = '',
): LintProblem {
  const message = {
    directory: 'this is a directory named like a runbook file; rename it or move it out of the runbooks folder',
    'not-regular': 'this is not a regular file; runbooks must be plain YAML files',
    'too-large': 'this file is larger than 1 MiB, far more than any runbook; check that it is the right file',
    // Without a reason the sentence says none, rather than "()".
    unreadable: `this file cannot be read${detail === '' ? '' : ` (${detail})`}; fix the file or remove it from the runbooks folder`,
  }[kind];
  return { file, line: 1, column: 1, rule: `file-${kind}`, message };
}

/** One problem as a line: `file:line:column: sentence [rule]`, the form editors and CI annotate. */
export function formatProblem(p: LintProblem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.message} [${p.rule}]`;
}

/** Every problem of one file's bytes. */
export function lintRunbookBytes(file: string, bytes: Uint8Array): LintResult {
  if (bytes.byteLength > MAX_RUNBOOK_BYTES) return { problems: [fileProblem(file, 'too-large')] };
  let text: string;
  try {
    // fatal: a byte that is not UTF-8 is an error, not a silent U+FFFD. A leading BOM is dropped.
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    return {
      problems: [{ file, ...at, rule: 'not-utf8', message: 'this byte is not UTF-8 text; save the file as UTF-8' }],
    };
  }
  return lintRunbookText(file, text);
}

/** Every problem of one file's text (already decoded). */
export function lintRunbookText(file: string, text: string): LintResult {
  const problems: LintProblem[] = [];
  const lines = new LineCounter();
  const at = (offset: number) => {
    const { line, col } = lines.linePos(offset);
    return { line, column: col };
  };
  const add = (offset: number, rule: string, message: string) =>
    problems.push({ file, ...at(offset), rule, message: withoutRule(message) });

  // The file is what reviewers read: a bidi override or zero-width character (Trojan Source)
  // could make it read differently than it runs. Every such character is reported where it is.
  const refused = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;
  let count = 0;
  for (const m of text.matchAll(refused)) {
    if (m[0] === '\t' || m[0] === '\n' || m[0] === '\r' || (m.index === 0 && m[0] === '\ufeff')) continue;
    if (++count > MAX_CHARACTER_PROBLEMS) break;
    problems.push({
      file,
      ...positionIn(text, m.index),
      rule: 'hidden-character',
      message:
        `this line contains ${describeCharacter(m[0])}; control, direction-changing and invisible characters ` +
        `can make a runbook read differently than it runs, so remove it`,
    });
  }

  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const yamlProblems = [...doc.errors, ...doc.warnings];
  if (yamlProblems.length > 0) {
    // One tag can break two ways at once ("!e!" has no suffix and resolves to nothing): say it once.
    const said = new Set<string>();
    for (const e of yamlProblems) {
      const [rule, message] = yamlProblem(e, text);
      const key = `${e.pos[0]} ${rule} ${message}`;
      if (said.has(key)) continue;
      said.add(key);
      add(e.pos[0], rule, message);
    }
    return { problems: byPosition(problems) };
  }
  if (doc.contents === null) {
    add(
      0,
      'empty',
      'this file holds no runbook; write one (a YAML mapping with name, version, description, roleArn, targets and steps) or remove it',
    );
    return { problems: byPosition(problems) };
  }
  if (!isMap(doc.contents)) {
    add(
      doc.contents.range[0],
      'not-a-mapping',
      'a runbook is a YAML mapping of fields; write it as "key: value" lines (name, version, steps, …)',
    );
    return { problems: byPosition(problems) };
  }

  const unresolved = firstUnresolvedAlias(doc);
  if (unresolved) {
    add(
      unresolved.offset,
      'unresolved-alias',
      `the alias *${unresolved.name} has no anchor &${unresolved.name} before it; define the anchor first or write the value out`,
    );
    return { problems: byPosition(problems) };
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (/excessive alias count/i.test(message)) {
      add(
        firstAliasOffset(doc),
        'alias-bomb',
        'this file expands its YAML aliases (*name) too many times, like an alias bomb; write the values out instead',
      );
    } else {
      // The one other refusal of toJS: a YAML 1.1 file (%YAML 1.1) merging ("<<") something that is
      // not a mapping. The registry refuses it as invalid YAML with this sentence; say it where it is.
      add(badMergeOffset(doc), 'yaml-syntax', `this is not valid YAML: ${message}`);
    }
    return { problems: byPosition(problems) };
  }

  const parsed = RunbookSchema.safeParse(data);
  const versionNode = doc.contents.get('version', true);
  const versionAt = isScalar(versionNode) && versionNode.range ? at(versionNode.range[0]) : undefined;
  if (parsed.success) {
    // Hidden characters make the registry refuse the file; what follows is lint's advice about a
    // runbook the registry accepts, so the runbook is still returned (an evidence pack reads it).
    const refused = problems.length > 0;
    const lifetime = credentialLifetimeProblem(parsed.data);
    const lifetimeNode = doc.contents.get('maxCredentialMinutes', true);
    if (lifetime !== undefined && isScalar(lifetimeNode) && lifetimeNode.range) {
      add(lifetimeNode.range[0], 'credential-lifetime', lifetime);
    }
    for (const p of [...secretPrefixProblems(parsed.data), ...unreachableTargetValues(parsed.data)]) {
      add(offsetIn(doc, p.path), p.rule, p.message);
    }
    return refused
      ? { problems: byPosition(problems) }
      : { problems: byPosition(problems), runbook: parsed.data, ...(versionAt ? { versionAt } : {}) };
  }
  const locator = new Locator(doc, text, data);
  for (const issue of parsed.error.issues) {
    for (const p of locator.explain(issue)) add(p.offset, p.rule, p.message);
  }
  return { problems: byPosition(problems) };
}

/**
 * A `maxCredentialMinutes` that no plan can meet: the timeouts of the steps that always run (no
 * condition; onFailure steps included, as credentials cover them) already exceed it, before any
 * retry, wave or overhead. Planning would refuse every run; the author hears it here, at the field.
 */
function credentialLifetimeProblem(rb: Runbook): string | undefined {
  if (rb.maxCredentialMinutes === undefined) return undefined;
  const seconds = [...rb.steps, ...rb.onFailure]
    .filter((s) => s.condition === undefined)
    .reduce((sum, s) => sum + s.timeoutSeconds, 0);
  if (seconds <= rb.maxCredentialMinutes * 60) return undefined;
  return `maxCredentialMinutes is ${rb.maxCredentialMinutes}, but the timeouts of the steps that always run (onFailure included) already add up to ${Math.ceil(seconds / 60)} minutes (${seconds} s), so every plan of it would be refused; shorten those timeouts or raise maxCredentialMinutes`;
}

/** A problem of a runbook that parses, at the path of the field it is about. */
interface FieldProblem {
  readonly path: readonly (string | number)[];
  readonly rule: string;
  readonly message: string;
}

/**
 * A secret parameter without `prefix` takes any Parameter Store name: what it can read then rests
 * on the instances' role alone, which the runbook's reviewers do not see. Reported at its `type`.
 */
function secretPrefixProblems(rb: Runbook): FieldProblem[] {
  return Object.entries(rb.parameters).flatMap(([name, p]) => {
    if (p.type !== 'secret' || p.prefix !== undefined) return [];
    // The folder of its default, when it has one in a hierarchy, is the likely bound.
    const folder = p.default?.startsWith('/') ? p.default.slice(0, p.default.lastIndexOf('/') + 1) : '';
    const example = folder.length > 1 ? folder : '/prod/app/';
    return [
      {
        path: ['parameters', name, 'type'],
        rule: 'secret-without-prefix',
        message: `parameter "${name}" is a secret reference without a prefix, so an operator may name any Parameter Store secret the instances' role can read; add the path it may read, e.g. prefix: ${example}`,
      },
    ];
  });
}

/**
 * The values of an enum target parameter (or a list of enum items) that `targets.within` can never
 * admit, so that choosing one is always refused at plan time. Each value is read as the planner
 * reads it (lookupsFor: an instance id, else a Name tag). Offline, lint knows an id's own id and a
 * name's own Name tag, nothing else: an id against an instanceIds bound and a name against a names
 * bound (or a tags bound on Name) are decided here; an id against a names or tags bound, or a name
 * against an instanceIds bound, depends on the fleet and is checked only when the run is planned.
 */
function unreachableTargetValues(rb: Runbook): FieldProblem[] {
  const { targets } = rb;
  if (!('fromParameter' in targets) || targets.within === undefined) return [];
  const { fromParameter: name, within } = targets;
  const p = rb.parameters[name];
  const offered =
    p?.type === 'enum'
      ? { values: p.values, path: ['parameters', name, 'values'] }
      : p?.type === 'list' && p.items.type === 'enum'
        ? { values: p.items.values, path: ['parameters', name, 'items', 'values'] }
        : undefined;
  if (offered === undefined) return [];
  const out: FieldProblem[] = [];
  offered.values.forEach((value, i) => {
    if (value.trim() === '') return;
    const [selector] = lookupsFor(rb.name, targets, { [name]: value }).wanted;
    const asId = selector !== undefined && 'instanceIds' in selector;
    const v = value.trim();
    const outside =
      'instanceIds' in within
        ? asId && !within.instanceIds.includes(v)
        : 'names' in within
          ? !asId && !within.names.includes(v)
          : !asId && Object.hasOwn(within.tags, 'Name') && within.tags['Name'] !== v;
    if (!outside) return;
    out.push({
      path: [...offered.path, i],
      rule: 'within-unreachable',
      message: `parameter "${name}" offers ${JSON.stringify(value)}, ${asId ? 'an instance id' : 'a Name tag'} outside targets.within (${describeSelector(within)}), so choosing it is always refused when the run is planned; remove the value or widen within`,
    });
  });
  return out;
}

/** The start of the value at `path`, or of the nearest ancestor that exists. */
function offsetIn(doc: Document, path: readonly (string | number)[]): number {
  for (let n = path.length; n > 0; n--) {
    const node = doc.getIn(path.slice(0, n), true) as YamlNode | undefined;
    if (node && typeof node === 'object' && 'range' in node && node.range) return node.range[0];
  }
  return 0;
}

/** Problems in the order a reader meets them in the file. */
function byPosition(problems: LintProblem[]): LintProblem[] {
  return problems.sort((a, b) => a.line - b.line || a.column - b.column);
}

/**
 * Two files that define the same name and version: which one would run depends on file names, so
 * both are reported, each at its own `version`.
 */
export function lintVersionClashes(
  results: readonly { readonly file: string; readonly result: LintResult }[],
): LintProblem[] {
  const problems: LintProblem[] = [];
  for (const { file, result } of results) {
    const rb = result.runbook;
    if (!rb) continue;
    const twins = results.filter(
      (r) => r.file !== file && r.result.runbook?.name === rb.name && r.result.runbook.version === rb.version,
    );
    if (twins.length === 0) continue;
    problems.push({
      file,
      ...(result.versionAt ?? { line: 1, column: 1 }),
      rule: 'duplicate-version',
      message: `${twins.map((t) => t.file).join(', ')} also defines ${rb.name} version ${rb.version}; give one of them another version`,
    });
  }
  return problems;
}

// --- positions ---------------------------------------------------------------------------------

function positionIn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

/** The line and column of the first byte that is not UTF-8 (bytes are fed one at a time until one fails). */
function firstInvalidUtf8(bytes: Uint8Array): { line: number; column: number } {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let decoded = '';
  for (let i = 0; i < bytes.byteLength; i++) {
    try {
      decoded += decoder.decode(bytes.subarray(i, i + 1), { stream: true });
    } catch {
      break;
    }
  }
  return positionIn(decoded, decoded.length);
}

function yamlProblem(e: YAMLError, text: string): [rule: string, message: string] {
  // Plain messages (prettyErrors: false) carry no position or excerpt: the problem's own line and
  // column say where. Only the first line is a sentence.
  const first = e.message.split('\n')[0] ?? e.message;
  switch (e.code) {
    case 'DUPLICATE_KEY':
      return ['duplicate-key', 'this key is already set above in the same mapping; keep one of them'];
    case 'MULTIPLE_DOCS':
      return ['multiple-documents', 'a second YAML document starts here; keep one runbook per file'];
    case 'TAB_AS_INDENT':
      return ['yaml-syntax', 'tabs are not allowed as indentation in YAML; indent with spaces'];
    case 'TAG_RESOLVE_FAILED': {
      // The tag as written: yaml's own sentence names it resolved (tag:yaml.org,2002:int for !!int),
      // or not at all ("Verbatim tags must end with a >").
      const tag = text.slice(e.pos[0], e.pos[1]);
      return ['unknown-tag', `the tag ${tag} means nothing to mechanic; runbooks use plain YAML values, so remove it`];
    }
    default:
      return ['yaml-syntax', `this is not valid YAML: ${first}`];
  }
}

function firstUnresolvedAlias(doc: Document): { name: string; offset: number } | undefined {
  const anchors = new Set<string>();
  let found: { name: string; offset: number } | undefined;
  visit(doc, (_key, node) => {
    if (isAlias(node)) {
      if (!anchors.has(node.source)) {
        found = { name: node.source, offset: node.range?.[0] ?? 0 };
        return visit.BREAK;
      }
    } else if ((isScalar(node) || isMap(node) || isSeq(node)) && node.anchor) anchors.add(node.anchor);
    return undefined;
  });
  return found;
}

function firstAliasOffset(doc: Document): number {
  let offset = 0;
  visit(doc, {
    Alias(_key, node) {
      offset = node.range?.[0] ?? 0;
      return visit.BREAK;
    },
  });
  return offset;
}

/** The merge key ("<<") of the first merge of something other than mappings (or aliases of them). */
function badMergeOffset(doc: Document): number {
  let offset = 0;
  const isMapping = (n: unknown) => isMap(isAlias(n) ? n.resolve(doc) : n);
  visit(doc, {
    Pair(_key, { key, value }) {
      // yaml resolves a plain << in a YAML 1.1 file to a symbol; a quoted '<<' is an ordinary key.
      if (!isScalar(key) || typeof key.value !== 'symbol') return undefined;
      const merged = isAlias(value) ? value.resolve(doc) : value;
      if (isSeq(merged) ? merged.items.every(isMapping) : isMapping(merged)) return undefined;
      offset = key.range![0];
      return visit.BREAK;
    },
  });
  return offset;
}

/** The rule a message names itself, as "(rule x)", is printed once, in brackets. */
function withoutRule(message: string): string {
  return message.replace(/ \(rule [\w-]+\)/, '');
}

// --- from zod issues to located sentences ------------------------------------------------------

type Issue = z.core.$ZodIssue;
type Path = readonly PropertyKey[];
interface Explained {
  readonly offset: number;
  readonly rule: string;
  readonly message: string;
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  string: 'text',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
  null: 'nothing',
  undefined: 'nothing',
};
const typeName = (t: string | undefined) => (t === undefined ? 'something else' : (TYPE_NAMES[t] ?? t));

/** `steps[0].script`, `parameters.release.pattern`: a path as an author reads it. */
function pathText(path: Path): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

/** Generated once, on the first unknown field: most files never need it. */
let jsonSchema: Record<string, unknown> | undefined;

class Locator {
  /** Placeholder uses already named by a sentence, by step and offset. */
  private readonly named = new Set<string>();

  constructor(
    private readonly doc: Document,
    private readonly text: string,
    private readonly data: unknown,
  ) {}

  explain(issue: Issue): Explained[] {
    const path = issue.path;
    switch (issue.code) {
      case 'unrecognized_keys':
        return issue.keys.map((key) => {
          const known = this.knownKeys(path);
          const suggestion = closestWord(key, known);
          const where = path.length === 0 ? 'a runbook field' : `a field of ${pathText(path)}`;
          return {
            offset: this.keyOffset([...path, key]),
            rule: 'unknown-field',
            message:
              `"${key}" is not ${where}; ` +
              (suggestion ? `did you mean "${suggestion}"?` : `remove it or check its spelling`),
          };
        });
      case 'invalid_type': {
        const received = /received (\w+)/.exec(issue.message)?.[1];
        const name = pathText(path);
        if (received === 'undefined' && this.node(path) === undefined) {
          const parent = path.slice(0, -1);
          const owner = parent.length === 0 ? 'the runbook' : pathText(parent);
          return [
            {
              offset: this.offsetOf(parent),
              rule: 'missing-field',
              message: `${owner} has no "${String(path.at(-1))}"; add it (${typeName(issue.expected)})`,
            },
          ];
        }
        return [
          {
            offset: this.offsetOf(path),
            rule: 'wrong-type',
            message: `${name} must be ${typeName(issue.expected)}, not ${typeName(received)}`,
          },
        ];
      }
      case 'invalid_union':
        return this.explainUnion(issue);
      case 'custom':
        return [this.explainCustom(issue.message, path)];
      case 'too_small':
      case 'too_big': {
        const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
        const side = issue.code === 'too_small' ? 'at least' : 'at most';
        const exact = issue.inclusive === false ? (issue.code === 'too_small' ? 'more than' : 'less than') : side;
        const unit =
          issue.origin === 'string'
            ? ` character${bound === 1 ? '' : 's'} long`
            : issue.origin === 'array'
              ? ` item${bound === 1 ? '' : 's'}`
              : '';
        const what =
          issue.origin === 'array' ? `must list ${exact} ${String(bound)}` : `must be ${exact} ${String(bound)}`;
        return [{ offset: this.offsetOf(path), rule: 'out-of-range', message: `${pathText(path)} ${what}${unit}` }];
      }
      default: {
        const message = issue.message.startsWith('must ')
          ? `${pathText(path)} ${issue.message}`
          : `${pathText(path)}: ${issue.message.charAt(0).toLowerCase()}${issue.message.slice(1)}`;
        return [{ offset: this.offsetOf(path), rule: 'invalid-value', message }];
      }
    }
  }

  private explainUnion(issue: Extract<Issue, { code: 'invalid_union' }>): Explained[] {
    const path = issue.path;
    if ('discriminator' in issue && issue.discriminator !== undefined) {
      const options = (issue as { options?: unknown[] }).options ?? [];
      const value = this.node(path);
      const got = isScalar(value) ? `; got ${JSON.stringify(value.value)}` : '';
      return [
        {
          offset: this.offsetOf(path),
          rule: 'invalid-value',
          message: `${pathText(path)} must be one of ${options.map(String).join(', ')}${got}`,
        },
      ];
    }
    // A branch whose only complaints lie deeper than the union is the one the author meant: say those.
    // Its own key missing counts too: `targets: { within: … }` has only fields of the fromParameter
    // form, which lacks fromParameter; an empty mapping misses every form's key, and no form is meant.
    const meant = issue.errors.filter((branch) => branch.every((i) => i.path.length > 0));
    if (meant.length === 1) {
      return meant[0]!.flatMap((i) => this.explain({ ...i, path: [...path, ...i.path] }));
    }
    const name = pathText(path);
    // A union that says what it accepts (rate control: a number or a percentage) is quoted as it says it.
    const stated = issue.message.startsWith('must ') ? `${name} ${issue.message}` : undefined;
    return [
      {
        offset: this.offsetOf(path),
        rule: 'invalid-value',
        message:
          name === 'targets'
            ? 'targets must be one of instanceIds (a list of instance ids), tags (1 to 5 "key: value" pairs), names (a list of Name tags) or fromParameter (a parameter naming them)'
            : (stated ??
              `${name} matches none of the forms it may take; see the runbook schema (mechanic runbook schema)`),
      },
    ];
  }

  /** The refinements of runbook.ts name a step or a parameter in their sentence: point at it. */
  private explainCustom(message: string, path: Path): Explained {
    const rule = /\(rule ([\w-]+)\)/.exec(message)?.[1];
    let m: RegExpExecArray | null;
    if ((m = /^step "([^"]+)", line (\d+), column (\d+)/.exec(message))) {
      return {
        offset: this.scriptOffset(m[1]!, Number(m[2]), Number(m[3])),
        rule: rule ?? 'unparsable-script',
        message,
      };
    }
    if ((m = /^step "([^"]+)", line (\d+): \{\{ (\w+) \}\}/.exec(message))) {
      const [, step, line, name] = m;
      const column = this.placeholderColumn(step!, Number(line), name!, message);
      return { offset: this.scriptOffset(step!, Number(line), column), rule: rule ?? 'placement', message };
    }
    if ((m = /^step "([^"]+)" uses \{\{ (\w+) \}\}/.exec(message))) {
      const found = this.findInScript(m[1]!, new RegExp(`\\{\\{\\s*${m[2]}\\s*\\}\\}`));
      return {
        offset: found,
        rule: 'undeclared-parameter',
        message: `${message}; declare it under parameters or fix the name`,
      };
    }
    if ((m = /^step "([^"]+)" has a "\{\{"/.exec(message))) {
      const found = this.findInScript(m[1]!, /\{\{(?!\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\})/);
      return { offset: found, rule: 'malformed-placeholder', message };
    }
    if ((m = /^step name "([^"]+)" is used twice/.exec(message))) {
      const steps = this.stepPaths(m[1]!);
      return {
        offset: this.offsetOf([...(steps[1] ?? steps[0] ?? []), 'name']),
        rule: 'duplicate-step',
        message: `${message}; give each step its own name`,
      };
    }
    if ((m = /^the default of parameter "([^"[]+)(?:\[(\d+)\])?"/.exec(message))) {
      // A list's default is located at the item that breaks the rules (hosts[2]).
      const item = m[2] === undefined ? [] : [Number(m[2])];
      return { offset: this.offsetOf(['parameters', m[1]!, 'default', ...item]), rule: 'bad-default', message };
    }
    if ((m = /^parameter "([^"]+)" has min greater than max/.exec(message))) {
      return {
        offset: this.offsetOf(['parameters', m[1]!, 'min']),
        rule: 'min-above-max',
        message: `${message}; swap them or fix one`,
      };
    }
    if ((m = /^parameter "([^"]+)" lists a value twice/.exec(message))) {
      const values = this.node(['parameters', m[1]!, 'values']);
      let offset = this.offsetOf(['parameters', m[1]!, 'values']);
      if (isSeq(values)) {
        const seen = new Set<unknown>();
        for (const item of values.items) {
          const v = isScalar(item) ? item.value : undefined;
          if (seen.has(v) && isScalar(item) && item.range) {
            offset = item.range[0];
            break;
          }
          seen.add(v);
        }
      }
      return { offset, rule: 'duplicate-value', message: `${message}; remove the second one` };
    }
    if ((m = /^parameter "([^"]+)" has a pattern/.exec(message))) {
      return { offset: this.offsetOf(['parameters', m[1]!, 'pattern']), rule: 'pattern', message };
    }
    if ((m = /^parameter "([^"]+)" takes a name reserved/.exec(message))) {
      return { offset: this.keyOffset(['parameters', m[1]!]), rule: 'reserved-name', message };
    }
    // A refinement added later: its path if it has one, else whatever it names.
    if ((m = /\bparameter "([^"]+)"/.exec(message)) && path.length === 0) {
      return { offset: this.keyOffset(['parameters', m[1]!]), rule: rule ?? 'runbook-rule', message };
    }
    if ((m = /\bstep "([^"]+)"/.exec(message)) && path.length === 0) {
      const steps = this.stepPaths(m[1]!);
      return { offset: this.offsetOf(steps[0] ?? []), rule: rule ?? 'runbook-rule', message };
    }
    const where = path.length > 0 && !message.startsWith(pathText(path)) && /^must /.test(message);
    return {
      offset: this.offsetOf(path),
      rule: rule ?? 'runbook-rule',
      message: where ? `${pathText(path)} ${message}` : message,
    };
  }

  // --- nodes and offsets ---

  private node(path: Path): YamlNode | undefined {
    const n = this.doc.getIn(path as unknown[], true);
    return n && typeof n === 'object' && 'range' in n ? (n as YamlNode) : undefined;
  }

  /** The start of the value at `path`, or of the nearest ancestor that exists. */
  private offsetOf(path: Path): number {
    for (let n = path.length; n >= 0; n--) {
      const node = this.node(path.slice(0, n));
      if (node?.range) return n === 0 && isMap(node) ? this.firstKeyOffset(node) : node.range[0];
    }
    return 0;
  }

  private firstKeyOffset(map: YamlNode): number {
    const first = isMap(map) ? map.items[0] : undefined;
    const key = first && isPair(first) && isScalar(first.key) ? first.key : undefined;
    return key?.range?.[0] ?? map.range?.[0] ?? 0;
  }

  /** The start of the key of the entry at `path` (an unknown field is its key). */
  private keyOffset(path: Path): number {
    const parent = this.node(path.slice(0, -1));
    const key = path.at(-1);
    if (isMap(parent)) {
      for (const pair of parent.items) {
        if (isScalar(pair.key) && pair.key.value === key && pair.key.range) return pair.key.range[0];
      }
    }
    return this.offsetOf(path);
  }

  private stepPaths(name: string): (readonly PropertyKey[])[] {
    const out: (readonly PropertyKey[])[] = [];
    const rb = this.data as { steps?: unknown; onFailure?: unknown };
    for (const list of ['steps', 'onFailure'] as const) {
      const steps = rb[list];
      if (!Array.isArray(steps)) continue;
      steps.forEach((s: unknown, i) => {
        if (s && typeof s === 'object' && (s as { name?: unknown }).name === name) out.push([list, i]);
      });
    }
    return out;
  }

  private scriptNode(step: string) {
    const [p] = this.stepPaths(step);
    const node = p ? this.node([...p, 'script']) : undefined;
    return { path: p, node: isScalar(node) ? node : undefined };
  }

  /** Where line `line`, column `column` of a step's script stands in the file. */
  private scriptOffset(step: string, line: number, column: number): number {
    const { path, node } = this.scriptNode(step);
    if (!node?.range || typeof node.value !== 'string') return this.offsetOf(path ? [...path, 'script'] : []);
    const start = node.range[0];
    if (node.type === 'BLOCK_LITERAL') {
      // Line 1 of the script is the line after the `|` header; its indentation is what YAML strips.
      const scriptLine = node.value.split('\n')[line - 1];
      // Two steps of one name: the sentence may be about the other one's script, longer than this.
      if (scriptLine === undefined) return start;
      let offset = this.text.indexOf('\n', start) + 1;
      for (let i = 1; i < line && offset > 0; i++) offset = this.text.indexOf('\n', offset) + 1;
      if (offset <= 0) return start;
      const end = this.text.indexOf('\n', offset);
      const sourceLine = this.text.slice(offset, end === -1 ? undefined : end).replace(/\r$/, '');
      const indent = sourceLine.endsWith(scriptLine) ? sourceLine.length - scriptLine.length : 0;
      return offset + indent + column - 1;
    }
    if (line === 1 && (node.type === 'PLAIN' || node.type === 'QUOTE_SINGLE' || node.type === 'QUOTE_DOUBLE')) {
      // A one-line scalar: the script starts after the quote, if any. Escapes would shift columns,
      // so a quoted script with backslashes is located at its start.
      const quote = node.type === 'PLAIN' ? 0 : 1;
      const raw = this.text.slice(start + quote, start + quote + column);
      return raw.includes('\\') || raw.includes("''") ? start : start + quote + column - 1;
    }
    return start;
  }

  /**
   * Which use of `{{ name }}` on that line the sentence is about: the parser's own verdict for each
   * use says, so two uses on one line are told apart; each use is named once.
   */
  private placeholderColumn(step: string, line: number, name: string, message: string): number {
    const { node } = this.scriptNode(step);
    if (typeof node?.value !== 'string') return 1;
    const uses = analyzeScript(node.value).uses.filter((u) => u.line === line && u.name === name);
    const fits = (u: PlaceholderUse) =>
      u.placement.kind === 'refused'
        ? message.includes(u.placement.why)
        : u.placement.kind === 'arithmetic' && message.includes('arithmetic');
    const use =
      uses.find((u) => fits(u) && !this.named.has(`${step}:${u.offset}`)) ?? uses.find((u) => fits(u)) ?? uses[0];
    if (!use) return 1;
    this.named.add(`${step}:${use.offset}`);
    return use.column;
  }

  private findInScript(step: string, re: RegExp): number {
    const { node } = this.scriptNode(step);
    // A script written as an alias (*s) is located where the alias stands, as scriptOffset does.
    if (typeof node?.value !== 'string') return this.scriptOffset(step, 1, 1);
    const m = re.exec(node.value);
    if (!m) return this.scriptOffset(step, 1, 1);
    const { line, column } = positionIn(node.value, m.index);
    return this.scriptOffset(step, line, column);
  }

  /** The fields the schema allows at `path`, to suggest the one a typo meant. */
  private knownKeys(path: Path): string[] {
    jsonSchema ??= runbookJsonSchema();
    let candidates: unknown[] = [jsonSchema];
    let data: unknown = this.data;
    for (const seg of path) {
      const next: unknown[] = [];
      for (const c of expand(candidates, data)) {
        const s = c as Record<string, unknown>;
        const props = s['properties'] as Record<string, unknown> | undefined;
        if (typeof seg === 'number') {
          if (s['items']) next.push(s['items']);
        } else if (props && typeof seg === 'string' && Object.hasOwn(props, seg)) next.push(props[seg]);
        else if (s['additionalProperties'] && typeof s['additionalProperties'] === 'object')
          next.push(s['additionalProperties']);
      }
      candidates = next;
      data = data && typeof data === 'object' ? (data as Record<PropertyKey, unknown>)[seg] : undefined;
    }
    const keys = new Set<string>();
    for (const c of expand(candidates, data)) {
      const props = (c as Record<string, unknown>)['properties'];
      if (props && typeof props === 'object') for (const k of Object.keys(props)) keys.add(k);
    }
    return [...keys];
  }
}

/** Flattens anyOf/oneOf, keeping only the branches whose `type` constant fits the data. */
function expand(schemas: readonly unknown[], data: unknown): unknown[] {
  const out: unknown[] = [];
  for (const s of schemas) {
    if (!s || typeof s !== 'object') continue;
    const o = s as Record<string, unknown>;
    const branches = (o['anyOf'] ?? o['oneOf']) as unknown[] | undefined;
    if (branches) {
      const fitting = branches.filter((b) => {
        const typeConst = (
          (b as Record<string, unknown>)['properties'] as Record<string, { const?: unknown }> | undefined
        )?.['type']?.const;
        const dataType = data && typeof data === 'object' ? (data as Record<string, unknown>)['type'] : undefined;
        return typeConst === undefined || dataType === undefined || typeConst === dataType;
      });
      out.push(...expand(fitting, data));
    } else out.push(o);
  }
  return out;
}
