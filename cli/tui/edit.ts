import type { Key } from 'ink';

/**
 * One keystroke applied to a one-line text field: printable input is appended, Backspace/Delete
 * remove the last character, Ctrl-U clears. Returns undefined when the key is not an edit.
 * Pasted text arrives as one input: its line breaks and control characters are kept out here
 * and the field's check names anything else the server would refuse.
 */
export function editText(value: string, input: string, key: Key, max = 4096): string | undefined {
  if (key.backspace || key.delete) return Array.from(value).slice(0, -1).join('');
  if (key.ctrl && input === 'u') return '';
  if (key.ctrl || key.meta || key.escape || key.return || key.tab) return undefined;
  if (key.upArrow || key.downArrow || key.leftArrow || key.rightArrow || key.pageUp || key.pageDown) return undefined;
  if (input === '') return undefined;
  const typed = input.replace(/[\r\n]+/g, ' ');
  return Array.from(value + typed)
    .slice(0, max)
    .join('');
}
