/**
 * The catalog shows runbooks the user may not launch, disabled, with the reason the API gives
 * (issue 6, catalog): a text marker on the row (readable without colour), the reason in the detail
 * pane, and Enter on one says why in place instead of opening the launch form.
 */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { cleanup, render } from 'ink-testing-library';
import { App } from '../../cli/tui/App.tsx';
import type { RunbookInfo } from '../../cli/tui/types.ts';
import { KEY, RUNBOOKS, fakeApi, press, tick, until } from '../helpers/tui.ts';

const REASON = 'weekend freeze: no launches';

/** deploy-web may be launched; rotate-logs may not, for REASON. */
function catalogApi() {
  const api = fakeApi();
  const runbooks: RunbookInfo[] = RUNBOOKS.map((r) => ({
    ...r,
    launch: r.name === 'rotate-logs' ? { allowed: false, reason: REASON } : { allowed: true },
  }));
  api.on('listRunbooks', () => ({ runbooks, invalid: [] }));
  return api;
}

async function open(api = catalogApi()) {
  const r = render(<App api={api} />);
  await tick();
  await until(r.lastFrame, (f) => f.includes('deploy-web v1') && f.includes('rotate-logs v2'), 'the catalog');
  return r;
}

let noColor: string | undefined;
beforeEach(() => {
  // The marker must carry the meaning alone: no colour to lean on.
  noColor = process.env['NO_COLOR'];
  process.env['NO_COLOR'] = '1';
});
afterEach(() => {
  cleanup();
  if (noColor === undefined) delete process.env['NO_COLOR'];
  else process.env['NO_COLOR'] = noColor;
});

describe('runbooks the user may not launch', () => {
  test('are listed with a text marker, and a line says what it means', async () => {
    const r = await open();
    const f = r.lastFrame()!;
    expect(f).toMatch(/ ⊘ rotate-logs v2 +low +sre +never run/);
    // The one that may be launched looks as before.
    expect(f).toMatch(/› deploy-web v1 +high +team-web +never run/);
    expect(f).not.toContain('⊘ deploy-web');
    expect(f).toContain('⊘ marks a runbook you may not launch; the detail pane says why');
  });

  test('the detail pane gives the reason the API gave', async () => {
    const r = await open();
    expect(r.lastFrame()).not.toContain('You may not launch it');
    await press(r, 'j');
    const f = await until(r.lastFrame, (x) => x.includes('rotate-logs v2 digest'), 'the detail of rotate-logs');
    expect(f).toContain(`⊘ You may not launch it: ${REASON}`);
  });

  test('Enter on one says why in place; the form does not open, and the next key clears it', async () => {
    const api = catalogApi();
    const r = await open(api);
    await press(r, 'j', KEY.enter);
    let f = await until(r.lastFrame, (x) => x.includes('you may not launch rotate-logs'), 'the refusal');
    expect(f).toContain(`⊘ you may not launch rotate-logs: ${REASON}`);
    // Still the catalog, nothing asked of the server.
    await tick(50);
    f = r.lastFrame()!;
    expect(f).not.toContain('Launch rotate-logs');
    expect(f).toContain('2 of 2 runbooks');
    expect(api.calls.filter((c) => c.name === 'plan' || c.name === 'launch')).toEqual([]);
    await press(r, 'k');
    await until(r.lastFrame, (x) => !x.includes('you may not launch rotate-logs:'), 'the refusal cleared');
  });

  test('one the user may launch still opens the form', async () => {
    const r = await open();
    await press(r, KEY.enter);
    const f = await until(r.lastFrame, (x) => x.includes('Launch deploy-web v1'), 'the launch form');
    expect(f).not.toContain('you may not launch');
  });
});
