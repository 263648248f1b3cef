import { appendFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';

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
  appendFileSync(join(dataDir, CALL_LOG_FILE), JSON.stringify(entry) + '\n', { mode: 0o600 });
}

/** Every call logged so far, in the order devfleet answered them (a torn last line is skipped). */
export async function readCallLog(dataDir: string): Promise<CallLogEntry[]> {
  let text: string;
  try {
    text = await readFile(join(dataDir, CALL_LOG_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return lines.flatMap((line, i) => {
    try {
      return [CallLogEntrySchema.parse(JSON.parse(line))];
    } catch (e) {
      if (i === lines.length - 1) return [];
      throw new Error(`devfleet call log line ${i + 1} is not valid: ${(e as Error).message}`, { cause: e });
    }
  });
}
