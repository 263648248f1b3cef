/**
 * Tests for the mutants Stryker found alive in src/core/lint.ts (docs/mutation.md). Under the
 * mutation config only in-process tests count: the corpus test (runbook-lint.test.ts) checks the
 * CLI's own rules (file problems, version clashes) by spawning `mechanic runbook lint`, where no
 * mutant is switched on, so those rules are pinned here by calling lint itself.
 */
import { describe, expect, test } from 'vitest';
import {
  fileProblem,
  formatProblem,
  lintRunbookBytes,
  lintRunbookText,
  lintVersionClashes,
  MAX_RUNBOOK_BYTES,
  type LintResult,
} from '../../src/core/lint.ts';
import { LINT_HEAD } from '../helpers/core-samples.ts';

const HEAD = LINT_HEAD;
const OK_STEPS = 'steps: [{ name: ok, script: "true" }]';

/** Every problem of HEAD plus `lines`, as the CLI prints them. */
const lint = (...lines: string[]) =>
  lintRunbookText('x.yaml', [...HEAD, ...lines].join('\n')).problems.map(formatProblem);
const lintRaw = (text: string) => lintRunbookText('x.yaml', text).problems.map(formatProblem);

describe('problems with the file as a whole', () => {
  test('each kind is one problem at 1:1, with its rule and its sentence', () => {
    expect([
      fileProblem('a.yaml', 'directory'),
      fileProblem('b.yaml', 'not-regular'),
      fileProblem('c.yaml', 'too-large'),
      fileProblem('d.yaml', 'unreadable', 'permission denied'),
    ]).toEqual([
      {
        file: 'a.yaml',
        line: 1,
        column: 1,
        rule: 'file-directory',
        message: 'this is a directory named like a runbook file; rename it or move it out of the runbooks folder',
      },
      {
        file: 'b.yaml',
        line: 1,
        column: 1,
        rule: 'file-not-regular',
        message: 'this is not a regular file; runbooks must be plain YAML files',
      },
      {
        file: 'c.yaml',
        line: 1,
        column: 1,
        rule: 'file-too-large',
        message: 'this file is larger than 1 MiB, far more than any runbook; check that it is the right file',
      },
      {
        file: 'd.yaml',
        line: 1,
        column: 1,
        rule: 'file-unreadable',
        message: 'this file cannot be read (permission denied); fix the file or remove it from the runbooks folder',
      },
    ]);
  });

  test('a file of exactly 1 MiB is read; one byte more is refused unread', () => {
    const runbook = Buffer.from([...HEAD, OK_STEPS, '# '].join('\n'));
    const full = Buffer.concat([runbook, Buffer.alloc(MAX_RUNBOOK_BYTES - runbook.length, 'x')]);
    expect(full.length).toBe(1024 * 1024);
    const read = lintRunbookBytes('x.yaml', full);
    expect(read.problems).toEqual([]);
    expect(read.runbook?.name).toBe('located');
    const over = Buffer.concat([full, Buffer.from('x')]);
    expect(lintRunbookBytes('x.yaml', over)).toEqual({ problems: [fileProblem('x.yaml', 'too-large')] });
  });

  test('a byte that is not UTF-8 is located on its line, and is the only problem', () => {
    const bytes = Buffer.concat([Buffer.from('name: x\nversion: é'), Buffer.from([0xc3]), Buffer.from('\nsteps: [')]);
    expect(lintRunbookBytes('x.yaml', bytes)).toEqual({
      problems: [
        {
          file: 'x.yaml',
          line: 2,
          column: 11,
          rule: 'not-utf8',
          message: 'this byte is not UTF-8 text; save the file as UTF-8',
        },
      ],
    });
  });
});

describe('two files defining the same name and version', () => {
  /** A linted file; `located: false` drops where its version stands, as a caller building results may. */
  const result = (file: string, version: number, located = true) => {
    const r = lintRunbookText(
      file,
      [...HEAD.filter((l) => !l.startsWith('version:')), `version: ${version}`, OK_STEPS].join('\n'),
    );
    expect(r.runbook?.version).toBe(version);
    return { file, result: located ? r : { problems: [], runbook: r.runbook! } };
  };

  test('each is reported at its own version, naming the others; other versions and broken files are not', () => {
    const a = result('a.yaml', 1, false);
    const b = result('b.yaml', 1);
    const c = result('c.yaml', 1);
    const other = result('d.yaml', 2);
    const broken: { file: string; result: LintResult } = { file: 'e.yaml', result: { problems: [] } };
    expect(lintVersionClashes([a, b, broken, other, c]).map(formatProblem)).toEqual([
      // a has no recorded position for its version: the start of the file.
      'a.yaml:1:1: b.yaml, c.yaml also defines located version 1; give one of them another version [duplicate-version]',
      'b.yaml:5:10: a.yaml, c.yaml also defines located version 1; give one of them another version [duplicate-version]',
      'c.yaml:5:10: a.yaml, b.yaml also defines located version 1; give one of them another version [duplicate-version]',
    ]);
    expect(lintVersionClashes([b, other])).toEqual([]);
    // The same name under another version, or another name under the same version, is no clash.
    const renamed = lintRunbookText('f.yaml', [...HEAD, OK_STEPS].join('\n').replace('name: located', 'name: other'));
    expect(lintVersionClashes([b, { file: 'f.yaml', result: renamed }])).toEqual([]);
  });
});

describe('hidden characters', () => {
  const HIDDEN =
    'control, direction-changing and invisible characters can make a runbook read differently than it runs, so remove it [hidden-character]';

  test('at most ten are reported; tabs, line ends and a leading byte order mark are not hidden', () => {
    const text = [`\ufeff${HEAD[0]}\t# tab`, ...HEAD.slice(1), OK_STEPS, `# ${'\u200b'.repeat(11)}`].join('\r\n');
    const problems = lintRaw(text);
    expect(problems).toHaveLength(10);
    expect(problems[0]).toBe(`x.yaml:7:3: this line contains a zero-width space (U+200B); ${HIDDEN}`);
    expect(problems[9]).toBe(`x.yaml:7:12: this line contains a zero-width space (U+200B); ${HIDDEN}`);
    expect(lintRaw(text.replace(`# ${'\u200b'.repeat(11)}`, `# ${'\u200b'.repeat(10)}`))).toHaveLength(10);
  });

  test('a byte order mark anywhere but the start is reported', () => {
    expect(lintRaw([...HEAD, OK_STEPS, '# \ufeff'].join('\n'))).toEqual([
      `x.yaml:7:3: this line contains a byte order mark (U+FEFF); ${HIDDEN}`,
    ]);
  });

  test('in a runbook that is otherwise valid, the file is refused: no runbook comes back, the advice still does', () => {
    const text = [
      ...HEAD,
      'parameters: { pw: { type: secret } }',
      'steps: [{ name: ok, script: "echo {{ pw }}" }] # \u202e',
    ].join('\n');
    const r = lintRunbookText('x.yaml', text);
    expect(r.runbook).toBeUndefined();
    expect(r.versionAt).toBeUndefined();
    expect(r.problems.map((p) => `${p.line}:${p.column} ${p.rule}`)).toEqual([
      '6:27 secret-without-prefix',
      '7:50 hidden-character',
    ]);
  });
});

describe('files that are not a runbook mapping', () => {
  test('a scalar or a list is not a mapping, located where it starts', () => {
    const sentence =
      'a runbook is a YAML mapping of fields; write it as "key: value" lines (name, version, steps, …) [not-a-mapping]';
    expect(lintRaw('just text')).toEqual([`x.yaml:1:1: ${sentence}`]);
    expect(lintRaw('# comment\n\n  - a\n  - b')).toEqual([`x.yaml:3:3: ${sentence}`]);
  });

  test('YAML problems come in file order, and nothing else is checked', () => {
    expect(lintRaw('name: a\nname: b\nversion: [\n')).toEqual([
      'x.yaml:2:1: this key is already set above in the same mapping; keep one of them [duplicate-key]',
      expect.stringMatching(/^x\.yaml:4:1: this is not valid YAML: .+ \[yaml-syntax\]$/),
    ]);
  });
});

describe('schema problems, each at its field', () => {
  test('a missing field names its owner and the kind of value it takes', () => {
    expect(lint('steps: [{ name: ok }]')).toEqual([
      'x.yaml:6:9: steps[0] has no "script"; add it (text) [missing-field]',
    ]);
    expect(lintRaw([...HEAD.slice(0, 4), OK_STEPS].join('\n'))).toEqual([
      'x.yaml:1:1: targets must be one of instanceIds (a list of instance ids), tags (1 to 5 "key: value" pairs), names (a list of Name tags) or fromParameter (a parameter naming them) [invalid-value]',
    ]);
    expect(lintRaw([...HEAD.slice(1), OK_STEPS].join('\n'))).toEqual([
      'x.yaml:1:1: the runbook has no "name"; add it (text) [missing-field]',
    ]);
  });

  test('a value of the wrong type says what it must be and what it is', () => {
    expect(
      [
        'script: 5',
        'script: [a]',
        'script: true',
        'script: {a: 1}',
        'script: null',
        'script: "true", timeoutSeconds: 1.5',
      ].flatMap((s) => lint(`steps: [{ name: ok, ${s} }]`)),
    ).toEqual([
      'x.yaml:6:29: steps[0].script must be text, not a number [wrong-type]',
      'x.yaml:6:29: steps[0].script must be text, not a list [wrong-type]',
      'x.yaml:6:29: steps[0].script must be text, not true or false [wrong-type]',
      'x.yaml:6:29: steps[0].script must be text, not a mapping [wrong-type]',
      'x.yaml:6:29: steps[0].script must be text, not nothing [wrong-type]',
      'x.yaml:6:53: steps[0].timeoutSeconds must be a whole number, not a number [wrong-type]',
    ]);
    expect(lint('steps: {a: 1}')).toEqual(['x.yaml:6:8: steps must be a list, not a mapping [wrong-type]']);
    expect(lint(OK_STEPS, 'parameters: { p: 5 }')).toEqual([
      'x.yaml:7:18: parameters.p must be a mapping, not a number [wrong-type]',
    ]);
  });

  test('a value out of range says the bound, inclusive or not, and its unit', () => {
    expect([
      ...lint('steps: []'),
      ...lint(OK_STEPS, 'parameters: { p: { type: enum, values: [] } }'),
      ...lint('steps: [{ name: ok, script: "true", retries: 9 }]'),
      ...lint('steps: [{ name: ok, script: "true", timeoutSeconds: 0 }]'),
      ...lint(OK_STEPS, 'parameters: { p: { type: string, maxLength: 0 } }'),
      ...lintRaw([...HEAD, OK_STEPS].join('\n').replace('A runbook to locate problems in.', '""')),
    ]).toEqual([
      'x.yaml:6:8: steps must list at least 1 item [out-of-range]',
      'x.yaml:7:40: parameters.p.values must list at least 1 item [out-of-range]',
      'x.yaml:6:46: steps[0].retries must be at most 5 [out-of-range]',
      'x.yaml:6:53: steps[0].timeoutSeconds must be at least 1 [out-of-range]',
      'x.yaml:7:45: parameters.p.maxLength must be more than 0 [out-of-range]',
      'x.yaml:3:14: description must be at least 1 character long [out-of-range]',
    ]);
  });

  test('an unknown field is suggested from the fields allowed where it stands, for that parameter type', () => {
    expect(
      [
        [OK_STEPS, 'zzzzqq: 1'],
        ['steps: [{ name: ok, script: "true", zzzzqq: 1 }]'],
        [OK_STEPS, 'onFailure: [{ name: fix, script: "true", retires: 1 }]'],
        [OK_STEPS, 'approval: { requird: 1 }'],
        [OK_STEPS, 'parameters: { p: { type: string, patern: x } }'],
        [OK_STEPS, 'parameters: { p: { type: list, items: { type: string, patern: x } } }'],
        // An integer has no pattern: the string branch of the schema is not offered.
        [OK_STEPS, 'parameters: { p: { type: integer, patern: 1 } }'],
      ].flatMap((lines) => lint(...lines)),
    ).toEqual([
      'x.yaml:7:1: "zzzzqq" is not a runbook field; remove it or check its spelling [unknown-field]',
      'x.yaml:6:37: "zzzzqq" is not a field of steps[0]; remove it or check its spelling [unknown-field]',
      'x.yaml:7:42: "retires" is not a field of onFailure[0]; did you mean "retries"? [unknown-field]',
      'x.yaml:7:13: "requird" is not a field of approval; did you mean "required"? [unknown-field]',
      'x.yaml:7:34: "patern" is not a field of parameters.p; did you mean "pattern"? [unknown-field]',
      'x.yaml:7:55: "patern" is not a field of parameters.p.items; did you mean "pattern"? [unknown-field]',
      'x.yaml:7:35: "patern" is not a field of parameters.p; remove it or check its spelling [unknown-field]',
    ]);
  });

  test('a tagged union names its choices, and quotes the value only when there is one', () => {
    expect(lint(OK_STEPS, 'parameters: { p: { typo: string } }')).toEqual([
      'x.yaml:7:18: parameters.p.type must be one of string, integer, boolean, enum, list, secret [invalid-value]',
    ]);
    expect(lint(OK_STEPS, 'parameters: { p: { type: int } }')).toEqual([
      'x.yaml:7:26: parameters.p.type must be one of string, integer, boolean, enum, list, secret; got "int" [invalid-value]',
    ]);
  });

  test("zod's own sentence is kept, after the path", () => {
    expect(lint(OK_STEPS, 'risk: extreme')).toEqual([
      'x.yaml:7:7: risk: invalid option: expected one of "low"|"medium"|"high" [invalid-value]',
    ]);
  });
});

describe('problems in a script are located at the placeholder in the file', () => {
  const script = (...lines: string[]) =>
    lint('parameters: { a: { type: string } }', 'steps:', '  - name: ok', ...lines);
  const COMMAND_NAME =
    'step "ok", line 1: {{ a }} stands as the command name, where the value would choose what runs; put it where a plain argument goes, e.g. echo {{ a }} [command-name]';
  const ARITHMETIC =
    'step "ok", line 1: {{ a }} stands in arithmetic or an assignment, where bash evaluates a value such as a[$(cmd)] as code; only an integer parameter may stand there, so declare it type: integer or pass it as a plain argument [integer-only]';

  test('in a plain scalar, at the column of the use the sentence is about', () => {
    expect(script('    script: echo {{ a }} ; {{ a }} x')).toEqual([`x.yaml:9:28: ${COMMAND_NAME}`]);
  });

  test('two uses refused alike on one line are each named once, in order', () => {
    expect(script('    script: echo $(( {{ a }} )) $(( {{ a }} ))')).toEqual([
      `x.yaml:9:22: ${ARITHMETIC}`,
      `x.yaml:9:37: ${ARITHMETIC}`,
    ]);
    expect(script('    script: "echo {{ a }}; eval {{ a }}"')).toEqual([
      'x.yaml:9:19: step "ok", line 1: {{ a }} stands as a command argument in a script that runs eval, which can change what any command runs or where its output goes; put it where a plain argument goes, e.g. echo {{ a }} [script-redefines-commands]',
      'x.yaml:9:33: step "ok", line 1: {{ a }} stands as an argument of eval, which runs its arguments as shell code; put it where a plain argument goes, e.g. echo {{ a }} [evaluating-command]',
    ]);
  });

  test('a quoted scalar is located after its quote, or at its start when escapes would shift the column', () => {
    expect(script("    script: 'echo x; {{ a }} x'")).toEqual([`x.yaml:9:22: ${COMMAND_NAME}`]);
    expect(script('    script: "echo x; {{ a }} x"')).toEqual([`x.yaml:9:22: ${COMMAND_NAME}`]);
    expect(script('    script: "echo \\\\ ; {{ a }} x"')).toEqual([`x.yaml:9:13: ${COMMAND_NAME}`]);
    expect(script("    script: 'echo ''x'' ; {{ a }} x'")).toEqual([`x.yaml:9:13: ${COMMAND_NAME}`]);
    // A quote doubled only after the column does not move it.
    expect(script("    script: 'echo x ; {{ a }} ''x'''")).toEqual([`x.yaml:9:23: ${COMMAND_NAME}`]);
    // A folded script's lines are not the file's: it is located at its start.
    expect(script('    script: >', '      echo ok;', '      {{ a }} x')).toEqual([`x.yaml:9:13: ${COMMAND_NAME}`]);
  });

  test('an undeclared or malformed placeholder is located at its first use', () => {
    const undeclared = (at: string) =>
      `x.yaml:${at}: step "ok" uses {{ nope }}, which is not a declared parameter; declare it under parameters or fix the name [undeclared-parameter]`;
    expect(lint('steps:', '  - name: ok', '    script: |', '      echo ok', '      echo {{ nope }}')).toEqual([
      undeclared('10:12'),
    ]);
    expect(lint('steps:', '  - name: ok', '    script: "echo {{ nope }}"')).toEqual([undeclared('8:19')]);
    expect(lint('steps:', '  - name: ok', '    script: echo ok {{')).toEqual([
      'x.yaml:8:21: step "ok" has a "{{" that is not a placeholder like {{ name }} [malformed-placeholder]',
    ]);
    expect(lint('steps:', '  - name: ok', '    script: |', '      echo ok', '      echo "open')).toEqual([
      'x.yaml:10:12: step "ok", line 2, column 6: bash\'s grammar cannot read the script here, so where its placeholders go cannot be proven safe; fix the syntax [unparsable-script]',
    ]);
  });
});
