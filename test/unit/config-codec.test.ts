import { describe, expect, test } from 'vitest';
import { loadConfig } from '../../src/config.ts';

/** MECHANIC_TEMPORAL_UI_ORIGIN: the Temporal Web UI origins the codec endpoint grants CORS with credentials. */
describe('Temporal Web UI origins', () => {
  test('unset: no origin is granted', () => {
    expect(loadConfig({}).temporal.uiOrigins).toEqual([]);
  });

  test('one or several exact origins, a trailing slash dropped', () => {
    expect(
      loadConfig({ MECHANIC_TEMPORAL_UI_ORIGIN: 'https://temporal.example.com/, http://127.0.0.1:8233' }).temporal
        .uiOrigins,
    ).toEqual(['https://temporal.example.com', 'http://127.0.0.1:8233']);
  });

  test.each([
    'temporal.example.com',
    'https://temporal.example.com/ui',
    '*',
    'ftp://temporal.example.com',
    'https://x.example?a=1',
  ])('%s is refused with a sentence saying what to give', (value) => {
    expect(() => loadConfig({ MECHANIC_TEMPORAL_UI_ORIGIN: value })).toThrow(
      /^MECHANIC_TEMPORAL_UI_ORIGIN holds ".*", which is not an origin; give the Temporal Web UI's scheme, host and port/,
    );
  });
});
