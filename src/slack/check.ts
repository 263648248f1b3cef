/**
 * `mechanic slack check`: does the Slack side work, before anyone relies on it? The token is
 * valid, it has the scopes mechanic uses, the Slack users file reads, and the bot is a member of
 * every channel requests go to (Slack refuses to post elsewhere: not_in_channel).
 */
import { isMechanicError } from '../core/errors.ts';
import type { SlackApi } from './client.ts';
import { readSlackUsersFile } from './identity.ts';
import type { SlackSettings } from './index.ts';

export interface CheckResult {
  readonly check: string;
  readonly ok: boolean;
  /** One sentence: what is fine, or what is wrong and what to do. */
  readonly detail: string;
}

/** The scopes mechanic's calls need (slack/manifest.yaml asks for them). */
export function requiredScopes(settings: Pick<SlackSettings, 'allowEmail'>): string[] {
  return [
    'chat:write',
    'commands',
    'users:read',
    'channels:read',
    ...(settings.allowEmail ? ['users:read.email'] : []),
  ];
}

export async function checkSlack(
  settings: SlackSettings,
  api: Pick<SlackApi, 'authTest' | 'channelMembers'>,
  /** Asks for a Socket Mode URL with the app token (checked when one is configured). */
  openSocketUrl?: () => Promise<string>,
): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const fail = (check: string, e: unknown) =>
    results.push({ check, ok: false, detail: e instanceof Error ? e.message : String(e) });

  let botUser: string | undefined;
  try {
    const who = await api.authTest();
    botUser = who.userId;
    results.push({
      check: 'token',
      ok: true,
      detail: `the bot token is valid (bot user ${who.userId}, team ${who.teamId})`,
    });
    const missing = requiredScopes(settings).filter((s) => !who.scopes.includes(s));
    results.push(
      missing.length
        ? {
            check: 'scopes',
            ok: false,
            detail: `the token lacks ${missing.join(', ')}; add them to the app (slack/manifest.yaml has them) and reinstall it`,
          }
        : { check: 'scopes', ok: true, detail: `the token has ${requiredScopes(settings).join(', ')}` },
    );
  } catch (e) {
    fail(
      'token',
      new Error(
        `the bot token does not work (${(e as Error).message}); set MECHANIC_SLACK_BOT_TOKEN to the app's Bot User OAuth Token`,
      ),
    );
  }

  if (settings.appToken !== undefined && openSocketUrl) {
    try {
      const url = await openSocketUrl();
      results.push(
        /^wss?:\/\//.test(url)
          ? { check: 'app token', ok: true, detail: 'the app token opens Socket Mode connections' }
          : {
              check: 'app token',
              ok: false,
              detail: 'Slack gave no Socket Mode URL for the app token; turn on Socket Mode in the app’s settings',
            },
      );
    } catch (e) {
      fail(
        'app token',
        new Error(
          `the app token does not work (${(e as Error).message}); set MECHANIC_SLACK_APP_TOKEN to an app-level token with connections:write and turn on Socket Mode`,
        ),
      );
    }
  }

  try {
    const file = await readSlackUsersFile(settings.usersFile);
    results.push({ check: 'users', ok: true, detail: `${settings.usersFile} maps ${file.users.length} Slack user(s)` });
  } catch (e) {
    if (!isMechanicError(e)) throw e;
    fail('users', e);
  }

  const channels = [...new Set([settings.defaultChannel, ...Object.values(settings.channels)])];
  for (const channel of channels) {
    if (botUser === undefined) {
      results.push({ check: `channel ${channel}`, ok: false, detail: 'not checked: the token does not work' });
      continue;
    }
    try {
      const members = await api.channelMembers(channel);
      results.push(
        members.includes(botUser)
          ? { check: `channel ${channel}`, ok: true, detail: `the bot is a member of ${channel}` }
          : {
              check: `channel ${channel}`,
              ok: false,
              detail: `the bot is not a member of ${channel}; invite it there (/invite @mechanic)`,
            },
      );
    } catch (e) {
      fail(
        `channel ${channel}`,
        new Error(`${channel} cannot be read (${(e as Error).message}); check the channel id and the bot's access`),
      );
    }
  }
  return results;
}
