import { join } from 'node:path';
import { z } from 'zod';
import { appendJsonLine, readJsonLines } from './jsonl.ts';

/**
 * The record of every call devfleet answered, when the fleet config asks for it (`callLog: true`):
 * which service and operation, signed with which key, when that key expires, and how the call
 * ended. Tests read it to prove what a client did over a long run — e.g. that every SSM call was
 * made with a key that had not expired, and that no AssumeRole asked for more than an hour. It holds
 * key ids, never secrets. JSON Lines in the data folder.
 */

export const CALL_LOG_FILE = 'calls.jsonl';

export const CallLogEntrySchema = z.object({
  at: z.string(),
  service: z.enum(['sts', 'ssm', 'container-credentials']),
  operation: z.string(),
  /** The signing key, once the request named one. */
  accessKeyId: z.string().optional(),
  /** The signing session's expiry (absent for long-term keys). */
  keyExpiresAt: z.string().optional(),
  /** What AssumeRole asked for, as sent (absent: STS's default). */
  durationSeconds: z.string().optional(),
  /** 'ok', or the error code the caller got. */
  outcome: z.string(),
});
export type CallLogEntry = z.infer<typeof CallLogEntrySchema>;

/** Appends one line; synchronous, so the line is there before the answer reaches the caller. */
export function appendCallLog(dataDir: string, entry: CallLogEntry): void {
  appendJsonLine(join(dataDir, CALL_LOG_FILE), entry);
}

/** Every call logged so far, in the order devfleet answered them (a torn last line is skipped). */
export function readCallLog(dataDir: string): Promise<CallLogEntry[]> {
  return readJsonLines(join(dataDir, CALL_LOG_FILE), CallLogEntrySchema, 'devfleet call log');
}
