/**
 * The claim table (docs/claims.md) names, for each promise, the test that fails when it breaks.
 * A row is only worth something while that test exists: this reads every row's "pinned by" cell
 * and checks each named file exists and each title it quotes is in that file. Titles are quoted as
 * `file` › describe › test, cut short with "…", with "%s" where the title is built from data.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';

const DOC = 'docs/claims.md';

/** Curly quotes in the prose, straight ones in the code. */
const plain = (s: string): string => s.replace(/[’‘]/g, "'").replace(/[“”]/g, '"');

/** The short names the doc defines for test files: "`E` is `test/…`". */
function abbreviations(doc: string): Map<string, string> {
  const names = new Map<string, string>();
  for (const m of doc.matchAll(/`([A-Za-z]{1,4})`\s+is\s+`(test\/[^`]+)`/g)) {
    const [, name, path] = m as unknown as [string, string, string];
    if (names.has(name) && names.get(name) !== path) throw new Error(`"${name}" names two files`);
    names.set(name, path);
  }
  return names;
}

/** Splits on the characters `at` outside parentheses. */
function splitOutside(s: string, at: string): string[] {
  const parts = [''];
  let depth = 0;
  for (const c of s) {
    if (c === '(') depth++;
    if (c === ')') depth = Math.max(0, depth - 1);
    if (c === at && depth === 0) parts.push('');
    else parts[parts.length - 1] += c;
  }
  return parts;
}

/** Drops the doc's remarks: a parenthesis after a space; `flush()` keeps its own. */
function withoutRemarks(s: string): string {
  let out = '';
  let depth = 0;
  for (const [i, c] of [...s].entries()) {
    if (c === '(' && (depth > 0 || /\s/.test(s[i - 1] ?? ' '))) depth++;
    else if (c === ')' && depth > 0) depth--;
    else if (depth === 0) out += c;
  }
  return out;
}

interface Reference {
  readonly row: string;
  readonly file: string;
  readonly titles: readonly (readonly [string, string])[];
}

/** A quoted title up to where the doc cut it ("…", "%s", the end of its sentence). */
const cut = (t: string): string =>
  plain(t)
    .split('…')[0]!
    .split('%s')[0]!
    .split('. ')[0]!
    .trim()
    .replace(/[.,:]$/, '')
    .trim();

/** Every "`file` › title › title" reference in the table rows' second column. */
function references(doc: string): Reference[] {
  const names = abbreviations(doc);
  const found: Reference[] = [];
  for (const line of doc.split('\n')) {
    if (!line.startsWith('|') || /^\|\s*-/.test(line)) continue;
    const cell = line.split('|')[2] ?? '';
    // "; › title" goes on with the file named before it in the cell.
    let key: string | undefined;
    for (const part of splitOutside(cell, ';')) {
      const m = /`([^`]+)`\s*›(.*)$/s.exec(part) ?? (key !== undefined ? /^\s*()›(.*)$/s.exec(part) : null);
      if (!m) continue;
      key = m[1] || key!;
      const rest = m[2]!;
      // A title as quoted, and without the doc's remarks (a title may hold a parenthesis itself).
      const titles = rest.split('›').map((t) => [cut(t), cut(withoutRemarks(t))] as const);
      found.push({
        row: line.split('|')[1]!.trim(),
        file: key.startsWith('test/') ? key : (names.get(key) ?? key),
        titles,
      });
    }
  }
  return found;
}

/** The test file's text, with template placeholders written as the doc writes them ("%s"). */
function source(file: string): string {
  return plain(readFileSync(file, 'utf8')).replace(/\$\{[^}]*\}/g, '%s');
}

/** A title is in the file whole, or (a list of describe names) each of its comma-separated names is. */
function quotedOnce(src: string, title: string): boolean {
  if (title.length < 4) return true;
  return src.includes(title) || (title.includes(', ') && title.split(', ').every((p) => src.includes(p.trim())));
}
const quoted = (src: string, [asIs, bare]: readonly [string, string]): boolean =>
  quotedOnce(src, asIs) || quotedOnce(src, bare);

describe('the claim table', () => {
  const doc = readFileSync(DOC, 'utf8');
  const refs = references(doc);

  test('names tests: hundreds of references, every abbreviation defined', () => {
    expect(refs.length).toBeGreaterThan(300);
    expect(refs.filter((r) => !r.file.startsWith('test/')).map((r) => r.file)).toEqual([]);
  });

  test('every file it names exists', () => {
    expect(refs.filter((r) => !existsSync(r.file)).map((r) => `${r.file} (row: ${r.row.slice(0, 60)})`)).toEqual([]);
  });

  test('every title it quotes is in the file it names', () => {
    const missing = refs
      .filter((r) => existsSync(r.file))
      .flatMap((r) => {
        const src = source(r.file);
        return r.titles.filter((t) => !quoted(src, t)).map((t) => `${r.file} › ${t[0]}`);
      });
    expect(missing).toEqual([]);
  });

  test('the check finds a renamed test and a missing file', () => {
    const row = (cell: string): string => `| a claim | ${cell} | unit |\n`;
    // Built from pieces, so the title is not itself in this file's text.
    const [renamed] = references(
      row(`\`test/unit/claims-table.test.ts\` › ${['a test', 'nowhere', 'written'].join(' ')}`),
    );
    expect(quoted(source(renamed!.file), renamed!.titles[0]!)).toBe(false);
    const [kept] = references(row('`test/unit/claims-table.test.ts` › the claim table › every file it names exists'));
    expect(kept!.titles.every((t) => quoted(source(kept!.file), t))).toBe(true);
    const [gone] = references(row('`X` › something') + '`X` is `test/unit/no-such-file.test.ts`.\n');
    expect(existsSync(gone!.file)).toBe(false);
  });
});
