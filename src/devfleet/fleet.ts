import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';
import { appendCommandLog, readSpawnedPids } from './command-log.ts';
import { expandLightInstances, type FleetConfig, type FleetInstance, type LightSpec } from './config.ts';
import type { CommandRecord, CommandStatus, InvocationRecord, InvocationStatus, StateStore } from './state.ts';
import { AwsError } from './wire.ts';

/** Stand-ins for the system tools runbooks drive (README: "What the instances have"). */
const SHIMS_DIR = fileURLToPath(new URL('./shims', import.meta.url));

/**
 * The fleet engine: commands, their per-instance invocations, and the bash processes that stand
 * in for the SSM agent. It owns every status transition, so the rules live in one place:
 *
 *   Pending ──deliver──▶ InProgress ──exit 0──▶ Success
 *    │ ▲ │                   ├─exit ≠ 0──────▶ Failed / Failed
 *    │ │ │                   ├─executionTimeout▶ TimedOut / ExecutionTimedOut
 *    ▼ │ │                   └─CancelCommand──▶ Cancelling ─▶ Cancelled
 *  Delayed (delivery failed, SSM retries; fault delayedMs)
 *      ├─TimeoutSeconds passes before delivery ─▶ TimedOut / DeliveryTimedOut
 *      ├─the node cannot be reached (fault undeliverable) ─▶ Failed / Undeliverable
 *      ├─CancelCommand ─▶ Cancelled
 *      └─MaxErrors exceeded ─▶ Cancelled / Terminated
 *   Born final at SendCommand (tag targets): Failed / AccessDenied, Undeliverable, InvalidPlatform.
 *
 * Rate control: at most MaxConcurrency invocations of a command are in flight (dispatched and not
 * finished) at once, in target order. AWS ramps up exponentially to that level; devfleet starts at
 * it. Pending invocations of an offline instance hold their slot until their delivery timeout.
 * MaxErrors: once more invocations ended Failed or ExecutionTimedOut than MaxErrors allows (a
 * number, or a percentage of the target count rounded down), the invocations not yet started are
 * cancelled with StatusDetails Terminated; running ones finish.
 *
 * Delivery comes first and writes the command log line before anything runs (at most once: after a
 * crash, an invocation that was starting is reported Failed rather than run a second time).
 */

export const PLUGIN_NAME = 'aws:runShellScript';
export const STDOUT_LIMIT = 24_000;
export const STDERR_LIMIT = 8_000;
export const PLUGIN_OUTPUT_LIMIT = 2_500;
/** How long a cancelled or timed-out script gets after SIGTERM before SIGKILL. */
const KILL_GRACE_MS = 2_000;

const TERMINAL: ReadonlySet<InvocationStatus> = new Set(['Success', 'Cancelled', 'Failed', 'TimedOut']);
export const isTerminal = (s: InvocationStatus): boolean => TERMINAL.has(s);

export interface NewCommand {
  documentName: string;
  documentVersion: string;
  comment: string;
  parameters: Record<string, string[]>;
  instanceIds: string[];
  targets: { Key: string; Values: string[] }[];
  /** Every invocation to create, in order; some are born final (AccessDenied, Undeliverable, InvalidPlatform). */
  invocations: {
    instanceId: string;
    instanceName: string;
    deniedAs?: 'AccessDenied' | 'Undeliverable' | 'InvalidPlatform';
  }[];
  timeoutSeconds: number;
  executionTimeoutSeconds: number;
  maxConcurrency: string;
  maxErrors: string;
  requestedBy: string;
  outputS3BucketName?: string | undefined;
  outputS3KeyPrefix?: string | undefined;
  serviceRoleArn?: string | undefined;
}

interface Runtime {
  dispatched: boolean;
  deliveryTimer?: NodeJS.Timeout | undefined;
  slowTimer?: NodeJS.Timeout | undefined;
  execTimer?: NodeJS.Timeout | undefined;
  killTimer?: NodeJS.Timeout | undefined;
  child?: ChildProcess | undefined;
  /** Resolves when the child has exited and its result is recorded. */
  exited?: Promise<void> | undefined;
  /** Why devfleet is stopping the script, decided by whoever asked first. */
  stopReason?: 'timeout' | 'cancel' | 'shutdown' | undefined;
  /** A light instance's simulated run: ends the invocation when it fires. */
  simTimer?: NodeJS.Timeout | undefined;
}

/** Per command, what the scheduler needs without scanning every invocation on each change. */
interface CommandRuntime {
  /** Every invocation before this index was dispatched or is final (dispatch goes in target order). */
  cursor: number;
  /** Dispatched and not final: what MaxConcurrency counts. */
  inFlight: Set<InvocationRecord>;
}

interface Outcome {
  status: InvocationStatus;
  details: string;
  responseCode: number;
  stdout?: string;
  stderr?: string;
}

/** Parses MaxConcurrency/MaxErrors: "N" or "N%" of the target count. */
export function rateLimit(value: string, targets: number, round: 'up' | 'down'): number {
  if (value.endsWith('%')) {
    const pct = Number(value.slice(0, -1));
    const raw = (pct * targets) / 100;
    return round === 'up' ? Math.max(1, Math.ceil(raw)) : Math.floor(raw);
  }
  return Number(value);
}

/**
 * The command-level status from its invocations (see the module comment for the rules). As SSM
 * documents it, Undeliverable invocations neither count toward MaxErrors nor decide between
 * Success and Incomplete (four Undeliverable and one Success: Success; all Undeliverable: Failed);
 * DeliveryTimedOut, AccessDenied and InvalidPlatform do not count toward MaxErrors but do make a
 * command Incomplete. Inferred where AWS documents only the vocabulary: a command whose
 * non-successes stay within MaxErrors is Failed/Incomplete, or names the one reason when nothing
 * succeeded and every invocation ended for it; targets that matched nothing give
 * Success/NoInstancesInTag.
 */
export function aggregateStatus(
  cmd: Pick<CommandRecord, 'cancelRequested' | 'maxErrors' | 'targets'>,
  invs: readonly Pick<InvocationRecord, 'status' | 'statusDetails'>[],
): { status: CommandStatus; details: string } {
  if (invs.length === 0) {
    return cmd.targets.length > 0
      ? { status: 'Success', details: 'NoInstancesInTag' }
      : { status: 'Success', details: 'Success' };
  }
  const open = invs.filter((i) => !isTerminal(i.status));
  if (open.length > 0) {
    if (invs.some((i) => i.status === 'Cancelling')) return { status: 'Cancelling', details: 'Cancelling' };
    if (invs.every((i) => i.status === 'Pending')) return { status: 'Pending', details: 'Pending' };
    return { status: 'InProgress', details: 'InProgress' };
  }
  const counted = invs.filter((i) => i.statusDetails !== 'Undeliverable');
  if (counted.length === 0) return { status: 'Failed', details: 'Undeliverable' };
  const nonSuccess = counted.filter((i) => i.status !== 'Success');
  if (nonSuccess.length === 0) return { status: 'Success', details: 'Success' };
  if (cmd.cancelRequested && nonSuccess.some((i) => i.status === 'Cancelled' && i.statusDetails === 'Cancelled')) {
    return { status: 'Cancelled', details: 'Cancelled' };
  }
  const errors = invs.filter((i) => i.statusDetails === 'Failed' || i.statusDetails === 'ExecutionTimedOut');
  if (errors.length > rateLimit(cmd.maxErrors, invs.length, 'down')) {
    return errors.every((i) => i.statusDetails === 'ExecutionTimedOut')
      ? { status: 'TimedOut', details: 'ExecutionTimedOut' }
      : { status: 'Failed', details: 'Failed' };
  }
  // One reason for everything that did not succeed, and nothing succeeded: that reason.
  const only = (d: string) => nonSuccess.length === counted.length && nonSuccess.every((i) => i.statusDetails === d);
  if (only('DeliveryTimedOut')) return { status: 'TimedOut', details: 'DeliveryTimedOut' };
  if (only('AccessDenied')) return { status: 'Failed', details: 'AccessDenied' };
  if (only('InvalidPlatform')) return { status: 'Failed', details: 'InvalidPlatform' };
  return { status: 'Failed', details: 'Incomplete' };
}

/** Keeps the first `limit` characters of a byte stream, decoding UTF-8 across chunk boundaries. */
class Capture {
  private text = '';
  private readonly decoder = new StringDecoder('utf8');
  constructor(private readonly limit: number) {}
  push(chunk: Buffer): void {
    // Keep draining after the limit, or a chatty script would block on a full pipe.
    if (this.text.length >= this.limit) return;
    this.text += this.decoder.write(chunk);
    if (this.text.length > this.limit) this.text = this.text.slice(0, this.limit);
  }
  value(): string {
    if (this.text.length < this.limit) this.text = (this.text + this.decoder.end()).slice(0, this.limit);
    return this.text;
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    // Negative pid: the whole process group the script leads, so its children stop too.
    process.kill(-pid, signal);
  } catch (e) {
    // ESRCH: already gone. Anything else must not crash devfleet from inside a timer; say it instead.
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') {
      process.emitWarning(`devfleet: could not send ${signal} to process group ${pid}: ${(e as Error).message}`);
    }
  }
}

export class Fleet {
  private readonly instances = new Map<string, FleetInstance>();
  /** Every instance in fleet order: the configured ones, then the light ones. */
  private readonly ordered: FleetInstance[] = [];
  /** The light instances' simulations, by id. */
  private readonly light = new Map<string, LightSpec>();
  private readonly runtime = new Map<InvocationRecord, Runtime>();
  private readonly commandRuntime = new Map<string, CommandRuntime>();
  /** Commands whose status must be recomputed (once, however many invocations changed). */
  private readonly stale = new Set<CommandRecord>();
  private settleScheduled = false;
  private readonly starting = new Set<Promise<void>>();
  private closing = false;
  /** After shutdown nothing may change the state any more: a new devfleet may own the folder. */
  private stopped = false;

  constructor(
    private readonly opts: {
      config: FleetConfig;
      store: StateStore;
      dataDir: string;
      now: () => number;
      timeScale: number;
      /**
       * The environment an instance's scripts get for its own AWS calls (the `aws` shim): endpoint,
       * region and, with an instance profile, its role's credentials. Absent: none.
       */
      instanceEnv?: (instance: FleetInstance) => Promise<Record<string, string>>;
    },
  ) {
    for (const i of opts.config.instances) {
      this.instances.set(i.id, i);
      this.ordered.push(i);
    }
    for (const { instance, light } of expandLightInstances(opts.config)) {
      this.instances.set(instance.id, instance);
      this.ordered.push(instance);
      this.light.set(instance.id, light);
    }
  }

  instance(id: string): FleetInstance | undefined {
    return this.instances.get(id);
  }

  /** Every instance, configured ones first, then light ones, in a stable order (paging relies on it). */
  allInstances(): readonly FleetInstance[] {
    return this.ordered;
  }

  /** Whether commands on this instance are simulated in-process (a light instance). */
  isLight(id: string): boolean {
    return this.light.has(id);
  }

  instanceRoot(id: string): string {
    return join(this.opts.dataDir, 'instances', id, 'root');
  }

  private scaled(seconds: number): number {
    return seconds * 1000 * this.opts.timeScale;
  }

  /** When SSM gives up on the command: TimeoutSeconds plus executionTimeout, both scaled. */
  expiresAtMs(cmd: CommandRecord): number {
    return cmd.requestedAtMs + this.scaled(cmd.timeoutSeconds + cmd.executionTimeoutSeconds);
  }

  private rt(inv: InvocationRecord): Runtime {
    let r = this.runtime.get(inv);
    if (!r) {
      r = { dispatched: false };
      this.runtime.set(inv, r);
    }
    return r;
  }

  /**
   * Brings the state of a previous run in line with reality: scripts that were running died with
   * that process (Failed, or Cancelled if a cancel was under way); pending ones are delivered now.
   */
  async recover(): Promise<void> {
    const { store, now } = this.opts;
    // Commands older than 30 days are forgotten, as SSM keeps command history for 30 days.
    const horizon = now() - 30 * 24 * 3600 * 1000;
    for (const cmd of [...store.commands.values()]) {
      if (cmd.requestedAtMs < horizon && store.invocationsOf(cmd.commandId).every((i) => isTerminal(i.status))) {
        store.removeCommand(cmd.commandId);
        store.markDirty();
      }
    }
    const running = [...store.invocations.values()].filter(
      (i) => i.status === 'InProgress' || i.status === 'Cancelling',
    );
    const spawned = running.length > 0 ? await readSpawnedPids(this.opts.dataDir) : new Map<string, number>();
    for (const inv of running) {
      const pid = inv.pid ?? spawned.get(`${inv.commandId}/${inv.instanceId}`);
      if (pid !== undefined) this.reapOrphan(inv, pid);
      const cancelled = inv.status === 'Cancelling';
      this.record(inv, {
        status: cancelled ? 'Cancelled' : 'Failed',
        details: cancelled ? 'Cancelled' : 'Failed',
        responseCode: -1,
        stdout: '',
        stderr: 'devfleet restarted while this command was running; its outcome is unknown and it was not run again.',
      });
    }
    // A delivery SSM was retrying (Delayed) is tried again by this devfleet.
    for (const inv of store.invocations.values()) {
      if (inv.status === 'Delayed') {
        inv.status = 'Pending';
        inv.statusDetails = 'Pending';
      }
    }
    for (const cmd of store.commands.values()) {
      this.applyMaxErrors(cmd);
      for (const inv of store.invocationsOf(cmd.commandId))
        if (inv.status === 'Pending') this.armDeliveryTimer(cmd, inv);
      this.updateCommand(cmd);
      this.pump(cmd);
    }
    this.settle();
    store.markDirty();
    await store.flush();
  }

  /**
   * A crash leaves the script's process group running (it is detached). Stop it, but only after
   * checking through /proc that the pid still belongs to this instance's sandbox, so a reused pid
   * of an unrelated process is never signalled. Without /proc (not Linux) nothing is done.
   */
  private reapOrphan(inv: InvocationRecord, pid: number): void {
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    } catch {
      return; // Gone, not ours to read, or no /proc: nothing we can safely stop.
    }
    const vars = new Set(environ.split('\0'));
    if (vars.has(`AWS_SSM_INSTANCE_ID=${inv.instanceId}`) && vars.has(`HOME=${this.instanceRoot(inv.instanceId)}`)) {
      killGroup(pid, 'SIGKILL');
    }
  }

  /** Creates a command and its invocations, persists them, then starts delivering. */
  async sendCommand(spec: NewCommand): Promise<CommandRecord> {
    if (this.closing) throw new AwsError('ServiceUnavailable', 'devfleet is shutting down.', 503);
    const { store, now } = this.opts;
    const cmd: CommandRecord = {
      commandId: randomUUID(),
      seq: store.nextSeq++,
      documentName: spec.documentName,
      documentVersion: spec.documentVersion,
      comment: spec.comment,
      parameters: spec.parameters,
      instanceIds: spec.instanceIds,
      targets: spec.targets,
      requestedAtMs: now(),
      timeoutSeconds: spec.timeoutSeconds,
      executionTimeoutSeconds: spec.executionTimeoutSeconds,
      maxConcurrency: spec.maxConcurrency,
      maxErrors: spec.maxErrors,
      status: 'Pending',
      statusDetails: 'Pending',
      cancelRequested: false,
      halted: false,
      requestedBy: spec.requestedBy,
      ...(spec.outputS3BucketName !== undefined ? { outputS3BucketName: spec.outputS3BucketName } : {}),
      ...(spec.outputS3KeyPrefix !== undefined ? { outputS3KeyPrefix: spec.outputS3KeyPrefix } : {}),
      ...(spec.serviceRoleArn !== undefined ? { serviceRoleArn: spec.serviceRoleArn } : {}),
    };
    store.commands.set(cmd.commandId, cmd);
    spec.invocations.forEach((target, index) => {
      const born = target.deniedAs;
      store.addInvocation({
        commandId: cmd.commandId,
        instanceId: target.instanceId,
        instanceName: target.instanceName,
        index,
        status: born ? 'Failed' : 'Pending',
        statusDetails: born ?? 'Pending',
        responseCode: -1,
        ...(born ? { finishedAtMs: cmd.requestedAtMs } : {}),
        stdout: '',
        stderr: '',
      });
    });
    this.updateCommand(cmd);
    store.markDirty();
    try {
      // The command must be on disk before its id is returned: a caller that looks it up after a
      // devfleet restart must find it, or it would send it again.
      await store.flush();
    } catch (e) {
      store.removeCommand(cmd.commandId);
      throw new AwsError('InternalServerError', `devfleet could not record the command: ${(e as Error).message}`, 500);
    }
    for (const inv of store.invocationsOf(cmd.commandId)) if (inv.status === 'Pending') this.armDeliveryTimer(cmd, inv);
    this.pump(cmd);
    return cmd;
  }

  /** CancelCommand: pending invocations end now, running ones are stopped (Cancelling → Cancelled). */
  cancel(cmd: CommandRecord, instanceIds: readonly string[] | undefined): void {
    if (this.closing) throw new AwsError('ServiceUnavailable', 'devfleet is shutting down.', 503);
    cmd.cancelRequested = true;
    for (const inv of this.opts.store.invocationsOf(cmd.commandId)) {
      if (instanceIds && !instanceIds.includes(inv.instanceId)) continue;
      if (inv.status === 'Pending' || inv.status === 'Delayed') {
        this.finish(cmd, inv, { status: 'Cancelled', details: 'Cancelled', responseCode: -1 });
      } else if (inv.status === 'InProgress') {
        inv.status = 'Cancelling';
        inv.statusDetails = 'Cancelling';
        this.stop(inv, 'cancel');
      }
    }
    this.updateCommand(cmd);
    this.opts.store.markDirty();
  }

  private armDeliveryTimer(cmd: CommandRecord, inv: InvocationRecord): void {
    const r = this.rt(inv);
    if (r.deliveryTimer) return;
    const deadline = cmd.requestedAtMs + this.scaled(cmd.timeoutSeconds);
    const fire = () => {
      r.deliveryTimer = undefined;
      if (inv.status === 'Pending' || inv.status === 'Delayed')
        this.finish(cmd, inv, { status: 'TimedOut', details: 'DeliveryTimedOut', responseCode: -1 });
    };
    r.deliveryTimer = setTimeout(fire, Math.max(0, deadline - this.opts.now()));
  }

  /**
   * Dispatches pending invocations while the command has free concurrency slots, in target order.
   * Incremental (a cursor and the set in flight), so a command on thousands of instances costs
   * the same per change as one on three.
   */
  private pump(cmd: CommandRecord): void {
    if (this.closing || cmd.halted) return;
    const invs = this.opts.store.invocationsOf(cmd.commandId);
    let crt = this.commandRuntime.get(cmd.commandId);
    if (!crt) {
      crt = { cursor: 0, inFlight: new Set() };
      for (const i of invs) if (!isTerminal(i.status) && this.runtime.get(i)?.dispatched) crt.inFlight.add(i);
      this.commandRuntime.set(cmd.commandId, crt);
    }
    const limit = rateLimit(cmd.maxConcurrency, invs.length, 'up');
    while (crt.cursor < invs.length && crt.inFlight.size < limit) {
      const inv = invs[crt.cursor++] as InvocationRecord;
      if (inv.status !== 'Pending' || this.rt(inv).dispatched) continue;
      this.rt(inv).dispatched = true;
      crt.inFlight.add(inv);
      this.deliver(cmd, inv);
    }
    if (crt.cursor >= invs.length && crt.inFlight.size === 0) this.commandRuntime.delete(cmd.commandId);
  }

  private deliver(cmd: CommandRecord, inv: InvocationRecord): void {
    const instance = this.instances.get(inv.instanceId);
    if (!instance) {
      // The instance left the config between a restart and delivery.
      this.finish(cmd, inv, { status: 'Failed', details: 'Undeliverable', responseCode: -1 });
      return;
    }
    // An agent that is not connected, or does not answer, never picks the command up; the
    // delivery timer ends it.
    if (instance.faults?.offline || instance.faults?.unresponsive) return;
    const slow = instance.faults?.slowMs ?? 0;
    const delayed = instance.faults?.delayedMs ?? 0;
    const r = this.rt(inv);
    const go = () => {
      r.slowTimer = undefined;
      if (this.closing || (inv.status !== 'Pending' && inv.status !== 'Delayed')) return;
      if (instance.faults?.undeliverable) {
        this.finish(cmd, inv, { status: 'Failed', details: 'Undeliverable', responseCode: -1 });
        return;
      }
      if (delayed > 0 && inv.status === 'Pending') {
        // The first delivery failed; SSM says Delayed and tries again.
        inv.status = 'Delayed';
        inv.statusDetails = 'Delayed';
        this.updateCommand(cmd);
        this.opts.store.markDirty();
        r.slowTimer = setTimeout(run, delayed);
        return;
      }
      run();
    };
    const run = () => {
      const p: Promise<void> = this.start(cmd, inv, instance)
        .catch((e: unknown) => {
          // Whatever failed (the log, the sandbox, spawn), the invocation must end, and visibly.
          this.finish(cmd, inv, {
            status: 'Failed',
            details: 'Failed',
            responseCode: -1,
            stderr: `devfleet could not run this command: ${(e as Error)?.message ?? String(e)}`,
          });
        })
        .finally(() => this.starting.delete(p));
      this.starting.add(p);
    };
    if (slow > 0) r.slowTimer = setTimeout(go, slow);
    else go();
  }

  private async start(cmd: CommandRecord, inv: InvocationRecord, instance: FleetInstance): Promise<void> {
    const { store, now, dataDir } = this.opts;
    const r = this.rt(inv);
    r.slowTimer = undefined;
    if ((inv.status !== 'Pending' && inv.status !== 'Delayed') || this.closing) return;
    clearTimeout(r.deliveryTimer);
    r.deliveryTimer = undefined;
    const startedAtMs = now();
    const commands = cmd.parameters['commands'] ?? [];
    inv.status = 'InProgress';
    inv.statusDetails = 'InProgress';
    inv.startedAtMs = startedAtMs;
    this.updateCommand(cmd);
    store.markDirty();
    try {
      // InProgress must be durable before the script runs, so a crash can never lead to a second run.
      await store.flush();
    } catch (e) {
      this.finish(cmd, inv, {
        status: 'Failed',
        details: 'Failed',
        responseCode: -1,
        stderr: `devfleet could not record the start of this command, so it did not run it: ${(e as Error).message}`,
      });
      return;
    }
    // The start line is written once InProgress is durable, and before anything runs: a crash before
    // the flush leaves the invocation Pending (delivered again by the next devfleet) and no line, so
    // the log never shows a start that did not happen; a line that cannot be written fails the
    // invocation without running it.
    appendCommandLog(dataDir, {
      type: 'start',
      commandId: cmd.commandId,
      instanceId: inv.instanceId,
      comment: cmd.comment,
      documentName: cmd.documentName,
      commands,
      startedAt: new Date(startedAtMs).toISOString(),
    });
    if (r.stopReason !== undefined || this.closing) {
      this.finish(cmd, inv, this.stoppedOutcome(r.stopReason ?? 'shutdown', '', ''));
      return;
    }
    if (instance.faults?.failAlways) {
      this.finish(cmd, inv, {
        status: 'Failed',
        details: 'Failed',
        responseCode: 1,
        stdout: '',
        stderr: 'devfleet fault failAlways: the script was not run.\nfailed to run commands: exit status 1',
      });
      return;
    }
    const light = this.light.get(inv.instanceId);
    if (light) {
      this.simulate(cmd, inv, instance, light);
      return;
    }

    const root = this.instanceRoot(inv.instanceId);
    let cwd = root;
    let awsEnv: Record<string, string> = {};
    try {
      await mkdir(root, { recursive: true });
      awsEnv = (await this.opts.instanceEnv?.(instance)) ?? {};
      const wd = cmd.parameters['workingDirectory']?.[0];
      if (wd !== undefined && wd !== '') {
        // The sandbox root stands in for the instance's "/": absolute paths are re-rooted inside it.
        cwd = resolve(root, isAbsolute(wd) ? '.' + wd : wd);
        const rel = relative(root, cwd);
        if (rel.startsWith('..' + sep) || rel === '..' || isAbsolute(rel))
          throw new Error(`workingDirectory ${wd} is outside the instance`);
        if (!(await stat(cwd)).isDirectory()) throw new Error(`workingDirectory ${wd} is not a directory`);
      }
    } catch (e) {
      this.finish(cmd, inv, {
        status: 'Failed',
        details: 'Failed',
        responseCode: 1,
        stdout: '',
        stderr: `failed to run commands: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'workingDirectory does not exist' : (e as Error).message}`,
      });
      return;
    }
    if (r.stopReason !== undefined || this.closing) {
      this.finish(cmd, inv, this.stoppedOutcome(r.stopReason ?? 'shutdown', '', ''));
      return;
    }
    this.run(cmd, inv, instance, cwd, commands.join('\n'), awsEnv);
  }

  private run(
    cmd: CommandRecord,
    inv: InvocationRecord,
    instance: FleetInstance,
    cwd: string,
    script: string,
    awsEnv: Record<string, string> = {},
  ): void {
    const r = this.rt(inv);
    const root = this.instanceRoot(inv.instanceId);
    const stdout = new Capture(STDOUT_LIMIT);
    const stderr = new Capture(STDERR_LIMIT);
    // The script is one argv element of bash -c, never spliced into a shell string; the environment
    // is built from nothing so no secret of this process (AWS keys, tokens) leaks into the sandbox.
    const child = spawn('bash', ['-c', script], {
      cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        // devfleet's stand-ins for systemctl, docker, apt-get and dpkg-query come first: they keep
        // their state in the instance's folder, so a runbook never restarts or patches this machine.
        PATH: `${SHIMS_DIR}:${process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin'}`,
        HOME: root,
        LANG: 'C.UTF-8',
        // The instance's own identity (its instance profile), never this process's keys.
        ...awsEnv,
        AWS_SSM_INSTANCE_ID: inv.instanceId,
        // What people call the instance: its Name tag, else its host name, else its id.
        MECHANIC_INSTANCE_NAME: instance.tags['Name'] ?? instance.name ?? inv.instanceId,
      },
    });
    r.child = child;
    if (child.pid !== undefined) {
      inv.pid = child.pid;
      this.opts.store.markDirty();
      // The state write above is asynchronous; this line is not, so a crash a moment later still
      // leaves the pid for the next devfleet to stop the orphaned script.
      try {
        appendCommandLog(this.opts.dataDir, {
          type: 'spawn',
          commandId: inv.commandId,
          instanceId: inv.instanceId,
          pid: child.pid,
        });
      } catch (e) {
        process.emitWarning(`devfleet: could not append to the command log: ${(e as Error).message}`);
      }
    }
    child.stdout?.on('data', (b: Buffer) => stdout.push(b));
    child.stderr?.on('data', (b: Buffer) => stderr.push(b));
    let spawnError: Error | undefined;
    r.exited = new Promise<void>((done) => {
      child.once('error', (e) => {
        spawnError = e;
        // A process that never started emits no 'close' on every Node version; finish here too.
        if (child.pid === undefined) {
          this.finish(cmd, inv, {
            status: 'Failed',
            details: 'Failed',
            responseCode: -1,
            stdout: '',
            stderr: `failed to run commands: ${e.message}`,
          });
          done();
        }
      });
      child.once('close', (code, signal) => {
        const out = stdout.value();
        const err = stderr.value();
        if (r.stopReason !== undefined) {
          this.finish(cmd, inv, this.stoppedOutcome(r.stopReason, out, err));
        } else if (spawnError) {
          this.finish(cmd, inv, {
            status: 'Failed',
            details: 'Failed',
            responseCode: -1,
            stdout: out,
            stderr: `failed to run commands: ${spawnError.message}`,
          });
        } else if (code === 0) {
          this.finish(cmd, inv, { status: 'Success', details: 'Success', responseCode: 0, stdout: out, stderr: err });
        } else {
          // Like a shell: killed by signal N reports 128+N.
          const rc = code ?? 128 + signalNumber(signal);
          const suffix = `failed to run commands: exit status ${rc}`;
          const stderrText = err === '' ? suffix : err.endsWith('\n') ? err + suffix : `${err}\n${suffix}`;
          this.finish(cmd, inv, {
            status: 'Failed',
            details: 'Failed',
            responseCode: rc,
            stdout: out,
            stderr: stderrText.slice(0, STDERR_LIMIT),
          });
        }
        done();
      });
    });
    r.execTimer = setTimeout(() => {
      r.execTimer = undefined;
      this.stop(inv, 'timeout');
    }, this.scaled(cmd.executionTimeoutSeconds));
  }

  /**
   * A light instance "runs" the command: no folder, no process. After `commandMs` it ends Success
   * with a line naming the instance, or Failed (exit 1) when the group's failEvery picks it. The
   * executionTimeout, CancelCommand and shutdown stop it as they stop a script.
   */
  private simulate(cmd: CommandRecord, inv: InvocationRecord, instance: FleetInstance, light: LightSpec): void {
    const r = this.rt(inv);
    const name = instance.tags['Name'] ?? instance.name ?? inv.instanceId;
    const lines = (cmd.parameters['commands'] ?? []).length;
    const stdout = `${name} (${inv.instanceId}): ran ${lines} command line${lines === 1 ? '' : 's'} (devfleet light instance)\n`;
    r.simTimer = setTimeout(() => {
      r.simTimer = undefined;
      this.finish(
        cmd,
        inv,
        light.fails
          ? {
              status: 'Failed',
              details: 'Failed',
              responseCode: 1,
              stdout,
              stderr: `devfleet light instance: every ${light.failEvery}th instance of its group fails\nfailed to run commands: exit status 1`,
            }
          : { status: 'Success', details: 'Success', responseCode: 0, stdout, stderr: '' },
      );
    }, light.commandMs);
    r.execTimer = setTimeout(() => {
      r.execTimer = undefined;
      this.stop(inv, 'timeout');
    }, this.scaled(cmd.executionTimeoutSeconds));
  }

  private stoppedOutcome(reason: 'timeout' | 'cancel' | 'shutdown', stdout: string, stderr: string): Outcome {
    const note = (msg: string) =>
      (stderr === '' ? msg : stderr.endsWith('\n') ? stderr + msg : `${stderr}\n${msg}`).slice(0, STDERR_LIMIT);
    switch (reason) {
      case 'timeout':
        return {
          status: 'TimedOut',
          details: 'ExecutionTimedOut',
          responseCode: -1,
          stdout,
          stderr: note('failed to run commands: command execution timed out'),
        };
      case 'cancel':
        return { status: 'Cancelled', details: 'Cancelled', responseCode: -1, stdout, stderr };
      case 'shutdown':
        return {
          status: 'Failed',
          details: 'Failed',
          responseCode: -1,
          stdout,
          stderr: note('devfleet stopped while this command was running.'),
        };
    }
  }

  /** Stops a running script: SIGTERM to its process group, SIGKILL if it is still there later. */
  private stop(inv: InvocationRecord, reason: 'timeout' | 'cancel' | 'shutdown'): void {
    const r = this.rt(inv);
    r.stopReason ??= reason;
    if (r.simTimer !== undefined) {
      // A simulated run stops at once, as a script that obeys SIGTERM would.
      const cmd = this.opts.store.commands.get(inv.commandId);
      if (cmd) this.finish(cmd, inv, this.stoppedOutcome(r.stopReason, '', ''));
      return;
    }
    const pid = r.child?.pid;
    if (pid === undefined) return; // Not spawned yet: start() sees stopReason and does not spawn.
    const hard = reason === 'shutdown';
    killGroup(pid, hard ? 'SIGKILL' : 'SIGTERM');
    if (!hard && !r.killTimer) r.killTimer = setTimeout(() => killGroup(pid, 'SIGKILL'), KILL_GRACE_MS);
  }

  /** Records a final outcome once, logs it, applies MaxErrors and frees the concurrency slot. */
  private finish(cmd: CommandRecord, inv: InvocationRecord, outcome: Outcome): void {
    if (this.stopped || isTerminal(inv.status)) return;
    const r = this.rt(inv);
    for (const t of [r.deliveryTimer, r.slowTimer, r.execTimer, r.killTimer, r.simTimer]) clearTimeout(t);
    r.deliveryTimer = r.slowTimer = r.execTimer = r.killTimer = r.simTimer = undefined;
    r.child = undefined;
    // A final invocation needs no runtime any more; keeping it would grow with every command sent.
    this.runtime.delete(inv);
    this.commandRuntime.get(cmd.commandId)?.inFlight.delete(inv);
    this.record(inv, outcome);

    // Only a new error can push the command past MaxErrors.
    if (outcome.details === 'Failed' || outcome.details === 'ExecutionTimedOut') this.applyMaxErrors(cmd);
    this.updateCommand(cmd);
    this.opts.store.markDirty();
    this.pump(cmd);
  }

  /** Once more invocations failed than MaxErrors allows, those not yet started never will. */
  private applyMaxErrors(cmd: CommandRecord): void {
    if (cmd.halted) return;
    const invs = this.opts.store.invocationsOf(cmd.commandId);
    const errors = invs.filter((i) => i.statusDetails === 'Failed' || i.statusDetails === 'ExecutionTimedOut').length;
    if (errors <= rateLimit(cmd.maxErrors, invs.length, 'down')) return;
    cmd.halted = true;
    for (const other of invs) {
      if (other.status === 'Pending' || other.status === 'Delayed')
        this.finish(cmd, other, { status: 'Cancelled', details: 'Terminated', responseCode: -1 });
    }
  }

  /** Writes an outcome into the record and, if the invocation had started, into the command log. */
  private record(inv: InvocationRecord, o: Outcome): void {
    inv.status = o.status;
    inv.statusDetails = o.details;
    inv.responseCode = o.responseCode;
    inv.stdout = o.stdout ?? inv.stdout;
    inv.stderr = o.stderr ?? inv.stderr;
    inv.finishedAtMs = this.opts.now();
    delete inv.pid;
    if (inv.startedAtMs !== undefined) {
      try {
        appendCommandLog(this.opts.dataDir, {
          type: 'finish',
          commandId: inv.commandId,
          instanceId: inv.instanceId,
          finishedAt: new Date(inv.finishedAtMs).toISOString(),
          responseCode: inv.responseCode,
          status: inv.status,
        });
      } catch (e) {
        // The outcome is in the state either way; a missing finish line only leaves the entry InProgress.
        process.emitWarning(`devfleet: could not append to the command log: ${(e as Error).message}`);
      }
    }
  }

  /**
   * Marks the command's status for recomputation. It is recomputed once per turn of the event loop
   * (a command on thousands of instances changes thousands of times), and at once by settle(),
   * which every reader of a command's status calls first.
   */
  private updateCommand(cmd: CommandRecord): void {
    this.stale.add(cmd);
    if (this.settleScheduled) return;
    this.settleScheduled = true;
    setImmediate(() => {
      if (this.stale.size > 0 && !this.stopped) {
        this.settle();
        this.opts.store.markDirty();
      }
    });
  }

  /** Brings every command's status up to date with its invocations (see aggregateStatus). */
  settle(): void {
    this.settleScheduled = false;
    for (const cmd of this.stale) {
      const { status, details } = aggregateStatus(cmd, this.opts.store.invocationsOf(cmd.commandId));
      cmd.status = status;
      cmd.statusDetails = details;
    }
    this.stale.clear();
  }

  /** Stops everything: timers, then running scripts (recorded Failed), then a final state write. */
  async shutdown(): Promise<void> {
    this.closing = true;
    const waits: Promise<void>[] = [];
    for (const [inv, r] of this.runtime) {
      clearTimeout(r.deliveryTimer);
      clearTimeout(r.slowTimer);
      clearTimeout(r.execTimer);
      r.deliveryTimer = r.slowTimer = r.execTimer = undefined;
      if (r.simTimer !== undefined) {
        // A simulated run is stopped as a script would be: recorded Failed, never resumed.
        const cmd = this.opts.store.commands.get(inv.commandId);
        if (cmd) this.finish(cmd, inv, this.stoppedOutcome('shutdown', '', ''));
        continue;
      }
      if (r.child && r.exited) {
        this.stop(inv, 'shutdown');
        // A grandchild that left the group can hold the pipes open; do not wait for it forever.
        waits.push(Promise.race([r.exited, new Promise<void>((done) => setTimeout(done, 3_000).unref())]));
      }
    }
    await Promise.all([...waits, ...this.starting]);
    for (const [inv, r] of this.runtime) {
      clearTimeout(r.killTimer);
      const child = r.child;
      if (child) {
        child.stdout?.destroy();
        child.stderr?.destroy();
        const cmd = this.opts.store.commands.get(inv.commandId);
        if (cmd) this.finish(cmd, inv, this.stoppedOutcome(r.stopReason ?? 'shutdown', '', ''));
      }
    }
    this.settle();
    this.stopped = true;
    await this.opts.store.close();
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = {
    SIGHUP: 1,
    SIGINT: 2,
    SIGQUIT: 3,
    SIGABRT: 6,
    SIGKILL: 9,
    SIGSEGV: 11,
    SIGPIPE: 13,
    SIGALRM: 14,
    SIGTERM: 15,
  };
  return signal ? (numbers[signal] ?? 0) : 0;
}
