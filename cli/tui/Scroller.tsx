import { Box, Text } from 'ink';
import { tone } from './theme.ts';
import type { PlanLine } from './plan-lines.ts';

/** A window of `height` lines from `lines`, starting at `top`, with a position marker. */
export function Scroller({
  lines,
  top,
  height,
  width,
}: {
  readonly lines: readonly PlanLine[];
  readonly top: number;
  readonly height: number;
  readonly width: number;
}) {
  const rows = Math.max(1, height - 1);
  const start = clampTop(top, lines.length, height);
  const end = Math.min(lines.length, start + rows);
  return (
    <Box flexDirection="column" width={width} height={height} overflow="hidden">
      {lines.slice(start, end).map((l, i) => (
        <Text
          key={start + i}
          wrap="truncate-end"
          bold={l.style === 'title'}
          {...(l.style === 'dim' || l.style === 'code' ? { color: tone('dim') } : {})}
        >
          {l.text === '' ? ' ' : l.text}
        </Text>
      ))}
      <Text color={tone('dim')}>{lines.length > rows ? `lines ${start + 1}–${end} of ${lines.length}` : ''}</Text>
    </Box>
  );
}

/** The first line shown, kept so the last page is full. */
export function clampTop(top: number, total: number, height: number): number {
  return Math.max(0, Math.min(top, total - Math.max(1, height - 1)));
}

/** Scroll keys shared by every scrolling pane. Returns the new top, or undefined if not a scroll key. */
export function scrollKey(
  top: number,
  total: number,
  height: number,
  input: string,
  key: { upArrow: boolean; downArrow: boolean; pageUp: boolean; pageDown: boolean },
): number | undefined {
  const page = Math.max(1, height - 2);
  let next: number | undefined;
  if (key.upArrow || input === 'k') next = top - 1;
  else if (key.downArrow || input === 'j') next = top + 1;
  else if (key.pageUp || input === 'b') next = top - page;
  else if (key.pageDown || input === ' ') next = top + page;
  else if (input === 'g') next = 0;
  else if (input === 'G') next = total;
  return next === undefined ? undefined : clampTop(next, total, height);
}
