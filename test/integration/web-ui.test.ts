/**
 * The reporting UI over real HTTP: the real app with browser sign-in at the development provider,
 * a real SQLite store that signs checkpoints, the real Cedar policies. Runs are written into the
 * log the way the workflow writes them; the pages list, filter, page and show them, refuse what is
 * malformed or forbidden (and record it), show stored text inert, and verify each run's proof.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEMO_USERS } from '../../src/authz/users.ts';
import type { Browser } from '../helpers/browser.ts';
import { PLAN_DIGEST, startWebUi, storeRun, type WebUi } from '../helpers/web-ui.ts';

const HOSTILE = 'done <script>alert(1)</script> \u001b[31mred\u001b[0m \u202eevil';

describe('the reporting web UI', () => {
  let ui: WebUi;
  let dave: Browser;
  let bob: Browser;
  let alice: Browser;
  let erin: Browser;
  const get = async (b: Browser, path: string) => {
    const res = await b.request(`${ui.origin}${path}`);
    return { status: res.status, text: await res.text(), res };
  };
  const refusals = async (actor: string) =>
    (await ui.audit.list({ limit: 10_000 })).filter(
      (r) => r.actor === actor && (r.type === 'access.denied' || r.type === 'request.refused'),
    );

  beforeAll(async () => {
    // erin writes runbooks and nothing else: the author role has no readRun.
    ui = await startWebUi({
      users: [...DEMO_USERS, { id: 'erin', displayName: 'Erin (author)', roles: ['author'], groups: ['dev'] }],
    });
    // 120 runs over ten days: three runbooks, two operators, approvers, instances, every ending.
    for (let i = 0; i < 120; i++) {
      const day = 1 + (i % 10);
      await storeRun(ui.audit, {
        id: `mx-run${String(i).padStart(4, '0')}`,
        runbook: ['deploy-web', 'rotate-logs', 'restart-db'][i % 3]!,
        operator: i % 2 === 0 ? 'alice' : 'carol',
        approvers: i % 4 === 0 ? ['bob'] : ['carol' === (i % 2 === 0 ? 'alice' : 'carol') ? 'alice' : 'carol'],
        at: `2026-11-${String(day).padStart(2, '0')}T${String(8 + (i % 9)).padStart(2, '0')}:00:00.000Z`,
        targets: i % 5 === 0 ? ['i-0abc', 'i-0def'] : ['i-0def'],
        end: i % 7 === 0 ? 'failed' : 'completed',
      });
    }
    await storeRun(ui.audit, {
      id: 'mx-hostile01',
      runbook: 'deploy-web',
      operator: 'alice',
      approvers: ['bob'],
      at: '2026-11-20T10:00:00.000Z',
      targets: ['i-0bad'],
      stdout: HOSTILE,
      reason: 'ship it',
    });
    await storeRun(ui.audit, {
      id: 'mx-pending01',
      runbook: 'deploy-web',
      operator: 'alice',
      at: '2026-11-21T10:00:00.000Z',
      targets: ['i-0abc'],
      end: 'pending',
    });
    [dave, bob, alice, erin] = await Promise.all([
      ui.signIn('dave'),
      ui.signIn('bob'),
      ui.signIn('alice'),
      ui.signIn('erin'),
    ]);
  }, 120_000);
  afterAll(async () => {
    await ui?.close();
  });

  test('a browser without a session is sent to sign in, and back to the page it asked for', async () => {
    const res = await fetch(`${ui.origin}/ui/runs?runbook=deploy-web`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/auth/login?next=%2Fui%2Fruns%3Frunbook%3Ddeploy-web');
    const home = await dave.request(`${ui.origin}/ui`);
    expect([home.status, home.headers.get('location')]).toEqual([302, '/ui/runs']);
    const unknown = await get(dave, '/ui/nothing-here');
    expect(unknown.status).toBe(404);
    expect(unknown.text).toContain('There is no page /ui/nothing-here in mechanic');
  });

  test('the list shows the newest runs first and pages with an opaque token to the end', async () => {
    const first = await get(dave, '/ui/runs');
    expect(first.status).toBe(200);
    expect(first.res.headers.get('content-security-policy')).toContain("script-src 'self'");
    const ids = (html: string) => [...html.matchAll(/href="\/ui\/runs\/(mx-[\w]+)"/g)].map((m) => m[1]!);
    expect(ids(first.text)[0]).toBe('mx-pending01');
    expect(ids(first.text)).toHaveLength(50);
    const seen = new Set(ids(first.text));
    let next = /href="([^"]+)" rel="next"/.exec(first.text)?.[1];
    let pages = 1;
    while (next) {
      const page = await get(dave, next.replaceAll('&amp;', '&'));
      expect(page.status).toBe(200);
      for (const id of ids(page.text)) {
        expect(seen.has(id), id).toBe(false);
        seen.add(id);
      }
      next = /href="([^"]+)" rel="next"/.exec(page.text)?.[1];
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen.size).toBe(122);
  });

  test.each([
    ['runbook', 'runbook=restart-db', (i: number) => i % 3 === 2],
    ['operator', 'operator=carol', (i: number) => i % 2 === 1],
    ['approver', 'approver=bob', (i: number) => i % 4 === 0],
    ['instance', 'instance=i-0abc', (i: number) => i % 5 === 0],
    ['status', 'status=failed', (i: number) => i % 7 === 0],
    ['time range', 'from=2026-11-03&to=2026-11-04', (i: number) => [3, 4].includes(1 + (i % 10))],
    ['several at once', 'operator=alice&instance=i-0abc&status=completed', (i: number) => i % 10 === 0 && i % 7 !== 0],
  ])('filter by %s', async (_label, query, expected) => {
    const ids: string[] = [];
    let next: string | undefined = `/ui/runs?${query}`;
    while (next) {
      const page = await get(dave, next);
      expect(page.status).toBe(200);
      ids.push(...[...page.text.matchAll(/href="\/ui\/runs\/(mx-run\d+)"/g)].map((m) => m[1]!));
      next = /href="([^"]+)" rel="next"/.exec(page.text)?.[1]?.replaceAll('&amp;', '&');
    }
    const want = Array.from({ length: 120 }, (_, i) => i)
      .filter(expected)
      .map((i) => `mx-run${String(i).padStart(4, '0')}`);
    expect(ids.sort()).toEqual(want.sort());
  });

  test.each([
    ['a malformed page token', '/ui/runs?page=not-a-token!', 'the page token is not one this server made'],
    ['a forged page token', `/ui/runs?page=${Buffer.from('["yesterday","x"]').toString('base64url')}`, 'page token'],
    ['an unknown status', '/ui/runs?status=exploded', 'the filter "status" must be one of'],
    ['a malformed date', '/ui/runs?from=last-tuesday', 'the filter "from" must be a date'],
    ['an impossible date', '/ui/runs?from=2026-13-45', 'the filter "from" must be a date'],
    ['a range that ends before it starts', '/ui/runs?from=2026-11-05&to=2026-11-01', '"from" must be before "to"'],
    ['an unknown filter', '/ui/runs?colour=red', 'this page has no filter "colour"'],
    ['a repeated filter', '/ui/runs?runbook=a&runbook=b', 'is given 2 times'],
    ['markup in a filter', '/ui/runs?operator=%3Cscript%3E', 'the filter "operator" may hold only'],
    ['a search for host and person at once', '/ui/search?instance=i-0abc&person=alice', 'not both at once'],
  ])('%s is a 400 page naming the problem, recorded', async (_label, path, sentence) => {
    const before = (await refusals('dave')).length;
    const page = await get(dave, path);
    expect(page.status).toBe(400);
    expect(page.text).toContain(sentence.replaceAll('"', '&quot;'));
    expect(page.text).not.toContain('<script>');
    expect(page.text).not.toMatch(/at .*\.ts:\d+/);
    const after = await refusals('dave');
    expect(after.length).toBeGreaterThanOrEqual(before + (before === 0 ? 1 : 0));
  });

  test('a person without readAudit gets a 403 page for the log, and the denial is recorded', async () => {
    const before = (await refusals('bob')).filter((r) => r.type === 'access.denied').length;
    for (const path of ['/ui/runs', '/ui/search?person=alice', '/ui/runbooks']) {
      const page = await get(bob, path);
      expect(page.status, path).toBe(403);
      expect(page.text).toContain('Not allowed');
    }
    const denied = (await refusals('bob')).filter((r) => r.type === 'access.denied');
    expect(denied.length).toBeGreaterThan(before);
    expect(denied.at(-1)!.data).toMatchObject({ action: 'readAudit', channel: 'web' });
  });

  test('a run’s page needs readRun: someone without it gets the 403 page, the run unshown, the denial recorded', async () => {
    const before = (await refusals('erin')).filter((r) => r.type === 'access.denied').length;
    const page = await get(erin, '/ui/runs/mx-hostile01');
    expect(page.status).toBe(403);
    expect(page.text).toContain('Not allowed');
    expect(page.text).not.toContain('ship it');
    expect(page.text).not.toContain('ASIATESTKEY0000001');
    const denied = (await refusals('erin')).filter((r) => r.type === 'access.denied');
    expect(denied.length).toBe(before + 1);
    expect(denied.at(-1)!.data).toMatchObject({ action: 'readRun', channel: 'web' });
  });

  test('a run’s timeline shows the plan, votes, credentials, output and end, with stored text inert', async () => {
    const page = await get(dave, '/ui/runs/mx-hostile01');
    expect(page.status).toBe(200);
    const t = page.text;
    for (const part of [
      'arn:aws:iam::123456789012:role/mechanic-runner',
      'Credential lifetime',
      'ASIATESTKEY0000001',
      'e'.repeat(64),
      'Approved',
      'fine by bob',
      'Step work on i-0bad: Success',
      'Exit code',
      'Ended: completed',
      PLAN_DIGEST('mx-hostile01'),
    ]) {
      expect(t, part).toContain(part);
    }
    // Markup shown as text, ANSI escapes gone, the bidi override shown as a marker.
    expect(t).toContain('done &lt;script&gt;alert(1)&lt;/script&gt; red &lt;U+202E&gt;evil');
    expect(t).not.toContain('<script>alert');
    expect(t).not.toContain('\u001b');
    expect(t).not.toContain('\u202e');
  });

  test('a run’s records are proven in the chain up to a signed checkpoint', async () => {
    const page = await get(dave, '/ui/runs/mx-run0003');
    expect(page.text).toMatch(/Verified: \d+ of the run’s \d+ records|Verified: \d+ of the run&#39;s \d+ records/);
    const keyId = [...ui.audit.trustedKeys.keys()][0]!;
    expect(page.text).toContain(keyId);
  });

  test('an approver sees the plan and the vote form on another person’s waiting run, with a CSRF token', async () => {
    const page = await get(bob, '/ui/runs/mx-pending01');
    expect(page.status).toBe(200);
    expect(page.text).toContain('name="decision" value="approve"');
    expect(page.text).toMatch(/name="_csrf" value="[\w-]{43}"/);
    expect(page.text).toContain('echo &#39;v1.2.3&#39;');
    const approvals = await get(bob, '/ui/approvals');
    expect(approvals.text).toContain('href="/ui/runs/mx-pending01"');
  });

  test('on their own run the requester gets no vote form, but the reason', async () => {
    const page = await get(alice, '/ui/runs/mx-pending01');
    expect(page.text).not.toContain('name="decision"');
    expect(page.text).toContain('You requested this run, and nobody approves their own change.');
    const approvals = await get(alice, '/ui/approvals');
    expect(approvals.text).not.toContain('href="/ui/runs/mx-pending01"');
  });

  test('a vote without the session’s CSRF token is refused and recorded; nothing is voted', async () => {
    const before = (await refusals('bob')).length;
    const res = await bob.request(`${ui.origin}/ui/runs/mx-pending01/vote`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        decision: 'approve',
        planDigest: PLAN_DIGEST('mx-pending01'),
        _csrf: 'forged',
      }).toString(),
    });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain('This form does not belong to your current session');
    expect((await refusals('bob')).length).toBe(before + 1);
    const votes = (await ui.audit.list({ executionId: 'mx-pending01' })).filter((r) => r.type.startsWith('approval.'));
    expect(votes).toEqual([]);
  });

  test('pages follow the event stream: a record appended after the page opened arrives as an event', async () => {
    const abort = new AbortController();
    const res = await bob.request(`${ui.origin}/ui/events`, { signal: abort.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    await storeRun(ui.audit, {
      id: 'mx-live0001',
      runbook: 'deploy-web',
      operator: 'carol',
      at: '2026-11-22T10:00:00.000Z',
      targets: ['i-0abc'],
      end: 'pending',
    });
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('mx-live0001')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    abort.abort();
    expect(text).toMatch(/event: audit\ndata: \{"seq":\d+,"type":"execution.requested","executionId":"mx-live0001"\}/);
    // Only what changed is streamed, never a record's content.
    expect(text).not.toContain('web test');
    const page = await get(bob, '/ui/approvals');
    expect(page.text).toContain('data-live="/ui/events"');
  });

  test('a malformed run id is a 400 page; an unknown one a 404 page', async () => {
    expect((await get(dave, '/ui/runs/%3Cscript%3E')).status).toBe(400);
    const missing = await get(dave, '/ui/runs/mx-nothere00');
    expect(missing.status).toBe(404);
    expect(missing.text).toContain('there is no run mx-nothere00 in the log');
  });

  test('people and hosts: who ran anything on a host in a range, what a person ran or approved', async () => {
    const host = await get(dave, '/ui/search?instance=i-0abc&from=2026-11-01&to=2026-11-05');
    expect(host.status).toBe(200);
    // Runs on i-0abc (i % 5 == 0) created on days 1..5 (1 + i % 10 in 1..5): i % 10 == 0.
    const runs = [...host.text.matchAll(/href="\/ui\/runs\/(mx-run\d+)"/g)].map((m) => m[1]!);
    expect(runs.sort()).toEqual(
      Array.from({ length: 120 }, (_, i) => i)
        .filter((i) => i % 10 === 0)
        .map((i) => `mx-run${String(i).padStart(4, '0')}`)
        .sort(),
    );
    expect(host.text).toContain('People who ran or approved anything on i-0abc');
    expect(host.text).toContain('href="/ui/search?person=alice"');

    const person = await get(dave, '/ui/search?person=bob');
    const ran = [...person.text.matchAll(/href="\/ui\/runs\/(mx-run\d+)"/g)].map((m) => m[1]!);
    // bob never operated; he approved every fourth run.
    expect(ran.length).toBe(30);
  });

  test('runbooks: versions, digests, authors and reviewers, the diff between versions, their runs', async () => {
    const v1 = `name: deploy-web\nversion: 1\ndescription: Deploy the web tier.\nroleArn: arn:aws:iam::123456789012:role/mechanic-runner\ntargets:\n  tags: { Role: web }\napproval:\n  required: 1\nsteps:\n  - name: deploy\n    script: echo one\n`;
    const v2 = v1.replace('version: 1', 'version: 2').replace('echo one', 'echo two');
    await ui.registry.publish('carol', [
      { path: 'runbooks/deploy-web.v1.yaml', text: v1 },
      { path: 'runbooks/deploy-web.v2.yaml', text: v2 },
    ]);
    const info = await ui.registry.versions('deploy-web');
    await ui.registry.review('deploy-web', 2, {
      reviewer: 'bob',
      decision: 'approve',
      digest: info.find((v) => v.version === 2)!.digest,
      comment: 'looks right',
    });
    const page = await get(dave, '/ui/runbooks/deploy-web?from=1&to=2');
    expect(page.status, page.text.slice(-600)).toBe(200);
    expect(page.text).toContain('bob: approve — looks right');
    expect(page.text).toContain(info[0]!.digest.slice(0, 19));
    expect(page.text).toContain('-    script: echo one');
    expect(page.text).toContain('+    script: echo two');
    expect(page.text).toContain('href="/ui/runs/mx-hostile01"');
    const list = await get(dave, '/ui/runbooks');
    expect(list.text).toContain('href="/ui/runbooks/deploy-web"');
    expect((await get(dave, '/ui/runbooks/deploy-web?from=x&to=2')).status).toBe(400);
  });

  test('every page type is served with the whole strict Content-Security-Policy', async () => {
    // After the runbooks test, so /ui/runbooks/deploy-web has versions to show.
    const policy = [
      "default-src 'none'",
      "script-src 'self'",
      "style-src 'self' 'unsafe-inline'",
      "img-src 'self' data:",
      "connect-src 'self'",
      "form-action 'self'",
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ].join('; ');
    for (const path of [
      '/ui/runs',
      '/ui/runs/mx-run0003',
      '/ui/runbooks',
      '/ui/runbooks/deploy-web',
      '/ui/search?person=alice',
      '/ui/reports',
      '/ui/exports',
      '/ui/approvals',
    ]) {
      const page = await get(dave, path);
      expect(page.status, path).toBe(200);
      expect(page.res.headers.get('content-security-policy'), path).toBe(policy);
    }
    // Refusals and error pages carry it too.
    for (const [b, path] of [
      [erin, '/ui/runs/mx-run0003'],
      [dave, '/ui/runs?status=exploded'],
      [dave, '/ui/nothing-here'],
    ] as const) {
      const page = await get(b, path);
      expect(page.res.headers.get('content-security-policy'), path).toBe(policy);
    }
  });
});
