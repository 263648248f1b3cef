/**
 * The message follower's memory: a real SQLite audit log, the server's audit tail, the follower's
 * state file and the fake Slack. Turning Slack on does not post every run the log already holds;
 * a restarted server continues from its stored cursor, updating the message it posted before
 * rather than posting a second one.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { auditEvent, requestedEvent, workflowEventId } from '../../src/core/audit-events.ts';
import { createAuditTail, type AuditTail } from '../../src/server/audit-tail.ts';
import { createSlackApi } from '../../src/slack/client.ts';
import { startMessageFollower } from '../../src/slack/follower.ts';
import { openSlackState } from '../../src/slack/state.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { startFakeSlack, type FakeSlack } from '../helpers/fake-slack.ts';
import { testInput } from '../helpers/plans.ts';

describe('the Slack message follower remembers where it is', () => {
  let dir: string;
  let audit: AuditStore;
  let tail: AuditTail;
  let fake: FakeSlack;
  const log = pino({ level: 'silent' });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mechanic-slack-follower-'));
    audit = await openAuditStore({ kind: 'sqlite', file: path.join(dir, 'audit.db') });
    tail = createAuditTail(audit, 20);
    fake = await startFakeSlack();
  });
  afterAll(async () => {
    tail?.stop();
    await audit?.close();
    await fake?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A follower as a server starts one; stopping it closes its state file too. */
  const follower = () => {
    const state = openSlackState(path.join(dir, 'slack.db'));
    const f = startMessageFollower({
      audit,
      waitBeyond: (seq, signal) => tail.waitBeyond(seq, signal),
      state,
      api: createSlackApi({ token: fake.token, apiUrl: fake.apiUrl }),
      channelFor: () => 'C0APPROVE',
      log,
    });
    return {
      settled: () => f.settled(),
      stop: async () => {
        await f.stop();
        state.close();
      },
    };
  };

  test('runs already in the log when Slack is turned on are not posted; new ones are; a restart picks up where it was', async () => {
    const old = testInput({ executionId: 'mx-oldrun' });
    await audit.append(requestedEvent(old));

    let f = follower();
    await f.settled();
    expect(fake.messages).toEqual([]);

    const fresh = testInput({ executionId: 'mx-newrun', required: 2 });
    await audit.append(requestedEvent(fresh));
    await f.settled();
    expect(fake.messages.map((m) => m.text)).toEqual([expect.stringContaining('mx-newrun')]);
    await f.stop();

    // While the server is down, bob approves; the restarted follower updates the same message.
    await audit.append(
      auditEvent('approval.granted', {
        eventId: workflowEventId('mx-newrun', 1, 'approval.granted'),
        executionId: 'mx-newrun',
        actor: 'bob',
        at: new Date().toISOString(),
        data: { planDigest: fresh.planDigest },
      }),
    );
    f = follower();
    await f.settled();
    await f.stop();
    expect(fake.messages).toHaveLength(1);
    expect(fake.messages[0]!.history).toHaveLength(2);
    expect(JSON.stringify(fake.messages[0]!.blocks)).toContain('1 of 2 approvals (bob); 1 more needed');
  });
});
