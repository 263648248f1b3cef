import { Box, Text } from 'ink';
import { tone } from './theme.ts';
import type { Problem } from './errors.ts';

/** A fault shown in place: what happened and what to do next. The screen stays usable. */
export function Notice({ problem, width }: { readonly problem: Problem | undefined; readonly width: number }) {
  if (!problem) return null;
  return (
    <Box width={width} flexDirection="column">
      <Text color={tone(problem.tone === 'info' ? 'info' : 'bad')} wrap="wrap">
        {problem.tone === 'info' ? 'ℹ ' : '✗ '}
        {problem.message}
      </Text>
      {problem.next ? <Text color={tone('dim')}>→ {problem.next}</Text> : null}
    </Box>
  );
}
