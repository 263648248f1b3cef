import { Text } from 'ink';
import { tone, type Tone } from './theme.ts';

/** `[█████·····] 2/4`: a bar over a step's instances; readable without colour. */
export function ProgressBar({
  done,
  total,
  width = 10,
  look = 'info',
}: {
  readonly done: number;
  readonly total: number;
  readonly width?: number;
  readonly look?: Tone;
}) {
  const filled = total === 0 ? 0 : Math.round((Math.min(done, total) / total) * width);
  return (
    <Text>
      [<Text color={tone(look)}>{'█'.repeat(filled)}</Text>
      <Text color={tone('dim')}>{'·'.repeat(width - filled)}</Text>] {done}/{total}
    </Text>
  );
}
