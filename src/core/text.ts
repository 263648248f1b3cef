/**
 * Text that people type and other people read. Two rules, one module:
 *
 * - `humanTextProblem` refuses, at the door, characters that make text read differently than it
 *   is: control characters (a newline can forge a line of a plan, ESC starts a terminal command),
 *   line and paragraph separators, every format character (Unicode category Cf: the bidi controls
 *   that reorder text, LRM/RLM/ALM, zero-width joiners and spaces, soft hyphens, BOMs, word
 *   joiners, tag characters) and unpaired surrogates.
 * - `neutralize` makes stored text inert wherever it is shown (CLI today; TUI, Slack and web
 *   through the same function): ANSI escape sequences are dropped, and any other such character is
 *   shown as a visible `<U+XXXX>` marker, so a reader sees that something was there.
 *
 * Pure JS without Node built-ins: the workflow's update validator (checkVote) imports it inside
 * Temporal's deterministic sandbox.
 */

/** The characters no human-entered field may contain. */
const REFUSED = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;

/** Names for the characters people most often meet, so a refusal says which one it was. */
const NAMES: Readonly<Record<number, string>> = {
  0x09: 'a tab',
  0x0a: 'a line break',
  0x0d: 'a carriage return',
  0x1b: 'an escape character',
  0x7f: 'a delete character',
  0xad: 'a soft hyphen',
  0x061c: 'an Arabic letter mark',
  0x200b: 'a zero-width space',
  0x200c: 'a zero-width non-joiner',
  0x200d: 'a zero-width joiner',
  0x200e: 'a left-to-right mark',
  0x200f: 'a right-to-left mark',
  0x2028: 'a line separator',
  0x2029: 'a paragraph separator',
  0x202a: 'a left-to-right embedding',
  0x202b: 'a right-to-left embedding',
  0x202c: 'a pop directional formatting character',
  0x202d: 'a left-to-right override',
  0x202e: 'a right-to-left override',
  0x2060: 'a word joiner',
  0x2066: 'a left-to-right isolate',
  0x2067: 'a right-to-left isolate',
  0x2068: 'a first strong isolate',
  0x2069: 'a pop directional isolate',
  0xfeff: 'a byte order mark',
};

/** `U+202E`, four hex digits at least. */
export function codePointLabel(cp: number): string {
  return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** What a refused character is, for a message: `a right-to-left override (U+202E)`. */
export function describeCharacter(ch: string): string {
  const cp = ch.codePointAt(0) ?? 0;
  const name =
    NAMES[cp] ??
    (/\p{Cc}/u.test(ch)
      ? 'a control character'
      : /\p{Cs}/u.test(ch)
        ? 'an unpaired surrogate'
        : 'an invisible format character');
  return `${name} (${codePointLabel(cp)})`;
}

/** The first refused character of `value` and its position (in UTF-16 units), if any. */
export function findRefusedCharacter(value: string): { readonly char: string; readonly index: number } | undefined {
  const m = REFUSED.exec(value);
  return m ? { char: m[0], index: m.index } : undefined;
}

/** True when `value` holds a character that `humanTextProblem` refuses. */
export function hasRefusedCharacters(value: string): boolean {
  return REFUSED.test(value);
}

/**
 * Checks one field a person typed (a parameter value, a launch or cancel reason, a vote comment)
 * and returns the problem as one sentence that starts with `label` — e.g. `the comment` or
 * `parameter "release"` — or undefined when the text is acceptable.
 */
export function humanTextProblem(label: string, value: string): string | undefined {
  const found = findRefusedCharacter(value);
  if (!found) return undefined;
  return (
    `${label} contains ${describeCharacter(found.char)}; control, direction-changing and invisible ` +
    `characters are never allowed, so remove it`
  );
}

/**
 * ANSI/ECMA-48 escape sequences: string commands (OSC, DCS, SOS, PM, APC) up to BEL or ST, control
 * sequences (CSI … final byte) and two-character escapes. Each alternative scans forward without
 * backtracking into itself, so this is linear in the text.
 */
const ANSI_SEQUENCE = /\u001b[\]PX^_][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b\[[0-?]*[ -/]*[@-~]|\u001b[ -/]*[0-~]/g;

/** Everything `neutralize` shows as a marker; newline and tab are kept only in multi-line text. */
const MARKED = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

export interface NeutralizeOptions {
  /**
   * Keep line breaks (and tabs): for text that is many lines by nature, like command output.
   * A lone carriage return, which would let a line overwrite what was printed before it, becomes
   * a line break. Off by default: a reason or comment is one line, and a newline in it is shown.
   */
  readonly multiline?: boolean;
}

/**
 * Stored text made safe to show: ANSI escape sequences are removed, and control characters,
 * direction-changing and invisible format characters, separators and unpaired surrogates are shown
 * as `<U+XXXX>`, so nothing a person stored can recolour, move, clear or reorder what a reader
 * sees. Every screen that shows stored text passes it through here.
 */
export function neutralize(text: string, options: NeutralizeOptions = {}): string {
  let s = text.replace(ANSI_SEQUENCE, '');
  if (options.multiline) s = s.replace(/\r\n?/g, '\n');
  return s.replace(MARKED, (ch) =>
    options.multiline && (ch === '\n' || ch === '\t') ? ch : `<${codePointLabel(ch.codePointAt(0) ?? 0)}>`,
  );
}

/**
 * A value quoted for an error message: JSON (which escapes control characters and unpaired
 * surrogates), with format characters and separators shown as `<U+XXXX>` too, and cut to `max`
 * characters so a 4 KiB value does not become a 4 KiB message.
 */
export function quoteForMessage(value: unknown, max = 60): string {
  let json: string;
  if (typeof value === 'string') {
    const chars = Array.from(value);
    json = JSON.stringify(chars.length > max ? `${chars.slice(0, max).join('')}…` : value);
  } else {
    json = JSON.stringify(value) ?? String(value);
    if (json.length > max) json = `${json.slice(0, max)}…`;
  }
  return json.replace(/[\p{Cf}\p{Zl}\p{Zp}]/gu, (ch) => `<${codePointLabel(ch.codePointAt(0) ?? 0)}>`);
}

/** The known word nearest to a typo (at most 2 edits, or one that differs only in case). */
export function closestWord(word: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of known) {
    const d = k.toLowerCase() === word.toLowerCase() ? 0 : editDistance(word, k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

/** Optimal string alignment distance: a swap of two letters counts as one edit. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
