import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { appendJsonLine, readJsonLines } from './jsonl.ts';

/**
 * The record of every invocation devfleet actually began executing, so tests can prove that a
 * command ran exactly once per instance. It is a JSON Lines file in the data folder with three kinds
 * of line: `start` when an invocation goes InProgress (written before the script is spawned),
 * `spawn` with the script's process id (so a devfleet restarted after a crash can stop what the
 * crash left running), and `finish` when it reaches a final status. readCommandLog folds them into
 * one entry per start.
 *
 * Invocations that never start (offline instance, delivery timeout, cancelled while pending, access
 * denied, undeliverable) have no entry. An instance with the failAlways fault does get one: the
 * invocation was delivered and "ran", the fault replaced the script.
 */

export interface CommandLogEntry {
  commandId: string;
  instanceId: string;
  comment: string;
  documentName: string;
  commands: string[];
  startedAt: string;
  finishedAt?: string;
  responseCode?: number;
  status: string;
}

export const COMMAND_LOG_FILE = 'command-log.jsonl';

const StartLineSchema = z.object({
  type: z.literal('start'),
  commandId: z.string(),
  instanceId: z.string(),
  comment: z.string(),
  documentName: z.string(),
  commands: z.array(z.string()),
  startedAt: z.string(),
});
const FinishLineSchema = z.object({
  type: z.literal('finish'),
  commandId: z.string(),
  instanceId: z.string(),
  finishedAt: z.string(),
  responseCode: z.number(),
  status: z.string(),
});
const SpawnLineSchema = z.object({
  type: z.literal('spawn'),
  commandId: z.string(),
  instanceId: z.string(),
  pid: z.number().int(),
});
const LineSchema = z.discriminatedUnion('type', [StartLineSchema, SpawnLineSchema, FinishLineSchema]);

type StartLine = z.infer<typeof StartLineSchema>;
type SpawnLine = z.infer<typeof SpawnLineSchema>;
type FinishLine = z.infer<typeof FinishLineSchema>;

/**
 * Appends one line. Synchronous on purpose: the start line must be on disk before the script runs
 * and before anyone can observe the invocation as InProgress, or a crash could hide a real run.
 */
export function appendCommandLog(dataDir: string, line: StartLine | SpawnLine | FinishLine): void {
  appendJsonLine(join(dataDir, COMMAND_LOG_FILE), line);
}

/** One entry per started invocation, in start order, with its final status once it finished. */
export async function readCommandLog(dataDir: string): Promise<CommandLogEntry[]> {
  const lines = await readJsonLines(join(dataDir, COMMAND_LOG_FILE), LineSchema, 'devfleet command log');
  const entries: CommandLogEntry[] = [];
  const byKey = new Map<string, CommandLogEntry>();
  for (const parsed of lines) {
    const key = `${parsed.commandId}/${parsed.instanceId}`;
    if (parsed.type === 'spawn') continue;
    if (parsed.type === 'start') {
      const { type: _type, ...rest } = parsed;
      const entry: CommandLogEntry = { ...rest, status: 'InProgress' };
      entries.push(entry);
      byKey.set(key, entry);
    } else {
      const entry = byKey.get(key);
      if (!entry) continue;
      entry.finishedAt = parsed.finishedAt;
      entry.responseCode = parsed.responseCode;
      entry.status = parsed.status;
    }
  }
  return entries;
}

/** The process ids recorded by `spawn` lines, by `commandId/instanceId` (the last one wins). */
export async function readSpawnedPids(dataDir: string): Promise<Map<string, number>> {
  const pids = new Map<string, number>();
  let text: string;
  try {
    text = await readFile(join(dataDir, COMMAND_LOG_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return pids;
    throw e;
  }
  for (const raw of text.split('\n')) {
    if (!raw.includes('"spawn"')) continue;
    const r = SpawnLineSchema.safeParse(safeJson(raw));
    if (r.success) pids.set(`${r.data.commandId}/${r.data.instanceId}`, r.data.pid);
  }
  return pids;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined; // A torn line is simply not a pid record.
  }
}
