/**
 * The one place mechanic builds a Slack Web API client. Everything else sees `SlackApi`: the few
 * calls mechanic makes, each failing with a `SlackCallError` that says whether to retry and when.
 * The client itself never retries or waits (retries: 0, rate-limited calls rejected): the caller
 * decides, so a slow or rate-limited Slack never holds a request or a run.
 */
import { ErrorCode, WebClient, type WebAPICallError } from '@slack/web-api';

export interface SlackUserInfo {
  readonly id: string;
  readonly email: string | undefined;
  readonly emailConfirmed: boolean;
  readonly deleted: boolean;
  readonly isBot: boolean;
}

export interface SlackApi {
  postMessage(m: {
    channel: string;
    text: string;
    blocks?: readonly unknown[];
    threadTs?: string;
  }): Promise<{ channel: string; ts: string }>;
  updateMessage(m: { channel: string; ts: string; text: string; blocks: readonly unknown[] }): Promise<void>;
  postEphemeral(m: { channel: string; user: string; text: string }): Promise<void>;
  userInfo(user: string): Promise<SlackUserInfo>;
  openView(triggerId: string, view: Record<string, unknown>): Promise<void>;
  authTest(): Promise<{ userId: string; teamId: string; scopes: readonly string[] }>;
  channelMembers(channel: string): Promise<readonly string[]>;
}

/** A failed Slack call: `retryAfterSeconds` when rate limited, `transient` when worth retrying at all. */
export class SlackCallError extends Error {
  constructor(
    message: string,
    readonly transient: boolean,
    readonly retryAfterSeconds?: number,
    readonly slackError?: string,
  ) {
    super(message);
    this.name = 'SlackCallError';
  }
}

function translate(method: string, e: unknown): SlackCallError {
  const err = e as Partial<WebAPICallError> & { data?: { error?: string }; retryAfter?: number; statusCode?: number };
  switch (err.code) {
    case ErrorCode.RateLimitedError:
      return new SlackCallError(`Slack rate-limited ${method}`, true, err.retryAfter ?? 1);
    case ErrorCode.PlatformError: {
      const code = err.data?.error ?? 'unknown_error';
      // Slack's own trouble is worth retrying; anything else (not_in_channel, invalid_auth…) needs a person.
      const transient = [
        'internal_error',
        'fatal_error',
        'service_unavailable',
        'request_timeout',
        'ratelimited',
      ].includes(code);
      return new SlackCallError(`Slack refused ${method}: ${code}`, transient, undefined, code);
    }
    case ErrorCode.HTTPError:
      return new SlackCallError(`Slack answered ${method} with HTTP ${err.statusCode ?? '?'}`, true);
    default:
      return new SlackCallError(`Slack could not be reached for ${method}: ${(e as Error).message}`, true);
  }
}

async function call<T>(method: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw translate(method, e);
  }
}

/**
 * Asks Slack for a Socket Mode URL with the app-level token, as the server does when it connects;
 * nothing connects to the URL. What `mechanic slack check` uses to confirm the app token.
 */
export async function openSocketModeUrl(opts: {
  readonly appToken: string;
  readonly apiUrl?: string | undefined;
}): Promise<string> {
  const web = new WebClient(opts.appToken, {
    ...(opts.apiUrl ? { slackApiUrl: opts.apiUrl } : {}),
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    timeout: 10_000,
    logger: quiet,
  });
  return call('apps.connections.open', async () => {
    const r = await web.apps.connections.open({});
    return r.url ?? '';
  });
}

/** The SDK's own logger would print to the console; mechanic logs what matters itself. */
const quiet = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  setLevel() {},
  getLevel: () => 'error' as never,
  setName() {},
};

export function createSlackApi(opts: { readonly token: string; readonly apiUrl?: string | undefined }): SlackApi {
  const web = new WebClient(opts.token, {
    ...(opts.apiUrl ? { slackApiUrl: opts.apiUrl } : {}),
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    timeout: 10_000,
    logger: quiet,
  });
  return {
    postMessage: (m) =>
      call('chat.postMessage', async () => {
        const r = await web.chat.postMessage({
          channel: m.channel,
          text: m.text,
          ...(m.blocks ? { blocks: m.blocks as never } : {}),
          ...(m.threadTs ? { thread_ts: m.threadTs } : {}),
          unfurl_links: false,
          unfurl_media: false,
        });
        return { channel: r.channel ?? m.channel, ts: r.ts ?? '' };
      }),
    updateMessage: (m) =>
      call('chat.update', async () => {
        await web.chat.update({ channel: m.channel, ts: m.ts, text: m.text, blocks: m.blocks as never });
      }),
    postEphemeral: (m) =>
      call('chat.postEphemeral', async () => {
        await web.chat.postEphemeral({ channel: m.channel, user: m.user, text: m.text });
      }),
    userInfo: (user) =>
      call('users.info', async () => {
        const r = await web.users.info({ user });
        const u = r.user;
        return {
          id: u?.id ?? user,
          email: u?.profile?.email,
          emailConfirmed: u?.is_email_confirmed === true,
          deleted: u?.deleted === true,
          isBot: u?.is_bot === true,
        };
      }),
    openView: (triggerId, view) =>
      call('views.open', async () => {
        await web.views.open({ trigger_id: triggerId, view: view as never });
      }),
    authTest: () =>
      call('auth.test', async () => {
        const r = await web.auth.test();
        return { userId: r.user_id ?? '', teamId: r.team_id ?? '', scopes: r.response_metadata?.scopes ?? [] };
      }),
    channelMembers: (channel) =>
      call('conversations.members', async () => {
        const members: string[] = [];
        let cursor: string | undefined;
        do {
          const r = await web.conversations.members({ channel, limit: 1000, ...(cursor ? { cursor } : {}) });
          members.push(...(r.members ?? []));
          cursor = r.response_metadata?.next_cursor || undefined;
        } while (cursor);
        return members;
      }),
  };
}
