import { createRequire } from 'node:module';
import { Language, Parser, type Node } from 'web-tree-sitter';

/**
 * Where each `{{ placeholder }}` of a step script stands, decided by a real bash parser
 * (tree-sitter-bash). mechanic renders a value as one single-quoted word, which stays data only
 * where bash reads that word once and passes it on as an argument. Everywhere bash reads a word
 * again — backticks, here-documents, arithmetic (where `a[$(cmd)]` runs cmd), `eval`, `sh -c`,
 * `source`, `trap`, variable names, the command name — a value would become code. So a
 * placeholder is allowed only where the parse proves it is part of one plain argument word of a
 * simple command that does not evaluate its arguments; an integer may also stand alone as an
 * operand in arithmetic (it is then rendered as bare digits). Everything else is refused, and so
 * is any script the parser cannot read without errors. A hand-written lexer always missed a form.
 *
 * The analysis runs on the script with each placeholder replaced by a plain identifier (a
 * "marker"): an identifier lexes like any plain word, so the tree shows where the value would go.
 */

// Loaded once per process: runbooks are validated synchronously (zod), so the grammar must be
// ready before the first parse. Workflow code never imports this module (Temporal's sandbox has
// no WebAssembly file access); only the API server, CLI and worker do, through runbook.ts.
await Parser.init();
const BASH = await Language.load(createRequire(import.meta.url).resolve('tree-sitter-bash/tree-sitter-bash.wasm'));
const parser = new Parser();
parser.setLanguage(BASH);

/** `{{ name }}`, the only placeholder form. */
export const PLACEHOLDER_PATTERN = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** Why a placement is refused. Each rule names a place where bash would read the value again. */
export type RefusalRule =
  | 'unparsable-script'
  | 'command-name'
  | 'double-quotes'
  | 'single-quotes'
  | 'ansi-c-quotes'
  | 'backticks'
  | 'command-substitution'
  | 'process-substitution'
  | 'here-document'
  | 'parameter-expansion'
  | 'arithmetic-operand'
  | 'assignment'
  | 'array-literal'
  | 'for-list'
  | 'case'
  | 'redirection'
  | 'declaration'
  | 'evaluating-command'
  | 'unplain-command-name'
  | 'script-function'
  | 'script-redefines-commands'
  | 'find-exec'
  | 'variable-name-option'
  | 'option-word'
  | 'program-option'
  | 'pipeline'
  | 'word-characters'
  | 'escape-or-dollar'
  | 'unsupported-place';

export type Placement =
  /** Part of one plain argument word: rendered single-quoted. `optionPosition`: the value starts
   * the word and no `--` came before it, so a value starting with "-" would be read as an option.
   * `wholeArgument`: the placeholder is the whole word, an argument of a simple command (not of
   * `[ … ]`), so a list may stand there and become several words without changing what the
   * command means (inside `[ … ]` more words would change the test itself). */
  | { readonly kind: 'argument'; readonly optionPosition: boolean; readonly wholeArgument: boolean }
  /** A whole operand in arithmetic (or an assignment value): only an integer, rendered as bare digits. */
  | { readonly kind: 'arithmetic' }
  /** Inside a comment: never run, rendered single-quoted (values cannot hold a newline). */
  | { readonly kind: 'comment' }
  | { readonly kind: 'refused'; readonly rule: RefusalRule; readonly why: string };

export interface PlaceholderUse {
  readonly name: string;
  /** Offset of `{{` in the script, and its 1-based line and column. */
  readonly offset: number;
  readonly length: number;
  readonly line: number;
  readonly column: number;
  readonly placement: Placement;
}

export interface ScriptAnalysis {
  readonly uses: readonly PlaceholderUse[];
  /** Where bash's grammar could not read the script; every placeholder is then refused. */
  readonly syntaxError?: { readonly line: number; readonly column: number; readonly reason: string };
}

/**
 * Commands that run, source, re-parse or evaluate their arguments, or treat them as variable
 * names (where a subscript `a[$(cmd)]` is arithmetic and runs cmd). A placeholder may not be an
 * argument of any of them, nor stand in a pipeline with one (a shell or xargs reads its input as
 * commands). Matched on the last path segment, so `/usr/bin/env` is `env`.
 */
const EVALUATING_COMMANDS: ReadonlyMap<string, string> = new Map([
  // Run their arguments (or input) as shell code.
  ...[
    'eval',
    'source',
    '.',
    'trap',
    'bash',
    'sh',
    'zsh',
    'dash',
    'ksh',
    'mksh',
    'fish',
    'csh',
    'tcsh',
    'busybox',
    'alias',
    'bind',
    'complete',
    'compgen',
    'fc',
    'enable',
  ].map((c) => [c, 'runs its arguments as shell code'] as const),
  // Run their arguments as a command line.
  ...[
    'exec',
    'command',
    'builtin',
    'coproc',
    'time',
    'env',
    'sudo',
    'su',
    'doas',
    'runuser',
    'sg',
    'nohup',
    'nice',
    'ionice',
    'chrt',
    'taskset',
    'timeout',
    'stdbuf',
    'setsid',
    'chroot',
    'flock',
    'unshare',
    'nsenter',
    'systemd-run',
    'xargs',
    'parallel',
    'watch',
    'ssh',
    'script',
    'strace',
    'ltrace',
    'gdb',
    'at',
    'batch',
    'crontab',
    'make',
    // socat's EXEC: and SYSTEM: addresses; package runners fetch and run what they are named.
    'socat',
    'npx',
    'bunx',
    'uvx',
  ].map((c) => [c, 'runs its arguments as a command'] as const),
  // Read an argument (or their input) as a program.
  ...[
    'awk',
    'gawk',
    'mawk',
    'nawk',
    'sed',
    'perl',
    'python',
    'python2',
    'python3',
    'ruby',
    'node',
    'nodejs',
    'php',
    'lua',
    'tclsh',
    'expect',
    'pwsh',
    'Rscript',
    // m4's esyscmd and dc's ! run shell commands; mongosh is a JavaScript shell with require().
    'm4',
    'dc',
    'mongosh',
    'mongo',
    // Clients whose arguments are statements or commands that can reach a shell (psql \!, sqlite3 .shell).
    'psql',
    'mysql',
    'mariadb',
    'sqlite3',
    // Editors and pagers run commands from their arguments (vim -c '!…', ed '!…').
    'ed',
    'ex',
    'vi',
    'vim',
    'nvim',
    'emacs',
    'less',
    'more',
    'man',
  ].map((c) => [c, 'reads its arguments as a program'] as const),
  // Take variable names (a subscript in a name is arithmetic) or evaluate arithmetic.
  ...[
    'let',
    'declare',
    'typeset',
    'local',
    'export',
    'readonly',
    'read',
    'mapfile',
    'readarray',
    'unset',
    'getopts',
    'wait',
    'set',
    'hash',
  ].map((c) => [c, 'treats its arguments as variable names, arithmetic or shell settings'] as const),
]);

/**
 * Commands that, anywhere in a script, can change what any later command name runs: sourced
 * files and eval'd text can define functions (an `echo` that evals its arguments), aliases rebind
 * names, `enable` loads builtins, `hash` rebinds a name to a path.
 */
const REDEFINING_COMMANDS: ReadonlySet<string> = new Set(['source', '.', 'eval', 'alias', 'enable', 'hash']);

/** Container and cluster tools whose subcommands run a command line given as arguments. */
const CONTAINER_TOOLS: ReadonlySet<string> = new Set(['docker', 'podman', 'nerdctl', 'kubectl', 'oc', 'crictl']);
const RUNNING_SUBCOMMANDS: ReadonlySet<string> = new Set(['exec', 'run', 'debug', 'create', 'attach']);

interface ProgramOptions {
  /** Single-letter options, as one string of letters. */
  readonly short: string;
  readonly long: readonly string[];
}

/**
 * Options whose argument the command runs as a program or shell command, or reads ssh or apt
 * settings from that can name one (scp -o ProxyCommand=…, apt-get -o APT::Update::Pre-Invoke::=…):
 * single-letter options (alone, last in a cluster, or with the argument attached) and long ones
 * (the next word, or after "=").
 */
const PROGRAM_OPTIONS: ReadonlyMap<string, ProgramOptions> = new Map<string, ProgramOptions>([
  [
    'tar',
    {
      short: 'IF',
      long: [
        '--use-compress-program',
        '--to-command',
        '--rsh-command',
        '--rmt-command',
        '--info-script',
        '--new-volume-script',
        '--checkpoint-action',
      ],
    },
  ],
  ['rsync', { short: 'e', long: ['--rsh', '--rsync-path'] }],
  [
    'git',
    {
      // -x and --exec: rebase runs them; the filters: filter-branch runs them.
      short: 'cx',
      long: [
        '--config-env',
        '--upload-pack',
        '--receive-pack',
        '--exec',
        '--exec-path',
        '--tree-filter',
        '--index-filter',
        '--msg-filter',
        '--env-filter',
        '--commit-filter',
        '--parent-filter',
        '--tag-name-filter',
      ],
    },
  ],
  ['scp', { short: 'SoF', long: [] }],
  ['sftp', { short: 'SoFD', long: [] }],
  ['zip', { short: '', long: ['-TT', '--unzip-command'] }],
  ['sort', { short: '', long: ['--compress-program'] }],
  ['wget', { short: 'e', long: ['--use-askpass', '--execute'] }],
  ...['nc', 'netcat', 'ncat'].map((c): [string, ProgramOptions] => [
    c,
    { short: 'ec', long: ['--exec', '--sh-exec', '--lua-exec'] },
  ]),
  // rpm expands macros, and %(…) in a macro runs a shell command.
  ['rpm', { short: 'ED', long: ['--eval', '--define'] }],
  ...['apt-get', 'apt', 'apt-cache'].map((c) => [c, { short: 'oc', long: ['--option', '--config-file'] }] as const),
]);

/** Characters a word holding a placeholder may contain besides it: nothing bash expands or quotes. */
const PLAIN_WORD = /^[A-Za-z0-9_./:,@%+=~-]*$/;
/** A word that starts with a literal character other than "-": no command reads it as an option. */
const LITERAL_START = /^[A-Za-z0-9_./:,@%+~]/;
/** A command name bash takes literally (no quotes, escapes or expansions that could spell `eval`). */
const PLAIN_COMMAND_NAME = /^[A-Za-z0-9_./+:@%-]+$/;
const MARKER_TEXT = /__mechanic_ph\d+__/g;

const CACHE_LIMIT = 256;
const cache = new Map<string, ScriptAnalysis>();

/**
 * Parses a step script and places every placeholder in it. Results are cached by script text
 * (runbooks are checked at load and every plan re-checks its scripts).
 */
export function analyzeScript(script: string): ScriptAnalysis {
  const hit = cache.get(script);
  if (hit) return hit;
  const result = analyze(script);
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
  cache.set(script, result);
  return result;
}

interface Marker {
  readonly name: string;
  readonly offset: number;
  readonly length: number;
  /** Where the marker stands in the marked script. */
  readonly start: number;
  readonly end: number;
}

function analyze(script: string): ScriptAnalysis {
  const markers: Marker[] = [];
  let marked = '';
  let last = 0;
  for (const m of script.matchAll(PLACEHOLDER_PATTERN)) {
    marked += script.slice(last, m.index);
    const text = `__mechanic_ph${markers.length}__`;
    markers.push({
      name: m[1]!,
      offset: m.index,
      length: m[0].length,
      start: marked.length,
      end: marked.length + text.length,
    });
    marked += text;
    last = m.index + m[0].length;
  }
  marked += script.slice(last);

  const toOriginal = (index: number): number => {
    let shift = 0;
    for (const mk of markers) {
      if (mk.start >= index) break;
      shift += mk.end - mk.start - mk.length;
    }
    return index - shift;
  };

  const tree = parser.parse(marked);
  if (!tree) throw new Error('tree-sitter returned no tree for a bash script');
  try {
    const root = tree.rootNode;
    const broken = firstError(root);
    const badEnd = broken ? undefined : misreadHeredocEnd(root, marked);
    const syntaxError = broken
      ? { ...lineColumn(script, toOriginal(broken.startIndex)), reason: "bash's grammar cannot read the script here" }
      : badEnd
        ? {
            ...lineColumn(script, toOriginal(badEnd.startIndex)),
            reason: 'this line ends a here-document only if it is exactly the delimiter, with no other spaces',
          }
        : undefined;
    const facts = syntaxError ? undefined : scriptFacts(root);
    const uses = markers.map((mk): PlaceholderUse => {
      const placement: Placement =
        facts === undefined
          ? refuse('unparsable-script', "in a script bash's grammar cannot read, so its place cannot be proven safe")
          : place(marked, mk, root, facts);
      return { name: mk.name, offset: mk.offset, length: mk.length, ...lineColumn(script, mk.offset), placement };
    });
    return syntaxError ? { uses, syntaxError } : { uses };
  } finally {
    tree.delete();
  }
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const lineStart = before.lastIndexOf('\n') + 1;
  return { line: before.split('\n').length, column: offset - lineStart + 1 };
}

function firstError(node: Node): Node | undefined {
  if (!node.hasError && !node.isMissing) return undefined;
  if (node.isError || node.isMissing) return node;
  for (const child of node.children) {
    const found = child && firstError(child);
    if (found) return found;
  }
  return node;
}

/**
 * tree-sitter-bash ends a here-document on a line like "EOF " or "  EOF"; bash does not, and reads
 * on to the end of the script as the body, where a value's $(…) runs. So every here-document must
 * end on a line that is exactly its delimiter (after leading tabs, for <<-), as bash requires.
 */
function misreadHeredocEnd(root: Node, marked: string): Node | undefined {
  for (const redirect of root.descendantsOfType('heredoc_redirect')) {
    if (!redirect) continue;
    const start = redirect.children.find((c) => c?.type === 'heredoc_start');
    const end = redirect.children.find((c) => c?.type === 'heredoc_end');
    if (!start || !end) continue; // no end: the body runs to the end of the script, as in bash
    const delimiter = start.text.replace(/\\(.)/gs, '$1').replace(/['"]/g, '');
    const lineStart = marked.lastIndexOf('\n', end.startIndex - 1) + 1;
    const lineEnd = marked.indexOf('\n', end.startIndex);
    let line = marked.slice(lineStart, lineEnd === -1 ? marked.length : lineEnd);
    if (redirect.child(0)?.type === '<<-') line = line.replace(/^\t+/, '');
    if (line !== delimiter) return end;
  }
  return undefined;
}

interface ScriptFacts {
  /** Names of functions the script defines: their bodies may evaluate their arguments. */
  readonly functions: ReadonlySet<string>;
  /** A command that can redefine what command names run (source, alias, enable, hash). */
  readonly redefinedBy?: string;
}

function scriptFacts(root: Node): ScriptFacts {
  const functions = new Set<string>();
  let redefinedBy: string | undefined;
  const visit = (node: Node): void => {
    if (node.type === 'function_definition') {
      const name = node.childForFieldName('name')?.text;
      if (name) functions.add(name);
    }
    if (node.type === 'command') {
      const name = commandName(node);
      if (name !== undefined && REDEFINING_COMMANDS.has(baseName(name))) redefinedBy ??= name;
      // `exec > >(bash)` and a coprocess send every later command's output where it may run as code.
      if (name === 'coproc') redefinedBy ??= name;
      if (name === 'shopt' && node.text.includes('expand_aliases')) redefinedBy ??= 'shopt expand_aliases';
      if (name === 'exec' && node.parent?.type === 'redirected_statement') {
        if (node.parent.descendantsOfType('process_substitution').length > 0) redefinedBy ??= 'exec >(…)';
      }
    }
    if (node.type === 'variable_assignment') {
      // BASH_ALIASES[x]=eval defines an alias; BASH_CMDS[ls]=/path rebinds a command name.
      const target = node.childForFieldName('name')?.text ?? '';
      if (/^BASH_(ALIASES|CMDS)\b/.test(target)) redefinedBy ??= `${target}=…`;
    }
    for (const child of node.children) if (child) visit(child);
  };
  visit(root);
  if (functions.has('command_not_found_handle')) redefinedBy ??= 'command_not_found_handle';
  return redefinedBy === undefined ? { functions } : { functions, redefinedBy };
}

function refuse(rule: RefusalRule, why: string): Placement {
  return { kind: 'refused', rule, why };
}

/** The innermost node that holds the whole marker. */
function nodeAt(root: Node, mk: Marker): Node {
  let node = root.descendantForIndex(mk.start, mk.end) ?? root;
  while (node.parent && (node.startIndex > mk.start || node.endIndex < mk.end)) node = node.parent;
  return node;
}

function place(marked: string, mk: Marker, root: Node, facts: ScriptFacts): Placement {
  const leaf = nodeAt(root, mk);
  const whole = leaf.startIndex === mk.start && leaf.endIndex === mk.end;
  const before = marked[mk.start - 1];
  // A backslash would escape the value's opening quote; a `$` would make it `$'…'` or an expansion.
  if (before === '\\' || before === '$') {
    return refuse('escape-or-dollar', 'right after a backslash or "$", which changes how bash reads its quotes');
  }

  // Walk outwards to the first node that decides what kind of place this is.
  let child = leaf;
  for (let node: Node | null = leaf; node; child = node, node = node.parent) {
    switch (node.type) {
      case 'comment':
        // Only a # that starts a word starts a comment in bash; anything else is not proven one.
        return [undefined, ' ', '\t', '\n'].includes(marked[node.startIndex - 1])
          ? { kind: 'comment' }
          : refuse('unsupported-place', 'in text mechanic cannot prove bash reads as a comment');
      case 'string':
      case 'translated_string':
        return refuse('double-quotes', 'inside double quotes, where the quotes around the value become data');
      case 'raw_string':
        return refuse('single-quotes', "inside single quotes, where the value's own quoting ends the string");
      case 'ansi_c_string':
        return refuse('ansi-c-quotes', "inside $'…', where the value's own quoting ends the string");
      case 'heredoc_body':
      case 'heredoc_content':
      case 'heredoc_start':
      case 'heredoc_end':
      case 'heredoc_redirect':
        return refuse('here-document', 'in a here-document, where $(…) and backticks in the value run');
      case 'herestring_redirect':
      case 'file_redirect':
        return refuse('redirection', 'in a redirection, where the value would choose a file or descriptor');
      case 'command_substitution':
      case 'process_substitution':
        return substitutionRefusal(node);
      case 'simple_expansion':
      case 'expansion':
        return refuse('parameter-expansion', 'inside a $name or ${…} expansion, where bash reads it as an expression');
      case 'array':
        return refuse('array-literal', 'in an array literal, whose elements may later be read as names or arithmetic');
      case 'for_statement':
        return refuse('for-list', "in a for loop's word list, which hands the value to the loop body as a variable");
      case 'case_statement':
      case 'case_item':
        return refuse('case', 'in a case statement, where the value would be matched as a pattern or subject');
      case 'function_definition':
        if (same(child, node.childForFieldName('name')))
          return refuse('command-name', 'as a function name, where the value would choose what runs');
        break;
      case 'unset_command':
      case 'declaration_command':
        if (node.type === 'unset_command' || child.type !== 'variable_assignment') {
          return refuse(
            'declaration',
            `as an argument of ${node.child(0)?.text ?? 'a declaration'}, which reads it as a variable name`,
          );
        }
        break;
      case 'command_name':
        return refuse('command-name', 'as the command name, where the value would choose what runs');
      case 'subscript':
        if (!same(child, node.childForFieldName('index'))) {
          return refuse('declaration', 'as an array name, where bash reads the value as a variable name');
        }
        return arithmetic(node, whole, leaf);
      case 'arithmetic_expansion':
      case 'c_style_for_statement':
        return arithmetic(node, whole, leaf);
      case 'compound_statement':
        if (node.child(0)?.type === '((') return arithmetic(node, whole, leaf);
        break;
      case 'variable_assignment':
        if (!same(child, node.childForFieldName('value'))) {
          return refuse('assignment', 'as a variable name, where bash reads the value as a name or subscript');
        }
        // The variable may later meet arithmetic (`$((x))`, `[[ $x -gt 1 ]]`, `declare -i`), where
        // a string such as a[$(cmd)] runs cmd; only an integer may be assigned, as bare digits.
        if (!whole) {
          return refuse(
            'assignment',
            'glued to other text in an assignment, where the variable may later be evaluated as arithmetic',
          );
        }
        return arithmetic(node, whole, leaf);
      case 'test_command':
        return testOperand(node, leaf, mk, facts);
      case 'command':
        // Its name was refused at command_name above: the name field is always one.
        return commandArgument(node, child, leaf, mk, facts);
      default:
        break;
    }
  }
  return refuse('unsupported-place', 'in a place mechanic does not know to be safe');
}

/** A whole integer operand in arithmetic; the enclosing structure must not read it again. */
function arithmetic(context: Node, whole: boolean, leaf: Node): Placement {
  if (!whole || !['variable_name', 'word'].includes(leaf.type)) {
    return refuse(
      'arithmetic-operand',
      'glued to other text in arithmetic, where only a whole integer operand may stand',
    );
  }
  return outerContext(context) ?? { kind: 'arithmetic' };
}

/** The refusal for a value inside `…`, $(…), <(…) or >(…): bash reads each one's text or output again. */
function substitutionRefusal(node: Node): Placement {
  if (node.type === 'process_substitution') {
    return refuse('process-substitution', 'inside <(…) or >(…), whose output may be read again as code');
  }
  return node.child(0)?.type === '`'
    ? refuse('backticks', 'inside backticks, where bash reads the text again as a command')
    : refuse('command-substitution', 'inside $(…), whose output bash splits and may run or evaluate again');
}

/** Refusals that come from around a command or arithmetic: substitutions, here-documents, pipelines. */
function outerContext(from: Node, facts?: ScriptFacts): Placement | undefined {
  let child = from;
  for (let node = from.parent; node; child = node, node = node.parent) {
    switch (node.type) {
      case 'command_substitution':
      case 'process_substitution':
        return substitutionRefusal(node);
      case 'heredoc_body':
      case 'heredoc_redirect':
        return refuse('here-document', 'in a here-document, where $(…) and backticks in the value run');
      case 'redirected_statement':
        // `echo {{ v }} > >(bash)` hands the output to a shell as surely as a pipe does.
        for (const redirect of node.childrenForFieldName('redirect')) {
          if (redirect && redirect.descendantsOfType('process_substitution').length > 0) {
            return refuse('redirection', 'in a command whose output is redirected into a process substitution');
          }
        }
        // `echo {{ v }} <<EOF | sh`: bash pipes the command's output into sh, though tree-sitter
        // hangs that pipeline inside the here-document's redirect, not around the command.
        for (const stage of heredocPipeStages(node)) {
          const problem = pipelineStage(stage, facts);
          if (problem) return refuse('pipeline', problem);
        }
        break;
      case 'pipeline':
        for (const stage of node.namedChildren) {
          if (!stage || same(stage, child)) continue;
          const problem = pipelineStage(stage, facts);
          if (problem) return refuse('pipeline', problem);
        }
        break;
      default:
        break;
    }
  }
  return undefined;
}

/**
 * The stages after `|` on a here-document's `<<` line (`cmd <<EOF | sh`), which tree-sitter puts
 * inside the redirect: bash pipes the redirected statement's output into them.
 */
function heredocPipeStages(statement: Node): Node[] {
  const stages: Node[] = [];
  const collect = (pipeline: Node): void => {
    for (const stage of pipeline.namedChildren) {
      if (stage?.type === 'pipeline') collect(stage);
      else if (stage) stages.push(stage);
    }
  };
  for (const redirect of statement.childrenForFieldName('redirect')) {
    // Not `<<EOF && a | sh`: the statement after && or || is not fed by the command.
    const right = redirect?.childForFieldName('right');
    for (const child of redirect?.namedChildren ?? []) {
      if (child?.type === 'pipeline' && !same(child, right)) collect(child);
    }
  }
  return stages;
}

/** Another stage of a pipeline with a placeholder: a plain command that does not run its input. */
function pipelineStage(stage: Node, facts: ScriptFacts | undefined): string | undefined {
  const command = stage.type === 'redirected_statement' ? stage.childForFieldName('body') : stage;
  if (command?.type !== 'command') {
    return 'in a pipeline with a compound stage (a loop, group or subshell), which may read the value as code';
  }
  // The stage and any command inside it (`tee >(bash)`) may receive the value as input.
  for (const inner of [command, ...command.descendantsOfType('command')]) {
    if (!inner) continue;
    const name = commandName(inner);
    if (name === undefined) return 'in a pipeline with a command whose name is not a plain word';
    const why = EVALUATING_COMMANDS.get(baseName(name));
    if (why) return `in a pipeline into ${name}, which ${why}`;
    const running = runningForm(inner, baseName(name));
    if (running)
      return `in a pipeline into ${name} ${running.form}, which runs a command that may read the value as code`;
    if (facts?.functions.has(name)) return `in a pipeline into ${name}, a function of this script`;
  }
  return undefined;
}

/**
 * The form in which a command runs a command line given as its arguments — and so reads its input
 * too, when a shell is that command: a container tool's exec/run (`docker exec -i c sh`), find
 * with -exec, git submodule foreach or git bisect run. Undefined when it has none.
 */
function runningForm(
  command: Node,
  base: string,
): { rule: 'find-exec' | 'evaluating-command'; form: string } | undefined {
  const texts = command.childrenForFieldName('argument').flatMap((a) => (a ? [a.text] : []));
  const exec = texts.find((t) => ['-exec', '-execdir', '-ok', '-okdir'].includes(t));
  if (base === 'find' && exec !== undefined) return { rule: 'find-exec', form: `with ${exec}` };
  const sub = texts.find((t) => RUNNING_SUBCOMMANDS.has(t));
  if (CONTAINER_TOOLS.has(base) && sub !== undefined) return { rule: 'evaluating-command', form: sub };
  if (base === 'git' && texts.includes('foreach')) return { rule: 'evaluating-command', form: 'submodule foreach' };
  if (base === 'git' && texts.includes('bisect') && texts.includes('run'))
    return { rule: 'evaluating-command', form: 'bisect run' };
  return undefined;
}

function commandName(command: Node): string | undefined {
  const name = command.childForFieldName('name');
  const word = name?.namedChildren[0];
  if (!name || !word || name.namedChildCount !== 1 || word.type !== 'word') return undefined;
  return PLAIN_COMMAND_NAME.test(word.text) ? word.text : undefined;
}

function baseName(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1) || name;
}

/** The word holding the marker must be plain: nothing around the value that bash expands. */
function plainWord(leaf: Node): boolean {
  return leaf.type === 'word' && PLAIN_WORD.test(leaf.text.replace(MARKER_TEXT, ''));
}

function commandArgument(command: Node, child: Node, leaf: Node, mk: Marker, facts: ScriptFacts): Placement {
  // The marker's word is an argument itself, or one part of an argument glued from several parts.
  const direct = same(child, leaf);
  const glued = child.type === 'concatenation' && leaf.parent?.id === child.id;
  if ((!direct && !glued) || command.fieldNameForChild(indexOf(command, child)) !== 'argument') {
    return refuse('unsupported-place', 'in a place mechanic does not know to be safe');
  }
  if (!plainWord(leaf)) {
    return refuse(
      'word-characters',
      'in a word with quotes, escapes, globs or expansions around it, which bash would read as more than data',
    );
  }
  const outer = outerContext(command, facts);
  if (outer) return outer;
  const name = commandName(command);
  if (name === undefined) {
    return refuse(
      'unplain-command-name',
      'as an argument of a command whose name is not a plain word (an expansion could name eval)',
    );
  }
  const base = baseName(name);
  const why = EVALUATING_COMMANDS.get(base);
  if (why) return refuse('evaluating-command', `as an argument of ${name}, which ${why}`);
  if (facts.functions.has(name)) {
    return refuse(
      'script-function',
      `as an argument of ${name}, a function of this script whose body could evaluate it`,
    );
  }
  if (facts.redefinedBy !== undefined) {
    return refuse(
      'script-redefines-commands',
      `as a command argument in a script that runs ${facts.redefinedBy}, which can change what any command runs or where its output goes`,
    );
  }
  const args = command.childrenForFieldName('argument').filter((a): a is Node => a !== null);
  const texts = args.map((a) => a.text);
  const running = runningForm(command, base);
  if (running)
    return refuse(running.rule, `as an argument of ${name} ${running.form}, which runs its arguments as a command`);
  if (
    (base === 'printf' && texts.some((t) => t.startsWith('-v'))) ||
    (base === 'test' && texts.some((t) => t === '-v' || t === '-R'))
  ) {
    return refuse('variable-name-option', `as an argument of ${name} -v, which reads a variable name`);
  }
  const afterDashes = args.some((a) => a.text === '--' && a.startIndex < child.startIndex);
  const option = afterDashes ? undefined : programOption(base, args, child);
  if (option !== undefined) {
    return refuse('program-option', `as the argument of ${name} ${option}, which runs a program the value names`);
  }
  if (!afterDashes && inOptionWord(child, mk)) {
    return refuse(
      'option-word',
      `glued into an option word (after "-" with no "="), where the value would choose ${name}'s options, as in printf -va[$(cmd)], which runs cmd`,
    );
  }
  // Text before the value in the same word keeps it from being read as an option; an expansion
  // before it might be empty, so only literal text counts.
  const startsWord = mk.start === leaf.startIndex;
  const wholeArgument = direct && startsWord && mk.end === leaf.endIndex;
  return { kind: 'argument', optionPosition: startsWord && !afterDashes, wholeArgument };
}

/**
 * The option of PROGRAM_OPTIONS whose argument the value is part of: the word before is that
 * option (or a cluster ending in its letter), or the value's own word starts with it (`-o…`,
 * `--rsh=…`). Undefined when there is none.
 */
function programOption(base: string, args: readonly Node[], argument: Node): string | undefined {
  const options = PROGRAM_OPTIONS.get(base);
  if (!options) return undefined;
  const previous = args[args.findIndex((a) => same(a, argument)) - 1]?.text ?? '';
  if (options.long.includes(previous)) return previous;
  if (/^-[A-Za-z0-9]+$/.test(previous) && options.short.includes(previous.at(-1)!)) return `-${previous.at(-1)}`;
  // The value's own word: the text before it decides (the placeholder's marker is not alphanumeric).
  const word = argument.text;
  const long = options.long.find((o) => word.startsWith(`${o}=`));
  if (long !== undefined) return long;
  const letters = /^-([A-Za-z0-9]+)/.exec(word)?.[1] ?? '';
  const letter = [...options.short].find((l) => letters.includes(l));
  return letter === undefined ? undefined : `-${letter}`;
}

/**
 * Whether the value may continue an option word: the argument's text before it holds no "=" and
 * starts with "-" — or with a quote or expansion, which may be empty, and holds a "-" — so a
 * command could read the value as option letters or an option's name (`-{{ v }}`, `-c{{ v }}`,
 * `--{{ v }}`, `$x-{{ v }}`), not as the argument of an option (`--to={{ v }}`).
 */
function inOptionWord(argument: Node, mk: Marker): boolean {
  const before = argument.text.slice(0, mk.start - argument.startIndex);
  if (before.includes('=')) return false;
  return before.startsWith('-') || (!LITERAL_START.test(before) && before.includes('-'));
}

/** `[ … ]` reads plain arguments (never arithmetic); `[[ … ]]` evaluates -eq/-lt… operands and -v names. */
function testOperand(test: Node, leaf: Node, mk: Marker, facts: ScriptFacts): Placement {
  const whole = leaf.startIndex === mk.start && leaf.endIndex === mk.end;
  if (test.child(0)?.type === '[[') {
    if (!whole || leaf.type !== 'word') {
      return refuse(
        'arithmetic-operand',
        'glued to other text inside [[ … ]], where operands of -eq, -gt and -v are evaluated as arithmetic',
      );
    }
    // Any operand of [[ ]] may meet -eq/-gt (arithmetic) or -v (a name with a subscript): integers only.
    return outerContext(test, facts) ?? { kind: 'arithmetic' };
  }
  if (!plainWord(leaf)) {
    return refuse(
      'word-characters',
      'in a word with quotes, escapes, globs or expansions around it, which bash would read as more than data',
    );
  }
  if (test.descendantsOfType('test_operator').some((n) => n?.text === '-v' || n?.text === '-R')) {
    return refuse('variable-name-option', 'inside [ … ] with -v or -R, which reads a variable name');
  }
  return (
    outerContext(test, facts) ?? {
      kind: 'argument',
      optionPosition: mk.start === leaf.startIndex,
      wholeArgument: false,
    }
  );
}

/** web-tree-sitter hands out a new object per lookup, so nodes are compared by id. */
function same(a: Node | null | undefined, b: Node | null | undefined): boolean {
  return !!a && !!b && a.id === b.id;
}

function indexOf(parent: Node, child: Node): number {
  for (let i = 0; i < parent.childCount; i++) if (parent.child(i)?.id === child.id) return i;
  return -1;
}
