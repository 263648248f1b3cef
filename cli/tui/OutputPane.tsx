import { useMemo } from 'react';
import { Box, Text, useInput } from 'ink';
import { Scroller, scrollKey } from './Scroller.tsx';
import { useLatest } from './use-latest.ts';
import type { PlanLine } from './plan-lines.ts';
import { inertLines } from './text.ts';

export interface InstanceOutput {
  readonly step: string;
  readonly instance: string;
  readonly status: string;
  readonly responseCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** One instance's output of one step, scrollable, every control character neutralised. */
export function OutputPane({
  output,
  width,
  height,
  active,
  onClose,
}: {
  readonly output: InstanceOutput;
  readonly width: number;
  readonly height: number;
  readonly active: boolean;
  readonly onClose: () => void;
}) {
  const lines = useMemo((): PlanLine[] => {
    const out: PlanLine[] = [{ text: 'stdout', style: 'title' }];
    out.push(
      ...(output.stdout
        ? inertLines(output.stdout).map((text) => ({ text }))
        : [{ text: '(empty)', style: 'dim' as const }]),
    );
    if (output.stderr)
      out.push({ text: 'stderr', style: 'title' }, ...inertLines(output.stderr).map((text) => ({ text })));
    return out;
  }, [output]);
  const [top, getTop, setTop] = useLatest(0);
  const paneHeight = Math.max(2, height - 1);
  useInput(
    (input, key) => {
      if (key.escape || input === 'q' || key.return) return onClose();
      const next = scrollKey(getTop(), lines.length, paneHeight, input, key);
      if (next !== undefined) setTop(next);
    },
    { isActive: active },
  );
  return (
    <Box flexDirection="column" width={width} height={height}>
      <Text bold wrap="truncate-end">
        Output of {output.step} on {output.instance}: {output.status} (exit {output.responseCode})
      </Text>
      <Scroller lines={lines} top={top} height={paneHeight} width={width} />
    </Box>
  );
}
