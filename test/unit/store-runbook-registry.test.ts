import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, test } from 'vitest';
import { loadRunbookFile, loadRunbookRegistry, type InvalidRunbook } from '../../src/store/runbook-registry.ts';

const CORPUS = fileURLToPath(new URL('../corpus/broken-runbooks/', import.meta.url));

/**
 * Every broken file of the corpus and the exact sentence it is refused with. Regression: the
 * server once crash-looped on the first invalid file (an alias bomb threw a bare ReferenceError, a
 * directory named x.yaml an EISDIR), taking every valid runbook down with it.
 */
const EXPECTED: Record<string, string> = {
  'alias-bomb.yaml':
    'alias-bomb.yaml expands its YAML aliases (*name) too many times, like an alias bomb; write the values out instead',
  'backreference-pattern.yaml':
    'backreference-pattern.yaml is not a valid runbook:\n✖ parameter "release" has a pattern with a backreference (\\1), which RE2 cannot match in linear time; rewrite the pattern without it',
  'bad-default.yaml':
    'bad-default.yaml is not a valid runbook:\n✖ the default of parameter "keep" must be an integer from 1 to 30; got 0',
  'bad-enum.yaml':
    'bad-enum.yaml is not a valid runbook:\n✖ parameter "mode" lists a value twice\n✖ the default of parameter "mode" must be one of fast, safe, fast; got "slow"',
  'bad-yaml.yaml':
    'bad-yaml.yaml is not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ] at line 8, column 1',
  'builtin-param-name.yaml':
    'builtin-param-name.yaml is not a valid runbook:\n✖ parameter "mechanic_execution_id" takes a name reserved for mechanic\'s built-in placeholders (names starting with mechanic_); rename it',
  // With JavaScript's RegExp, checking this 4 KiB default against ^(a+)+$ would not finish.
  'catastrophic-pattern.yaml': `catastrophic-pattern.yaml is not a valid runbook:\n✖ the default of parameter "name" must match ^(a+)+$; got "${'a'.repeat(60)}…"`,
  'comments-only.yaml':
    'comments-only.yaml is empty; write a runbook in it (a YAML mapping with name, version, description, roleArn, targets and steps) or remove it',
  'control-character.yaml':
    'control-character.yaml contains a control character (U+0007) on line 3; control, direction-changing and invisible characters can make a runbook read differently than it runs, so remove it',
  'costly-pattern.yaml':
    'costly-pattern.yaml is not a valid runbook:\n✖ parameter "code" has a pattern too large to check quickly against values of up to 4096 characters (RE2 program size 1004); simplify the pattern or lower maxLength',
  'directory.yaml':
    'directory.yaml is a directory, not a runbook file; rename it or move it out of the runbooks folder',
  'duplicate-key.yaml': 'duplicate-key.yaml is not valid YAML: Map keys must be unique at line 10, column 1',
  'empty.yaml':
    'empty.yaml is empty; write a runbook in it (a YAML mapping with name, version, description, roleArn, targets and steps) or remove it',
  'invalid-pattern.yaml':
    'invalid-pattern.yaml is not a valid runbook:\n✖ parameter "release" has a pattern that is not a valid RE2 regular expression (missing closing ): ^(v\\d+); fix the pattern',
  'list.yaml':
    'list.yaml is not a YAML mapping of runbook fields; write it as "key: value" lines (name, version, steps, …)',
  'lookahead-pattern.yaml':
    'lookahead-pattern.yaml is not a valid runbook:\n✖ parameter "release" has a pattern with a lookahead or lookbehind ((?!), which RE2 cannot match in linear time; rewrite the pattern without it',
  'lookbehind-pattern.yaml':
    'lookbehind-pattern.yaml is not a valid runbook:\n✖ parameter "release" has a pattern with a lookahead or lookbehind ((?<=), which RE2 cannot match in linear time; rewrite the pattern without it',
  'not-utf8.yaml': 'not-utf8.yaml is not UTF-8 text; save it as UTF-8',
  'tab-indent.yaml': 'tab-indent.yaml is not valid YAML: Tabs are not allowed as indentation at line 3, column 1',
  'trojan-source.yaml':
    'trojan-source.yaml contains a right-to-left override (U+202E) on line 9; control, direction-changing and invisible characters can make a runbook read differently than it runs, so remove it',
  'twin-a.yaml': 'twin-a.yaml and twin-b.yaml both define twin version 1; give one of them another version',
  'twin-b.yaml': 'twin-b.yaml and twin-a.yaml both define twin version 1; give one of them another version',
  'two-documents.yaml':
    'two-documents.yaml holds more than one YAML document (a second one at line 10, column 1); keep one runbook per file',
  'unknown-key.yaml':
    'unknown-key.yaml is not a valid runbook:\n✖ Unrecognized key: "stesp"\n✖ Invalid input: expected array, received undefined\n  → at steps',
  'unknown-tag.yaml': 'unknown-tag.yaml is not valid YAML: Unresolved tag: !shell at line 9, column 13',
  'unresolved-alias.yaml': 'unresolved-alias.yaml is not valid YAML: the alias *steps has no anchor &steps before it',
  'wrong-types.yml':
    'wrong-types.yml is not a valid runbook:\n✖ Invalid input: expected number, received string\n  → at version\n✖ must be an IAM role ARN\n  → at roleArn',
};

describe('the broken-runbook corpus', () => {
  test('the valid runbook is served and every broken file is listed with its sentence, logged once', async () => {
    const logged: InvalidRunbook[] = [];
    const registry = await loadRunbookRegistry(CORPUS, { log: { warn: (fields) => logged.push(fields) } });
    expect((await registry.list()).map((r) => r.source)).toEqual(['valid.yaml']);
    expect((await registry.get('corpus-valid')).runbook.parameters).toMatchObject({ service: { default: 'web' } });
    expect(Object.fromEntries(registry.invalid().map((i) => [i.file, i.error]))).toEqual(EXPECTED);
    expect(logged).toEqual(registry.invalid());
  });

  test.each(Object.entries(EXPECTED).filter(([file]) => !file.startsWith('twin-')))(
    '%s alone is refused with its sentence',
    async (file, error) => {
      await expect(loadRunbookFile(path.join(CORPUS, file))).rejects.toMatchObject({
        code: 'RUNBOOK_INVALID',
        message: error,
      });
    },
  );

  test('no refusal is a bare JavaScript or system error', () => {
    for (const error of Object.values(EXPECTED)) {
      expect(error).not.toMatch(/ReferenceError|EISDIR|ENOENT|TypeError|\bat Object\./);
    }
  });

  test('a name refused at load says so when someone asks for a missing runbook', async () => {
    const registry = await loadRunbookRegistry(CORPUS);
    await expect(async () => registry.get('alias-bomb')).rejects.toThrow(
      'there is no runbook named "alias-bomb"; known runbooks: corpus-valid; 27 runbook file(s) were refused at load, see "mechanic runbooks"',
    );
  });
});

describe('files the corpus cannot hold', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const fresh = () => {
    dir = mkdtempSync(path.join(tmpdir(), 'mechanic-registry-'));
    copyFileSync(path.join(CORPUS, 'valid.yaml'), path.join(dir, 'valid.yaml'));
    return dir;
  };

  test('a link to nothing (an editor lock file, say) is refused by name', async () => {
    symlinkSync('nowhere.yaml', path.join(fresh(), '.#valid.yaml'));
    const registry = await loadRunbookRegistry(dir);
    expect((await registry.list()).map((r) => r.source)).toEqual(['valid.yaml']);
    expect(registry.invalid()).toEqual([
      {
        file: '.#valid.yaml',
        error:
          '.#valid.yaml cannot be read (it no longer exists, or is a link to a file that does not); fix the file or remove it from the runbooks folder',
      },
    ]);
  });

  test('a FIFO named x.yaml is refused without being read (a read would block forever)', async () => {
    execFileSync('mkfifo', [path.join(fresh(), 'pipe.yaml')]);
    const registry = await loadRunbookRegistry(dir);
    expect(registry.invalid()).toEqual([
      { file: 'pipe.yaml', error: 'pipe.yaml is not a regular file; runbooks must be plain YAML files' },
    ]);
  });

  test('a file larger than 1 MiB is refused without being parsed', async () => {
    writeFileSync(path.join(fresh(), 'huge.yaml'), `# ${'x'.repeat(1024 * 1024)}\n`);
    const registry = await loadRunbookRegistry(dir);
    expect(registry.invalid()).toEqual([
      {
        file: 'huge.yaml',
        error: 'huge.yaml is larger than 1 MiB, far more than any runbook; check that it is the right file',
      },
    ]);
  });

  test('a UTF-8 byte order mark at the start of a file is allowed (editors write one)', async () => {
    const text = `\ufeff${readFileSync(path.join(CORPUS, 'valid.yaml'), 'utf8')}`;
    writeFileSync(path.join(fresh(), 'valid.yaml'), text);
    const registry = await loadRunbookRegistry(dir);
    expect({ valid: (await registry.list()).length, invalid: registry.invalid() }).toEqual({ valid: 1, invalid: [] });
  });

  test('a folder that cannot be read is still a configuration error', async () => {
    await expect(loadRunbookRegistry(path.join(fresh(), 'missing'))).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  test('the example runbooks load with nothing refused', async () => {
    const registry = await loadRunbookRegistry(fileURLToPath(new URL('../../runbooks/', import.meta.url)));
    expect(registry.invalid()).toEqual([]);
    dir = fresh(); // nothing to clean but the shared afterEach
  });
});
