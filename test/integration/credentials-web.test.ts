import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { auditEvent, refreshedEventId, reissuedEventId } from '../../src/core/audit-events.ts';
import type { Browser } from '../helpers/browser.ts';
import { runEvents, startWebUi, type WebUi } from '../helpers/web-ui.ts';

/**
 * The web run page tells a refreshed lease from the first one and from a re-issue, with the new
 * key id and expiry: a run longer than a lease shows each of its keys. Real app, real SQLite store.
 */
describe('credential records on the web run page', () => {
  let ui: WebUi;
  let dave: Browser;
  const id = 'mx-refresh001';

  beforeAll(async () => {
    ui = await startWebUi();
    const events = runEvents({
      id,
      runbook: 'deploy-web',
      operator: 'alice',
      approvers: ['bob'],
      at: '2026-11-20T10:00:00.000Z',
      targets: ['i-0abc'],
    });
    const credential = (accessKeyId: string, at: string, reason: 'refreshed' | 'reissued') =>
      auditEvent('credentials.issued', {
        eventId: (reason === 'refreshed' ? refreshedEventId : reissuedEventId)(id, accessKeyId),
        executionId: id,
        actor: 'mechanic',
        at,
        data: {
          accessKeyId,
          expiration: '2026-11-20T11:30:00.000Z',
          policyDigest: 'e'.repeat(64),
          roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
          reason,
        },
      });
    // After the step started and before it ended, as a long step's polls refresh the lease.
    const started = events.findIndex((e) => e.type === 'step.started');
    events.splice(
      started + 1,
      0,
      credential('ASIATESTKEY0000002', '2026-11-20T10:00:35.000Z', 'refreshed'),
      credential('ASIATESTKEY0000003', '2026-11-20T10:00:36.000Z', 'reissued'),
    );
    for (const e of events) await ui.audit.append(e);
    dave = await ui.signIn('dave');
  }, 120_000);
  afterAll(async () => {
    await ui?.close();
  });

  test('a refresh reads "Credentials refreshed", a re-issue "Credentials issued again", each with its key', async () => {
    const res = await dave.request(`${ui.origin}/ui/runs/${id}`);
    expect(res.status).toBe(200);
    const text = await res.text();
    const order = [
      'Credentials issued',
      'ASIATESTKEY0000001',
      'Credentials refreshed',
      'ASIATESTKEY0000002',
      'Credentials issued again',
      'ASIATESTKEY0000003',
    ];
    let from = 0;
    for (const part of order) {
      const at = text.indexOf(part, from);
      expect(at, part).toBeGreaterThanOrEqual(0);
      from = at + part.length;
    }
  });
});
