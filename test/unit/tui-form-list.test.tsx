import { afterEach, describe, expect, test } from 'vitest';
import { cleanup, render } from 'ink-testing-library';
import { LaunchForm } from '../../cli/tui/LaunchForm.tsx';
import { fieldProblems, formProblems, initialForm, listItemsOf, valueOf } from '../../cli/tui/form-model.ts';
import type { RunbookInfo } from '../../src/api/schemas.ts';
import { planLines } from '../../cli/tui/plan-lines.ts';
import { KEY, RUNBOOKS, fakeApi, makePlan, press, tick, until } from '../helpers/tui.ts';

afterEach(() => cleanup());

/** A runbook with a list of hosts, a list of ports with a default, and a secret reference. */
const fanOut: RunbookInfo = {
  ...RUNBOOKS[0]!,
  name: 'fan-out',
  description: 'Probe hosts',
  parameters: {
    hosts: {
      type: 'list',
      items: { type: 'string', pattern: '^[a-z0-9.-]+$', maxLength: 40 },
      minItems: 1,
      maxItems: 3,
    },
    ports: {
      type: 'list',
      items: { type: 'integer', min: 1, max: 65535 },
      minItems: 1,
      maxItems: 100,
      default: [80, 443],
    },
    db_password: { type: 'secret', default: '/app/db/password' },
  },
  steps: [{ name: 'probe', script: 'nc -z {{ hosts }}', timeoutSeconds: 60 }],
};

function form(api = fakeApi()) {
  const events = { planned: [] as unknown[] };
  const r = render(
    <LaunchForm
      api={api}
      runbook={fanOut}
      width={120}
      height={24}
      active
      setTyping={() => undefined}
      onBack={() => undefined}
      onPlanned={(p) => events.planned.push(p)}
    />,
  );
  return { r, events, api };
}

describe('list fields: the model', () => {
  test('the form opens with the default list joined by commas, and the secret reference by its name', () => {
    const { form: f, unreadable } = initialForm(fanOut);
    expect(unreadable).toEqual([]);
    expect(f.params.map((p) => [p.name, p.text])).toEqual([
      ['hosts', ''],
      ['ports', '80, 443'],
      ['db_password', '/app/db/password'],
    ]);
  });

  test('items are split at commas only, trimmed, and typed like the server types them', () => {
    expect(listItemsOf(' a , b c,d ')).toEqual(['a', 'b c', 'd']);
    expect(listItemsOf('  ')).toEqual([]);
    const ports = initialForm(fanOut).form.params[1]!;
    expect(valueOf({ ...ports, text: '8080, x' })).toEqual([8080, 'x']);
  });

  test('each bad item is its own problem, named by index, with the server rule', () => {
    const hosts = initialForm(fanOut).form.params[0]!;
    expect(fieldProblems({ ...hosts, text: 'web-1, Bad Host, also bad!' })).toEqual([
      'parameter "hosts[1]" must match ^[a-z0-9.-]+$; got "Bad Host"',
      'parameter "hosts[2]" must match ^[a-z0-9.-]+$; got "also bad!"',
    ]);
    expect(fieldProblems({ ...hosts, text: 'a, b, c, d' })).toEqual([
      'parameter "hosts" must list at most 3 items; got 4',
    ]);
    expect(fieldProblems({ ...hosts, text: '' })).toEqual(['parameter "hosts" must list at least 1 item; got 0']);
    expect(fieldProblems({ ...hosts, text: 'web-1, web-2' })).toEqual([]);
  });

  test('a secret reference must be a Parameter Store name', () => {
    const { form: f } = initialForm(fanOut);
    const bad = { ...f, params: f.params.map((p) => (p.name === 'db_password' ? { ...p, text: 'my password' } : p)) };
    expect(formProblems(bad)['db_password']).toMatch(/must be an SSM Parameter Store name/);
  });
});

describe('list fields: the form', () => {
  test('says how to type a list, shows one problem line per bad item, and sends the list as an array', async () => {
    const { r, events, api } = form();
    await tick();
    let f = await until(r.lastFrame, (x) => x.includes('items separated by commas (1–3)'));
    expect(f).toContain('read on the instance');
    await press(r, ...'web-1, BAD, x y');
    f = await until(r.lastFrame, (x) => x.includes('hosts[2]'));
    expect(f).toContain('✗ parameter "hosts[1]" must match');
    expect(f).toContain('✗ parameter "hosts[2]" must match');
    // Targets are resolved with valid values only (while "web-1" alone was typed); no bad item reaches the API.
    expect(JSON.stringify(api.calls)).not.toContain('BAD');
    // Fix it: remove the two bad items.
    for (let i = 0; i < ', BAD, x y'.length; i++) await press(r, KEY.backspace);
    await press(r, ...', web-2');
    await until(r.lastFrame, (x) => !x.includes('hosts['));
    // ports (default), db_password (default), targets, reason, submit
    await press(r, KEY.down, KEY.down, KEY.down, KEY.down, ...'probe the pair', KEY.down);
    await until(r.lastFrame, (x) => x.includes('ready: Enter plans it'));
    await press(r, KEY.enter);
    await until(
      () => String(events.planned.length),
      (x) => x === '1',
    );
    const body = (api.calls.filter((c) => c.name === 'plan').at(-1)!.input as { body: Record<string, unknown> }).body;
    expect(body['params']).toEqual({ hosts: ['web-1', 'web-2'], ports: [80, 443], db_password: '/app/db/password' });
  });
});

describe('the plan review', () => {
  test('shows a secret as a reference and a list as its items', () => {
    const plan = makePlan({
      params: { db_password: '/app/db/password', hosts: ['web-1', 'web-2'] },
      secretParams: ['db_password'],
    });
    // As the API hands it to the TUI (its arrays are plain ones).
    const info = { ...plan, targets: [...plan.targets], steps: [...plan.steps], onFailure: [...plan.onFailure] };
    const text = planLines(info, 'd'.repeat(64))
      .map((l) => l.text)
      .join('\n');
    expect(text).toContain('db_password=secret /app/db/password (SSM Parameter Store, read on the instance)');
    expect(text).toContain('hosts=["web-1","web-2"]');
  });
});
