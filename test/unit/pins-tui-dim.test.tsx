/**
 * The catalog lists a runbook the user may not launch dimmed (grey), as the README says, with its
 * `⊘` marker carrying the meaning alone when NO_COLOR turns colour off. ink draws with chalk, which
 * decides at import whether colour is on: FORCE_COLOR is set before anything is imported, as a
 * colour terminal would, and NO_COLOR is what each test changes.
 */
import { afterEach, describe, expect, test, vi } from 'vitest';

vi.hoisted(() => {
  process.env['FORCE_COLOR'] = '1';
});

import { cleanup, render } from 'ink-testing-library';
import { App } from '../../cli/tui/App.tsx';
import type { RunbookInfo } from '../../cli/tui/types.ts';
import { RUNBOOKS, fakeApi, tick, until } from '../helpers/tui.ts';

/** Grey foreground (SGR 90), what the catalog's "dim" tone draws, and its reset. */
const GREY = '\u001b[90m';
const SGR = /\u001b\[[0-9;]*m/g;

async function catalog() {
  const api = fakeApi();
  const runbooks: RunbookInfo[] = RUNBOOKS.map((r) => ({
    ...r,
    launch: r.name === 'rotate-logs' ? { allowed: false, reason: 'weekend freeze' } : { allowed: true },
  }));
  api.on('listRunbooks', () => ({ runbooks, invalid: [] }));
  const r = render(<App api={api} />);
  await tick();
  const frame = await until(
    r.lastFrame,
    (f) => f.includes('deploy-web v1') && f.includes('rotate-logs v2'),
    'the catalog',
  );
  const line = (name: string) => {
    const found = frame.split('\n').find((l) => l.replace(SGR, '').includes(`${name} v`));
    if (!found) throw new Error(`no row for ${name}:\n${frame}`);
    return found;
  };
  return { locked: line('rotate-logs'), allowed: line('deploy-web') };
}

afterEach(() => {
  cleanup();
  vi.unstubAllEnvs();
});

describe('a runbook the user may not launch', () => {
  test('is listed dimmed: its whole row is grey, the row of one that may be launched is not', async () => {
    vi.stubEnv('NO_COLOR', '');
    const { locked, allowed } = await catalog();
    // Grey from the row's first cell to its last, and no other colour in it (the risk word too).
    expect(locked.trimEnd()).toMatch(/^\u001b\[90m[^\u001b]*⊘ rotate-logs v2 +low [^\u001b]*\u001b\[39m$/);
    expect(allowed).not.toContain(GREY);
    expect(allowed.replace(SGR, '')).toMatch(/› deploy-web v1/);
  });

  test('with NO_COLOR the row has no colour at all, and the marker says it', async () => {
    vi.stubEnv('NO_COLOR', '1');
    const { locked } = await catalog();
    expect(locked).not.toContain(GREY);
    expect(locked.replace(SGR, '')).toMatch(/ ⊘ rotate-logs v2 +low/);
  });
});
