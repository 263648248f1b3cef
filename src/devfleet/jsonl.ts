import { appendFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';

/**
 * devfleet's own JSON Lines records (the command log, the call log): one object a line, appended
 * synchronously, so a line is on disk before anyone can observe what it records.
 */
export function appendJsonLine(file: string, value: unknown): void {
  appendFileSync(file, JSON.stringify(value) + '\n', { mode: 0o600 });
}

/**
 * Every line of `file` that fits `schema`, in order; none when the file does not exist. Only the
 * last line can be torn (a crash mid-append) and is skipped; any other misfit is corruption worth a
 * loud error naming `what` and the line.
 */
export async function readJsonLines<S extends z.ZodType>(file: string, schema: S, what: string): Promise<z.infer<S>[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const lines = text.split('\n');
  const out: z.infer<S>[] = [];
  lines.forEach((raw, i) => {
    if (raw.trim() === '') return;
    try {
      out.push(schema.parse(JSON.parse(raw)));
    } catch (e) {
      if (i >= lines.length - 2) return;
      throw new Error(`${what} line ${i + 1} is not valid: ${(e as Error).message}`, { cause: e });
    }
  });
  return out;
}
