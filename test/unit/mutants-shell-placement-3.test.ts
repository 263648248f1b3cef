/**
 * The survivors of src/core/shell-placement.ts in the whole `npm run mutate` of 56f4ca8 (issue 12,
 * round eleven). Line:column are those of 56f4ca8.
 *
 * A real hole, fixed with these tests: `echo {{ v }} <<EOF | sh` placed the value as an argument.
 * tree-sitter hangs the `| sh` typed on a here-document's `<<` line inside the heredoc redirect,
 * not around the command, so the pipeline check never saw it, while bash pipes echo's output into
 * sh and runs the value. outerContext now checks those stages too (heredocPipeStages).
 *
 * Killed here:
 * - 239:7 `hit` → false; 241:7 `cache.size >= CACHE_LIMIT` → true, false, `>`, `<`: a second call
 *   is answered from the cache, which keeps the 256 most recent scripts and no more (a long-running
 *   server must not grow it without bound). Checked on an instance of the module loaded for this
 *   file alone, whose cache starts empty whatever other files analysed before.
 * - 277:11 `mk.start >= index` → `>`; 319:7 `node.isError || node.isMissing` → false, `&&`: where a
 *   syntax error is reported (at a placeholder's own `{{`; at the first unreadable token, not
 *   inside the ERROR node).
 * - 369:11 `name === 'exec'` → true: another command redirected into >(…) is not `exec`.
 * - 526:12 `'heredoc_redirect'` → "": a command or arithmetic tree-sitter hangs on a `<<` line.
 * - 553:7 `command?.type` → `command.type`: a pipeline stage that is only a redirection.
 * - 581:10 `leaf.type === 'word'` → true: inside ( … ), tree-sitter reads the word after `=~` or
 *   `==` as a regex, which is not a plain word.
 * - 679:10 `!!a && !!b` → true, `||`: an assignment without a value (`same` with no node).
 * - 456:12 `'command_name'` → "": the `command` case no longer repeats its check (below).
 *
 * Removed as unreachable: the `command` case's own check that the value is the command's name
 * (56f4ca8 lines 485–487; mutants 485:13, 485:48, and the no-coverage 485:58, 486:25, 486:41).
 * tree-sitter-bash 0.25.1's node-types.json gives `command` a required `name` field whose only type
 * is `command_name`, so a walk from inside the name passes command_name, which refuses first; and
 * commandArgument still refuses any child that is not in the `argument` field.
 *
 * Equivalent (no input tells them apart; each was also run against about 56,000 generated
 * scripts, 37,000 random token strings and 19,000 placements in ~80 contexts, with no difference):
 * - 284:7 `!tree` → false, 284:30 (no coverage): parse() returns null only without a language or
 *   when cancelled; the parser has its language and no timeout.
 * - 306:13 `finally { tree.delete() }` → {}: frees WebAssembly memory only.
 * - 334:9, 335:49, 336:47, 342:9, 360:20, 369:30, 375:22, 378:44, 452:34, 512:10, 558:9, 570:16,
 *   621:16, 621:82, 649:7, 665:59, 665:79, 683:51: null guards web-tree-sitter never needs here
 *   (descendantsOfType, children and childrenForFieldName hold no null; every function and
 *   assignment has a name, a command has a parent, a substitution or test a first child); 375:62
 *   (no coverage) is the fallback of such a guard.
 * - 337:9 `!start || !end` → false, `&&`: a here-document without its end line is already a
 *   syntax error, and misreadHeredocEnd runs only on scripts without one.
 * - 361:11, 363:9, 382:10, 570:16, 571:7 ×4, 571:25: as round six named them (docs/mutation.md).
 * - 392:10, 392:26 ×2, 392:56: descendantForIndex already returns a node spanning the whole marker.
 * - 415:12, 421:12–424:12, 430:12, 431:7, 431:12, 441:12, 525:12: labels whose node is always
 *   inside another that gives the same refusal, or whose inner node decides first ($"…" is `$` and
 *   a string; a here-document's parts lie in its heredoc_redirect; a case_item in its
 *   case_statement; a value inside $(…) or <(…) is always in a command, test, arithmetic or
 *   assignment that decides and asks outerContext, which refuses the substitution).
 * - 444:13, 449:13 ×3, 449:27, 449:61, 467:13 ×2: a function definition, a declaration or a
 *   { … } group is reached only from a child that did not decide (a body, a variable_assignment
 *   returns before its declaration), so the condition is always the same there.
 * - 489:7, 543:7: removing the last `default: break`.
 * - 587:17 ×3, 587:51 ×2, 588:7 ×2, 588:8, 588:30, and the no-coverage 588:97, 589:19, 589:40:
 *   under 0.25.1's node types an argument holding the value is the value's word, a regex, or a
 *   concatenation whose child it is; every other node that can hold it (strings, expansions,
 *   substitutions, arrays) decides before `command`. The check stays as a guard against a grammar
 *   upgrade.
 * - 638:59 `<` → `<=`: the argument holding the value is never the text `--`.
 * - 650:19 `leaf.type !== 'word'` → false: inside [[ … ]] a node that is exactly the value's
 *   identifier is a word (regex and extglob nodes need a character that makes them longer).
 * - 683:19 `<` → `<=`, 684:10 (no coverage): indexOf always finds the child (child(childCount) is null).
 *
 * The new heredocPipeStages: its `stage?.`, `if (stage)`, `redirect?.` guards and the `?? []`
 * fallback are equivalent null guards like those above; `child?.type === 'pipeline'` → true is
 * killed by the body with $HOME and $(date) (a heredoc_body's children would become stages).
 *
 * After round eleven (2 December): the option-word and program-option rules and runningForm, run
 * with `--mutate 'src/core/shell-placement.ts:655-672,755-786'` on this file's test set: 29 of 30
 * killed (by core-shell-placement's rows and its program-option sentences, which use scripts no
 * other case analyses, since the analysis is cached by script). The one left, runningForm's
 * `(a ? [a.text] : [])` fallback (no coverage), is a null guard like those above. The lines of
 * 56f4ca8 above have moved by those additions; the same run over lines 635–790 left only the
 * survivors named above (pipelineStage's `!inner`, commandName's guards, the `glued` check, the
 * `args` null filter, `<` → `<=` for `--`, testOperand's `child(0)?.` and `leaf.type`).
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import * as shared from '../../src/core/shell-placement.ts';

const fresh = (script: string) => shared.analyzeScript(`${script}\n# ${randomUUID()}`);

/** Each placeholder's place: `argument`, `arithmetic`, `comment`, or the rule that refuses it. */
const places = (script: string) =>
  fresh(script).uses.map((u) => (u.placement.kind === 'refused' ? u.placement.rule : u.placement.kind));

describe('a command piped on its here-document line', () => {
  test.each([
    ['echo {{ v }} <<EOF | sh\nbody\nEOF'],
    ['echo {{ v }} <<EOF |& bash\nbody\nEOF'],
    ['echo {{ v }} <<EOF | cat | sh\nbody\nEOF'],
    ['x | echo {{ v }} <<EOF | sh\nEOF'],
    ['[ {{ v }} = x ] <<EOF | sh\nEOF'],
    ['echo $(( {{ v }} )) <<EOF | sh\nEOF'],
    ['echo {{ v }} 2>&1 <<EOF | sh\nEOF'],
    // A later stage that reads the pipe on another descriptor and pipes on again from its `<<` line.
    ['echo {{ v }} | cat /dev/fd/3 3<&0 <<EOF | sh\nEOF'],
    ['echo {{ v }} <<EOF | while read -r l; do echo "$l"; done\nEOF'],
  ])('%j: the output goes into a shell or a loop, so the value is refused', (script) => {
    expect(places(script)).toEqual(['pipeline']);
  });

  test('the refusal names the command the output goes into', () => {
    const [use] = fresh('echo {{ v }} <<EOF | cat | sh\nbody\nEOF').uses;
    expect(use!.placement).toEqual({
      kind: 'refused',
      rule: 'pipeline',
      why: 'in a pipeline into sh, which runs its arguments as shell code',
    });
  });

  test.each([
    ['echo {{ v }} <<EOF | cat | grep x\nbody\nEOF'],
    // Only the pipeline on the `<<` line is a stage, not what the body expands.
    ['echo {{ v }} <<EOF | cat\n$HOME $(date)\nEOF'],
    // After && or || the next statement is not fed by the command.
    ['echo {{ v }} <<EOF && echo hi | bash\nbody\nEOF'],
    ['echo {{ v }} <<EOF || bash\nbody\nEOF'],
    ['echo {{ v }} | cat <<EOF | grep x\nEOF'],
  ])('%j: the value stays an argument', (script) => {
    expect(places(script)).toEqual(['argument']);
  });
});

describe('places the whole run found unpinned', () => {
  test.each([
    // tree-sitter hangs these on the `<<` line inside the heredoc redirect: refused as in a here-document.
    ['cat <<EOF && echo {{ v }}\nbody\nEOF', 'here-document'],
    ['cat <<EOF | grep {{ v }}\nbody\nEOF', 'here-document'],
    ['cat <<EOF $(( {{ v }} ))\nbody\nEOF', 'here-document'],
    // Inside ( … ) the word after =~ or == is a regex node: not a plain word.
    ['(echo =~ {{ v }})', 'word-characters'],
    ['(echo == {{ v }})', 'word-characters'],
    // A pipeline stage with no command, only a redirection.
    ['echo {{ v }} | > out', 'pipeline'],
    // A name with nothing assigned.
    ['{{ v }}=', 'assignment'],
    // The command name, through command_name.
    ['{{ v }} x', 'command-name'],
    ['x | {{ v }}', 'command-name'],
  ])('%j is refused (%s)', (script, rule) => {
    expect(places(script)).toEqual([rule]);
  });

  test('a redirection into >(…) on a command other than exec does not redirect the whole script', () => {
    expect(places('sort > >(cat)\necho {{ v }}')).toEqual(['argument']);
    expect(places('exec > >(cat)\necho {{ v }}')).toEqual(['script-redefines-commands']);
  });

  test('a stage that is only a redirection is named as a stage that is not a plain command', () => {
    const [use] = fresh('echo {{ v }} | > out').uses;
    expect(use!.placement).toMatchObject({ why: expect.stringContaining('compound stage') });
  });
});

describe('where a syntax error is reported', () => {
  test('an error that starts at a placeholder is located at its `{{`, not before it', () => {
    expect(fresh('{{ v }} \n $(').syntaxError).toEqual({
      line: 1,
      column: 1,
      reason: "bash's grammar cannot read the script here",
    });
  });

  test('an error is located at the first token bash cannot read', () => {
    expect(fresh("echo ) ' {{ v }}").syntaxError).toEqual({
      line: 1,
      column: 6,
      reason: "bash's grammar cannot read the script here",
    });
  });
});

// A module instance of its own (the query makes it a separate module): its cache holds only what
// these tests put there, whatever other test files analysed before in the shared registry.
const isolated = (await import(`../../src/core/shell-placement.ts?cache-${'bound'}`)) as typeof shared;

describe('analyses are cached by script text, for the 256 most recent scripts', () => {
  test('the same script is answered from the cache', () => {
    const script = `echo {{ v }}\n# ${randomUUID()}`;
    const first = isolated.analyzeScript(script);
    expect(isolated.analyzeScript(script)).toBe(first);
    // It is a separate instance: the shared module analyses the script afresh.
    expect(shared.analyzeScript(script)).not.toBe(first);
    expect(shared.analyzeScript(script)).toEqual(first);
  });

  test('the oldest script is dropped only once 256 newer ones are cached', () => {
    const script = (i: number) => `echo {{ v }} ${i}\n# ${randomUUID()}`;
    const kept = script(0);
    const first = isolated.analyzeScript(kept);
    for (let i = 1; i <= 255; i++) isolated.analyzeScript(script(i));
    expect(isolated.analyzeScript(kept)).toBe(first);
    isolated.analyzeScript(script(256));
    const again = isolated.analyzeScript(kept);
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
  });
});
