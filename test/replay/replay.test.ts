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
 * Re-record with RECORD_HISTORIES=1 npx vitest run test/integration/workflow.test.ts — only for
 * new histories; old ones stay, they stand for runs in flight.
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
    events: { markerRecordedEventAttributes?: { details?: Record<string, { payloads?: { data?: string }[] }> } }[];
  };
  return events.flatMap((e) =>
    Object.values(e.markerRecordedEventAttributes?.details ?? {}).flatMap((d) =>
      (d.payloads ?? []).map((p) => (JSON.parse(Buffer.from(p.data ?? '', 'base64').toString()) as { id: string }).id),
    ),
  );
}

test('the step-controls history took the patched branch, and the older ones never met it', async () => {
  // Recorded by test/integration/step-controls.test.ts: a condition skip, a retry and a failure
  // gone past (continueOnError), so replaying it exercises every patched path.
  const read = async (file: string): Promise<unknown> => JSON.parse(await readFile(`${dir}${file}`, 'utf8'));
  expect(files).toContain('step-controls.json');
  expect(patchesOf(await read('step-controls.json'))).toEqual(['step-controls']);
  for (const file of files.filter((f) => f !== 'step-controls.json')) expect(patchesOf(await read(file))).toEqual([]);
});
