import { describe, expect, test } from 'vitest';
import { loadConfig } from '../../src/config.ts';

/** What one worker process takes on at once (MECHANIC_WORKER_*): defaults, settings, and Temporal's rules said up front. */
describe('worker concurrency settings', () => {
  test('defaults: the SDK’s own limits, and up to 1000 runs kept in memory', () => {
    expect(loadConfig({}).worker).toEqual({
      maxActivities: 100,
      maxWorkflowTasks: 40,
      maxLocalActivities: 100,
      maxCachedRuns: 1000,
      heapMb: 512,
    });
  });

  test('each is read from its setting', () => {
    const config = loadConfig({
      MECHANIC_WORKER_MAX_ACTIVITIES: '3',
      MECHANIC_WORKER_MAX_WORKFLOW_TASKS: '2',
      MECHANIC_WORKER_MAX_LOCAL_ACTIVITIES: '1',
      MECHANIC_WORKER_MAX_CACHED_RUNS: '0',
    });
    expect(config.worker).toEqual({
      maxActivities: 3,
      maxWorkflowTasks: 2,
      maxLocalActivities: 1,
      maxCachedRuns: 0,
      heapMb: 512,
    });
  });

  test('fewer cached runs than workflow tasks at once, or just one, is refused naming both settings', () => {
    const message =
      'MECHANIC_WORKER_MAX_CACHED_RUNS must be 0 or at least MECHANIC_WORKER_MAX_WORKFLOW_TASKS (and at least 2)';
    expect(() => loadConfig({ MECHANIC_WORKER_MAX_CACHED_RUNS: '10' })).toThrow(message);
    expect(() => loadConfig({ MECHANIC_WORKER_MAX_CACHED_RUNS: '1', MECHANIC_WORKER_MAX_WORKFLOW_TASKS: '2' })).toThrow(
      message,
    );
    expect(loadConfig({ MECHANIC_WORKER_MAX_CACHED_RUNS: '40' }).worker.maxCachedRuns).toBe(40);
  });

  test('zero activities or a single workflow task is refused', () => {
    expect(() => loadConfig({ MECHANIC_WORKER_MAX_ACTIVITIES: '0' })).toThrow('MECHANIC_WORKER_MAX_ACTIVITIES');
    expect(() => loadConfig({ MECHANIC_WORKER_MAX_WORKFLOW_TASKS: '1' })).toThrow('MECHANIC_WORKER_MAX_WORKFLOW_TASKS');
  });
});
