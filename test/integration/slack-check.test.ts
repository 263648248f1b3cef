/**
 * `mechanic slack check` (the real command line, against a local fake of the Slack Web API) and
 * the set-up files it stands behind: the app manifest asks for every scope mechanic needs and
 * points Slack at the routes the server has, and the example users file is one the server reads.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { requiredScopes } from '../../src/slack/check.ts';
import { readSlackUsersFile } from '../../src/slack/identity.ts';
import { runCli } from '../helpers/cli.ts';
import { startFakeSlack, type FakeSlack } from '../helpers/fake-slack.ts';

const SECRET = 'slack-signing-secret-for-tests-0123456789';

describe('mechanic slack check', () => {
  let dir: string;
  let usersFile: string;
  const fakes: FakeSlack[] = [];
  const env = (fake: FakeSlack, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
    ...process.env,
    MECHANIC_HOME: dir,
    MECHANIC_SLACK_BOT_TOKEN: fake.token,
    MECHANIC_SLACK_SIGNING_SECRET: SECRET,
    MECHANIC_SLACK_API_URL: fake.apiUrl,
    MECHANIC_SLACK_CHANNEL: 'C0APPROVE',
    MECHANIC_SLACK_CHANNELS: 'big-switch=C0RISKY',
    MECHANIC_SLACK_USERS_FILE: usersFile,
    ...extra,
  });
  const fake = async (opts: Parameters<typeof startFakeSlack>[0]) => {
    const f = await startFakeSlack(opts);
    fakes.push(f);
    return f;
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mechanic-slack-check-'));
    usersFile = path.join(dir, 'slack-users.json');
    await writeFile(usersFile, JSON.stringify({ users: [{ slackUserId: 'U0BOB', id: 'bob', roles: ['approver'] }] }));
  });
  afterAll(async () => {
    for (const f of fakes) await f.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('all is well: token, scopes, users file, the bot in both channels', async () => {
    const f = await fake({ channels: { C0APPROVE: ['U0BOT'], C0RISKY: ['U0BOT', 'U0BOB'] } });
    const r = await runCli(['slack', 'check'], env(f));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ok    token: the bot token is valid (bot user U0BOT, team T0FAKE)');
    expect(r.stdout).toContain('ok    channel C0RISKY: the bot is a member of C0RISKY');
    expect(r.stdout.trim().split('\n').at(-1)).toBe('Slack is ready for mechanic.');
  });

  test('each problem is named with what to do, and the exit code says so', async () => {
    const f = await fake({ channels: { C0APPROVE: ['U0BOB'] }, scopes: ['chat:write', 'users:read'] });
    const r = await runCli(['slack', 'check', '--json'], env(f));
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout) as { ok: boolean; checks: { check: string; ok: boolean; detail: string }[] };
    expect(j.ok).toBe(false);
    expect(j.checks.filter((c) => !c.ok).map((c) => [c.check, c.detail])).toEqual([
      [
        'scopes',
        'the token lacks commands, channels:read; add them to the app (slack/manifest.yaml has them) and reinstall it',
      ],
      ['channel C0APPROVE', 'the bot is not a member of C0APPROVE; invite it there (/invite @mechanic)'],
      [
        'channel C0RISKY',
        "C0RISKY cannot be read (Slack refused conversations.members: channel_not_found); check the channel id and the bot's access",
      ],
    ]);
  });

  test('a wrong token is one failure, and the channels are not asked about', async () => {
    const f = await fake({ channels: { C0APPROVE: ['U0BOT'] } });
    const r = await runCli(['slack', 'check'], env(f, { MECHANIC_SLACK_BOT_TOKEN: 'xoxb-not-the-token' }));
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      "FAIL  token: the bot token does not work (Slack refused auth.test: invalid_auth); set MECHANIC_SLACK_BOT_TOKEN to the app's Bot User OAuth Token",
    );
    expect(r.stdout).toContain('FAIL  channel C0APPROVE: not checked: the token does not work');
  });

  test('Socket Mode: the app token is checked, and without a signing secret the set-up is complete', async () => {
    const f = await fake({ channels: { C0APPROVE: ['U0BOT'], C0RISKY: ['U0BOT'] } });
    const e = env(f, { MECHANIC_SLACK_APP_TOKEN: f.appToken });
    delete e['MECHANIC_SLACK_SIGNING_SECRET'];
    const r = await runCli(['slack', 'check'], e);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ok    app token: the app token opens Socket Mode connections');
    expect(f.callsTo('apps.connections.open').map((c) => c.token)).toEqual([f.appToken]);

    const wrong = await runCli(['slack', 'check'], { ...e, MECHANIC_SLACK_APP_TOKEN: 'xapp-1-not-the-app-token' });
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toContain(
      'FAIL  app token: the app token does not work (Slack refused apps.connections.open: invalid_auth); set MECHANIC_SLACK_APP_TOKEN to an app-level token with connections:write and turn on Socket Mode',
    );
    // Without an app token nothing asks for a Socket Mode URL.
    const before = f.callsTo('apps.connections.open').length;
    expect((await runCli(['slack', 'check'], env(f))).stdout).not.toContain('app token');
    expect(f.callsTo('apps.connections.open')).toHaveLength(before);
  });

  test.each([
    [
      'no Slack settings at all',
      {
        MECHANIC_SLACK_BOT_TOKEN: undefined,
        MECHANIC_SLACK_SIGNING_SECRET: undefined,
        MECHANIC_SLACK_CHANNEL: undefined,
      },
      'Slack is not configured: set MECHANIC_SLACK_BOT_TOKEN',
    ],
    [
      'a signing secret without a token',
      { MECHANIC_SLACK_BOT_TOKEN: undefined },
      'MECHANIC_SLACK_SIGNING_SECRET is set without MECHANIC_SLACK_BOT_TOKEN',
    ],
    ['a user token in place of a bot token', { MECHANIC_SLACK_BOT_TOKEN: 'hunter2' }, 'must be a bot token (xoxb-…)'],
    ['a short signing secret', { MECHANIC_SLACK_SIGNING_SECRET: 'short' }, 'MECHANIC_SLACK_SIGNING_SECRET must be set'],
    [
      'neither a signing secret nor an app token',
      { MECHANIC_SLACK_SIGNING_SECRET: undefined },
      'or MECHANIC_SLACK_APP_TOKEN to an app-level token for Socket Mode',
    ],
    [
      'an app token that is not an app-level token',
      { MECHANIC_SLACK_APP_TOKEN: 'xoxb-a-bot-token-again' },
      'MECHANIC_SLACK_APP_TOKEN must be an app-level token (xapp-…)',
    ],
    [
      'an app token without a bot token',
      {
        MECHANIC_SLACK_BOT_TOKEN: undefined,
        MECHANIC_SLACK_SIGNING_SECRET: undefined,
        MECHANIC_SLACK_APP_TOKEN: 'xapp-1-A0-0123456789',
      },
      'MECHANIC_SLACK_APP_TOKEN is set without MECHANIC_SLACK_BOT_TOKEN',
    ],
    ['no channel', { MECHANIC_SLACK_CHANNEL: undefined }, 'MECHANIC_SLACK_CHANNEL must name the channel id'],
    ['a malformed channel list', { MECHANIC_SLACK_CHANNELS: 'big switch' }, 'write runbook=CHANNELID pairs'],
    [
      'a run link that is not http(s)',
      { MECHANIC_SLACK_RUN_URL: 'javascript:alert(1)' },
      'must be an http(s) URL with {id}',
    ],
  ])('%s is one sentence and exit 1, no stack trace', async (_label, extra, says) => {
    const f = fakes[0]!;
    const e = env(f);
    for (const [k, v] of Object.entries(extra)) {
      if (v === undefined) delete e[k];
      else e[k] = v;
    }
    const r = await runCli(['slack', 'check'], e);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(says);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  test('the manifest asks for every scope mechanic uses and points at the server’s Slack routes', async () => {
    const manifest = parseYaml(await readFile('slack/manifest.yaml', 'utf8')) as {
      oauth_config: { scopes: { bot: string[] } };
      settings: { interactivity: { request_url: string }; socket_mode_enabled: boolean };
      features: { slash_commands: { command: string; url: string }[] };
    };
    expect(manifest.oauth_config.scopes.bot).toEqual(expect.arrayContaining(requiredScopes({ allowEmail: true })));
    expect(new URL(manifest.settings.interactivity.request_url).pathname).toBe('/slack/interactions');
    // HTTP by default; Socket Mode is one switch (with an app token), the manifest says how.
    expect(manifest.settings.socket_mode_enabled).toBe(false);
    expect(manifest.features.slash_commands.map((c) => [c.command, new URL(c.url).pathname])).toEqual([
      ['/mechanic', '/slack/commands'],
    ]);
  });

  test('the example Slack users file is one the server reads', async () => {
    const file = await readSlackUsersFile('slack/users.example.json');
    expect(file.users.map((u) => u.id)).toEqual(['bob', 'carol', 'dave']);
  });
});
