/**
 * Parameter patterns, matched with RE2 semantics (re2js): time linear in the value, never the
 * backtracking that let `^(a+)+$` hold the API for seconds per request with JavaScript's RegExp.
 * A pattern RE2 cannot express (backreferences, lookaround) is refused when the runbook is loaded,
 * not discovered at launch. Patterns are written in RE2 syntax (github.com/google/re2/wiki/Syntax),
 * which for everyday patterns (`^v\d+\.\d+\.\d+$`, `[a-z0-9-]+`, `\p{L}`) is JavaScript's. Two
 * differences from the `new RegExp(p, 'u')` this replaced: `\s` is ASCII whitespace only (so `\S`
 * matches a no-break space), and JavaScript-only escapes such as `\u0041` are refused (RE2 writes
 * `\x{41}`).
 */
import { RE2JS, RE2JSSyntaxException } from 're2js';

/**
 * Work per match is roughly RE2's program size times the value's length. Linear is not enough on
 * its own: a 480-character pattern of nested counted repetitions compiles to ~48,000 instructions
 * and took ~10 s on a 4 KiB value. Past this product a pattern is refused at load.
 */
const MAX_MATCH_COST = 1_000_000;

/** Compiled patterns, by source. Patterns come only from loaded runbooks, so the set is small; the cap is a backstop. */
const cache = new Map<string, RE2JS>();
const CACHE_LIMIT = 1000;

function compile(pattern: string): RE2JS {
  let re = cache.get(pattern);
  if (re === undefined) {
    re = RE2JS.compile(pattern);
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(pattern, re);
  }
  return re;
}

/**
 * Why a string parameter's pattern cannot be used, as one sentence naming the parameter, or
 * undefined when it compiles under RE2 and is cheap enough to run on values of up to `maxLength`.
 */
export function patternProblem(name: string, pattern: string, maxLength: number): string | undefined {
  let re: RE2JS;
  try {
    re = compile(pattern);
  } catch (e) {
    return re2Refusal(name, e);
  }
  const size = re.programSize();
  if (size * maxLength > MAX_MATCH_COST) {
    return (
      `parameter "${name}" has a pattern too large to check quickly against values of up to ${maxLength} ` +
      `characters (RE2 program size ${size}); simplify the pattern or lower maxLength`
    );
  }
  return undefined;
}

function re2Refusal(name: string, e: unknown): string {
  if (!(e instanceof RE2JSSyntaxException)) {
    return `parameter "${name}" has a pattern RE2 cannot compile (${e instanceof Error ? e.message : String(e)}); simplify the pattern`;
  }
  const what = e.getDescription();
  const at = e.getPattern() ?? '';
  const backreference =
    (what === 'invalid escape sequence' && /^\\[1-9gk]/.test(at)) || at.startsWith('(?P=') || at === '(?P';
  if (backreference) {
    return (
      `parameter "${name}" has a pattern with a backreference (${at}), which RE2 cannot match in linear time; ` +
      `rewrite the pattern without it`
    );
  }
  if (/^\(\?<?[=!]/.test(at)) {
    return (
      `parameter "${name}" has a pattern with a lookahead or lookbehind (${at.slice(0, 4)}), which RE2 cannot ` +
      `match in linear time; rewrite the pattern without it`
    );
  }
  return `parameter "${name}" has a pattern that is not a valid RE2 regular expression (${what}: ${at}); fix the pattern`;
}

/**
 * True when `pattern` is found in `value`. Search semantics, like the RegExp.prototype.test this
 * replaced: anchoring is up to the runbook's author (`^…$` for a whole-value match). The pattern
 * must have passed `patternProblem` (runbooks are checked when loaded).
 */
export function matchesPattern(pattern: string, value: string): boolean {
  return compile(pattern).test(value);
}
