import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { UserError } from '../core/errors.ts';

/**
 * devfleet's durable state: role sessions, commands and their invocations, kept in memory and
 * written to one JSON file in the data folder. Writes go to a temporary file that is fsynced and
 * renamed over the old one, so a crash leaves either the old or the new state, never half of one.
 */

export const SessionSchema = z.strictObject({
  accessKeyId: z.string(),
  secretAccessKey: z.string(),
  sessionToken: z.string(),
  roleArn: z.string(),
  roleSessionName: z.string(),
  assumedRoleId: z.string(),
  /** The principal that called AssumeRole (for GetCallerIdentity chains and the record). */
  issuedTo: z.string(),
  issuedAtMs: z.number(),
  expiresAtMs: z.number(),
  /** The session policy as sent, when there was one. */
  policy: z.string().optional(),
  tags: z.array(z.strictObject({ key: z.string(), value: z.string() })),
  sourceIdentity: z.string().optional(),
});
export type Session = z.infer<typeof SessionSchema>;

export const CommandStatusSchema = z.enum([
  'Pending',
  'InProgress',
  'Success',
  'Cancelled',
  'Failed',
  'TimedOut',
  'Cancelling',
]);
export type CommandStatus = z.infer<typeof CommandStatusSchema>;
export const InvocationStatusSchema = z.enum([
  'Pending',
  'InProgress',
  'Delayed',
  'Success',
  'Cancelled',
  'Failed',
  'TimedOut',
  'Cancelling',
]);
export type InvocationStatus = z.infer<typeof InvocationStatusSchema>;

export const CommandSchema = z.strictObject({
  commandId: z.string(),
  /** Insertion order; newest-first listings and paging cursors use it, not wall-clock time. */
  seq: z.number().int(),
  documentName: z.string(),
  documentVersion: z.string(),
  comment: z.string(),
  parameters: z.record(z.string(), z.array(z.string())),
  instanceIds: z.array(z.string()),
  targets: z.array(z.strictObject({ Key: z.string(), Values: z.array(z.string()) })),
  requestedAtMs: z.number(),
  timeoutSeconds: z.number(),
  executionTimeoutSeconds: z.number(),
  maxConcurrency: z.string(),
  maxErrors: z.string(),
  status: CommandStatusSchema,
  statusDetails: z.string(),
  cancelRequested: z.boolean(),
  /** True once more invocations failed than MaxErrors allows; the rest are not started. */
  halted: z.boolean(),
  requestedBy: z.string(),
  outputS3BucketName: z.string().optional(),
  outputS3KeyPrefix: z.string().optional(),
  serviceRoleArn: z.string().optional(),
});
export type CommandRecord = z.infer<typeof CommandSchema>;

export const InvocationSchema = z.strictObject({
  commandId: z.string(),
  instanceId: z.string(),
  instanceName: z.string(),
  /** Position in the command's target list: the dispatch order. */
  index: z.number().int(),
  status: InvocationStatusSchema,
  statusDetails: z.string(),
  responseCode: z.number().int(),
  startedAtMs: z.number().optional(),
  finishedAtMs: z.number().optional(),
  stdout: z.string(),
  stderr: z.string(),
  /** Process group of the running script, so a restart can stop what a crash left behind. */
  pid: z.number().int().optional(),
});
export type InvocationRecord = z.infer<typeof InvocationSchema>;

/**
 * One Parameter Store parameter, at its latest version. A SecureString's value is kept as it was
 * put (devfleet has no KMS): the state file is the owner's alone (0600), like the session secrets.
 */
export const ParameterRecordSchema = z.strictObject({
  name: z.string(),
  type: z.enum(['String', 'StringList', 'SecureString']),
  value: z.string(),
  version: z.number().int().positive(),
  lastModifiedMs: z.number(),
  /** Who put it last (an ARN), or "devfleet fleet file" for a seeded one. */
  lastModifiedUser: z.string(),
  description: z.string().optional(),
});
export type ParameterRecord = z.infer<typeof ParameterRecordSchema>;

const StateFileSchema = z.strictObject({
  version: z.literal(1),
  nextSeq: z.number().int(),
  sessions: z.array(SessionSchema),
  commands: z.array(CommandSchema),
  invocations: z.array(InvocationSchema),
  /** Absent in state files written before devfleet had a Parameter Store. */
  parameters: z.array(ParameterRecordSchema).optional(),
});
type StateFile = z.infer<typeof StateFileSchema>;

export const invocationKey = (commandId: string, instanceId: string): string => `${commandId}/${instanceId}`;

export class StateStore {
  readonly sessions = new Map<string, Session>();
  readonly commands = new Map<string, CommandRecord>();
  readonly invocations = new Map<string, InvocationRecord>();
  /** Parameter Store, by name. */
  readonly parameters = new Map<string, ParameterRecord>();
  /** Invocations per command, in target order: listings and the scheduler read this, not a scan. */
  private readonly byCommand = new Map<string, InvocationRecord[]>();
  nextSeq = 1;

  private dirty = false;
  private writing: Promise<void> | undefined;
  private failure: Error | undefined;
  private closed = false;
  /** Changes made so far, and how many of them are on disk: flush() waits for its own, not for quiet. */
  private changes = 0;
  private written = 0;
  private waiters: { upTo: number; resolve: () => void; reject: (e: Error) => void }[] = [];

  private constructor(private readonly file: string) {}

  static async open(dataDir: string): Promise<StateStore> {
    await mkdir(dataDir, { recursive: true });
    const store = new StateStore(join(dataDir, 'state.json'));
    let text: string | undefined;
    try {
      text = await readFile(store.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (text !== undefined) {
      let parsed: StateFile;
      try {
        parsed = StateFileSchema.parse(JSON.parse(text));
      } catch (e) {
        throw new UserError(
          'CONFIG_INVALID',
          `devfleet state file ${store.file} is unreadable (${(e as Error).message.split('\n')[0]}); move it away to start with an empty fleet history.`,
          { cause: e },
        );
      }
      store.nextSeq = parsed.nextSeq;
      for (const s of parsed.sessions) store.sessions.set(s.accessKeyId, s);
      for (const c of parsed.commands) store.commands.set(c.commandId, c);
      for (const i of parsed.invocations) store.addInvocation(i);
      for (const p of parsed.parameters ?? []) store.parameters.set(p.name, p);
    }
    return store;
  }

  addInvocation(inv: InvocationRecord): void {
    this.invocations.set(invocationKey(inv.commandId, inv.instanceId), inv);
    let list = this.byCommand.get(inv.commandId);
    if (!list) {
      list = [];
      this.byCommand.set(inv.commandId, list);
    }
    list.push(inv);
    // Invocations arrive in target order; sorting on every add would cost n² on a command to thousands.
    const before = list[list.length - 2];
    if (before !== undefined && before.index > inv.index) list.sort((a, b) => a.index - b.index);
  }

  /** The command's invocations in target order (the same array each time; do not mutate it). */
  invocationsOf(commandId: string): readonly InvocationRecord[] {
    return this.byCommand.get(commandId) ?? [];
  }

  /** Forgets a command and its invocations (history is kept 30 days, as in SSM). */
  removeCommand(commandId: string): void {
    this.commands.delete(commandId);
    for (const inv of this.byCommand.get(commandId) ?? [])
      this.invocations.delete(invocationKey(inv.commandId, inv.instanceId));
    this.byCommand.delete(commandId);
  }

  /** True once close() has run: changes are no longer written. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Writes what is pending and ignores every later change (the process is handing the folder over). */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }

  /** Marks the state changed; a write follows soon, coalescing bursts of changes into one write. */
  markDirty(): void {
    if (this.closed) return;
    this.changes++;
    this.dirty = true;
    if (!this.writing) this.writing = this.writeLoop();
  }

  /**
   * Resolves once everything changed so far is on disk. It waits for the write that covers the
   * changes made before the call, not for the state to stop changing: on a busy fleet (thousands
   * of invocations finishing) the state never stops changing, and an invocation waiting to start
   * must not wait for quiet.
   */
  async flush(): Promise<void> {
    if (this.failure !== undefined) {
      const e = this.failure;
      this.failure = undefined;
      throw e;
    }
    const upTo = this.changes;
    if (this.written >= upTo) return;
    if (!this.writing) {
      // Only after a failed write: what it missed is written again.
      this.dirty = true;
      this.writing = this.writeLoop();
    }
    await new Promise<void>((resolve, reject) => this.waiters.push({ upTo, resolve, reject }));
  }

  private async writeLoop(): Promise<void> {
    try {
      // Yield once so that changes made in the same tick land in the same write.
      await new Promise<void>((resolve) => setImmediate(resolve));
      while (this.dirty) {
        this.dirty = false;
        const upTo = this.changes;
        await this.writeOnce();
        this.written = upTo;
        const done = this.waiters.filter((w) => w.upTo <= upTo);
        this.waiters = this.waiters.filter((w) => w.upTo > upTo);
        for (const w of done) w.resolve();
      }
    } catch (e) {
      const failure = e instanceof Error ? e : new Error(`state write failed: ${JSON.stringify(e)}`);
      const waiting = this.waiters;
      this.waiters = [];
      // Whoever waits learns of it; with nobody waiting, the next flush() does.
      if (waiting.length === 0) this.failure = failure;
      for (const w of waiting) w.reject(failure);
    } finally {
      this.writing = undefined;
    }
  }

  private async writeOnce(): Promise<void> {
    const snapshot: StateFile = {
      version: 1,
      nextSeq: this.nextSeq,
      sessions: [...this.sessions.values()],
      commands: [...this.commands.values()],
      invocations: [...this.invocations.values()],
      ...(this.parameters.size > 0 ? { parameters: [...this.parameters.values()] } : {}),
    };
    const tmp = `${this.file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    // 0600: the file holds session secrets, even if only devfleet's own.
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(snapshot));
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, this.file);
    } catch (e) {
      // Best effort: the rename error below is the one worth reporting.
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
  }
}
