import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from '@temporalio/worker';
import { expect, test } from 'vitest';
import { WORKFLOWS_PATH } from '../../src/temporal/worker.ts';
import { quietTemporalLogs } from '../helpers/temporal.ts';

/**
 * Recorded histories of runbookExecution, replayed against today's workflow code with no server:
 * a change that would break runs already in flight (a non-determinism) fails here. When a change
 * must alter the workflow's commands, guard it with patched() and keep these histories green.
 * Re-record with RECORD_HISTORIES=1 npx vitest run test/integration/workflow.test.ts -t '<the test>'
 * — only for new histories; old ones stay, they stand for runs in flight.
 */
const dir = fileURLToPath(new URL('./histories/', import.meta.url));
const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();

test('there are recorded histories to replay', () => {
  expect(files.length).toBeGreaterThan(0);
});

test.each(files)('%s replays without non-determinism', async (file) => {
  quietTemporalLogs();
  const history: unknown = JSON.parse(await readFile(`${dir}${file}`, 'utf8'));
  await expect(Worker.runReplayHistory({ workflowsPath: WORKFLOWS_PATH }, history, file)).resolves.toBeUndefined();
});

/** The patch ids a recorded history's markers hold (wf.patched records one per patch it meets). */
function patchesOf(history: unknown): string[] {
  const { events } = history as {
    events: {
      markerRecordedEventAttributes?: {
        markerName?: string;
        details?: Record<string, { payloads?: { data?: string }[] }>;
      };
    }[];
  };
  // Local activities leave markers too (core_local_activity); only core_patch ones name a patch.
  const patches = events.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch');
  return patches.flatMap((e) =>
    Object.values(e.markerRecordedEventAttributes?.details ?? {}).flatMap((d) =>
      (d.payloads ?? []).map((p) => (JSON.parse(Buffer.from(p.data ?? '', 'base64').toString()) as { id: string }).id),
    ),
  );
}

test('the step-controls and local-records histories took their patched branches, and the older ones never met them', async () => {
  // Recorded by test/integration/step-controls.test.ts: a condition skip, a retry and a failure
  // gone past (continueOnError), so replaying it exercises every patched path.
  const read = async (file: string): Promise<unknown> => JSON.parse(await readFile(`${dir}${file}`, 'utf8'));
  expect(files).toContain('step-controls.json');
  expect(patchesOf(await read('step-controls.json'))).toEqual(['step-controls']);
  // Recorded by test/integration/workflow.test.ts: every record but the request a local activity.
  expect(files).toContain('local-records.json');
  expect(patchesOf(await read('local-records.json'))).toEqual(['local-records']);
  // Recorded by test/integration/fanout.test.ts: a step on 120 instances through its child
  // workflow (fan-out-step.json, which asks no patch of its own).
  expect(files).toContain('fan-out.json');
  expect(patchesOf(await read('fan-out.json'))).toEqual(['local-records', 'fan-out']);
  // Recorded by test/integration/vote-record.test.ts: a quorum of two, the first vote recorded
  // alone, the deciding one with execution.running in one local activity.
  expect(files).toContain('deciding-vote-record.json');
  expect(patchesOf(await read('deciding-vote-record.json'))).toEqual(['local-records', 'deciding-vote-record']);
  // Recorded by test/integration/fanout-targets.test.ts: the child started with the plan's digest,
  // not its ids (fan-out-targets-step.json, which loads them and asks no patch of its own).
  expect(files).toContain('fan-out-targets.json');
  expect(patchesOf(await read('fan-out-targets.json'))).toEqual(['local-records', 'fan-out', 'fan-out-targets']);
  const patched = new Set([
    'step-controls.json',
    'local-records.json',
    'fan-out.json',
    'deciding-vote-record.json',
    'fan-out-targets.json',
  ]);
  for (const file of files.filter((f) => !patched.has(f))) expect(patchesOf(await read(file))).toEqual([]);
});
