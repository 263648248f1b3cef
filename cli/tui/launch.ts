import type { RunbookInfo } from './types.ts';

/** Marks a runbook the server says this user may not launch: a glyph, so it reads without colour too. */
export const LOCKED = '⊘';

/**
 * The server's reason this user may not launch `runbook` (the sentence a launch would be refused
 * with), or undefined when it may, or when the server does not say (the launch then decides).
 */
export function launchRefusal(runbook: RunbookInfo): string | undefined {
  const launch = runbook.launch;
  return launch && !launch.allowed ? launch.reason : undefined;
}
