/**
 * Slack approvals over Socket Mode, on the real embedded stack (`mechanic dev`) with the real CLI:
 * the server has an app token and no signing secret, so it exposes no interaction endpoint and
 * opens a WebSocket to the fake Slack instead (apps.connections.open, then hello). Envelopes sent
 * over it reach the same handlers as the HTTP endpoint: proven here by the main approval flow
 * (two mapped approvers → the run executes on devfleet → the message shows the result) and the key
 * attacks (an unmapped user, the requester approving, a button from an older plan, a replayed
 * envelope), each acknowledged, told to the clicker, on the record, and leaving the run unchanged.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { AuditRecord } from '../../src/core/audit.ts';
import { viewFromAudit } from '../../src/core/execution-view.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { APPROVE_ACTION } from '../../src/slack/message.ts';
import { runCli, startDevStack, type DevStack } from '../helpers/cli.ts';
import {
  buttonClick,
  interactionBody,
  signSlackRequest,
  startFakeSlack,
  type FakeSlack,
  type FakeSlackMessage,
} from '../helpers/fake-slack.ts';

const CHANNEL = 'C0APPROVE';

const RUNBOOK = `name: two-keys
version: 1
description: two-keys for the Socket Mode tests.
roleArn: arn:aws:iam::123456789012:role/mechanic-runner
risk: medium
parameters:
  note: { type: string, pattern: '^[a-z ]+$' }
targets:
  tags: { Env: staging }
approval:
  required: 2
  expiresAfterMinutes: 30
  groups: [sre, dba]
steps:
  - name: say
    script: echo noted {{ note }}
`;

const SLACK_USERS = {
  users: [
    { slackUserId: 'U0ALICE', id: 'alice', roles: ['operator', 'approver'], groups: ['sre'] },
    { slackUserId: 'U0BOB', id: 'bob', roles: ['approver'], groups: ['sre'] },
    { slackUserId: 'U0CAROL', id: 'carol', roles: ['approver'], groups: ['dba'] },
  ],
};

interface Launched {
  readonly id: string;
  readonly digest: string;
}

describe('Slack approvals over Socket Mode on the embedded stack', () => {
  let dir: string;
  let fake: FakeSlack;
  let stack: DevStack;
  let audit: AuditStore;
  let run: Launched;
  const cli = (...args: string[]) => runCli(args, stack.env);

  const launch = async (): Promise<Launched> => {
    const r = await cli(
      'launch',
      'two-keys',
      '--param',
      'note=hello',
      '--reason',
      'socket test',
      '--as',
      'alice',
      '--json',
    );
    expect(r.stderr).toBe('');
    const j = JSON.parse(r.stdout) as { executionId: string; planDigest: string };
    return { id: j.executionId, digest: j.planDigest };
  };
  const approve = (user: string, digest = run.digest) =>
    buttonClick({ user, actionId: APPROVE_ACTION, value: JSON.stringify({ e: run.id, d: digest }) });
  const records = async (): Promise<AuditRecord[]> => audit.list({ limit: 10_000 });
  const viewOf = async (id: string) => viewFromAudit(await audit.list({ executionId: id, limit: 10_000 }));
  const messageOf = (id: string, pred: (m: FakeSlackMessage) => boolean = () => true) =>
    fake.waitFor(() => fake.messages.find((m) => !m.threadTs && m.text.includes(id) && pred(m)));
  const shows = (m: FakeSlackMessage, text: string) => JSON.stringify(m.blocks).includes(text);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mechanic-slack-socket-'));
    const runbooks = path.join(dir, 'runbooks');
    await mkdir(runbooks);
    await writeFile(path.join(runbooks, 'two-keys.yaml'), RUNBOOK);
    const usersFile = path.join(dir, 'slack-users.json');
    await writeFile(usersFile, JSON.stringify(SLACK_USERS));
    fake = await startFakeSlack({ channels: { [CHANNEL]: ['U0BOT'] } });
    // An app token and no signing secret: Socket Mode alone.
    stack = await startDevStack({
      MECHANIC_RUNBOOKS_DIR: runbooks,
      MECHANIC_SLACK_BOT_TOKEN: fake.token,
      MECHANIC_SLACK_APP_TOKEN: fake.appToken,
      MECHANIC_SLACK_API_URL: fake.apiUrl,
      MECHANIC_SLACK_CHANNEL: CHANNEL,
      MECHANIC_SLACK_USERS_FILE: usersFile,
    });
    audit = await openAuditStore({ kind: 'sqlite', file: path.join(stack.home, 'audit.db') });
    run = await launch();
    await fake.waitFor(() => fake.openSockets() > 0);
  }, 180_000);

  afterAll(async () => {
    await audit?.close();
    await stack?.stop();
    await fake?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('the server connects with the app token and exposes no interaction endpoint', async () => {
    const open = fake.callsTo('apps.connections.open');
    expect(open.length).toBeGreaterThanOrEqual(1);
    expect(open.every((c) => c.token === fake.appToken)).toBe(true);
    // Nothing to verify a request with, so nothing listens: a signed-looking post finds no route.
    const body = interactionBody(approve('U0BOB'));
    const res = await fetch(`${stack.info.apiUrl}/slack/interactions`, {
      method: 'POST',
      body,
      headers: signSlackRequest('any-secret-at-all-0123456789abcdef', body),
    });
    expect(res.status).toBe(404);
  });

  describe('the key attacks over Socket Mode: acknowledged, told, on the record, the run unchanged', () => {
    const rows = [
      {
        label: 'a Slack user with no mapped identity',
        payload: () => approve('U0MALLORY'),
        told: { user: 'U0MALLORY', says: 'is not mapped to a mechanic user' },
        code: 'SLACK_USER_UNMAPPED',
      },
      {
        label: 'the requester clicking Approve',
        payload: () => approve('U0ALICE'),
        told: { user: 'U0ALICE', says: 'alice requested this execution and cannot approve or reject it' },
        code: 'APPROVAL_SELF',
      },
      {
        label: 'a button from an older plan',
        payload: () => approve('U0BOB', 'f'.repeat(64)),
        told: { user: 'U0BOB', says: 'the plan you reviewed is not the plan of this execution' },
        code: 'APPROVAL_PLAN_MISMATCH',
      },
    ];
    test.each(rows)('$label', async (row) => {
      const before = (await records()).length;
      const told = fake.ephemerals.length;
      const ack = await fake.sendEnvelope('interactive', row.payload());
      expect(ack.payload).toBeUndefined();
      const added = (await records()).slice(before);
      expect(added.some((r) => r.data['code'] === row.code)).toBe(true);
      expect(added.every((r) => ['approval.refused', 'access.denied', 'request.refused'].includes(r.type))).toBe(true);
      expect(added.every((r) => r.data['channel'] === undefined || r.data['channel'] === 'slack')).toBe(true);
      const news = fake.ephemerals.slice(told);
      expect(news).toHaveLength(1);
      expect(news[0]).toMatchObject({ user: row.told.user, channel: CHANNEL });
      expect(news[0]!.text).toContain(row.told.says);
      expect((await viewOf(run.id))?.votes).toEqual([]);
    });
  });

  test('two mapped approvers approve over Socket Mode; a replayed envelope is refused; the run executes on devfleet and the message shows the result', async () => {
    const first = await fake.sendEnvelope('interactive', approve('U0BOB'));
    expect(fake.ephemerals.at(-1)).toMatchObject({ user: 'U0BOB' });
    expect(fake.ephemerals.at(-1)!.text).toContain(`Your approval of ${run.id} is recorded; 1 more approval needed`);

    // The same envelope again (Slack redelivering it, or a replay): acknowledged, refused, not counted twice.
    const before = (await records()).length;
    const again = await fake.sendEnvelope('interactive', approve('U0BOB'), first.envelopeId);
    expect(again.envelopeId).toBe(first.envelopeId);
    expect(fake.ephemerals.at(-1)!.text).toContain('already handled once');
    const added = (await records()).slice(before);
    expect(added.map((r) => [r.type, r.actor, r.data['code']])).toEqual([
      ['request.refused', 'slack:U0BOB', 'SLACK_REPLAY'],
    ]);
    expect((await viewOf(run.id))?.votes.map((v) => v.approver)).toEqual(['bob']);
    await messageOf(run.id, (m) => shows(m, '1 of 2 approvals (bob); 1 more needed'));

    await fake.sendEnvelope('interactive', approve('U0CAROL'));
    const done = await messageOf(run.id, (m) => shows(m, 'Completed'));
    expect(shows(done, '2 of 2 approvals (bob, carol)')).toBe(true);
    expect(shows(done, '✓ say: succeeded')).toBe(true);
    const view = await viewOf(run.id);
    expect(view?.status).toBe('completed');
    expect(view?.votes.map((v) => v.approver)).toEqual(['bob', 'carol']);
    expect(view?.steps[0]?.instances.every((i) => i.stdout.includes('noted hello'))).toBe(true);
    // Every envelope so far was acknowledged: three attacks, two approvals and the replay.
    expect(new Set(fake.acks.map((a) => a.envelopeId)).size).toBe(5);
    expect(fake.acks).toHaveLength(6);
  }, 120_000);

  test('a slash command over Socket Mode is answered in its ack, ephemerally', async () => {
    const ack = await fake.sendEnvelope('slash_commands', {
      command: '/mechanic',
      text: `status ${run.id}`,
      user_id: 'U0BOB',
      channel_id: CHANNEL,
    });
    expect(ack.payload).toMatchObject({ response_type: 'ephemeral' });
    expect(String(ack.payload?.['text'])).toContain(`${run.id}: two-keys@1`);
  });
});
