/**
 * Where each `{{ placeholder }}` sits in a bash script. mechanic renders a value as one
 * single-quoted word, which is only literal where bash reads a plain word: inside double quotes,
 * single quotes, heredocs, `${…}` or `$((…))` the quotes themselves become data and the value
 * can be expanded or executed (`"v={{ v }}"` with `$(id)` runs id). So runbooks may only put
 * placeholders where a plain word goes; this lexer finds the ones that are not.
 *
 * It follows bash's quoting closely enough for scripts people write in runbooks: quotes,
 * backslash escapes, comments, `$(…)` and backtick substitutions (nested in double quotes too),
 * `${…}`, `$((…))`, and heredoc bodies. Anything it cannot place is reported as unsafe.
 */

export type UnsafeContext = 'double quotes' | 'single quotes' | 'a heredoc' | 'a ${…} expansion' | 'arithmetic $((…))';

export interface PlaceholderUse {
  readonly name: string;
  readonly offset: number;
  /** Undefined when the placeholder stands where bash reads a plain word. */
  readonly unsafe?: UnsafeContext;
}

type Frame = 'word' | 'double' | 'single' | 'subst' | 'backtick' | 'brace' | 'arith';

const PLACEHOLDER_AT = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/y;
const HEREDOC = /<<(-?)\s*(['"]?)([A-Za-z_][A-Za-z0-9_]*)\2/y;

export function placeholderUses(script: string): PlaceholderUse[] {
  const uses: PlaceholderUse[] = [];
  const stack: Frame[] = ['word'];
  const pendingHeredocs: { delimiter: string; stripTabs: boolean }[] = [];
  const top = () => stack[stack.length - 1]!;
  let atWordStart = true;
  let i = 0;
  while (i < script.length) {
    PLACEHOLDER_AT.lastIndex = i;
    const ph = PLACEHOLDER_AT.exec(script);
    if (ph) {
      const frame = top();
      const unsafe = contextOf(frame);
      uses.push(unsafe ? { name: ph[1]!, offset: i, unsafe } : { name: ph[1]!, offset: i });
      i += ph[0].length;
      atWordStart = false;
      continue;
    }
    const c = script[i]!;
    const next = script[i + 1];
    const frame = top();
    if (frame === 'single') {
      if (c === "'") stack.pop();
      i++;
      continue;
    }
    if (c === '\\') {
      i += 2;
      atWordStart = false;
      continue;
    }
    if (frame === 'double') {
      if (c === '"') stack.pop();
      else if (c === '`') stack.push('backtick');
      else if (c === '$') i += openExpansion(script, i, stack);
      i++;
      continue;
    }
    // word-like frames: word, subst, backtick, brace, arith
    if (c === '\n') {
      i++;
      atWordStart = true;
      if (pendingHeredocs.length && frame === 'word') i = skipHeredocs(script, i, pendingHeredocs, uses);
      continue;
    }
    if (c === '#' && atWordStart && (frame === 'word' || frame === 'subst')) {
      while (i < script.length && script[i] !== '\n') i++;
      continue;
    }
    if (c === '<' && next === '<' && script[i + 2] !== '<') {
      HEREDOC.lastIndex = i;
      const h = HEREDOC.exec(script);
      if (h) {
        pendingHeredocs.push({ delimiter: h[3]!, stripTabs: h[1] === '-' });
        i += h[0].length;
        atWordStart = false;
        continue;
      }
    }
    if (c === "'") stack.push('single');
    else if (c === '"') stack.push('double');
    else if (c === '$') i += openExpansion(script, i, stack);
    else if (c === '`') {
      if (frame === 'backtick') stack.pop();
      else stack.push('backtick');
    } else if (c === ')' && (frame === 'subst' || frame === 'arith')) {
      if (frame === 'arith' && next === ')') i++;
      stack.pop();
    } else if (c === '}' && frame === 'brace') stack.pop();
    atWordStart = /[\s;&|(){}]/.test(c);
    i++;
  }
  return uses;
}

/** At a `$`: opens `$((`, `$(` or `${`; returns how many characters beyond the `$` it consumed. */
function openExpansion(script: string, i: number, stack: Frame[]): number {
  if (script[i + 1] === '(' && script[i + 2] === '(') {
    stack.push('arith');
    return 2;
  }
  if (script[i + 1] === '(') {
    stack.push('subst');
    return 1;
  }
  if (script[i + 1] === '{') {
    stack.push('brace');
    return 1;
  }
  return 0;
}

function contextOf(frame: Frame): UnsafeContext | undefined {
  switch (frame) {
    case 'word':
    case 'subst':
    case 'backtick':
      return undefined;
    case 'double':
      return 'double quotes';
    case 'single':
      return 'single quotes';
    case 'brace':
      return 'a ${…} expansion';
    case 'arith':
      return 'arithmetic $((…))';
  }
}

/** Skips heredoc bodies that start at `start`, reporting any placeholder inside them. */
function skipHeredocs(
  script: string,
  start: number,
  pending: { delimiter: string; stripTabs: boolean }[],
  uses: PlaceholderUse[],
): number {
  let i = start;
  while (pending.length) {
    const { delimiter, stripTabs } = pending.shift()!;
    for (;;) {
      if (i >= script.length) return i;
      const end = script.indexOf('\n', i);
      const lineEnd = end === -1 ? script.length : end;
      const line = script.slice(i, lineEnd);
      if ((stripTabs ? line.replace(/^\t+/, '') : line) === delimiter) {
        i = lineEnd + 1;
        break;
      }
      for (const m of line.matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g)) {
        uses.push({ name: m[1]!, offset: i + (m.index ?? 0), unsafe: 'a heredoc' });
      }
      i = lineEnd + 1;
    }
  }
  return i;
}
