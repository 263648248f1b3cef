import { Box, Text } from 'ink';
import { tone } from './theme.ts';
import { inert } from './text.ts';

/** A one-line question with a text answer, drawn in a box; the owner handles its keys. */
export function TextDialog({
  title,
  label,
  value,
  problem,
  hint,
  width,
}: {
  readonly title: string;
  readonly label: string;
  readonly value: string;
  readonly problem: string | undefined;
  readonly hint: string;
  readonly width: number;
}) {
  return (
    <Box flexDirection="column" borderStyle="double" paddingX={1} width={width}>
      <Text bold wrap="wrap">
        {title}
      </Text>
      <Text wrap="truncate-start">
        {label}: <Text inverse>{inert(value) || ' '}</Text>▏
      </Text>
      {problem ? (
        <Text color={tone('bad')} wrap="wrap">
          ✗ {inert(problem)}
        </Text>
      ) : null}
      <Text color={tone('dim')}>{hint}</Text>
    </Box>
  );
}
