import { afterEach, describe, expect, test } from 'vitest';
import { cleanup, render } from 'ink-testing-library';
import { App } from '../../cli/tui/App.tsx';
import { UserPicker } from '../../cli/tui/UserPicker.tsx';
import { helpLines } from '../../cli/tui/HelpOverlay.tsx';
import type { ExecutionSummary } from '../../cli/tui/types.ts';
import {
  KEY,
  RUNBOOKS,
  executionsOf,
  fakeApi,
  makePlan,
  press,
  renderAt,
  requested,
  summaryOf,
  tick,
  until,
  viewOf,
} from '../helpers/tui.ts';

afterEach(() => cleanup());

async function open(api = fakeApi()) {
  const r = render(<App api={api} />);
  await tick();
  await until(r.lastFrame, (f) => f.includes('deploy-web v1'), 'the catalog');
  return r;
}

describe('TUI app', () => {
  test('opens on the catalog: who is signed in, the runbooks, a detail pane, the key map', async () => {
    const r = await open();
    const f = r.lastFrame()!;
    expect(f).toContain('alice (operator, approver)');
    expect(f).toContain('rotate-logs v2');
    expect(f).toContain('never run');
    expect(f).toContain('Parameters');
    expect(f).toContain('release: string matching ^v\\d+\\.\\d+\\.\\d+$ (required)');
    expect(f).toContain('Steps');
    expect(f).toContain('Enter launch');
    // Risk and owners: a column each in the list, and a line in the detail pane.
    expect(f).toMatch(/deploy-web v1 +high +team-web +never run/);
    expect(f).toMatch(/rotate-logs v2 +low +sre +never run/);
    expect(f).toContain('risk high · owners team-web');
    expect(f).toContain('1 approver(s), within 60 min · from two different groups of web-leads, sre');
  });

  test('a server that does not send risk or owners: the catalog says unknown, never guesses', async () => {
    const api = fakeApi();
    api.on('listRunbooks', () => ({
      runbooks: RUNBOOKS.map(({ risk: _risk, owners: _owners, ...r }) => r),
      invalid: [],
    }));
    const r = await open(api);
    const f = r.lastFrame()!;
    expect(f).toMatch(/deploy-web v1 +\? +— +never run/);
    expect(f).toContain('risk unknown · owners unknown');
  });

  test('/ filters the catalog; Esc clears the filter', async () => {
    const r = await open();
    await press(r, '/');
    await press(r, 'rot');
    const f = await until(r.lastFrame, (x) => x.includes('1 of 2 runbooks'));
    expect(f).not.toContain('deploy-web v1 ');
    // While filtering, keys are typed: '2' does not switch tabs.
    await press(r, '2');
    expect(r.lastFrame()).toContain('/rot2');
    await press(r, KEY.backspace, KEY.enter);
    expect(r.lastFrame()).toContain('/rot');
    await press(r, KEY.esc);
    await until(r.lastFrame, (x) => x.includes('2 of 2 runbooks'));
  });

  test('? shows the help overlay with every screen, any key closes it', async () => {
    const r = await open();
    await press(r, '?');
    const f = await until(r.lastFrame, (x) => x.includes('Help'));
    expect(f).toContain('Ctrl-C');
    // The screen in front comes first; the others are further down.
    expect(f).toMatch(/Everywhere[\s\S]*Catalog[\s\S]*Enter +launch/);
    await press(r, '\u001b[6~');
    await until(r.lastFrame, (x) => x.includes('Launch form'));
    await press(r, 'x');
    await until(r.lastFrame, (x) => !x.includes('Help —'));
  });

  test('the tabs: my runs and the inbox, never my own runs in the inbox', async () => {
    const api = fakeApi();
    const mine = makePlan({ executionId: 'mx-mine00001' });
    const theirs = makePlan({ executionId: 'mx-bobs00001', requester: 'bob', reason: 'bob needs it' });
    api.on('listExecutions', () => ({ executions: [summaryOf(mine), summaryOf(theirs)] }));
    const r = await open(api);
    await press(r, '2');
    let f = await until(r.lastFrame, (x) => x.includes('runs you requested') && x.includes('mx-mine00001'));
    expect(f).toContain('mx-mine00001');
    expect(f).not.toContain('mx-bobs00001');
    await press(r, '3');
    f = await until(r.lastFrame, (x) => x.includes('waiting for approval (') && x.includes('mx-bobs00001'));
    expect(f).toContain('mx-bobs00001');
    expect(f).toContain('by bob');
    expect(f).not.toContain('mx-mine00001');
  });

  test('a live event refreshes the lists (no polling: nothing is read again without one)', async () => {
    const api = fakeApi();
    const r = await open(api);
    await press(r, '2');
    await until(r.lastFrame, (x) => x.includes('none yet'));
    const before = api.calls.filter((c) => c.name === 'listExecutions').length;
    await tick(400);
    expect(api.calls.filter((c) => c.name === 'listExecutions').length).toBe(before);
    const plan = makePlan();
    api.on('listExecutions', () => ({ executions: [summaryOf(plan)] }));
    executionsOf(api).set(plan.executionId, viewOf(plan));
    api.emit(requested(plan));
    await until(r.lastFrame, (x) => x.includes('mx-test00001'));
  });

  test('the header counts the runs waiting for my approval, on every screen, kept live by the event stream', async () => {
    const api = fakeApi();
    const theirs = makePlan({ executionId: 'mx-bobs00001', requester: 'bob', reason: 'bob needs it' });
    const other = makePlan({ executionId: 'mx-bobs00002', requester: 'bob', reason: 'and this' });
    const mine = makePlan({ executionId: 'mx-mine00001' });
    let executions: ExecutionSummary[] = [summaryOf(theirs), summaryOf(other), summaryOf(mine)];
    api.on('listExecutions', () => ({ executions }));
    const r = await open(api);
    await until(r.lastFrame, (x) => x.includes('inbox 2 · ● live'), 'the inbox count');
    // Without events nothing is read again (no polling loop).
    const reads = () => api.calls.filter((c) => c.name === 'listExecutions').length;
    const before = reads();
    await tick(400);
    expect(reads()).toBe(before);
    // I approve one (elsewhere): its event arrives and the count follows.
    executions = [{ ...summaryOf(theirs), approvals: ['alice'] }, summaryOf(other), summaryOf(mine)];
    api.emit(requested(theirs));
    await until(r.lastFrame, (x) => x.includes('inbox 1 · ● live'), 'the count after my approval');
    await press(r, '3');
    const f = await until(r.lastFrame, (x) => x.includes('mx-bobs00002'));
    expect(f).not.toContain('mx-bobs00001');
    expect(f).not.toContain('mx-mine00001');
    // Nothing left for me: no count.
    executions = [
      { ...summaryOf(theirs), status: 'running' },
      { ...summaryOf(other), status: 'rejected' },
    ];
    api.emit(requested(other));
    await until(r.lastFrame, (x) => x.includes('nothing waits for you') && !x.includes('inbox '), 'no count');
  });

  test('someone who cannot approve sees no inbox count', async () => {
    const api = fakeApi({ id: 'dave', displayName: 'Dave', roles: ['auditor'] });
    const theirs = makePlan({ executionId: 'mx-bobs00001', requester: 'bob' });
    api.on('listExecutions', () => ({ executions: [summaryOf(theirs)] }));
    const r = await open(api);
    await until(r.lastFrame, (x) => x.includes('● live'));
    expect(r.lastFrame()).not.toContain('inbox ');
  });

  test('a key typed right after a screen changes reaches the new screen, never the one that left', async () => {
    const api = fakeApi();
    const theirs = makePlan({ executionId: 'mx-bobs00001', requester: 'bob' });
    api.on('listExecutions', () => ({ executions: [summaryOf(theirs)] }));
    executionsOf(api).set(theirs.executionId, viewOf(theirs));
    const r = await open(api);
    await press(r, '3');
    await until(r.lastFrame, (x) => x.includes('› mx-bobs00001'));
    // One burst: leave the inbox for My runs, and Enter. The inbox must not hear that Enter.
    r.stdin.write('2');
    r.stdin.write(KEY.enter);
    await until(r.lastFrame, (x) => x.includes('runs you requested'));
    await tick(100);
    expect(r.lastFrame()).not.toContain('Waiting for approval');
    expect(api.calls.filter((c) => c.name === 'getExecution')).toEqual([]);
  });

  test('keys typed right behind the one that opens a screen wait for it and reach it, in order', async () => {
    const r = await open();
    r.stdin.write(KEY.enter);
    for (const ch of 'v1.2') r.stdin.write(ch);
    await until(r.lastFrame, (x) => x.includes('Launch deploy-web v1') && x.includes('v1.2'));
    await tick(100);
    const f = r.lastFrame()!;
    expect(f).not.toContain('Help —');
    // Each key once: none lost, none heard twice.
    expect(f).toMatch(/release +v1\.2▏/);
  });

  test('keys that arrive glued together (a loaded machine reads them at once) act one by one', async () => {
    const r = await open();
    r.stdin.write('/rot');
    await until(r.lastFrame, (x) => x.includes('/rot') && x.includes('1 of 2 runbooks'));
    r.stdin.write('\r\r');
    await until(r.lastFrame, (x) => x.includes('Launch rotate-logs v2'));
  });

  test('the inbox opens another person’s run, where the vote keys are offered', async () => {
    const api = fakeApi({ id: 'carol', displayName: 'Carol', roles: ['approver'] });
    const theirs = makePlan({ executionId: 'mx-alice0001' });
    api.on('listExecutions', () => ({ executions: [summaryOf(theirs)] }));
    executionsOf(api).set(theirs.executionId, viewOf(theirs));
    api.history.set(theirs.executionId, [requested(theirs)]);
    const r = render(<App api={api} />);
    await until(r.lastFrame, (x) => x.includes('deploy-web v1'));
    await press(r, '3');
    await until(r.lastFrame, (x) => x.includes('mx-alice0001'));
    await press(r, KEY.enter);
    const f = await until(r.lastFrame, (x) => x.includes('a: approve'), 'the run, with the vote keys');
    expect(f).toContain('Waiting for approval');
    await press(r, 'q');
    await until(r.lastFrame, (x) => x.includes('mx-alice0001') && x.includes('Inbox'));
  });

  test('the sign-in picker takes keys as fast as they come', async () => {
    const picked: string[] = [];
    const users = [
      { id: 'alice', displayName: 'Alice', roles: ['operator'] },
      { id: 'bob', displayName: 'Bob', roles: ['approver'] },
    ];
    const r = render(<UserPicker users={users} onPick={(id) => picked.push(id)} />);
    await tick();
    r.stdin.write(KEY.down);
    r.stdin.write(KEY.enter);
    await until(
      () => picked.join(','),
      (x) => x === 'bob',
    );
  });

  test('q on the first screen quits', async () => {
    const r = await open();
    await press(r, 'q');
    // The app has unmounted: further keys change nothing and no error is thrown.
    await press(r, '2');
    expect(r.lastFrame()).not.toContain('runs you requested');
  });

  test('an expired sign-in is shown with what to do, and the TUI keeps running', async () => {
    const api = fakeApi();
    const { UserError } = await import('../../src/core/errors.ts');
    api.on('me', () => {
      throw new UserError('UNAUTHENTICATED', 'the token is not valid');
    });
    const r = render(<App api={api} />);
    const f = await until(r.lastFrame, (x) => x.includes('token is not valid'));
    expect(f).toContain('sign in again');
    expect(f).toContain('r: try again');
    api.on('me', () => ({ user: { id: 'alice', displayName: 'A', roles: ['operator'] } }));
    await press(r, 'r');
    await until(r.lastFrame, (x) => x.includes('deploy-web v1'));
  });

  test('the API away: the catalog says so in place and r retries', async () => {
    const api = fakeApi();
    const { UserError } = await import('../../src/core/errors.ts');
    api.on('listRunbooks', () => {
      throw new UserError('SERVER_UNAVAILABLE', 'the mechanic API is not answering');
    });
    const r = render(<App api={api} />);
    const f = await until(r.lastFrame, (x) => x.includes('not answering'));
    expect(f).toContain('press r to retry');
    api.on('listRunbooks', () => ({ runbooks: RUNBOOKS, invalid: [] }));
    await press(r, 'r');
    await until(r.lastFrame, (x) => x.includes('deploy-web v1'));
  });

  test('with NO_COLOR the screen carries no colour codes', async () => {
    process.env['NO_COLOR'] = '1';
    try {
      const r = await open();
      expect(r.lastFrame()).not.toMatch(/\u001b\[3\dm/);
    } finally {
      delete process.env['NO_COLOR'];
    }
  });

  test('at 80×24 with NO_COLOR every screen fits and reads whole; the help is never cut, it scrolls', async () => {
    process.env['NO_COLOR'] = '1';
    try {
      const api = fakeApi();
      const theirs = makePlan({ executionId: 'mx-bobs00001', requester: 'bob', reason: 'bob needs it' });
      api.on('listExecutions', () => ({ executions: [summaryOf(theirs), summaryOf(makePlan())] }));
      const r = renderAt(<App api={api} />, 80, 24);
      const seen: string[] = [];
      const fits = (what: string) => {
        const f = r.lastFrame() ?? '';
        seen.push(f);
        expect(f, what).not.toMatch(/\u001b\[3\dm/);
        const lines = f.split('\n');
        expect(lines.length, what).toBeLessThanOrEqual(24);
        for (const line of lines) expect(Array.from(line).length, `${what}: ${line}`).toBeLessThanOrEqual(80);
        return f;
      };
      await until(r.lastFrame, (x) => x.includes('deploy-web v1') && x.includes('● live'));
      fits('catalog');
      // The help: every line of it appears whole, scrolling down page by page.
      await press(r, '?');
      await until(r.lastFrame, (x) => x.includes('Help —'));
      const shown = new Set<string>();
      for (let i = 0; i < 8; i++) {
        for (const line of fits('help').split('\n')) shown.add(line.replace(/^[│ ]+|[│ ]+$/g, ''));
        await press(r, '\u001b[6~'); // PgDn
      }
      for (const line of helpLines('catalog')) if (line.text.trim()) expect(shown).toContain(line.text.trim());
      await press(r, 'x');
      await until(r.lastFrame, (x) => !x.includes('Help —'));
      await press(r, '2');
      await until(r.lastFrame, (x) => x.includes('runs you requested') && x.includes('mx-test00001'));
      fits('my runs');
      await press(r, '3');
      await until(r.lastFrame, (x) => x.includes('mx-bobs00001'));
      fits('inbox');
      await press(r, '1');
      await until(r.lastFrame, (x) => x.includes('› deploy-web v1'));
      fits('catalog again');
      await press(r, KEY.enter);
      await until(r.lastFrame, (x) => x.includes('Launch deploy-web v1'));
      fits('form');
      await press(r, 'v1.2.3', KEY.down, KEY.down, KEY.down, ...'ship it', KEY.down, KEY.enter);
      await until(r.lastFrame, (x) => x.includes('Plan review'));
      fits('plan review');
      await press(r, KEY.enter, 'y');
      await until(r.lastFrame, (x) => x.includes('Waiting for approval'));
      fits('run');
      expect(seen.join('\n')).toContain('risk high');
      // Long lines of the detail pane wrap instead of being cut.
      expect(seen[0]).toMatch(/from two different groups of[\s│]*web-leads,[\s│]*sre/);
      r.unmount();
    } finally {
      delete process.env['NO_COLOR'];
    }
  });

  test('no line is wider than the terminal', async () => {
    const r = await open();
    for (const line of r.lastFrame()!.split('\n'))
      expect(Array.from(line.replace(/\u001b\[[0-9;]*m/g, '')).length).toBeLessThanOrEqual(100);
  });
});

describe('the catalog at 80×24 with a long catalog', () => {
  test('the detail pane is cut at the bottom; its lines never overlap', async () => {
    const many = {
      ...RUNBOOKS[0]!,
      name: 'a-check',
      parameters: {
        p_alpha: { type: 'integer', min: 1, max: 365, default: 30 },
        p_bravo: {
          type: 'string',
          pattern: '^[A-Za-z0-9_./][A-Za-z0-9_./-]{0,200}$',
          default: 'etc/ssl',
          maxLength: 256,
        },
        p_charlie: { type: 'boolean', default: false },
        p_delta: { type: 'enum', values: ['one', 'two'], default: 'one' },
      },
    };
    const others = Array.from({ length: 8 }, (_, i) => ({ ...RUNBOOKS[1]!, name: `runbook-${i}` }));
    const api = fakeApi();
    api.on('listRunbooks', () => ({ runbooks: [many, ...others], invalid: [] }));
    const r = renderAt(<App api={api} />, 80, 24);
    const f = await until(r.lastFrame, (x) => x.includes('› a-check v1') && x.includes('p_alpha'));
    const lines = f.split('\n');
    expect(lines.length).toBeLessThanOrEqual(24);
    for (const line of lines) expect(line.match(/p_[a-z]+:/g)?.length ?? 0, line).toBeLessThanOrEqual(1);
    // Each line reads whole: nothing of another line shows through it.
    const line = (start: string) => lines.find((l) => l.includes(start));
    expect(line('Parameters')).toMatch(/^│ Parameters\s+│$/);
    expect(line('p_alpha:')).toMatch(/p_alpha: integer ≥ 1 ≤ 365 = 30\s+│$/);
    expect(line('p_bravo:')).toMatch(/^│ {3}p_bravo: string matching \^\[A-Za-z0-9_.\/\]/);
    expect(line('p_charlie:')).toMatch(/^│ {3}p_charlie: true\/false = false\s+│$/);
    r.unmount();
  });
});
