import { Box, Text } from 'ink';
import { GLOBAL_KEYS, KEYMAP, SCREEN_TITLES, type ScreenName } from './keys.ts';
import { COMPILED } from './build-info.ts';
import type { PlanLine } from './plan-lines.ts';
import { Scroller } from './Scroller.tsx';

const ORDER: readonly ScreenName[] = ['catalog', 'runs', 'inbox', 'form', 'plan', 'run', 'output'];
/** Wide enough for the longest key ("↑↓ PgUp PgDn"), so every description starts in one column. */
const KEY_WIDTH = 14;

/**
 * Every key of every screen, from the same table as the footer, the screen in front first. One
 * line per key, never cut: the longest fits 80 columns; what does not fit the height scrolls.
 */
export function helpLines(screen: ScreenName): PlanLine[] {
  const lines: PlanLine[] = [
    {
      text: COMPILED
        ? 'Running the compiled TUI from your cache (rebuilt when sources change).'
        : 'Running from the sources via tsx (the compiled cache was missing or stale).',
      style: 'dim',
    },
    { text: '' },
    { text: 'Everywhere', style: 'title' },
  ];
  const add = (keys: readonly { keys: string; does: string }[]) => {
    for (const k of keys) lines.push({ text: `  ${k.keys.padEnd(KEY_WIDTH)} ${k.does}` });
  };
  add(GLOBAL_KEYS);
  for (const s of [screen, ...ORDER.filter((o) => o !== screen)]) {
    if (!ORDER.includes(s)) continue;
    lines.push({ text: '' }, { text: SCREEN_TITLES[s], style: 'title' });
    add(KEYMAP[s]);
  }
  return lines;
}

/** Rows of help lines the overlay shows at `height` (its border and title take four). */
export function helpRows(height: number): number {
  return Math.max(2, height - 3);
}

/** The help overlay, scrolled to `top` (the app owns its keys: ↑↓ scroll, any other key closes). */
export function HelpOverlay({
  width,
  height,
  screen,
  top,
}: {
  readonly width: number;
  readonly height: number;
  readonly screen: ScreenName;
  readonly top: number;
}) {
  return (
    <Box flexDirection="column" width={width} height={height} borderStyle="round" paddingX={1} overflow="hidden">
      <Text bold wrap="truncate-end">
        Help — ↑↓ PgUp PgDn scroll · any other key closes
      </Text>
      <Scroller lines={helpLines(screen)} top={top} height={helpRows(height)} width={width - 4} />
    </Box>
  );
}
