import { Box, Text } from 'ink';
import { KEYMAP, type ScreenName } from './keys.ts';
import { tone } from './theme.ts';

/** One line: the keys of the screen in front. Cut to the width, never wrapped. */
export function Footer({ screen, width }: { readonly screen: ScreenName; readonly width: number }) {
  const text = KEYMAP[screen].map((k) => `${k.keys} ${k.does}`).join('  ');
  return (
    <Box height={1} width={width} overflow="hidden">
      <Text color={tone('dim')} wrap="truncate-end">
        {text}
      </Text>
    </Box>
  );
}
