/**
 * A Slack user is a mechanic identity only when the admin's Slack users file says so: by Slack
 * user id, or — when allowed — by the e-mail Slack has confirmed for a live human account.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readSlackUsersFile, slackIdentities, type SlackUsersFile } from '../../src/slack/identity.ts';
import type { SlackUserInfo } from '../../src/slack/client.ts';

const FILE: SlackUsersFile = {
  users: [
    { slackUserId: 'U0BOB', id: 'bob', roles: ['approver'], groups: ['sre'] },
    { email: 'carol@example.com', id: 'carol', roles: ['approver'], groups: ['dba'] },
    { slackUserId: 'U0ERIN', email: 'erin@example.com', id: 'erin', roles: ['approver'] },
  ],
};

function directory(users: Record<string, Partial<SlackUserInfo>>) {
  const asked: string[] = [];
  return {
    asked,
    api: {
      async userInfo(id: string): Promise<SlackUserInfo> {
        asked.push(id);
        const u = users[id];
        if (!u) throw new Error('user_not_found');
        return { id, email: undefined, emailConfirmed: true, deleted: false, isBot: false, ...u };
      },
    },
  };
}

describe('who a Slack user is', () => {
  test('a mapped Slack id is that identity, with its roles and groups, without asking Slack', async () => {
    const d = directory({});
    const r = await slackIdentities(FILE, { allowEmail: true, api: d.api }).resolve('U0BOB');
    expect(r).toEqual({
      ok: true,
      via: 'slack-id',
      user: { id: 'bob', displayName: 'bob', roles: ['approver'], groups: ['sre'] },
    });
    expect(d.asked).toEqual([]);
  });

  test('an unmapped Slack id is nobody when e-mail matching is off, even with a matching e-mail', async () => {
    const d = directory({ U0CAROL: { email: 'carol@example.com' } });
    const r = await slackIdentities(FILE, { allowEmail: false, api: d.api }).resolve('U0CAROL');
    expect(r).toEqual({
      ok: false,
      reason:
        'your Slack account (U0CAROL) is not mapped to a mechanic user; ask an admin to add it to the Slack users file',
    });
    expect(d.asked).toEqual([]);
  });

  test('with e-mail matching allowed, a confirmed e-mail maps (case-insensitively)', async () => {
    const d = directory({ U0CAROL: { email: 'Carol@Example.com' } });
    const r = await slackIdentities(FILE, { allowEmail: true, api: d.api }).resolve('U0CAROL');
    expect(r).toMatchObject({ ok: true, via: 'email', user: { id: 'carol', groups: ['dba'] } });
  });

  test.each([
    ['an unconfirmed e-mail', { email: 'carol@example.com', emailConfirmed: false }],
    ['a deleted account', { email: 'carol@example.com', deleted: true }],
    ['a bot', { email: 'carol@example.com', isBot: true }],
    ['no e-mail (no users:read.email scope)', {}],
    ['an e-mail nobody has', { email: 'mallory@example.com' }],
  ])('%s maps to nobody', async (_label, info) => {
    const d = directory({ U0OTHER: info });
    const r = await slackIdentities(FILE, { allowEmail: true, api: d.api }).resolve('U0OTHER');
    expect(r.ok).toBe(false);
  });

  test('an e-mail pinned to one Slack id does not map another Slack account that claims it', async () => {
    const d = directory({ U0MALLORY: { email: 'erin@example.com' } });
    const r = await slackIdentities(FILE, { allowEmail: true, api: d.api }).resolve('U0MALLORY');
    expect(r.ok).toBe(false);
  });
});

describe('the Slack users file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mechanic-slack-users-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  test.each([
    ['not JSON', '{', 'is not valid JSON'],
    [
      'an unknown field',
      JSON.stringify({ users: [{ slackUserId: 'U1X', id: 'bob', roles: ['approver'], admin: true }] }),
      'is invalid',
    ],
    [
      'neither id nor e-mail',
      JSON.stringify({ users: [{ id: 'bob', roles: ['approver'] }] }),
      'needs a slackUserId or an email',
    ],
    ['an unknown role', JSON.stringify({ users: [{ slackUserId: 'U1X', id: 'bob', roles: ['root'] }] }), 'is invalid'],
    [
      'one Slack id twice',
      JSON.stringify({
        users: [
          { slackUserId: 'U1X', id: 'bob', roles: ['approver'] },
          { slackUserId: 'U1X', id: 'carol', roles: ['approver'] },
        ],
      }),
      'maps U1X twice',
    ],
  ])('%s is refused with one sentence naming the file', async (_label, text, says) => {
    const file = path.join(dir, `${_label.replace(/\W/g, '-')}.json`);
    await writeFile(file, text);
    await expect(readSlackUsersFile(file)).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining(says),
    });
  });

  test('a missing file says how to make one', async () => {
    await expect(readSlackUsersFile(path.join(dir, 'absent.json'))).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('does not exist; create it'),
    });
  });
});
