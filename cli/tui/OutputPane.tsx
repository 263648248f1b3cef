import { Box, Text } from 'ink';
import { Scroller } from './Scroller.tsx';
import type { PlanLine } from './plan-lines.ts';
import { truncationNote } from '../../src/core/ssm-output.ts';
import { inertLines } from './text.ts';

export interface InstanceOutput {
  readonly step: string;
  readonly instance: string;
  readonly status: string;
  readonly responseCode: number;
  readonly stdout: string;
  readonly stderr: string;
  /** The streams SSM cut at its limit, when it did. */
  readonly truncatedBySsm?: readonly ('stdout' | 'stderr')[];
}

/** An instance's output as lines: stdout, then stderr if any, every control character neutralised. */
export function outputLines(output: InstanceOutput): PlanLine[] {
  const out: PlanLine[] = [{ text: 'stdout', style: 'title' }];
  out.push(
    ...(output.stdout
      ? inertLines(output.stdout).map((text) => ({ text }))
      : [{ text: '(empty)', style: 'dim' as const }]),
  );
  if (output.truncatedBySsm?.includes('stdout')) out.push({ text: truncationNote('stdout'), style: 'dim' });
  if (output.stderr)
    out.push({ text: 'stderr', style: 'title' }, ...inertLines(output.stderr).map((text) => ({ text })));
  if (output.truncatedBySsm?.includes('stderr')) out.push({ text: truncationNote('stderr'), style: 'dim' });
  return out;
}

/** How many rows of output the pane shows at `height` (its title takes one). */
export function outputPaneRows(height: number): number {
  return Math.max(2, height - 1);
}

/**
 * One instance's output of one step, scrolled to `top`. It has no keys of its own: the run view
 * owns the keyboard and scrolls or closes it, so one key press is never seen by both.
 */
export function OutputPane({
  output,
  lines,
  top,
  width,
  height,
}: {
  readonly output: InstanceOutput;
  readonly lines: readonly PlanLine[];
  readonly top: number;
  readonly width: number;
  readonly height: number;
}) {
  return (
    <Box flexDirection="column" width={width} height={height}>
      <Text bold wrap="truncate-end">
        Output of {output.step} on {output.instance}: {output.status} (exit {output.responseCode})
      </Text>
      <Scroller lines={lines} top={top} height={outputPaneRows(height)} width={width} />
    </Box>
  );
}
