/**
 * devfleet's command log is the witness of exactly-once: a `start` line must mean the script was
 * durably started. The line is written only once the invocation's InProgress state is on disk; a
 * devfleet killed before that leaves the invocation Pending (delivered again on restart) and no
 * line, so the log never counts a start that did not happen. Here the state write is held at that
 * very moment, deterministically, in place of a kill.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { readCommandLog } from '../../src/devfleet/command-log.ts';
import { Fleet } from '../../src/devfleet/fleet.ts';
import { StateStore } from '../../src/devfleet/state.ts';
import { fleetWith, sleep } from './devfleet-helpers.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

test('no start line until the invocation’s InProgress state is on disk; then exactly one', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'devfleet-start-line-'));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const store = await StateStore.open(dataDir);
  const config = fleetWith([{ id: 'i-0000000000000000a', name: 'a', tags: { Role: 'app' } }]);
  const fleet = new Fleet({ config, store, dataDir, now: Date.now, timeScale: 1 });
  cleanups.push(() => fleet.shutdown());

  // Every write goes through, except the one that would make an InProgress invocation durable:
  // that one is held, as if devfleet were killed before it reached the disk.
  const flush = store.flush.bind(store);
  let held: (() => void) | undefined;
  let heldOnce = false;
  store.flush = () => {
    const starting = [...store.invocations.values()].some((i) => i.status === 'InProgress');
    if (!starting || heldOnce) return flush();
    heldOnce = true;
    return new Promise<void>((resolve) => (held = () => void flush().then(resolve)));
  };

  await fleet.sendCommand({
    documentName: 'AWS-RunShellScript',
    documentVersion: '1',
    comment: 'start line',
    parameters: { commands: ['echo ran'] },
    instanceIds: ['i-0000000000000000a'],
    targets: [],
    invocations: [{ instanceId: 'i-0000000000000000a', instanceName: 'a' }],
    timeoutSeconds: 600,
    executionTimeoutSeconds: 60,
    maxConcurrency: '50',
    maxErrors: '0',
    requestedBy: 'test',
  });
  while (!held) await sleep(10); // the start is waiting for its state to be written
  expect(await readCommandLog(dataDir)).toEqual([]);

  held();
  let log = await readCommandLog(dataDir);
  while (log.length === 0 || log[0]!.status === 'InProgress') {
    await sleep(20);
    log = await readCommandLog(dataDir);
  }
  expect(log).toHaveLength(1);
  expect(log[0]).toMatchObject({ instanceId: 'i-0000000000000000a', status: 'Success', responseCode: 0 });
});
