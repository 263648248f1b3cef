import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writePrivateFile } from '../host.ts';

/**
 * Enough to tell a process apart from a later one that was given the same pid: its start time (clock ticks since
 * boot on Linux, `ps`'s start time elsewhere) and its command line.
 */
export interface ProcessIdentity {
  readonly pid: number;
  readonly startTime: string;
  readonly argv: readonly string[];
}

/** What a stack records about its processes, so that a later start can tell its own leftovers from strangers. */
export interface ProcessTable {
  readonly supervisor: ProcessIdentity;
  /** The watchdog and every part, by name ('watchdog', 'temporal', 'devfleet', 'worker', 'server'). */
  readonly children: Readonly<Record<string, ProcessIdentity>>;
}

export const processTableFile = (home: string) => path.join(home, 'processes.json');

/** The identity of a running process, or undefined if there is none with this pid (or it cannot be read). */
export function processIdentity(pid: number): ProcessIdentity | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  if (process.platform === 'linux') {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // The command name in parentheses may hold spaces and parentheses; the fields after its last ')' do not.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const startTime = fields[19]; // field 22 of the whole line: starttime
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv.at(-1) === '') argv.pop();
      // A zombie has no command line: it is as good as gone.
      if (startTime === undefined || argv.length === 0) return undefined;
      return { pid, startTime, argv };
    } catch {
      return undefined;
    }
  }
  try {
    const out = (args: string[]) =>
      execFileSync('ps', ['-p', String(pid), ...args], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    // `ps` gives the command line as one string: spaces inside an argument cannot be told apart, which is fine for
    // recognising a command line recorded the same way.
    return { pid, startTime: out(['-o', 'lstart=']), argv: out(['-o', 'command=']).split(' ') };
  } catch {
    return undefined;
  }
}

/** Whether `recorded` still names the very process it was recorded for: same pid, start time and command line. */
export function isSameProcess(recorded: ProcessIdentity): boolean {
  const now = processIdentity(recorded.pid);
  return (
    now !== undefined &&
    now.startTime === recorded.startTime &&
    now.argv.length === recorded.argv.length &&
    now.argv.every((arg, i) => arg === recorded.argv[i])
  );
}

export async function readProcessTable(home: string): Promise<ProcessTable | undefined> {
  try {
    const table = JSON.parse(await readFile(processTableFile(home), 'utf8')) as Partial<ProcessTable>;
    if (typeof table.supervisor?.pid !== 'number' || typeof table.children !== 'object') return undefined;
    return table as ProcessTable;
  } catch {
    return undefined;
  }
}

export async function writeProcessTable(home: string, table: ProcessTable): Promise<void> {
  await writePrivateFile(processTableFile(home), `${JSON.stringify(table, null, 2)}\n`);
}

/**
 * Stops the processes that are provably the ones recorded (pid, start time and command line all match): SIGTERM,
 * then SIGKILL for any still there after `graceMs`. A recorded pid that now names another process is left alone.
 * Returns the names of those it stopped.
 */
export async function stopRecorded(recorded: Readonly<Record<string, ProcessIdentity>>, graceMs: number) {
  const ours = Object.entries(recorded).filter(([, identity]) => isSameProcess(identity));
  for (const [, { pid }] of ours) {
    signal(pid, 'SIGTERM');
    signal(pid, 'SIGCONT'); // a stopped process acts on SIGTERM only once it runs again
  }
  const deadline = Date.now() + graceMs;
  while (ours.some(([, identity]) => isSameProcess(identity)) && Date.now() < deadline) await sleep(50);
  for (const [, identity] of ours) if (isSameProcess(identity)) signal(identity.pid, 'SIGKILL');
  // SIGKILL cannot be refused, but the kernel takes a moment to tear the process down (a bounded wait, in case one
  // is stuck in the kernel).
  const killDeadline = Date.now() + 5_000;
  while (ours.some(([, identity]) => isSameProcess(identity)) && Date.now() < killDeadline) await sleep(50);
  return ours.map(([name, { pid }]) => ({ name, pid }));
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Gone already.
  }
}
