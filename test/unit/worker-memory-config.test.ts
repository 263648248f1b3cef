import { describe, expect, test } from 'vitest';
import { loadConfig } from '../../src/config.ts';

/** MECHANIC_WORKER_HEAP_MB: the heap limit of the worker's JavaScript heaps (see src/temporal/worker.ts). */
describe('the worker heap setting', () => {
  test('defaults to 512 MB, and is read from its setting', () => {
    expect(loadConfig({}).worker.heapMb).toBe(512);
    expect(loadConfig({ MECHANIC_WORKER_HEAP_MB: '300' }).worker.heapMb).toBe(300);
    expect(loadConfig({ MECHANIC_WORKER_HEAP_MB: '128' }).worker.heapMb).toBe(128);
  });

  test('a limit too small to hold the worker, or not a whole number of MB, is refused naming the setting', () => {
    for (const value of ['127', '0', '-512', '512.5', 'lots', '65537']) {
      expect(() => loadConfig({ MECHANIC_WORKER_HEAP_MB: value }), value).toThrow(
        expect.objectContaining({
          code: 'CONFIG_INVALID',
          message: expect.stringContaining('MECHANIC_WORKER_HEAP_MB') as unknown,
        }),
      );
    }
  });
});
