/**
 * The run page offers only the votes the vote itself would accept: it asks the policies with the
 * facts a vote is decided on (the runbook's approval groups and risk, who approved so far as which
 * group), not just the reader's role. Real app over HTTP, real Cedar policies, a real SQLite log.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEMO_USERS } from '../../src/authz/users.ts';
import type { Browser } from '../helpers/browser.ts';
import { startWebUi, storeRun, type WebUi } from '../helpers/web-ui.ts';

describe('the web vote form follows the runbook’s approval rules', () => {
  let ui: WebUi;
  let bob: Browser;
  let carol: Browser;
  let frank: Browser;
  const page = async (b: Browser, path: string) => (await b.request(`${ui.origin}${path}`)).text();

  beforeAll(async () => {
    // frank approves for sre, like bob; carol for dba.
    ui = await startWebUi({
      users: [...DEMO_USERS, { id: 'frank', displayName: 'Frank (approver)', roles: ['approver'], groups: ['sre'] }],
    });
    // Only dba members vote on this one.
    await storeRun(ui.audit, {
      id: 'mx-dbaonly1',
      runbook: 'restart-db',
      operator: 'alice',
      at: '2026-11-21T10:00:00.000Z',
      targets: ['i-0abc'],
      end: 'pending',
      rules: { approvalGroups: ['dba'] },
    });
    // High risk, two approvals, bob's (sre) in: a second sre approval would complete it from one group.
    await storeRun(ui.audit, {
      id: 'mx-highrisk1',
      runbook: 'deploy-web',
      operator: 'alice',
      at: '2026-11-21T11:00:00.000Z',
      targets: ['i-0abc'],
      end: 'pending',
      rules: { approvalGroups: ['sre', 'dba'], risk: 'high' },
      required: 2,
      pendingVotes: [{ approver: 'bob', groups: ['sre'] }],
    });
    [bob, carol, frank] = await Promise.all([ui.signIn('bob'), ui.signIn('carol'), ui.signIn('frank')]);
  }, 120_000);
  afterAll(async () => {
    await ui?.close();
  });

  test('an approver outside the runbook’s approval groups gets the reason, no buttons, and no listing', async () => {
    const text = await page(bob, '/ui/runs/mx-dbaonly1');
    expect(text).not.toContain('name="decision"');
    expect(text).toContain('You cannot approve this run: bob is in none of the approval groups');
    expect(await page(bob, '/ui/approvals')).not.toContain('href="/ui/runs/mx-dbaonly1"');
    const ok = await page(carol, '/ui/runs/mx-dbaonly1');
    expect(ok).toContain('name="decision" value="approve"');
    expect(ok).toContain('name="decision" value="reject"');
    expect(await page(carol, '/ui/approvals')).toContain('href="/ui/runs/mx-dbaonly1"');
  });

  test('a high-risk run offers a same-group approver only Reject, saying why; another group may approve', async () => {
    const text = await page(frank, '/ui/runs/mx-highrisk1');
    expect(text).not.toContain('name="decision" value="approve"');
    expect(text).toContain('name="decision" value="reject"');
    expect(text).toContain('every approval from one group');
    expect(text).toContain('You may still reject it.');
    const ok = await page(carol, '/ui/runs/mx-highrisk1');
    expect(ok).toContain('name="decision" value="approve"');
  });

  test('a run the reader already voted on is not listed as waiting for them', async () => {
    expect(await page(bob, '/ui/approvals')).not.toContain('href="/ui/runs/mx-highrisk1"');
    expect(await page(bob, '/ui/runs/mx-highrisk1')).toContain('You have already voted on this run.');
  });
});
