/**
 * The reporting UI's run page says when SSM cut an instance's output at its limit (issue 11,
 * part 5): the note under that stream, from the step.instance record's truncatedBySsm, and
 * nothing of the kind for output SSM did not cut. Real app over HTTP with browser sign-in.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { truncationNote } from '../../src/core/ssm-output.ts';
import type { NewAuditEvent } from '../../src/core/audit-events.ts';
import type { Browser } from '../helpers/browser.ts';
import { runEvents, startWebUi, type WebUi } from '../helpers/web-ui.ts';

let ui: WebUi;
let dave: Browser;

/** A completed one-instance run whose step.instance record gets `extra`. */
async function storeWith(id: string, extra: Record<string, unknown>): Promise<void> {
  const events = runEvents({
    id,
    runbook: 'deploy-web',
    operator: 'alice',
    approvers: ['bob'],
    at: '2026-11-20T10:00:00.000Z',
    targets: ['i-0abc'],
  });
  for (const e of events) {
    const event: NewAuditEvent = e.type === 'step.instance' ? { ...e, data: { ...e.data, ...extra } } : e;
    await ui.audit.append(event);
  }
}

beforeAll(async () => {
  ui = await startWebUi();
  await storeWith('mx-cut0001', {
    stdout: 'a'.repeat(24_000),
    stderr: 'b'.repeat(8_000),
    truncatedBySsm: ['stdout', 'stderr'],
  });
  await storeWith('mx-whole001', { stdout: 'all of it', stderr: 'and this' });
  dave = await ui.signIn('dave');
}, 120_000);
afterAll(async () => {
  await ui?.close();
});

const page = async (id: string) => {
  const res = await dave.request(`${ui.origin}/ui/runs/${id}`);
  expect(res.status).toBe(200);
  return res.text();
};

test('output SSM cut is marked "truncated by SSM" under each stream it cut', async () => {
  const html = await page('mx-cut0001');
  expect(html.split(truncationNote('stdout')).length).toBe(2);
  expect(html.split(truncationNote('stderr')).length).toBe(2);
});

test('output SSM did not cut carries no such note', async () => {
  const html = await page('mx-whole001');
  expect(html).toContain('all of it');
  expect(html).not.toContain('truncated by SSM');
});
