import { loadConfig } from '../../src/config.ts';
import { UserError } from '../../src/core/errors.ts';
import { checkSlack } from '../../src/slack/check.ts';
import { createSlackApi, openSocketModeUrl } from '../../src/slack/client.ts';
import { parse } from '../args.ts';
import { out } from '../output.ts';

const USAGE = 'mechanic slack check [--json]';

/**
 * `mechanic slack check` confirms the Slack set-up the server will use: the token, its scopes, the
 * Slack users file, and the bot's membership of every configured channel. Exit 1 when anything fails.
 */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } }, USAGE);
  if (positionals[0] !== 'check' || positionals.length > 1) throw new UserError('USAGE', `usage: ${USAGE}`);
  const settings = loadConfig().slack;
  if (!settings) {
    throw new UserError(
      'CONFIG_INVALID',
      'Slack is not configured: set MECHANIC_SLACK_BOT_TOKEN, MECHANIC_SLACK_SIGNING_SECRET (or MECHANIC_SLACK_APP_TOKEN for Socket Mode) and MECHANIC_SLACK_CHANNEL (see the README)',
    );
  }
  const { appToken } = settings;
  const results = await checkSlack(
    settings,
    createSlackApi({ token: settings.botToken, apiUrl: settings.apiUrl }),
    appToken === undefined ? undefined : () => openSocketModeUrl({ appToken, apiUrl: settings.apiUrl }),
  );
  const ok = results.every((r) => r.ok);
  if (values.json) out.json({ ok, checks: results });
  else {
    for (const r of results) out.line(`${r.ok ? 'ok  ' : 'FAIL'}  ${r.check}: ${r.detail}`);
    out.line(ok ? 'Slack is ready for mechanic.' : 'Slack is not ready: fix what FAIL says, then run this again.');
  }
  return ok ? 0 : 1;
}
