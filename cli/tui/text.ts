/**
 * How the TUI shows text. Everything a person stored (reasons, comments, parameters, output) is
 * passed through the core's `neutralize` before it reaches the screen, so it cannot move the
 * cursor, recolour or reorder what the reader sees (DESIGN: "Text from people is shown inert").
 */
import { neutralize } from '../../src/core/text.ts';

/** One line of stored text, inert. */
export function inert(text: string): string {
  return neutralize(text);
}

/** Multi-line stored text (command output), inert, split into lines. */
export function inertLines(text: string): string[] {
  const clean = neutralize(text, { multiline: true }).replace(/\t/g, '  ');
  const lines = clean.split('\n');
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Cut to `width` columns with an ellipsis (the TUI's text is neutralised, so one char is one cell or two). */
export function fit(text: string, width: number): string {
  if (width <= 0) return '';
  const chars = Array.from(text);
  return chars.length <= width ? text : `${chars.slice(0, Math.max(0, width - 1)).join('')}…`;
}

/** 75 → "1m15s", 3 → "3s", 3720 → "1h02m". */
export function duration(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** "2026-11-30T05:01:02.000Z" → "05:01:02" today, else "11-29 05:01". */
export function shortTime(iso: string, now: Date = new Date()): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '?';
  const hms = d.toISOString().slice(11, 19);
  return d.toISOString().slice(0, 10) === now.toISOString().slice(0, 10)
    ? hms
    : `${d.toISOString().slice(5, 10)} ${hms.slice(0, 5)}`;
}
