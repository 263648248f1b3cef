import type { ErrorCode } from '../src/core/errors.ts';
import { isMechanicError } from '../src/core/errors.ts';
import { neutralize } from '../src/core/text.ts';

/** The only place that writes to stdout and stderr for the plain commands. */
export const out = {
  line(text = ''): void {
    process.stdout.write(`${text}\n`);
  },
  json(value: unknown): void {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  },
  info(text: string): void {
    process.stderr.write(`${text}\n`);
  },
};

/** Exit codes: 2 for a wrong command line, 3 when a needed service is down, 1 for everything refused. */
const EXIT: Partial<Record<ErrorCode, number>> = {
  USAGE: 2,
  TEMPORAL_UNAVAILABLE: 3,
  TEMPORAL_CLI_UNAVAILABLE: 3,
  SERVER_UNAVAILABLE: 3,
};

/**
 * Reports a failure as one sentence and returns the exit code. A domain error is the user's to
 * fix, so it never shows a stack; anything else is a bug, so its stack goes to stderr too.
 */
export function reportFailure(e: unknown, json: boolean): number {
  if (isMechanicError(e)) {
    if (json) process.stdout.write(`${JSON.stringify({ error: { code: e.code, message: e.message } })}\n`);
    // Server sentences can quote what other people typed (file names, ids): shown inert.
    process.stderr.write(`mechanic: ${neutralize(e.message, { multiline: true })}\n`);
    return EXIT[e.code] ?? 1;
  }
  process.stderr.write(
    `mechanic: unexpected internal error — please report it:\n${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
  );
  return 70;
}
