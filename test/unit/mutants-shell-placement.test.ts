/**
 * Tests for the mutants Stryker found alive in src/core/shell-placement.ts (docs/mutation.md).
 *
 * analyzeScript caches its answer by script text, and Stryker's runner keeps loaded modules
 * between mutants: a script analysed before (in the dry run, or under another mutant) would be
 * answered from the cache, not by the code under test. Every script here therefore ends with a
 * comment line holding a fresh random id, so each call really parses; a trailing comment changes
 * no placement. Where a test needs the script to end exactly as written (a here-document closed on
 * the last line), the id goes into the here-document's body instead.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { analyzeScript, type Placement } from '../../src/core/shell-placement.ts';

const fresh = (script: string) => analyzeScript(`${script}\n# ${randomUUID()}`);

/** Each placeholder's place: `argument`, `arithmetic`, `comment`, or the rule that refuses it. */
const places = (script: string) =>
  fresh(script).uses.map((u) => (u.placement.kind === 'refused' ? u.placement.rule : u.placement.kind));

/** The one placeholder's whole placement, with the sentence of a refusal. */
function placement(script: string): Placement {
  const { uses } = fresh(script);
  expect(uses).toHaveLength(1);
  return uses[0]!.placement;
}

const why = (script: string) => {
  const p = placement(script);
  return p.kind === 'refused' ? `${p.rule}: ${p.why}` : p.kind;
};

const ARG = { kind: 'argument', optionPosition: true, wholeArgument: true } as const;

describe('places a value may not go: every one refused, with the rule that names it', () => {
  test.each([
    // A comment starts only at a # that starts a word.
    ['echo a;#{{ v }}', 'unsupported-place'],
    // $"…" is a double-quoted string too.
    ['echo $"{{ v }}"', 'double-quotes'],
    // Right after $ the value would join the expansion.
    ['echo x${{ v }}', 'escape-or-dollar'],
    ['echo $x{{ v }}', 'parameter-expansion'],
    // Names, not values.
    ['{{ v }}=1', 'assignment'],
    ['{{ v }}[0]=1', 'declaration'],
    ['{{ v }}() { :; }', 'command-name'],
    ['while {{ v }}; do :; done', 'command-name'],
    ['declare {{ v }}', 'declaration'],
    ['let x={{ v }}', 'evaluating-command'],
    ['select x in {{ v }}; do :; done', 'for-list'],
    ['case x in {{ v }}) ;; esac', 'case'],
    ['echo $(( a{{ v }} ))', 'arithmetic-operand'],
    ['[[ a{{ v }} == b ]]', 'arithmetic-operand'],
    // Commands whose name is not a plain word could spell eval.
    ['ec*o {{ v }}', 'unplain-command-name'],
    ['ech~o {{ v }}', 'unplain-command-name'],
    // Commands that run their arguments.
    ['find . -execdir rm {} + -name {{ v }}', 'find-exec'],
    ['find . -ok rm {} \\; -name {{ v }}', 'find-exec'],
    ['find . -okdir rm {} \\; -name {{ v }}', 'find-exec'],
    ['/usr/bin/find . -exec rm {} + -name {{ v }}', 'find-exec'],
    ['docker run img {{ v }}', 'evaluating-command'],
    ['podman exec c {{ v }}', 'evaluating-command'],
    ['printf -vname %s {{ v }}', 'variable-name-option'],
    ['test -R {{ v }}', 'variable-name-option'],
    ['[ -R {{ v }} ]', 'variable-name-option'],
    ['[ {{ v }}* = x ]', 'word-characters'],
    // Whatever reads the output again: pipelines, process substitutions.
    ['echo {{ v }} | /bin/sh', 'pipeline'],
    ['echo {{ v }} | sh > out', 'pipeline'],
    ['echo {{ v }} | $x', 'pipeline'],
    ['f() { :; }; echo {{ v }} | f', 'pipeline'],
    ['echo $(( {{ v }} + 1 )) | sh', 'pipeline'],
    ['[[ {{ v }} -gt 1 ]] | bash', 'pipeline'],
    ['[ {{ v }} = x ] | sh', 'pipeline'],
    ['x=$( [ {{ v }} = x ] )', 'command-substitution'],
    ['echo {{ v }} 2> >(bash)', 'redirection'],
    // An index inside a here-document's expansion: bash expands the body, so it is refused there too.
    ['cat <<EOF\n${a[{{ v }}]}\nEOF', 'here-document'],
    ['echo $(( {{ v }}[1] ))', 'declaration'],
    // A value that starts a word in an assignment or index but does not end it is glued.
    ['x={{ v }}a', 'assignment'],
    ['x[{{ v }}a]=1', 'arithmetic-operand'],
    ['cat <(echo {{ v }})', 'process-substitution'],
    ['echo {{ v }} | (cat)', 'pipeline'],
    // A redirected stage is judged by its command.
    ['sh < in | grep {{ v }}', 'pipeline'],
    ['echo \\{{ v }}', 'escape-or-dollar'],
    ['test -v {{ v }}', 'variable-name-option'],
    ['cat <<< {{ v }}', 'redirection'],
    ['echo {{ v }} | tee >(bash)', 'pipeline'],
    ['[[ {{ v }}a == b ]]', 'arithmetic-operand'],
    // After the here-document's delimiter on its first line.
    ['cat <<EOF {{ v }}\nx\nEOF', 'here-document'],
    ['cat <<EOF > {{ v }}\nx\nEOF', 'redirection'],
    // Scripts that can change what every later command runs.
    ['shopt -s expand_aliases\necho {{ v }}', 'script-redefines-commands'],
    ['BASH_ALIASES[ls]=eval; ls {{ v }}', 'script-redefines-commands'],
    ['command_not_found_handle() { echo; }\nfoo {{ v }}', 'script-redefines-commands'],
    ['exec 3< <(cat)\necho {{ v }}', 'script-redefines-commands'],
    ['function f { :; }; f {{ v }}', 'script-function'],
  ])('%j is refused (%s)', (script, rule) => {
    expect(places(script)).toEqual([rule]);
  });

  test('each refusal names its place in one sentence', () => {
    expect(
      [
        'echo a;#{{ v }}',
        '{{ v }}=1',
        '{{ v }}[0]=1',
        'unset {{ v }}',
        'export {{ v }}',
        '{{ v }}() { :; }',
        'ec*o {{ v }}',
        'echo {{ v }}*',
        '[ {{ v }}* = x ]',
        'echo $(( a{{ v }} ))',
        'x=a{{ v }}',
        '[[ a{{ v }} == b ]]',
        'echo x${{ v }}',
        'find . -exec rm {} + -name {{ v }}',
        'docker run img {{ v }}',
        'printf -vname %s {{ v }}',
        '[ -v {{ v }} ]',
        'f() { :; }; f {{ v }}',
        'alias x=y; source a; echo {{ v }}',
        'source a; alias x=y; echo {{ v }}',
        'shopt -s expand_aliases\necho {{ v }}',
        'command_not_found_handle() { echo; }\nfoo {{ v }}',
        'coproc bash\necho {{ v }}',
        'exec > >(bash)\necho {{ v }}',
        'BASH_ALIASES[ls]=eval; ls {{ v }}',
        'echo {{ v }} > >(bash)',
        'echo "{{ v }}"',
        "echo '{{ v }}'",
        "echo $'{{ v }}'",
        'echo `echo {{ v }}`',
        'echo $(echo {{ v }})',
        'cat <(echo {{ v }})',
        'cat <<EOF\n{{ v }}\nEOF',
        'cat <<EOF {{ v }}\nx\nEOF',
        'echo > {{ v }}',
        'echo ${x:-{{ v }}}',
        'cat <<EOF\n${a[{{ v }}]}\nEOF',
        'a=({{ v }})',
        'for x in {{ v }}; do :; done',
        'case {{ v }} in *) ;; esac',
        '{{ v }} x',
        'echo {{ v }} | sh > out',
        'echo {{ v }} | /bin/sh',
        'echo {{ v }} | $x',
        'f() { :; }; echo {{ v }} | f',
        'echo {{ v }} | while read -r l; do :; done',
        'eval {{ v }}',
        'nice echo {{ v }}',
        'awk {{ v }}',
        'read {{ v }}',
      ].map(why),
    ).toEqual([
      'unsupported-place: in text mechanic cannot prove bash reads as a comment',
      'assignment: as a variable name, where bash reads the value as a name or subscript',
      'declaration: as an array name, where bash reads the value as a variable name',
      'declaration: as an argument of unset, which reads it as a variable name',
      'declaration: as an argument of export, which reads it as a variable name',
      'command-name: as a function name, where the value would choose what runs',
      'unplain-command-name: as an argument of a command whose name is not a plain word (an expansion could name eval)',
      'word-characters: in a word with quotes, escapes, globs or expansions around it, which bash would read as more than data',
      'word-characters: in a word with quotes, escapes, globs or expansions around it, which bash would read as more than data',
      'arithmetic-operand: glued to other text in arithmetic, where only a whole integer operand may stand',
      'assignment: glued to other text in an assignment, where the variable may later be evaluated as arithmetic',
      'arithmetic-operand: glued to other text inside [[ … ]], where operands of -eq, -gt and -v are evaluated as arithmetic',
      'escape-or-dollar: right after a backslash or "$", which changes how bash reads its quotes',
      'find-exec: as an argument of find with -exec, which runs its arguments as a command',
      'evaluating-command: as an argument of docker run, which runs its arguments as a command',
      'variable-name-option: as an argument of printf -v, which reads a variable name',
      'variable-name-option: inside [ … ] with -v or -R, which reads a variable name',
      'script-function: as an argument of f, a function of this script whose body could evaluate it',
      // The first command that can redefine others is the one named.
      'script-redefines-commands: as a command argument in a script that runs alias, which can change what any command runs or where its output goes',
      'script-redefines-commands: as a command argument in a script that runs source, which can change what any command runs or where its output goes',
      'script-redefines-commands: as a command argument in a script that runs shopt expand_aliases, which can change what any command runs or where its output goes',
      'script-redefines-commands: as a command argument in a script that runs command_not_found_handle, which can change what any command runs or where its output goes',
      'script-redefines-commands: as a command argument in a script that runs coproc, which can change what any command runs or where its output goes',
      'script-redefines-commands: as a command argument in a script that runs exec >(…), which can change what any command runs or where its output goes',
      'script-redefines-commands: as a command argument in a script that runs BASH_ALIASES[ls]=…, which can change what any command runs or where its output goes',
      'redirection: in a command whose output is redirected into a process substitution',
      'double-quotes: inside double quotes, where the quotes around the value become data',
      "single-quotes: inside single quotes, where the value's own quoting ends the string",
      "ansi-c-quotes: inside $'…', where the value's own quoting ends the string",
      'backticks: inside backticks, where bash reads the text again as a command',
      'command-substitution: inside $(…), whose output bash splits and may run or evaluate again',
      'process-substitution: inside <(…) or >(…), whose output may be read again as code',
      'here-document: in a here-document, where $(…) and backticks in the value run',
      'here-document: in a here-document, where $(…) and backticks in the value run',
      'redirection: in a redirection, where the value would choose a file or descriptor',
      'parameter-expansion: inside a $name or ${…} expansion, where bash reads it as an expression',
      'here-document: in a here-document, where $(…) and backticks in the value run',
      'array-literal: in an array literal, whose elements may later be read as names or arithmetic',
      "for-list: in a for loop's word list, which hands the value to the loop body as a variable",
      'case: in a case statement, where the value would be matched as a pattern or subject',
      'command-name: as the command name, where the value would choose what runs',
      'pipeline: in a pipeline into sh, which runs its arguments as shell code',
      'pipeline: in a pipeline into /bin/sh, which runs its arguments as shell code',
      'pipeline: in a pipeline with a command whose name is not a plain word',
      'pipeline: in a pipeline into f, a function of this script',
      'pipeline: in a pipeline with a compound stage (a loop, group or subshell), which may read the value as code',
      'evaluating-command: as an argument of eval, which runs its arguments as shell code',
      'evaluating-command: as an argument of nice, which runs its arguments as a command',
      'evaluating-command: as an argument of awk, which reads its arguments as a program',
      'evaluating-command: as an argument of read, which treats its arguments as variable names, arithmetic or shell settings',
    ]);
  });
});

describe('places a value may go', () => {
  test.each([
    // A comment: a # at the start of the script, or after a space, a tab or a newline.
    ['#{{ v }}', ['comment']],
    ['echo a\t# {{ v }}', ['comment']],
    ['echo a\n# {{ v }}', ['comment']],
    ['echo {{ v }}; # {{ v }}', ['argument', 'comment']],
    // A group is not arithmetic; a plain pipeline or redirection is harmless.
    ['{ echo {{ v }}; }', ['argument']],
    ['! echo {{ v }}', ['argument']],
    ['echo {{ v }}&', ['argument']],
    ['echo {{ v }} | grep x | sort', ['argument']],
    ['echo {{ v }} > out.txt', ['argument']],
    ['echo <(cat) {{ v }}', ['argument']],
    ['cat < in | grep {{ v }}', ['argument']],
    ['f() { echo {{ v }}; }', ['argument']],
    // Options of other commands that only look like -exec, -v or -R.
    ['echo -exec {{ v }}', ['argument']],
    ['grep -v x {{ v }}', ['argument']],
    ['ls -R {{ v }}', ['argument']],
    ['for ((i = 0; i < {{ v }}; i++)); do :; done', ['arithmetic']],
    // The placeholder's own stage is not judged as another stage; a redirected plain stage is plain.
    ['[[ {{ v }} -gt 1 ]] | cat', ['arithmetic']],
    ['[ {{ v }} = x ] | cat', ['argument']],
    ['echo $(( {{ v }} )) | cat', ['arithmetic']],
    ['echo {{ v }} | cat > out', ['argument']],
    ['echo {{ v }} | tee >(cat)', ['argument']],
    // Commands that only look like the refused ones.
    ['find . -name {{ v }}', ['argument']],
    ['kubectl get pod {{ v }}', ['argument']],
    ['printf %s {{ v }}', ['argument']],
    ['test -x {{ v }}', ['argument']],
    ['foo/ {{ v }}', ['argument']],
    ['./run.sh {{ v }}', ['argument']],
    ['shopt -s nullglob\necho {{ v }}', ['argument']],
    ['BASH_CMDSX=1; ls {{ v }}', ['argument']],
    ['XBASH_CMDS=1; ls {{ v }}', ['argument']],
    ['exec >> log\necho {{ v }}', ['argument']],
    // Here-documents that bash closes where tree-sitter does.
    ['cat <<\\EOF\nx\nEOF\necho {{ v }}', ['argument']],
    ['cat <<"EOF"\nx\nEOF\necho {{ v }}', ['argument']],
    ['cat <<-EOF\n\tx\n\tEOF\necho {{ v }}', ['argument']],
    ['cat <<-EOF\n\t\tx\n\t\tEOF\necho {{ v }}', ['argument']],
    ['cat <<E\nx\nE\necho {{ v }}', ['argument']],
    // exec without a redirection into a process substitution redefines nothing.
    ['exec ls\necho <(cat) {{ v }}', ['argument']],
    // Integers only: arithmetic, assignments, indexes.
    ['(( x = {{ v }} ))', ['arithmetic']],
    ['local x={{ v }}', ['arithmetic']],
    ['a={{ v }} cmd', ['arithmetic']],
    ['echo ${a[{{ v }}]}', ['arithmetic']],
  ])('%j', (script, expected) => {
    expect(places(script)).toEqual(expected);
  });

  test('a whole argument, a glued one, and one inside [ … ] are told apart', () => {
    expect(placement('echo {{ v }}')).toEqual(ARG);
    expect(placement('ls {{ v }} --')).toEqual(ARG); // -- after the value does not protect it
    expect(placement('ls {{ v }} -- x')).toEqual(ARG);
    expect(placement('ls x {{ v }}')).toEqual(ARG); // another argument before it is no --
    // After -- a value starting with "-" cannot be an option.
    expect(placement('ls -- {{ v }}')).toEqual({ ...ARG, optionPosition: false });
    expect(placement('ls {{ v }}x')).toEqual({ ...ARG, wholeArgument: false });
    expect(placement('ls x{{ v }}')).toEqual({ kind: 'argument', optionPosition: false, wholeArgument: false });
    expect(placement('ls "a"{{ v }}')).toEqual({ ...ARG, wholeArgument: false });
    expect(placement('echo {{ v }}$x')).toEqual({ ...ARG, wholeArgument: false });
    expect(placement('cmd a={{ v }}')).toEqual({ kind: 'argument', optionPosition: false, wholeArgument: false });
    expect(fresh('ls {{ v }}{{ w }}').uses.map((u) => u.placement)).toEqual([
      { ...ARG, wholeArgument: false },
      { kind: 'argument', optionPosition: false, wholeArgument: false },
    ]);
    // Inside [ … ] a list would change the test itself, so no operand is a whole argument.
    expect(placement('[ -x {{ v }} ]')).toEqual({ ...ARG, wholeArgument: false });
    expect(placement('[ x{{ v }} = y ]')).toEqual({ kind: 'argument', optionPosition: false, wholeArgument: false });
    expect(placement('[[ {{ v }} -gt 1 ]]')).toEqual({ kind: 'arithmetic' });
    expect(placement('echo $(( {{ v }} ))')).toEqual({ kind: 'arithmetic' });
  });
});

describe('where each placeholder stands, and where a script cannot be read', () => {
  test('each use carries its name, offset, length, line and column in the original script', () => {
    const { uses, ...rest } = fresh('set -e\necho {{v}} {{   w   }}\n  ls {{ x }}');
    expect(rest).toEqual({}); // no syntaxError key at all
    expect(uses.map(({ placement: _, ...u }) => u)).toEqual([
      { name: 'v', offset: 12, length: 5, line: 2, column: 6 },
      { name: 'w', offset: 18, length: 11, line: 2, column: 12 },
      { name: 'x', offset: 35, length: 7, line: 3, column: 6 },
    ]);
  });

  test('a syntax error after placeholders is located in the original script, not the marked one', () => {
    expect(fresh('echo {{  v  }} {{w}} x )').syntaxError).toEqual({
      line: 1,
      column: 24,
      reason: "bash's grammar cannot read the script here",
    });
    expect(fresh('echo {{ v }}\necho {{ v }} )').syntaxError).toEqual({
      line: 2,
      column: 14,
      reason: "bash's grammar cannot read the script here",
    });
    expect(fresh('echo $(( 1 + ))').syntaxError).toMatchObject({ line: 1, column: 6 });
    // A missing `fi` is missing at the end: after the id line that fresh() adds (2 + 36 characters).
    expect(fresh('if true; then echo {{ v }}').syntaxError).toMatchObject({ line: 2, column: 39 });
  });

  test('every placeholder of a script that cannot be read is refused, saying why', () => {
    expect(fresh('echo {{ v }} {{ w }} "').uses.map((u) => u.placement)).toEqual([
      {
        kind: 'refused',
        rule: 'unparsable-script',
        why: "in a script bash's grammar cannot read, so its place cannot be proven safe",
      },
      {
        kind: 'refused',
        rule: 'unparsable-script',
        why: "in a script bash's grammar cannot read, so its place cannot be proven safe",
      },
    ]);
  });

  test('a here-document closed by a line that is not exactly its delimiter is located at that line', () => {
    const reason = 'this line ends a here-document only if it is exactly the delimiter, with no other spaces';
    expect(fresh('cat <<EOF\nx\n EOF\necho {{ v }}').syntaxError).toEqual({ line: 3, column: 2, reason });
    expect(fresh('echo {{ v }}\ncat <<EOF\nx\nEOF \necho ok').syntaxError).toEqual({ line: 4, column: 1, reason });
    // Only <<- strips leading tabs, and only leading ones.
    expect(fresh('cat <<EOF\nx\n\tEOF\necho {{ v }}').syntaxError).toEqual({ line: 3, column: 2, reason });
    expect(fresh('cat <<-EOF\n\tx\n\tEOF\t\necho {{ v }}').syntaxError).toEqual({ line: 3, column: 2, reason });
    expect(fresh('cat <<-EOF\nx\nEOF\t\necho {{ v }}').syntaxError).toEqual({ line: 3, column: 1, reason });
    // With <<- only leading tabs are stripped, not spaces.
    expect(fresh('cat <<-EOF\n\tx\n  EOF\necho {{ v }}').syntaxError).toMatchObject({ line: 3, reason });
  });

  test('a here-document closed on the last line of the script is read whole', () => {
    const id = randomUUID();
    const script = `echo {{ v }}\ncat <<EOF\n${id}\nEOF`;
    expect(analyzeScript(script).syntaxError).toBeUndefined();
    expect(analyzeScript(script).uses.map((u) => u.placement)).toEqual([ARG]);
    const dashed = `echo {{ v }}\ncat <<-EOF\n\t${id}\n\tEOF`;
    expect(analyzeScript(dashed).syntaxError).toBeUndefined();
  });
});
