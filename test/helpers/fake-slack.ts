/**
 * A local fake of the Slack Web API, for tests: the real `@slack/web-api` client talks to it through
 * `slackApiUrl`. It records every call (method, token, arguments with `blocks` and `view` parsed),
 * keeps the messages it was asked to post and update, answers `users.info` from a table, and can be
 * switched to answer 429 with Retry-After, or to be down (503), to prove mechanic never blocks on
 * Slack. Also here: `signSlackRequest`, which signs a body exactly as Slack signs interaction
 * requests (v0, HMAC-SHA256 over `v0:{timestamp}:{body}`), written from Slack's documentation and
 * not from mechanic's verifier, so the two check each other.
 *
 * Socket Mode too: `apps.connections.open`, called with the app-level token, answers a
 * `ws://127.0.0.1:PORT/…` URL served by a local WebSocket server (ws) on the same port, which says
 * `hello` to each connection, sends the envelopes a test hands it and records their acks.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';

export interface FakeSlackCall {
  readonly method: string;
  readonly token: string | undefined;
  readonly args: Record<string, unknown>;
}

export interface FakeSlackMessage {
  readonly channel: string;
  readonly ts: string;
  readonly threadTs?: string | undefined;
  text: string;
  blocks: unknown[];
  /** Every version of the message, oldest first (the post, then each update). */
  readonly history: { text: string; blocks: unknown[] }[];
}

export interface FakeSlackUser {
  readonly id: string;
  readonly email?: string;
  readonly emailConfirmed?: boolean;
  readonly deleted?: boolean;
  readonly isBot?: boolean;
}

export type FakeSlackMode = { kind: 'ok' } | { kind: 'rate_limited'; retryAfterSeconds: number } | { kind: 'down' };

export interface FakeSlackOptions {
  /** The bot token the fake accepts; any other is `invalid_auth`. */
  readonly token?: string;
  /** The app-level token `apps.connections.open` accepts (Socket Mode). */
  readonly appToken?: string;
  readonly scopes?: readonly string[];
  readonly users?: readonly FakeSlackUser[];
  /** Channel id → member user ids; the bot is `U0BOT`. */
  readonly channels?: Readonly<Record<string, readonly string[]>>;
}

export interface FakeSlack {
  /** `http://127.0.0.1:PORT/api/`: pass it as `slackApiUrl`. */
  readonly apiUrl: string;
  readonly token: string;
  readonly botUserId: string;
  readonly calls: FakeSlackCall[];
  readonly messages: FakeSlackMessage[];
  /** Ephemeral messages: visible to one user, never updatable. */
  readonly ephemerals: { channel: string; user: string; text: string }[];
  readonly views: { triggerId: string; view: Record<string, unknown> }[];
  /** The app-level token of Socket Mode. */
  readonly appToken: string;
  /** Socket Mode connections that Slack said hello to and that are still open. */
  openSockets(): number;
  /** Every acknowledgement received over Socket Mode, in order. */
  readonly acks: { envelopeId: string; payload: Record<string, unknown> | undefined }[];
  /**
   * Sends an envelope to the newest open Socket Mode connection, as Slack does (`interactive` for
   * clicks and modals, `slash_commands`), and resolves with its ack's payload. `envelopeId` lets a
   * test send the same envelope twice.
   */
  sendEnvelope(
    type: 'interactive' | 'slash_commands',
    payload: unknown,
    envelopeId?: string,
  ): Promise<{ envelopeId: string; payload: Record<string, unknown> | undefined }>;
  setMode(mode: FakeSlackMode): void;
  /** Calls answered with 429 or 503 since the start (they are not in `calls`). */
  refused(): number;
  callsTo(method: string): FakeSlackCall[];
  /** Resolves when `pred` holds, checking after every call; rejects after `timeoutMs` (test guard, not a timing claim). */
  waitFor<T>(pred: () => T | undefined | false, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

const BOT_USER = 'U0BOT';

/** A string argument, or '' when it is missing or not a string. */
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The arguments of a Web API call: form-encoded (the client's default) or JSON, with JSON fields parsed. */
function parseArgs(contentType: string, body: string): Record<string, unknown> {
  if (contentType.includes('application/json')) return JSON.parse(body || '{}') as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of new URLSearchParams(body)) {
    if ((k === 'blocks' || k === 'view' || k === 'attachments') && /^[[{]/.test(v)) {
      out[k] = JSON.parse(v);
    } else out[k] = v;
  }
  return out;
}

export async function startFakeSlack(options: FakeSlackOptions = {}): Promise<FakeSlack> {
  const token = options.token ?? 'xoxb-fake-token-for-tests';
  const appToken = options.appToken ?? 'xapp-1-A0FAKE-fake-app-token-for-tests';
  const tickets = new Set<string>();
  const sockets: WebSocket[] = [];
  const acks: FakeSlack['acks'] = [];
  let wsUrl = '';
  const scopes = options.scopes ?? ['chat:write', 'users:read', 'users:read.email', 'commands', 'channels:read'];
  const users = new Map((options.users ?? []).map((u) => [u.id, u]));
  const channels = options.channels ?? {};
  const calls: FakeSlackCall[] = [];
  const messages: FakeSlackMessage[] = [];
  const ephemerals: FakeSlack['ephemerals'] = [];
  const views: FakeSlack['views'] = [];
  const waiters = new Set<() => void>();
  let mode: FakeSlackMode = { kind: 'ok' };
  let refused = 0;
  let clock = 1_700_000_000;
  let seq = 0;
  const nextTs = () => `${clock++}.${String(++seq).padStart(6, '0')}`;

  const answer = (method: string, args: Record<string, unknown>): Record<string, unknown> => {
    switch (method) {
      case 'auth.test':
        return {
          ok: true,
          url: 'https://fake.slack.test/',
          team: 'Fake',
          team_id: 'T0FAKE',
          user_id: BOT_USER,
          bot_id: 'B0BOT',
        };
      case 'chat.postMessage': {
        const channel = str(args['channel']);
        if (!channel) return { ok: false, error: 'channel_not_found' };
        if (channels[channel] && !channels[channel].includes(BOT_USER)) return { ok: false, error: 'not_in_channel' };
        const text = str(args['text']);
        const blocks = (args['blocks'] as unknown[] | undefined) ?? [];
        const ts = nextTs();
        const threadTs = typeof args['thread_ts'] === 'string' ? args['thread_ts'] : undefined;
        messages.push({ channel, ts, threadTs, text, blocks, history: [{ text, blocks }] });
        return { ok: true, channel, ts, message: { text, ts } };
      }
      case 'chat.update': {
        const m = messages.find((x) => x.channel === args['channel'] && x.ts === args['ts']);
        if (!m) return { ok: false, error: 'message_not_found' };
        m.text = typeof args['text'] === 'string' ? args['text'] : m.text;
        m.blocks = (args['blocks'] as unknown[] | undefined) ?? m.blocks;
        m.history.push({ text: m.text, blocks: m.blocks });
        return { ok: true, channel: m.channel, ts: m.ts, text: m.text };
      }
      case 'chat.postEphemeral': {
        const channel = str(args['channel']);
        const user = str(args['user']);
        if (!channel || !user) return { ok: false, error: 'invalid_arguments' };
        ephemerals.push({ channel, user, text: str(args['text']) });
        return { ok: true, message_ts: nextTs() };
      }
      case 'users.info': {
        const u = users.get(str(args['user']));
        if (!u) return { ok: false, error: 'user_not_found' };
        return {
          ok: true,
          user: {
            id: u.id,
            deleted: u.deleted ?? false,
            is_bot: u.isBot ?? false,
            is_email_confirmed: u.emailConfirmed ?? true,
            profile: scopes.includes('users:read.email') && u.email ? { email: u.email } : {},
          },
        };
      }
      case 'views.open': {
        const triggerId = str(args['trigger_id']);
        if (!triggerId) return { ok: false, error: 'invalid_trigger_id' };
        views.push({ triggerId, view: args['view'] as Record<string, unknown> });
        return { ok: true, view: { id: `V${seq++}` } };
      }
      case 'conversations.info': {
        const id = str(args['channel']);
        if (!channels[id]) return { ok: false, error: 'channel_not_found' };
        return { ok: true, channel: { id, name: id.toLowerCase(), is_member: channels[id].includes(BOT_USER) } };
      }
      case 'conversations.members': {
        const id = str(args['channel']);
        if (!channels[id]) return { ok: false, error: 'channel_not_found' };
        return { ok: true, members: channels[id] };
      }
      case 'apps.connections.open': {
        const ticket = randomUUID();
        tickets.add(ticket);
        return { ok: true, url: `${wsUrl}/link/?ticket=${ticket}` };
      }
      default:
        return { ok: false, error: 'unknown_method' };
    }
  };

  const server: Server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const method = (req.url ?? '').replace(/^\/api\//, '').split('?')[0] ?? '';
      if (mode.kind === 'down') {
        refused++;
        res.writeHead(503, { 'content-type': 'text/plain' }).end('down');
        return;
      }
      if (mode.kind === 'rate_limited') {
        refused++;
        res
          .writeHead(429, { 'retry-after': String(mode.retryAfterSeconds), 'content-type': 'application/json' })
          .end(JSON.stringify({ ok: false, error: 'ratelimited' }));
        return;
      }
      const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const args = parseArgs(req.headers['content-type'] ?? '', body);
      // apps.connections.open takes the app-level token, every other method the bot token.
      const expected = method === 'apps.connections.open' ? appToken : token;
      const reply =
        auth === expected ? answer(method, args) : { ok: false, error: auth ? 'invalid_auth' : 'not_authed' };
      calls.push({ method, token: auth, args });
      res
        .writeHead(200, { 'content-type': 'application/json', 'x-oauth-scopes': scopes.join(',') })
        .end(JSON.stringify(reply));
      for (const w of waiters) w();
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  wsUrl = `ws://127.0.0.1:${port}`;
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    const ticket = new URL(req.url ?? '/', wsUrl).searchParams.get('ticket') ?? '';
    // A URL is good once, as Slack's are: only the one apps.connections.open handed out.
    if (!tickets.delete(ticket)) {
      socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.push(ws);
      // Slack pings its clients; the client closes a connection that stays silent too long.
      const ping = setInterval(() => ws.ping(), 2_000);
      ws.on('close', () => {
        clearInterval(ping);
        sockets.splice(sockets.indexOf(ws), 1);
      });
      ws.on('message', (data: Buffer) => {
        const m = JSON.parse(data.toString('utf8')) as { envelope_id?: string; payload?: Record<string, unknown> };
        if (typeof m.envelope_id === 'string') {
          acks.push({
            envelopeId: m.envelope_id,
            payload: m.payload && Object.keys(m.payload).length ? m.payload : undefined,
          });
          for (const w of waiters) w();
        }
      });
      ws.send(
        JSON.stringify({
          type: 'hello',
          num_connections: sockets.length,
          debug_info: { host: 'fake-slack', approximate_connection_time: 3600 },
          connection_info: { app_id: 'A0FAKE' },
        }),
      );
      for (const w of waiters) w();
    });
  });

  const fake: FakeSlack = {
    apiUrl: `http://127.0.0.1:${port}/api/`,
    token,
    botUserId: BOT_USER,
    calls,
    messages,
    ephemerals,
    views,
    appToken,
    openSockets: () => sockets.filter((w) => w.readyState === w.OPEN).length,
    acks,
    async sendEnvelope(type, payload, envelopeId = randomUUID()) {
      const ws = sockets.filter((w) => w.readyState === w.OPEN).at(-1);
      if (!ws) throw new Error('no Socket Mode connection is open');
      const from = acks.length;
      ws.send(JSON.stringify({ envelope_id: envelopeId, type, payload, accepts_response_payload: true }));
      return fake.waitFor(() => acks.slice(from).find((a) => a.envelopeId === envelopeId));
    },
    setMode: (m) => {
      mode = m;
    },
    refused: () => refused,
    callsTo: (method) => calls.filter((c) => c.method === method),
    waitFor<T>(pred: () => T | undefined | false, timeoutMs = 60_000): Promise<T> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const v = pred();
          if (v !== undefined && v !== false) {
            waiters.delete(check);
            clearTimeout(timer);
            clearInterval(poll);
            resolve(v);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          clearInterval(poll);
          reject(new Error('the fake Slack never saw what the test waited for'));
        }, timeoutMs);
        // Also re-check now and then: what a test waits for may change without a call (e.g. a flag).
        const poll = setInterval(check, 100);
        waiters.add(check);
        check();
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of sockets) ws.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return fake;
}

/** Signs `body` as Slack does: `v0=` + hex HMAC-SHA256(secret, `v0:{ts}:{body}`). */
export function signSlackRequest(
  signingSecret: string,
  body: string,
  timestampSeconds: number = Math.floor(Date.now() / 1000),
): Record<string, string> {
  const signature = `v0=${createHmac('sha256', signingSecret).update(`v0:${timestampSeconds}:${body}`).digest('hex')}`;
  return {
    'content-type': 'application/x-www-form-urlencoded',
    'x-slack-request-timestamp': String(timestampSeconds),
    'x-slack-signature': signature,
  };
}

/** The form body Slack posts for an interaction: one `payload` field holding JSON. */
export function interactionBody(payload: unknown): string {
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

/** A `block_actions` payload for a click on one of mechanic's buttons, as Slack sends it. */
export function buttonClick(opts: {
  readonly user: string;
  readonly actionId: string;
  readonly value: string;
  readonly channel?: string;
  readonly messageTs?: string;
  readonly triggerId?: string;
}): Record<string, unknown> {
  return {
    type: 'block_actions',
    user: { id: opts.user, username: opts.user.toLowerCase(), team_id: 'T0FAKE' },
    api_app_id: 'A0FAKE',
    team: { id: 'T0FAKE', domain: 'fake' },
    container: { type: 'message', message_ts: opts.messageTs ?? '1.000001', channel_id: opts.channel ?? 'C0APPROVE' },
    channel: { id: opts.channel ?? 'C0APPROVE', name: 'approvals' },
    message: { ts: opts.messageTs ?? '1.000001', text: '' },
    trigger_id: opts.triggerId ?? `${Math.floor(Math.random() * 1e9)}.${Math.floor(Math.random() * 1e9)}.fake`,
    response_url: 'https://hooks.slack.test/actions/fake',
    actions: [
      {
        type: 'button',
        action_id: opts.actionId,
        block_id: 'mechanic.vote',
        value: opts.value,
        action_ts: `${Date.now() / 1000}`,
        text: { type: 'plain_text', text: opts.actionId },
      },
    ],
  };
}
