import type { Key } from 'ink';

/** Backspace as terminals send it (DEL, or BS with some settings). */
const ERASE = /[\u007f\u0008]/;

/**
 * One keystroke (or a burst of them) applied to a one-line text field: printable input is
 * appended, Backspace/Delete remove the last character (a burst of backspaces, which a held key
 * or a fast typist sends as one chunk, removes as many), Ctrl-U clears. Returns undefined when the
 * key is not an edit. Pasted line breaks become spaces; any other control character is kept so
 * the field's check names it: invalid text never leaves the form unnoticed.
 */
export function editText(value: string, input: string, key: Key, max = 4096): string | undefined {
  if (key.backspace || key.delete) return Array.from(value).slice(0, -1).join('');
  if (ERASE.test(input)) {
    // A burst that mixes backspaces and characters, applied in order.
    const chars = Array.from(value);
    for (const ch of input) {
      if (ERASE.test(ch)) chars.pop();
      else chars.push(ch === '\r' || ch === '\n' ? ' ' : ch);
    }
    return chars.slice(0, max).join('');
  }
  if (key.ctrl && input === 'u') return '';
  if (key.ctrl || key.meta || key.escape || key.return || key.tab) return undefined;
  if (key.upArrow || key.downArrow || key.leftArrow || key.rightArrow || key.pageUp || key.pageDown) return undefined;
  if (input === '') return undefined;
  const typed = input.replace(/[\r\n]+/g, ' ');
  return Array.from(value + typed)
    .slice(0, max)
    .join('');
}
