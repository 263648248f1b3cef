import { expect, test } from 'vitest';
import { loadConfig } from '../../src/config.ts';

/** MECHANIC_ENDED_RUNS_SWEEP_SECONDS: how often the API server records the end of runs Temporal ended. */
test('the sweep runs every minute by default, as often as set, and never at zero or below', () => {
  expect(loadConfig({}).endedRunsSweepSeconds).toBe(60);
  expect(loadConfig({ MECHANIC_ENDED_RUNS_SWEEP_SECONDS: '5' }).endedRunsSweepSeconds).toBe(5);
  for (const bad of ['0', '-1', '1.5', 'often']) {
    expect(() => loadConfig({ MECHANIC_ENDED_RUNS_SWEEP_SECONDS: bad })).toThrow(/MECHANIC_ENDED_RUNS_SWEEP_SECONDS/);
  }
});
