/**
 * The mutants of src/core/shell-placement.ts that round five left unanalysed (issue 12, mutation
 * round six): what makes a script one that "can change what any command runs" (scriptFacts), and
 * which command names are plain words (commandName). Most are over-refusals — a script a mutant
 * would refuse that mechanic must accept — and one is a command name that is not a word.
 *
 * analyzeScript caches its answer by script text, and Stryker's runner keeps modules loaded
 * between mutants, so every script here ends with a comment holding a fresh random id: each call
 * really parses (a trailing comment changes no placement). See test/unit/mutants-shell-placement.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { analyzeScript } from '../../src/core/shell-placement.ts';

const fresh = (script: string) => analyzeScript(`${script}\n# ${randomUUID()}`);

/** Each placeholder's place: `argument`, `arithmetic`, `comment`, or the rule that refuses it. */
const places = (script: string) =>
  fresh(script).uses.map((u) => (u.placement.kind === 'refused' ? u.placement.rule : u.placement.kind));

describe('scripts that cannot change what a command runs keep their placeholders', () => {
  test.each([
    // Only `shopt` with expand_aliases turns aliases on: the word elsewhere, or shopt with another option, does not.
    ['echo expand_aliases\necho {{ v }}'],
    ['printf "%s\\n" expand_aliases; echo {{ v }}'],
    ['shopt -s nullglob\necho {{ v }}'],
    ['shopt -u extglob; ls {{ v }}'],
    // Only an assignment to BASH_ALIASES or BASH_CMDS rebinds a name: reading them, or a function of that name, does not.
    ['BASH_CMDS() { :; }\necho {{ v }}'],
    ['function BASH_ALIASES { :; }\necho {{ v }}'],
    ['echo "${BASH_CMDS[ls]}"\necho {{ v }}'],
    ['echo "${#BASH_ALIASES[@]}"; echo {{ v }}'],
    ['n=${BASH_CMDS[ls]}; echo {{ v }}'],
    // A function or variable whose name only starts like one of them.
    ['BASH_CMDSX=1; echo {{ v }}'],
  ])('%j: the value is an argument', (script) => {
    expect(places(script)).toEqual(['argument']);
  });

  test.each([
    ['shopt -s expand_aliases; echo {{ v }}'],
    ['shopt -s extglob expand_aliases\necho {{ v }}'],
    ['BASH_CMDS[ls]=/tmp/x; ls {{ v }}'],
    ['BASH_ALIASES=([ls]=eval); echo {{ v }}'],
    ['declare BASH_CMDS[ls]=/tmp/x\necho {{ v }}'],
  ])('%j still refuses it: the script can change what commands run', (script) => {
    expect(places(script)).toEqual(['script-redefines-commands']);
  });

  test('the refusal names what in the script does it, and only the first such thing', () => {
    const [use] = fresh('BASH_CMDS[cat]=/tmp/x\nshopt -s expand_aliases\necho {{ v }}').uses;
    expect(use!.placement).toEqual({
      kind: 'refused',
      rule: 'script-redefines-commands',
      why: 'as a command argument in a script that runs BASH_CMDS[cat]=…, which can change what any command runs or where its output goes',
    });
  });
});

describe('a command name is plain only when bash reads it as a word', () => {
  // tree-sitter reads `1234` as a number, not a word: commandName trusts words only.
  test.each([['1234 {{ v }}'], ['0 {{ v }}']])(
    '%j: a name read as a number is refused as not a plain word',
    (script) => {
      expect(places(script)).toEqual(['unplain-command-name']);
    },
  );

  test.each([['7z x {{ v }}'], ['./run.sh {{ v }}'], ['12a {{ v }}']])(
    '%j: a word with digits is a plain name',
    (script) => {
      expect(places(script)).toEqual(['argument']);
    },
  );
});
