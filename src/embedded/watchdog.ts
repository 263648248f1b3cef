/**
 * The embedded stack's watchdog, a process of its own. The supervisor tells it, one JSON line on its stdin per child
 * it starts, which processes it started; when that pipe closes, the supervisor is gone (however it died, SIGKILL
 * included) and the watchdog stops every child that is still provably the one recorded, then exits. This is what
 * the `temporal` binary, which cannot watch its parent, relies on; the node parts also watch their own stdin.
 *
 * It runs in a session of its own, so a Ctrl-C or a hang-up meant for the supervisor's terminal does not reach it.
 */
import { createInterface } from 'node:readline';
import { stopRecorded, type ProcessIdentity } from './processes.ts';

/** Time the children get to stop on their own (the worker finishes its activity calls) before SIGKILL. */
const GRACE_MS = 5_000;

const children: Record<string, ProcessIdentity> = {};
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  try {
    const { name, ...identity } = JSON.parse(line) as { name: string } & ProcessIdentity;
    children[name] = identity;
  } catch {
    // Only the supervisor writes here; a line cut short by its death is all that can fail to parse.
  }
});
lines.once('close', () => {
  void stopRecorded(children, GRACE_MS).finally(() => process.exit(0));
});
for (const sig of ['SIGINT', 'SIGHUP'] as const) process.on(sig, () => {});
