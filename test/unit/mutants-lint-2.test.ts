/**
 * The sixth round's tests for src/core/lint.ts (docs/mutation-round6-lint.md): each pins what an
 * author reads (the sentence, its line and column, the rule) in a case no other test reached,
 * chosen where a mutant of lint.ts survived. Files built with YAML anchors and aliases (&a, *a)
 * matter most: lint locates problems in the YAML tree, and an alias is a node whose value lies
 * elsewhere.
 */
import { describe, expect, test } from 'vitest';
import { formatProblem, lintRunbookBytes, lintRunbookText } from '../../src/core/lint.ts';

const NAME = 'name: located';
const VERSION = 'version: 1';
const DESCRIPTION = 'description: A runbook to locate problems in.';
const ROLE = 'roleArn: arn:aws:iam::123456789012:role/mechanic-runner';
const TAGS = 'targets: { tags: { Role: web } }';
const HEAD = [NAME, VERSION, DESCRIPTION, ROLE, TAGS];
const OK_STEPS = 'steps: [{ name: ok, script: "true" }]';

const lintRaw = (...lines: string[]) => lintRunbookText('x.yaml', lines.join('\n')).problems.map(formatProblem);
/** Every problem of HEAD plus `lines`, as the CLI prints them. */
const lint = (...lines: string[]) => lintRaw(...HEAD, ...lines);

const COMMAND_NAME = (step: string, line: number, name = 'a') =>
  `step "${step}", line ${line}: {{ ${name} }} stands as the command name, where the value would choose what runs; put it where a plain argument goes, e.g. echo {{ ${name} }} [command-name]`;
const ARITHMETIC =
  'step "ok", line 1: {{ a }} stands in arithmetic or an assignment, where bash evaluates a value such as a[$(cmd)] as code; only an integer parameter may stand there, so declare it type: integer or pass it as a plain argument [integer-only]';
const NO_PREFIX = (name: string, example: string) =>
  `parameter "${name}" is a secret reference without a prefix, so an operator may name any Parameter Store secret the instances' role can read; add the path it may read, e.g. prefix: ${example} [secret-without-prefix]`;
const UNKNOWN_TAG = (tag: string) =>
  `the tag ${tag} means nothing to mechanic; runbooks use plain YAML values, so remove it [unknown-tag]`;

describe('the file before its fields', () => {
  test('a hidden character as the very first character is reported (only a byte order mark may stand there)', () => {
    expect(lintRunbookText('x.yaml', `\u200b${[...HEAD, OK_STEPS].join('\n')}`).problems[0]).toEqual({
      file: 'x.yaml',
      line: 1,
      column: 1,
      rule: 'hidden-character',
      message:
        'this line contains a zero-width space (U+200B); control, direction-changing and invisible characters can make a runbook read differently than it runs, so remove it',
    });
  });

  test('a byte that is not UTF-8 on the first line is located at its column', () => {
    const bytes = Buffer.concat([Buffer.from('name: é'), Buffer.from([0xc3]), Buffer.from('\nversion: 1')]);
    expect(lintRunbookBytes('x.yaml', bytes).problems.map(formatProblem)).toEqual([
      'x.yaml:1:8: this byte is not UTF-8 text; save the file as UTF-8 [not-utf8]',
    ]);
  });

  test("a YAML error is yaml's own sentence, with no position or excerpt glued to it", () => {
    expect(lintRaw('name: a', 'version: [b: ]c')).toEqual([
      'x.yaml:2:15: this is not valid YAML: Unexpected scalar at node end [yaml-syntax]',
    ]);
  });

  test('an unknown tag is quoted as written, whole, and once, whatever yaml says of it', () => {
    expect(lintRaw('name: !x: a', 'version: !!int x', 'roleArn: !<x y', 'description: !e! x')).toEqual([
      // The tag's own colon is kept.
      `x.yaml:1:7: ${UNKNOWN_TAG('!x:')}`,
      // yaml resolves it to tag:yaml.org,2002:int; the author wrote !!int.
      `x.yaml:2:10: ${UNKNOWN_TAG('!!int')}`,
      // yaml's sentence ("Verbatim tags must end with a >") names no tag.
      `x.yaml:3:10: ${UNKNOWN_TAG('!<x')}`,
      // yaml reports this one twice ("has no suffix", "could not resolve"): one problem.
      `x.yaml:4:14: ${UNKNOWN_TAG('!e!')}`,
    ]);
  });

  test('scalar and mapping anchors resolve their aliases: a file using them is a runbook', () => {
    const r = lintRunbookText(
      'x.yaml',
      [
        NAME,
        VERSION,
        'description: &d A runbook with anchors.',
        ROLE,
        TAGS,
        'approval: &a { required: 1 }',
        'steps: [{ name: ok, description: *d, script: "true" }]',
      ].join('\n'),
    );
    expect(r.problems).toEqual([]);
    expect(r.runbook?.steps[0]?.description).toBe('A runbook with anchors.');
  });

  test('an empty mapping is a runbook missing every field, each located at its start', () => {
    expect(lintRaw('{}')).toEqual([
      'x.yaml:1:1: the runbook has no "name"; add it (text) [missing-field]',
      'x.yaml:1:1: the runbook has no "version"; add it (a number) [missing-field]',
      'x.yaml:1:1: the runbook has no "description"; add it (text) [missing-field]',
      'x.yaml:1:1: the runbook has no "roleArn"; add it (text) [missing-field]',
      'x.yaml:1:1: targets must be one of instanceIds (a list of instance ids), tags (1 to 5 "key: value" pairs), names (a list of Name tags) or fromParameter (a parameter naming them) [invalid-value]',
      'x.yaml:1:1: the runbook has no "steps"; add it (a list) [missing-field]',
    ]);
  });

  test('a file without version is one missing field, at the start of the runbook', () => {
    expect(lintRaw(NAME, DESCRIPTION, ROLE, TAGS, OK_STEPS)).toEqual([
      'x.yaml:1:1: the runbook has no "version"; add it (a number) [missing-field]',
    ]);
  });

  test("a field missing from a runbook is located at the runbook's first key, past an anchor or a brace", () => {
    expect(lintRaw('&r', VERSION, DESCRIPTION, ROLE, TAGS, OK_STEPS)).toEqual([
      'x.yaml:2:1: the runbook has no "name"; add it (text) [missing-field]',
    ]);
    expect(lintRaw(`{ ${[VERSION, DESCRIPTION, ROLE, TAGS, OK_STEPS].join(', ')} }`)).toEqual([
      'x.yaml:1:3: the runbook has no "name"; add it (text) [missing-field]',
    ]);
  });
});

describe('values out of range', () => {
  test('a text out of its bounds counts characters (one character, or many); a list counts items', () => {
    expect(lintRaw(NAME, VERSION, 'description: ""', ROLE, TAGS, OK_STEPS)).toEqual([
      'x.yaml:3:14: description must be at least 1 character long [out-of-range]',
    ]);
    expect(lintRaw(NAME, VERSION, `description: ${'x'.repeat(2001)}`, ROLE, TAGS, OK_STEPS)).toEqual([
      'x.yaml:3:14: description must be at most 2000 characters long [out-of-range]',
    ]);
    const eleven = Array.from({ length: 11 }, (_, i) => `{ name: f${i}, script: "true" }`).join(', ');
    expect(lint(OK_STEPS, `onFailure: [${eleven}]`)).toEqual([
      'x.yaml:7:12: onFailure must list at most 10 items [out-of-range]',
    ]);
  });
});

describe('targets, a union of forms', () => {
  const withTargets = (targets: string, ...more: string[]) =>
    lintRaw(NAME, VERSION, DESCRIPTION, ROLE, targets, ...more);

  test('when one form fits but for a value inside it, that value is the problem', () => {
    expect(withTargets('targets: { instanceIds: [5] }', OK_STEPS)).toEqual([
      'x.yaml:5:26: targets.instanceIds[0] must be text, not a number [wrong-type]',
    ]);
  });

  test('when no form fits (a bad value and a field of no form), the forms are named', () => {
    expect(withTargets('targets: { names: [5], x: 1 }', OK_STEPS)).toEqual([
      'x.yaml:5:10: targets must be one of instanceIds (a list of instance ids), tags (1 to 5 "key: value" pairs), names (a list of Name tags) or fromParameter (a parameter naming them) [invalid-value]',
    ]);
  });

  test('a within that is no form, and a rate that is neither a number nor a percentage, each say so', () => {
    expect(
      withTargets('parameters: { h: { type: string } }', 'targets: { fromParameter: h, within: 5 }', OK_STEPS),
    ).toEqual([
      'x.yaml:6:38: targets.within matches none of the forms it may take; see the runbook schema (mechanic runbook schema) [invalid-value]',
    ]);
    expect(lint('maxConcurrency: true', OK_STEPS)).toEqual([
      'x.yaml:6:17: maxConcurrency must be a whole number of at least 1 or a percentage from 1% to 100%, like 5 or "25%" [invalid-value]',
    ]);
  });

  test('an unknown field of targets is suggested from all its forms, even beside a field named type', () => {
    expect(withTargets('targets: { tags: { a: b }, nmes: [x] }', OK_STEPS)).toEqual([
      'x.yaml:5:28: "nmes" is not a field of targets; did you mean "names"? [unknown-field]',
    ]);
    expect(withTargets('targets: { tags: { a: b }, type: x, nmes: [x] }', OK_STEPS)).toEqual([
      'x.yaml:5:28: "type" is not a field of targets; remove it or check its spelling [unknown-field]',
      'x.yaml:5:37: "nmes" is not a field of targets; did you mean "names"? [unknown-field]',
    ]);
  });

  test('a list-of-text target parameter bounded by within is a runbook, with no advice', () => {
    const r = lintRunbookText(
      'x.yaml',
      [
        NAME,
        VERSION,
        DESCRIPTION,
        ROLE,
        'parameters: { h: { type: list, items: { type: string } } }',
        'targets: { fromParameter: h, within: { names: [web-1] } }',
        OK_STEPS,
      ].join('\n'),
    );
    expect(r.problems).toEqual([]);
    expect(r.runbook?.name).toBe('located');
  });

  test('a blank enum value is not called unreachable; the others are judged', () => {
    expect(
      withTargets(
        "parameters: { h: { type: enum, values: ['  ', web-2, web-1] } }",
        'targets: { fromParameter: h, within: { names: [web-2] } }',
        OK_STEPS,
      ),
    ).toEqual([
      'x.yaml:5:54: parameter "h" offers "web-1", a Name tag outside targets.within (names web-2), so choosing it is always refused when the run is planned; remove the value or widen within [within-unreachable]',
    ]);
  });
});

describe('secret parameters without a prefix', () => {
  test("the example prefix is the default's folder only when that folder is below the root", () => {
    expect(
      lint('parameters: { a: { type: secret, default: password }, b: { type: secret, default: /password } }', OK_STEPS),
    ).toEqual([`x.yaml:6:26: ${NO_PREFIX('a', '/prod/app/')}`, `x.yaml:6:66: ${NO_PREFIX('b', '/prod/app/')}`]);
  });

  test('a parameter defined by an alias is located at the alias', () => {
    expect(lint('parameters: { a: &s { type: secret }, b: *s }', OK_STEPS)).toEqual([
      `x.yaml:6:29: ${NO_PREFIX('a', '/prod/app/')}`,
      `x.yaml:6:42: ${NO_PREFIX('b', '/prod/app/')}`,
    ]);
  });

  test('a prefix with ".." names its field before the sentence', () => {
    expect(lint('parameters: { a: { type: secret, prefix: /a/../ } }', OK_STEPS)).toEqual([
      'x.yaml:6:42: parameters.a.prefix must not contain ".." (a Parameter Store name is not a file path) [runbook-rule]',
    ]);
  });
});

describe('fields reached through an alias', () => {
  test('a step given by an alias: its wrong value and its unknown field are located at the alias', () => {
    expect(lint('onFailure: [&st { name: fix, script: 5 }]', 'steps: [*st]')).toEqual([
      'x.yaml:6:38: onFailure[0].script must be text, not a number [wrong-type]',
      'x.yaml:7:9: steps[0].script must be text, not a number [wrong-type]',
    ]);
    expect(lint('onFailure: [&st { name: fix, script: "true", zzz: 1 }]', 'steps: [*st]')).toEqual([
      'x.yaml:6:25: step name "fix" is used twice; give each step its own name [duplicate-step]',
      'x.yaml:6:46: "zzz" is not a field of onFailure[0]; remove it or check its spelling [unknown-field]',
      'x.yaml:7:9: "zzz" is not a field of steps[0]; remove it or check its spelling [unknown-field]',
    ]);
  });

  test('enum values given by an alias: the repeat is located at the alias', () => {
    expect(
      lint('parameters: { a: { type: enum, values: &v [x, y, x] }, b: { type: enum, values: *v } }', OK_STEPS),
    ).toEqual([
      'x.yaml:6:50: parameter "a" lists a value twice; remove the second one [duplicate-value]',
      'x.yaml:6:81: parameter "b" lists a value twice; remove the second one [duplicate-value]',
    ]);
  });

  test("a script given by an alias: each of its problems is located at the alias, not at the step's start", () => {
    expect(
      lint(
        'parameters: { a: { type: string } }',
        'steps:',
        '  - name: one',
        '    script: &s "echo x; {{ a }} x; {{ nope }} {{"',
        '  - name: two',
        '    script: *s',
      ),
    ).toEqual([
      `x.yaml:9:25: ${COMMAND_NAME('one', 1)}`,
      'x.yaml:9:36: step "one" uses {{ nope }}, which is not a declared parameter; declare it under parameters or fix the name [undeclared-parameter]',
      `x.yaml:9:36: ${COMMAND_NAME('one', 1, 'nope')}`,
      'x.yaml:9:47: step "one" has a "{{" that is not a placeholder like {{ name }} [malformed-placeholder]',
      `x.yaml:11:13: ${COMMAND_NAME('two', 1)}`,
      'x.yaml:11:13: step "two" uses {{ nope }}, which is not a declared parameter; declare it under parameters or fix the name [undeclared-parameter]',
      `x.yaml:11:13: ${COMMAND_NAME('two', 1, 'nope')}`,
      'x.yaml:11:13: step "two" has a "{{" that is not a placeholder like {{ name }} [malformed-placeholder]',
    ]);
  });
});

describe('sentences located by what they say', () => {
  test("a pattern whose text reads like another rule's sentence is still located at that pattern", () => {
    const texts = [
      '(step "ok", line 1, column 1',
      '(step "ok", line 12: {{ a }}',
      '(step "ok" uses {{ a }}',
      '(step "ok" has a "{{"',
      '(step name "ok" is used twice',
      '(the default of parameter "p6"',
      '(parameter "p7" has min greater than max',
      '(parameter "p8" lists a value twice',
    ];
    expect(
      lint(
        'parameters:',
        ...texts.map((t, i) => `  p${i + 1}: { type: string, pattern: '${t}' }`),
        'steps: [{ name: ok, script: "echo {{ p1 }}" }]',
      ),
    ).toEqual(
      texts.map(
        (t, i) =>
          `x.yaml:${i + 7}:32: parameter "p${i + 1}" has a pattern that is not a valid RE2 regular expression (missing closing ): ${t}); fix the pattern [pattern]`,
      ),
    );
  });

  test('line and column numbers of two digits are read whole', () => {
    const eleven = Array.from({ length: 11 }, () => '      echo ok');
    expect(lint('steps:', '  - name: ok', '    script: |', ...eleven, '      echo okokokok )')).toEqual([
      'x.yaml:20:21: step "ok", line 12, column 15: bash\'s grammar cannot read the script here, so where its placeholders go cannot be proven safe; fix the syntax [unparsable-script]',
    ]);
    expect(
      lint(
        'parameters: { a: { type: string } }',
        'steps:',
        '  - name: ok',
        '    script: |',
        ...eleven,
        '      echo ok; {{ a }} x',
      ),
    ).toEqual([`x.yaml:21:16: ${COMMAND_NAME('ok', 12)}`]);
    expect(
      lint(
        'parameters: { h: { type: list, items: { type: integer, max: 5 }, default: [1,1,1,1,1,1,1,1,1,1,1,1,9] } }',
        OK_STEPS,
      ),
    ).toEqual(['x.yaml:6:100: the default of parameter "h[12]" must be an integer of at most 5; got 9 [bad-default]']);
  });
});

describe('placeholders located in the script', () => {
  const script = (...lines: string[]) =>
    lint('parameters: { a: { type: string }, n: { type: integer } }', 'steps:', '  - name: ok', ...lines);

  test('in a file with CRLF line ends, a block script is located as with LF', () => {
    const text = [
      ...HEAD,
      'parameters: { a: { type: string } }',
      'steps:',
      '  - name: ok',
      '    script: |',
      '      echo ok',
      '      echo ok; {{ a }} x',
      '# the line above ends in CR LF too',
    ];
    expect(lintRaw(text.join('\r\n'))).toEqual([`x.yaml:11:16: ${COMMAND_NAME('ok', 2)}`]);
  });

  test("a double-quoted script is located at its quote when its lines or escapes are not the file's", () => {
    // Line 2 of the script is not a line of the file.
    expect(script('    script: "echo aaaaaaaaaa\\n{{ a }} x"')).toEqual([`x.yaml:9:13: ${COMMAND_NAME('ok', 2)}`]);
    // \t is two characters in the file and one in the script, just before the placeholder.
    expect(script('    script: "a;\\t{{ a }} x"')).toEqual([`x.yaml:9:13: ${COMMAND_NAME('ok', 1)}`]);
  });

  test('the use named is the refused one, not another placeholder on that line or another line', () => {
    expect(script('    script: "echo $(( {{ n }} + {{ a }} ))"')).toEqual([`x.yaml:9:33: ${ARITHMETIC}`]);
    expect(script('    script: "echo {{ a }} $(( {{ a }} ))"')).toEqual([`x.yaml:9:31: ${ARITHMETIC}`]);
    expect(script('    script: |', '      x=$(( {{ n }} ))', '      echo $(( {{ a }} ))')).toEqual([
      `x.yaml:11:16: ${ARITHMETIC.replace('line 1', 'line 2')}`,
    ]);
    // An integer may stand in arithmetic; the sentence is about its use as a command.
    expect(script('    script: "x=$(( {{ n }} )); {{ n }} x"')).toEqual([`x.yaml:9:32: ${COMMAND_NAME('ok', 1, 'n')}`]);
    // A list's sentence mentions arithmetic: the use in arithmetic on line 2 is not the one on line 1.
    const LIST = (line: number) =>
      `step "ok", line ${line}: {{ l }} is a list, which becomes one word per item, so it may only stand alone as a whole argument of a command, not glued to other text, inside [ … ] or in arithmetic; write it as its own word, e.g. ls {{ l }} [list-placement]`;
    expect(
      lint(
        'parameters: { l: { type: list, items: { type: string } } }',
        'steps:',
        '  - name: ok',
        '    script: |',
        '      echo a{{ l }}',
        '      echo $(( {{ l }} ))',
      ),
    ).toEqual([`x.yaml:10:13: ${LIST(1)}`, `x.yaml:11:16: ${LIST(2)}`]);
  });

  test('a malformed "{{" is located past placeholders written without inner spaces', () => {
    expect(script('    script: "echo {{a}} {{ a}} {{a }} x {{"')).toEqual([
      'x.yaml:9:41: step "ok" has a "{{" that is not a placeholder like {{ name }} [malformed-placeholder]',
    ]);
  });

  test('two steps of one name: both are reported, in the script of the first, without failing', () => {
    // The sentence names the step only by its name, so the first step of that name is searched.
    expect(
      script('    script: "echo {{ a }}; {{ a }} x"', '  - name: ok', '    script: "echo {{ a }}; {{ a }} x"'),
    ).toEqual([
      `x.yaml:9:28: ${COMMAND_NAME('ok', 1)}`,
      `x.yaml:9:28: ${COMMAND_NAME('ok', 1)}`,
      'x.yaml:10:11: step name "ok" is used twice; give each step its own name [duplicate-step]',
    ]);
    expect(
      script('    script: "echo ok"', '  - name: ok', '    script: "{{ a }} x; echo {{ nope }}; echo {{"'),
    ).toEqual([
      `x.yaml:9:14: ${COMMAND_NAME('ok', 1)}`,
      'x.yaml:9:14: step "ok" uses {{ nope }}, which is not a declared parameter; declare it under parameters or fix the name [undeclared-parameter]',
      'x.yaml:9:14: step "ok" has a "{{" that is not a placeholder like {{ name }} [malformed-placeholder]',
      'x.yaml:10:11: step name "ok" is used twice; give each step its own name [duplicate-step]',
    ]);
  });
});
