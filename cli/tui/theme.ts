/**
 * Colours, only ever as a second signal: every state also has a word or a glyph, so the screen
 * reads the same with NO_COLOR (no-color.org), which turns every colour off.
 */
import type { ExecutionStatus } from '../../src/core/execution.ts';

export type Tone = 'good' | 'bad' | 'warn' | 'info' | 'dim' | 'accent';

const COLORS: Record<Tone, string> = {
  good: 'green',
  bad: 'red',
  warn: 'yellow',
  info: 'cyan',
  dim: 'gray',
  accent: 'magenta',
};

/** True when NO_COLOR is set to anything but the empty string. */
export function noColor(env: NodeJS.ProcessEnv = process.env): boolean {
  return env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '';
}

/** The colour prop for a tone; with NO_COLOR the empty string, which ink draws without colour. */
export function tone(t: Tone): string {
  return noColor() ? '' : COLORS[t];
}

export const STATUS_LOOK: Record<ExecutionStatus, { glyph: string; tone: Tone; label: string }> = {
  awaiting_approval: { glyph: '…', tone: 'warn', label: 'awaiting approval' },
  running: { glyph: '▶', tone: 'info', label: 'running' },
  completed: { glyph: '✓', tone: 'good', label: 'completed' },
  failed: { glyph: '✗', tone: 'bad', label: 'failed' },
  expired: { glyph: '⌛', tone: 'dim', label: 'expired' },
  cancelled: { glyph: '■', tone: 'dim', label: 'cancelled' },
  rejected: { glyph: '✗', tone: 'bad', label: 'rejected' },
};

export type StepStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'skipped';
export const STEP_LOOK: Record<StepStatus, { glyph: string; tone: Tone }> = {
  pending: { glyph: '·', tone: 'dim' },
  running: { glyph: '▶', tone: 'info' },
  succeeded: { glyph: '✓', tone: 'good' },
  failed: { glyph: '✗', tone: 'bad' },
  cancelled: { glyph: '■', tone: 'dim' },
  skipped: { glyph: '-', tone: 'dim' },
};

/** SSM per-instance statuses. */
export function instanceTone(status: string): Tone {
  if (status === 'Success') return 'good';
  if (status === 'Failed' || status === 'TimedOut') return 'bad';
  if (status === 'Cancelled' || status === 'Cancelling') return 'dim';
  return 'info';
}
