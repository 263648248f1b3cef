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

type RecordedEvent = {
  eventType?: string;
  activityTaskScheduledEventAttributes?: {
    activityType?: { name?: string };
    input?: { payloads?: { data?: string }[] };
  };
  markerRecordedEventAttributes?: { markerName?: string; details?: Record<string, { payloads?: { data?: string }[] }> };
};
const eventsOf = (history: unknown) => (history as { events: RecordedEvent[] }).events;
const decoded = (p: { data?: string } | undefined): unknown =>
  JSON.parse(Buffer.from(p?.data ?? '', 'base64').toString());
/** The activity types a history schedules (on the task queue: local activities are markers). */
const activitiesOf = (history: unknown) =>
  eventsOf(history).flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
/** The local activities a history's markers record, by type. */
const localActivitiesOf = (history: unknown) =>
  eventsOf(history)
    .filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity')
    .map(
      (e) =>
        (decoded(e.markerRecordedEventAttributes?.details?.['data']?.payloads?.[0]) as { activity_type: string })
          .activity_type,
    );
/** The steps a history sends, as `name#attempt` (`-` for a step sent without attempts). */
const sendsOf = (history: unknown) =>
  eventsOf(history)
    .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'dispatchStep')
    .map((e) => {
      const req = decoded(e.activityTaskScheduledEventAttributes?.input?.payloads?.[0]) as {
        step: { name: string };
        attempt?: number;
      };
      return `${req.step.name}#${req.attempt ?? '-'}`;
    });

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
  // Recorded by test/integration/step-controls.test.ts on today's path for a plan with step
  // controls: local records, the step-controls patch asked before the first of them (the order
  // whose loss was a nondeterminism on replay), a condition skip, a step failed once then retried
  // to success after its timer, a failure gone past, the deciding vote in one local activity.
  expect(files).toContain('step-controls-local-records.json');
  expect(patchesOf(await read('step-controls-local-records.json'))).toEqual([
    'local-records',
    'step-controls',
    'deciding-vote-record',
  ]);
  // What it holds, so replaying it walks each of those paths: the skipped step never sent, the
  // retry a second send after the pause between attempts, every record but the request a local
  // activity.
  const controlled = await read('step-controls-local-records.json');
  expect(sendsOf(controlled)).toEqual(['flaky#1', 'flaky#2', 'optional#-', 'last#-']);
  expect(eventsOf(controlled).filter((e) => e.eventType === 'EVENT_TYPE_TIMER_STARTED')).toHaveLength(1);
  expect(activitiesOf(controlled).filter((a) => a.startsWith('record'))).toEqual(['recordEvent']);
  expect(localActivitiesOf(controlled)).toEqual(['recordEvents', ...Array<string>(11).fill('recordEvent')]);
  const patched = new Set([
    'step-controls-local-records.json',
    'step-controls.json',
    'local-records.json',
    'fan-out.json',
    'deciding-vote-record.json',
    'fan-out-targets.json',
  ]);
  for (const file of files.filter((f) => !patched.has(f))) expect(patchesOf(await read(file))).toEqual([]);
});
