/**
 * The whole mutation run's survivors of src/core/lint.ts (run on 56f4ca8; lint.ts itself unchanged
 * since the sixth round's 043d6ca, so its line numbers below are those of 56f4ca8), killed here:
 *
 * - 169:9 ConditionalExpression (`!/excessive alias count/i.test(message)` → false): a real bug. In
 *   a YAML 1.1 file (`%YAML 1.1`) yaml merges mappings with `<<`, and `toJS` throws "Merge sources
 *   must be maps or map aliases" when a merge names anything else. lint rethrew it, so
 *   `lintRunbookText` threw and the CLI printed "this file cannot be read (Error: …)"
 *   [file-unreadable]; the registry refuses the file as "not valid YAML: Merge sources …". lint now
 *   says the same at the merge key that breaks it (`badMergeOffset`), and the mutant, which called
 *   every such error an alias bomb, is told apart.
 * - 64:12 StringLiteral (`detail = ''` → "Stryker was here!"): `fileProblem(file, 'unreadable')`
 *   without a reason printed "cannot be read ()"; it now leaves the parentheses out, so the default
 *   is what the sentence reads.
 * - 289:29 EqualityOperator (`n > 0` → `n >= 0` in `offsetIn`): a parameter that only a merge key
 *   supplies has no node at its path nor at `parameters`, so lint's advice about it stands at the
 *   file's start (1:1); the mutant's walk reached the root mapping, which starts after the
 *   `%YAML 1.1` directive and `---`.
 * - 614:14 and 617:14 Regex (`^` dropped from the pattern and reserved-name sentences): a list
 *   parameter's item pattern is quoted in its own sentence ("parameter "a" has an item pattern …"),
 *   and a pattern's text may read 'parameter "b" has a pattern' or '… takes a name reserved'; the
 *   sentence stays at that item pattern, where the mutants moved it to `parameters`.
 * - 701:88 Regex (`/\r$/` → `/\r/`): yaml 2 reads a lone carriage return inside a block script as
 *   text, not as a line break, so the source line holds it where the script line does; the mutant
 *   cut it out of the source line only, the two no longer matched and the column lost the indent.
 * - 709:35 ArithmeticOperator (`start + quote` → `start - quote`): a single-quoted script whose
 *   first character is an escaped quote (`'''x'`, the script `'x`), unreadable at its column 1. The
 *   mutant read the opening quote with that first `'`, saw `''` and fell back to the opening quote;
 *   the script's column 1 is the character after it.
 * - 696:62 StringLiteral (NC; `?? ''` → "Stryker was here!"): two steps of one name, the sentence
 *   about the other one's longer script. lint reads the first step's script, which has no such
 *   line; it went on with an empty line and pointed into whatever followed in the file. It now
 *   stops at that script's start (`scriptLine === undefined`), a test pins it, and the `?? ''` and
 *   its mutant are gone.
 * - 529:50 ConditionalExpression (→ false, and `i.code === 'invalid_type'` → true), 529:50
 *   EqualityOperator (`!==`), 529:61 StringLiteral (`''`): the half of the "branch the author
 *   meant" test that left out a branch missing its own key. Its one effect was on
 *   `targets: { within: … }`, whose fields fit only the fromParameter form: lint named all four
 *   forms instead of the key that form lacks. The test is gone from lint.ts (a branch whose
 *   complaints all lie deeper, a missing key included, is the one meant), so are its mutants, and
 *   `targets: { within: … }` now reads "targets has no "fromParameter"". An empty `targets` misses
 *   every form's key and still names the forms.
 *
 * Equivalent or unreachable (line:column of 56f4ca8; the sixth round's reasons in docs/mutation.md,
 * checked again against yaml 2.9.1 and zod 4.6.7, except where said):
 * - 166:21 ObjectLiteral: yaml's toJS uses maxAliasCount 100 when none is given, as lint does.
 * - 210:7: without maxCredentialMinutes there is no node to report the (NaN-built) sentence at.
 * - 233:42: a secret default holding "/" must start with one (else the runbook does not parse).
 * - 259:5, 261:9 OptionalChaining: a parsed runbook's fromParameter names a declared parameter.
 * - 269:18: a non-blank value always gives lookupsFor one selector.
 * - 291:9, 291:17, 640:12 (2), 640:17: getIn(path, true) returns a node or undefined, never null.
 * - 338:19: the extra turn decodes an empty chunk.
 * - 351:17: yaml's plain messages hold no newline.
 * - 376:46, 389:16 OptionalChaining: an alias parsed from text has a range.
 * - 379:16 (2), 379:17: only scalars, maps and sequences carry anchors; undefined matches no alias.
 * - 422:46, 422:64 (NC), 464:26: every invalid_type message of zod says "received X".
 * - 466:41: zod receives undefined only for a field the file does not have.
 * - 493:52, 493:95 (NC): no runbook bound is an exclusive maximum.
 * - 515:9, 515:37, 516:69 (NC): zod sets discriminator (a string) and options together, only on a
 *   discriminated union's issue.
 * - 557:15, 557:23 (NC), 564:86 (NC): those sentences name their own rule.
 * - 581:60 (NC): a duplicate step name implies two steps.
 * - 588:20, 588:41: no index, or a word as index, falls back to the default itself, as [] does.
 * - 621:9 … 626:69 (18, most NC): every custom issue of runbook.ts without a path matches an earlier
 *   branch of explainCustom (step name twice, reserved name, min above max, a value twice, pattern
 *   problems, "the default of parameter …"); these locate a pathless rule added later.
 * - 628:19 (4), 628:39: only custom issues with a path reach it, and none of their "must …"
 *   sentences starts or ends with its path text.
 * - 654:17, 655:12, 655:31: an empty mapping has no first item; keys and the root have ranges.
 * - 677:13 (2), 677:18, 692:25: refinements run only when every step parsed as a mapping with a
 *   string script.
 * - 692:107 (NC): the step a refinement names exists.
 * - 698:35 (2), 699:11 (2): a line past the first same-named script now returns early; the one
 *   line a source may lack is the empty one yaml adds at the end of a file without a final newline,
 *   and no sentence names an empty line (placements stand at placeholders; an error at the end is
 *   reported on the last token: tried here-doc, $(, &&, if, case, quote, (, {, |, for). The sixth
 *   round's "a lone CR is a YAML line break" was wrong (see 701 above), not needed here.
 * - 750:31, 774:26: a string among the candidates is skipped (not an object, no properties).
 * - 755:15, 756:29, 757:18 (2), 757:47, 776:9 (2), 776:15: every candidate pushed is an object
 *   (items only when set, a property's schema, additionalProperties only when an object); what the
 *   mutants push besides (undefined, false) expand skips.
 * - 761:14 (2), 761:22, 784:26 (2), 784:34: the data on the path to an unknown field is a mapping
 *   or a list.
 * - 766:11 (2), 766:20, 781:27: zod reports unknown fields only of strict objects, whose schemas
 *   (and every union branch on such a path) have properties; the only unions with non-object
 *   branches are the integer|string rate controls.
 * - 785:43: a mapping without type under a typed union fails on its discriminator, not on an
 *   unknown field.
 */
import { describe, expect, test } from 'vitest';
import { fileProblem, formatProblem, lintRunbookText } from '../../src/core/lint.ts';
import { LINT_HEAD } from '../helpers/core-samples.ts';

const HEAD = LINT_HEAD;
/** A YAML 1.1 file: the directive and the document start, then HEAD. */
const YAML11 = ['%YAML 1.1', '---', ...HEAD];

const lint = (...lines: string[]) => lintRunbookText('x.yaml', lines.join('\n')).problems.map(formatProblem);
const BAD_MERGE = 'this is not valid YAML: Merge sources must be maps or map aliases [yaml-syntax]';

describe('YAML 1.1 merge keys (<<)', () => {
  test('a merge of a scalar is invalid YAML, located at its merge key, after a merge that is fine', () => {
    expect(
      lint(
        ...YAML11,
        'x: &a 1',
        'm: &m { timeoutSeconds: 30 }',
        'steps: [{ <<: *m, name: one, script: "true" }, { <<: *a, name: ok, script: "true" }]',
      ),
    ).toEqual([`x.yaml:10:50: ${BAD_MERGE}`]);
  });

  test('a list of merges with one scalar in it, or an alias of a list of scalars, is located at its merge key', () => {
    expect(
      lint(
        ...YAML11,
        'x: &a 1',
        'm: &m { timeoutSeconds: 30 }',
        'steps:',
        '  - <<: [*m, { retries: 1 }]',
        '    name: one',
        '    script: "true"',
        '  - <<: [*m, *a]',
        '    name: two',
        '    script: "true"',
      ),
    ).toEqual([`x.yaml:14:5: ${BAD_MERGE}`]);
    expect(lint(...YAML11, 'l: &l [1]', 'steps: [{ <<: *l, name: one, script: "true" }]')).toEqual([
      `x.yaml:9:11: ${BAD_MERGE}`,
    ]);
  });

  test('a quoted "<<" is an ordinary key, an unknown field', () => {
    expect(lint(...YAML11, 'steps: [{ "<<": 1, name: one, script: "true" }]')).toEqual([
      'x.yaml:8:11: "<<" is not a field of steps[0]; remove it or check its spelling [unknown-field]',
    ]);
  });

  test("a parameter that only a merge supplies has no place of its own: lint's advice about it is at the file's start", () => {
    expect(
      lint(...YAML11, '<<: { parameters: { s: { type: secret } } }', 'steps: [{ name: ok, script: "true" }]'),
    ).toEqual([
      `x.yaml:1:1: parameter "s" is a secret reference without a prefix, so an operator may name any Parameter Store secret the instances' role can read; add the path it may read, e.g. prefix: /prod/app/ [secret-without-prefix]`,
    ]);
  });
});

test('a file that cannot be read, with or without a reason', () => {
  expect(fileProblem('x.yaml', 'unreadable', 'permission denied')).toEqual({
    file: 'x.yaml',
    line: 1,
    column: 1,
    rule: 'file-unreadable',
    message: 'this file cannot be read (permission denied); fix the file or remove it from the runbooks folder',
  });
  expect(formatProblem(fileProblem('x.yaml', 'unreadable'))).toBe(
    'x.yaml:1:1: this file cannot be read; fix the file or remove it from the runbooks folder [file-unreadable]',
  );
});

test("an item pattern whose text reads like another parameter's pattern or reserved-name sentence stays at that item pattern", () => {
  expect(
    lint(
      ...HEAD,
      'parameters:',
      '  a:',
      '    type: list',
      `    items: { type: string, pattern: '(parameter "b" has a pattern' }`,
      '  c:',
      '    type: list',
      `    items: { type: string, pattern: '(parameter "d" takes a name reserved' }`,
      'steps: [{ name: ok, script: "true" }]',
    ),
  ).toEqual([
    'x.yaml:9:37: parameter "a" has an item pattern that is not a valid RE2 regular expression (missing closing ): (parameter "b" has a pattern); fix the pattern [pattern]',
    'x.yaml:12:37: parameter "c" has an item pattern that is not a valid RE2 regular expression (missing closing ): (parameter "d" takes a name reserved); fix the pattern [pattern]',
  ]);
});

test('a lone carriage return inside a block script is text to yaml: the placeholder keeps its column', () => {
  expect(
    lint(
      ...HEAD,
      'parameters: { a: { type: string } }',
      'steps:',
      '  - name: ok',
      '    script: |',
      '      {{ a }}\r      {{ a }}',
    ),
  ).toEqual([
    'x.yaml:10:7: step "ok", line 1: {{ a }} stands as the command name, where the value would choose what runs; put it where a plain argument goes, e.g. echo {{ a }} [command-name]',
  ]);
});

describe('which form of a union the author meant', () => {
  const withTargets = (targets: string) => lint(...HEAD.slice(0, 4), targets, 'steps: [{ name: ok, script: "true" }]');

  test("fields that only the fromParameter form takes, without fromParameter: that form's missing key is named", () => {
    expect(withTargets('targets: { within: { names: [web-1] } }')).toEqual([
      'x.yaml:5:10: targets has no "fromParameter"; add it (text) [missing-field]',
    ]);
  });

  test('an empty targets misses every form alike: the forms are named', () => {
    expect(withTargets('targets: {}')).toEqual([
      'x.yaml:5:10: targets must be one of instanceIds (a list of instance ids), tags (1 to 5 "key: value" pairs), names (a list of Name tags) or fromParameter (a parameter naming them) [invalid-value]',
    ]);
  });
});

test('a single-quoted script starting with an escaped quote is located at its first character, after the opening quote', () => {
  expect(lint(...HEAD, "steps: [{ name: ok, script: '''x' }]")).toEqual([
    `x.yaml:6:30: step "ok", line 1, column 1: bash's grammar cannot read the script here, so where its placeholders go cannot be proven safe; fix the syntax [unparsable-script]`,
  ]);
});

test("two steps of one name: a sentence about a line the first one's script lacks is located at that script's start", () => {
  expect(
    lint(
      ...HEAD,
      'onFailure:',
      '  - name: ok',
      '    script: |',
      '      echo a',
      '      echo b',
      '      if true; then',
      'steps:',
      '  - name: ok',
      '    script: |',
      '      echo one',
      'maxErrors: 0',
      'maxConcurrency: 5',
    ),
  ).toEqual([
    'x.yaml:7:11: step name "ok" is used twice; give each step its own name [duplicate-step]',
    `x.yaml:14:13: step "ok", line 3, column 14: bash's grammar cannot read the script here, so where its placeholders go cannot be proven safe; fix the syntax [unparsable-script]`,
  ]);
});
