import { describe, expect, test } from 'vitest';
import { parseRunbook } from '../../src/core/runbook.ts';
import { analyzeScript } from '../../src/core/shell-placement.ts';
import { renderScript } from '../../src/core/template.ts';

/** Each placeholder's place in one word: argument, arithmetic, comment, or the rule that refuses it. */
const places = (script: string) =>
  analyzeScript(script).uses.map((u) => (u.placement.kind === 'refused' ? u.placement.rule : u.placement.kind));

function caught(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a throw, but nothing was thrown');
}

function runbookWith(script: string, type: 'string' | 'integer' = 'string') {
  return {
    name: 'place-test',
    version: 1,
    description: 'Where placeholders may stand.',
    roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
    parameters: { v: { type } },
    targets: { tags: { Role: 'web' } },
    steps: [{ name: 'run', script }],
  };
}

describe('where a placeholder may stand (the bash parser decides)', () => {
  test.each([
    // A plain argument word of a command that does not evaluate it.
    ['echo {{ v }}', ['argument']],
    ['echo pre-{{ v }}-post --opt={{ v }}', ['argument', 'argument']],
    ['echo "$HOME"/{{ v }}', ['argument']],
    ['f() { echo {{ v }}; }', ['argument']],
    ['if true; then echo {{ v }}; fi', ['argument']],
    ['echo {{ v }} | tee out', ['argument']],
    ['[ {{ v }} = x ]', ['argument']],
    // Not an option word: after --, after an option's "=", or after literal text that starts the word.
    ['printf -- -{{ v }} x', ['argument']],
    ['head -n {{ v }} f', ['argument']],
    ['tar --file={{ v }} -x', ['argument']],
    ['echo a${x}-{{ v }}', ['argument']],
    ['echo ${x}{{ v }}', ['argument']],
    // Other arguments of those commands, and the same options after --.
    ['tar -czf out.tar {{ v }}', ['argument']],
    ['tar -xvf {{ v }}', ['argument']],
    ['tar -C /srv/Images -xf {{ v }}', ['argument']],
    ['tar --directory=/srv/I{{ v }} -xf a.tar', ['argument']],
    ['tar -- -I {{ v }}', ['argument']],
    ['scp {{ v }} host:', ['argument']],
    ['git log {{ v }}', ['argument']],
    ['git run {{ v }}', ['argument']],
    ['apt-get install -y {{ v }}', ['argument']],
    ['rsync -av {{ v }} host:', ['argument']],
    ['echo -I {{ v }}', ['argument']],
    ['echo {{ v }} | docker ps', ['argument']],
    ['tar -cf out.tar pre-I{{ v }}', ['argument']],
    ['tar -C dir-I {{ v }} -xf a.tar', ['argument']],
    ['tar -C/srv/I {{ v }} -xf a.tar', ['argument']],
    ['tar --exclude=--to-command={{ v }} -cf a.tar .', ['argument']],
    ['echo {{ v }} | bc', ['argument']],
    ['echo ok # {{ v }}', ['comment']],
    // Arithmetic and assignments: integers only.
    ['echo $(( {{ v }} + 1 ))', ['arithmetic']],
    ['(( {{ v }} > 3 ))', ['arithmetic']],
    ['[[ {{ v }} -gt 3 ]]', ['arithmetic']],
    ['declare -i n={{ v }}', ['arithmetic']],
    ['a[{{ v }}]=1', ['arithmetic']],
    ['x={{ v }}', ['arithmetic']],
    ['for ((i = 0; i < {{ v }}; i++)); do :; done', ['arithmetic']],
    // Refused, by rule.
    ['echo `echo {{ v }}`', ['backticks']],
    ['echo "`echo {{ v }}`"', ['backticks']],
    ['echo "$(echo {{ v }})"', ['command-substitution']],
    ['cat <<1\n{{ v }}\n1', ['here-document']],
    ['cat <<$x\n{{ v }}\n$x', ['here-document']],
    ['x=$(cat <<EOF\n{{ v }}\nEOF\n)', ['here-document']],
    ['echo "{{ v }}"', ['double-quotes']],
    ["echo '{{ v }}'", ['single-quotes']],
    ["echo $'{{ v }}'", ['ansi-c-quotes']],
    ['echo ${x:-{{ v }}}', ['parameter-expansion']],
    ['echo $(( {{ v }}0 ))', ['arithmetic-operand']],
    ['x=a{{ v }}', ['assignment']],
    ['eval {{ v }}', ['evaluating-command']],
    ['bash -c {{ v }}', ['evaluating-command']],
    ['xargs sh -c {{ v }}', ['evaluating-command']],
    ['trap {{ v }} EXIT', ['evaluating-command']],
    ['sudo -u app echo {{ v }}', ['evaluating-command']],
    ['/usr/bin/env {{ v }}', ['evaluating-command']],
    ['source <(echo {{ v }})', ['process-substitution']],
    ['{{ v }} arg', ['command-name']],
    ['$cmd {{ v }}', ['unplain-command-name']],
    ['e\\val {{ v }}', ['unplain-command-name']],
    ['f() { eval "$1"; }; f {{ v }}', ['script-function']],
    ['. ./lib.sh; echo {{ v }}', ['script-redefines-commands']],
    ['find . -exec rm {} \\; -name {{ v }}', ['find-exec']],
    ['printf -v {{ v }} x', ['variable-name-option']],
    ['test -v {{ v }}', ['variable-name-option']],
    ['[ -v {{ v }} ]', ['variable-name-option']],
    // Glued into an option word, the value chooses options: printf -va[$(cmd)], tar -cIcmd.
    ['printf -{{ v }} x', ['option-word']],
    ['tar -c{{ v }}f out.tar .', ['option-word']],
    ['ls --{{ v }}', ['option-word']],
    ['head -n{{ v }} f', ['option-word']],
    ['ls --color=never -l -{{ v }}=x', ['option-word']],
    ['echo ${x}-{{ v }}', ['option-word']],
    ['test -{{ v }} {{ v }}', ['option-word', 'argument']],
    // The argument of an option that runs a program the value names, in every way it is written.
    ['tar -I {{ v }} -cf out.tar .', ['program-option']],
    ['tar -cI {{ v }} -f out.tar .', ['program-option']],
    ['tar -cI{{ v }} -f out.tar .', ['program-option']],
    ['tar --use-compress-program={{ v }} -cf o .', ['program-option']],
    ['tar --to-command {{ v }} -xf o', ['program-option']],
    ['scp -oProxyCommand={{ v }} f host:', ['program-option']],
    ['scp -o {{ v }} f host:', ['program-option']],
    ['git -c core.pager={{ v }} log', ['program-option']],
    ['rsync -e {{ v }} f host:', ['program-option']],
    ['zip -TT {{ v }} a.zip f', ['program-option']],
    ['apt-get -o {{ v }} update', ['program-option']],
    ['/usr/bin/sort --compress-program={{ v }} f', ['program-option']],
    ['ncat -l 9 --sh-exec {{ v }}', ['program-option']],
    ['nc -l -p 9 -e {{ v }}', ['program-option']],
    ['rpm -E {{ v }}', ['program-option']],
    ['rpm --define={{ v }} -q x', ['program-option']],
    // Commands that run what they are given, as arguments or as input.
    ['dc -e {{ v }}', ['evaluating-command']],
    ['m4 {{ v }}', ['evaluating-command']],
    ['socat - {{ v }}', ['evaluating-command']],
    ['npx {{ v }}', ['evaluating-command']],
    ['mongosh --eval {{ v }}', ['evaluating-command']],
    ['echo {{ v }} | dc', ['pipeline']],
    ['git submodule foreach {{ v }}', ['evaluating-command']],
    ['git bisect run {{ v }}', ['evaluating-command']],
    ['git rebase -x {{ v }} main', ['program-option']],
    ['git filter-branch --msg-filter {{ v }} HEAD', ['program-option']],
    ['wget -e {{ v }} https://example.com/', ['program-option']],
    ['echo {{ v }} | docker exec -i web sh', ['pipeline']],
    ['echo {{ v }} | kubectl exec -i pod/web -- sh', ['pipeline']],
    ['echo {{ v }} | find . -exec sh {} \\;', ['pipeline']],
    ['read -r {{ v }}', ['evaluating-command']],
    ['unset {{ v }}', ['declaration']],
    ['export {{ v }}', ['declaration']],
    ['echo {{ v }} | sh', ['pipeline']],
    ['eval \'echo() { eval "$*"; }\'; echo {{ v }}', ['script-redefines-commands']],
    ['BASH_CMDS[ls]=/tmp/x; ls {{ v }}', ['script-redefines-commands']],
    ['kubectl exec pod -- {{ v }}', ['evaluating-command']],
    ['kubectl rollout restart deploy/{{ v }}', ['argument']],
    ['psql -c {{ v }}', ['evaluating-command']],
    ['echo {{ v }} | while read -r l; do :; done', ['pipeline']],
    ['echo {{ v }} | tee >(bash)', ['pipeline']],
    ['echo {{ v }} > >(bash)', ['redirection']],
    ['exec > >(bash)\necho {{ v }}', ['script-redefines-commands']],
    ['coproc bash\necho {{ v }}', ['script-redefines-commands']],
    ['exec >> log 2>&1\necho {{ v }}', ['argument']],
    ['a=({{ v }})', ['array-literal']],
    ['for x in {{ v }}; do :; done', ['for-list']],
    ['case {{ v }} in *) ;; esac', ['case']],
    ['echo > {{ v }}', ['redirection']],
    ['cat <<< {{ v }}', ['redirection']],
    ['echo \\{{ v }}', ['escape-or-dollar']],
    ['echo {{ v }}*', ['word-characters']],
    ['echo {{ v }} "unterminated', ['unparsable-script']],
    // tree-sitter ends these here-documents early; bash reads the echo line as body text.
    ['cat <<EOF\nx\nEOF \necho {{ v }}', ['unparsable-script']],
    ['cat <<-EOF\n  x\n  EOF\necho {{ v }}', ['unparsable-script']],
    ["cat <<'EOF'\nx\nEOF\necho {{ v }}", ['argument']],
    ['echo a\\ #{{ v }}', ['word-characters']],
  ])('%j', (script, expected) => {
    expect(places(script)).toEqual(expected);
  });

  test('a value that starts a word with no -- before it is in option position', () => {
    const option = (script: string) =>
      analyzeScript(script).uses.map((u) => u.placement.kind === 'argument' && u.placement.optionPosition);
    expect(option('ls {{ v }} x{{ v }} -- {{ v }}')).toEqual([true, false, false]);
    expect(option('x=a; echo "$x"{{ v }}')).toEqual([true]); // "$x" may be empty
  });

  test('uses carry the line and column of their {{', () => {
    const [use] = analyzeScript('set -e\n  echo {{ v }}').uses;
    expect(use).toMatchObject({ name: 'v', line: 2, column: 8, offset: 14 });
  });

  test('a script bash cannot parse reports where, even without placeholders', () => {
    expect(analyzeScript('echo ok\nif true; then\n').syntaxError).toMatchObject({ line: 2, column: 14 });
    expect(analyzeScript('echo ok').syntaxError).toBeUndefined();
  });
});

describe('runbooks are refused at load, naming the step, the line and the rule', () => {
  test('a placeholder inside backticks', () => {
    const error = caught(() => parseRunbook(runbookWith('set -e\necho `cat {{ v }}`'), 'runbooks/x.yaml'));
    expect(error).toMatchObject({ code: 'RUNBOOK_INVALID' });
    expect(error.message).toMatchInlineSnapshot(`
      "runbooks/x.yaml is not a valid runbook:
      ✖ step "run", line 2: {{ v }} stands inside backticks, where bash reads the text again as a command (rule backticks); put it where a plain argument goes, e.g. echo {{ v }}
        → at steps"
    `);
  });

  test('a string parameter in arithmetic', () => {
    expect(caught(() => parseRunbook(runbookWith('(( {{ v }} > 3 ))'))).message).toMatchInlineSnapshot(`
      "runbook is not a valid runbook:
      ✖ step "run", line 1: {{ v }} stands in arithmetic or an assignment, where bash evaluates a value such as a[$(cmd)] as code (rule integer-only); only an integer parameter may stand there, so declare it type: integer or pass it as a plain argument
        → at steps"
    `);
  });

  test('an integer parameter in arithmetic is accepted', () => {
    expect(parseRunbook(runbookWith('(( {{ v }} > 3 )) && echo big', 'integer')).steps[0]?.name).toBe('run');
  });

  test('a value glued into an option word is refused at load, even an integer, with the two ways to write it', () => {
    expect(caught(() => parseRunbook(runbookWith('head -n{{ v }} /etc/hostname', 'integer'))).message)
      .toMatchInlineSnapshot(`
        "runbook is not a valid runbook:
        ✖ step "run", line 1: {{ v }} stands glued into an option word (after "-" with no "="), where the value would choose head's options, as in printf -va[$(cmd)], which runs cmd (rule option-word); write the option and the value as two words, e.g. -n {{ v }}, or join them with =, e.g. --name={{ v }}
          → at steps"
      `);
  });

  test('the argument of an option that runs a program is refused at load, naming the option however it is written', () => {
    const sentence = (script: string) =>
      caught(() => parseRunbook(runbookWith(script)))
        .message.split('\n')[1]!
        .replace(/^✖ step "run", line 1: /, '');
    // Scripts no other case analyses: the analysis is cached by script.
    expect(sentence('tar -xvI {{ v }} -f in.tar')).toBe(
      '{{ v }} stands as the argument of tar -I, which runs a program the value names (rule program-option); put it where a plain argument goes, e.g. echo {{ v }}',
    );
    expect(sentence('scp -oProxyCommand={{ v }} a.txt host:/tmp')).toContain('as the argument of scp -o, which');
    expect(sentence('rsync --rsh {{ v }} f host:')).toContain('as the argument of rsync --rsh, which');
    expect(sentence('sort --compress-program={{ v }} f')).toContain(
      'as the argument of sort --compress-program, which',
    );
  });

  test('a script bash cannot parse', () => {
    expect(caught(() => parseRunbook(runbookWith('echo {{ v }} "'))).message).toMatchInlineSnapshot(`
      "runbook is not a valid runbook:
      ✖ step "run", line 1, column 14: bash's grammar cannot read the script here, so where its placeholders go cannot be proven safe; fix the syntax (rule unparsable-script)
        → at steps"
    `);
  });
});

describe('a pipeline typed on a here-document line reaches the runbook check', () => {
  // tree-sitter hangs `| sh` inside the heredoc redirect, not around echo; bash still pipes
  // echo's output into sh, so the value would run as code (found by mutation round eleven).
  const script = 'echo {{ v }} <<EOF | sh\nbody\nEOF';

  test('the runbook is refused at load, naming the step and the rule', () => {
    const error = caught(() => parseRunbook(runbookWith(script)));
    expect(error).toMatchObject({ code: 'RUNBOOK_INVALID' });
    expect(error.message).toMatch(/step "run", line 1: \{\{ v \}\} .*\(rule [a-z-]+\)/);
  });

  test('and at render, whatever the plan says', () => {
    expect(caught(() => renderScript(script, { v: 'id' }))).toMatchObject({ code: 'TEMPLATE_UNSAFE' });
  });
});

describe('renderScript checks placement again (a hand-built plan cannot bypass the load check)', () => {
  test('a refused placement is refused at render', () => {
    const error = caught(() => renderScript('eval {{ v }}', { v: 'id' }));
    expect(error).toMatchObject({ code: 'TEMPLATE_UNSAFE' });
    expect(error.message).toMatchInlineSnapshot(
      `"{{ v }} at line 1 stands as an argument of eval, which runs its arguments as shell code (rule evaluating-command); move it to a plain argument word"`,
    );
  });

  test('an integer in arithmetic renders as bare digits', () => {
    expect(renderScript('echo $(( {{ v }} + 1 )); n={{ v }}', { v: -42 })).toBe('echo $(( -42 + 1 )); n=-42');
  });

  test.each([['a[$(id)]'], ['1.5'], [true], ['']])('a non-integer (%j) in arithmetic is refused at render', (v) => {
    expect(caught(() => renderScript('echo $(( {{ v }} ))', { v }))).toMatchObject({ code: 'TEMPLATE_UNSAFE' });
  });

  test('a value starting with "-" in option position is refused; after -- it is quoted', () => {
    expect(caught(() => renderScript('ls {{ v }}', { v: '--version' })).message).toMatchInlineSnapshot(
      `"{{ v }} at line 1 would start with "-" where the command could read it as an option; pass a value that does not start with "-", or put -- before it in the script"`,
    );
    expect(renderScript('ls -- {{ v }}', { v: '--version' })).toBe("ls -- '--version'");
  });

  test('a script with a syntax error is refused at render', () => {
    expect(caught(() => renderScript('echo {{ v }} "', { v: 'x' }))).toMatchObject({ code: 'TEMPLATE_UNSAFE' });
  });
});
