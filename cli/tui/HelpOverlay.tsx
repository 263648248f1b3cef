import { Box, Text } from 'ink';
import { GLOBAL_KEYS, KEYMAP, SCREEN_TITLES, type ScreenName } from './keys.ts';
import { tone } from './theme.ts';
import { fit } from './text.ts';

const ORDER: readonly ScreenName[] = ['catalog', 'runs', 'inbox', 'form', 'plan', 'run', 'output'];

interface Line {
  readonly title?: string;
  readonly keys?: string;
  readonly does?: string;
}

/**
 * Every key of every screen, from the same table as the footer, the screen in front first. Laid
 * out in as many columns as the terminal needs, so it fits 80×24. Any key closes it.
 */
export function HelpOverlay({
  width,
  height,
  screen,
}: {
  readonly width: number;
  readonly height: number;
  readonly screen: ScreenName;
}) {
  const lines: Line[] = [{ title: 'Everywhere' }, ...GLOBAL_KEYS];
  for (const s of [screen, ...ORDER.filter((o) => o !== screen)]) {
    if (!ORDER.includes(s)) continue;
    lines.push({ title: SCREEN_TITLES[s] }, ...KEYMAP[s]);
  }
  const rows = Math.max(4, height - 3);
  const columns: Line[][] = [];
  for (let i = 0; i < lines.length; i += rows) columns.push(lines.slice(i, i + rows));
  const columnWidth = Math.max(16, Math.floor((width - 4) / columns.length));
  const keyWidth = Math.min(12, Math.floor(columnWidth / 2.5));
  return (
    <Box flexDirection="column" width={width} height={height} borderStyle="round" paddingX={1} overflow="hidden">
      <Text bold>Help — press any key to close</Text>
      <Box flexDirection="row">
        {columns.map((col, c) => (
          <Box key={c} flexDirection="column" width={columnWidth}>
            {col.map((l, i) =>
              l.title ? (
                <Text key={i} bold color={tone('accent')}>
                  {fit(l.title, columnWidth - 1)}
                </Text>
              ) : (
                <Text key={i}>{fit(`${(l.keys ?? '').padEnd(keyWidth)} ${l.does ?? ''}`, columnWidth - 1)}</Text>
              ),
            )}
          </Box>
        ))}
      </Box>
    </Box>
  );
}
