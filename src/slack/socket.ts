/**
 * Socket Mode: for a deployment that cannot expose an endpoint to Slack, the API server opens a
 * WebSocket to Slack itself (apps.connections.open with the app-level token) and Slack sends the
 * interactions and slash commands over it as envelopes. They reach the very handlers the HTTP
 * endpoint uses (interactions.ts): the same identity mapping, the one vote path, the same replay
 * claims (by envelope id, which Slack keeps when it redelivers) and the same audit of refusals.
 * Every envelope is acknowledged, with the answer the HTTP endpoint would have sent as its body
 * (a modal's errors, a slash command's ephemeral reply), so Slack does not redeliver it.
 *
 * The connection is the sender's proof here, as the signature is over HTTP: only Slack holds the
 * URL apps.connections.open hands out for this app token.
 */
import { LogLevel, SocketModeClient, type Logger as SlackLogger } from '@slack/socket-mode';
import type { Logger } from 'pino';
import { MAX_SLACK_BODY_BYTES, type SlackAnswer, type SlackHandlers } from './interactions.ts';

export interface SlackSocketDeps {
  /** The app-level token (xapp-…, connections:write). */
  readonly appToken: string;
  /** The Web API base URL (a proxy or a test fake); unset, Slack's own. */
  readonly apiUrl?: string | undefined;
  readonly handlers: SlackHandlers;
  readonly log: Logger;
}

export interface SlackSocket {
  /** Resolves once Slack said hello on the first connection (tests and `slack check` wait for it). */
  readonly connected: Promise<void>;
  stop(): Promise<void>;
}

interface Envelope {
  readonly ack: (response?: Record<string, unknown>) => Promise<void>;
  readonly envelope_id: string;
  readonly body: unknown;
}

/** The SDK's logger, into mechanic's: its debug chatter dropped, its warnings and errors kept. */
function sdkLogger(log: Logger): SlackLogger {
  return {
    debug() {},
    info() {},
    warn: (...msg: unknown[]) => log.warn({ socketMode: msg.map(String).join(' ') }, 'Slack Socket Mode'),
    error: (...msg: unknown[]) => log.error({ socketMode: msg.map(String).join(' ') }, 'Slack Socket Mode'),
    setLevel() {},
    getLevel: () => LogLevel.WARN,
    setName() {},
  };
}

/** Connects to Slack over Socket Mode in the background: a Slack that is down delays it, never the server. */
export function startSlackSocket(deps: SlackSocketDeps): SlackSocket {
  const { handlers, log } = deps;
  const client = new SocketModeClient({
    appToken: deps.appToken,
    logger: sdkLogger(log),
    // One call per attempt: the client's own reconnection timer spaces the attempts, and stop() ends them.
    clientOptions: { ...(deps.apiUrl ? { slackApiUrl: deps.apiUrl } : {}), retryConfig: { retries: 0 } },
  });

  /** Handles one envelope the way the HTTP endpoint handles one request, and always acknowledges it. */
  const serve = async (kind: string, envelope: Envelope, handle: (body: unknown) => Promise<SlackAnswer>) => {
    let reply: SlackAnswer | undefined;
    try {
      if (JSON.stringify(envelope.body ?? null).length > MAX_SLACK_BODY_BYTES) {
        await handlers.refuseUnverified(
          'SLACK_PAYLOAD_TOO_LARGE',
          'the Slack request body is larger than 64 KiB',
          `socket:${kind}`,
        );
      } else {
        reply =
          (await handlers.claim(`socket:${envelope.envelope_id}`, envelope.body)) ?? (await handle(envelope.body));
      }
    } catch (e) {
      log.error({ err: e }, `a Slack ${kind} envelope failed`);
    }
    try {
      await envelope.ack(reply?.json);
    } catch (e) {
      log.warn({ err: e }, 'could not acknowledge a Slack envelope');
    }
  };

  client.on('interactive', (envelope: Envelope) => {
    void serve('interaction', envelope, (body) => handlers.interaction(body));
  });
  client.on('slash_commands', (envelope: Envelope) => {
    void serve('command', envelope, (body) =>
      handlers.command(typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {}),
    );
  });

  const connected = new Promise<void>((resolve) => client.once('connected', () => resolve()));
  client.start().then(
    () => log.info('connected to Slack over Socket Mode'),
    (e: unknown) =>
      log.error(
        { err: e },
        'Slack refused the Socket Mode connection; check MECHANIC_SLACK_APP_TOKEN with `mechanic slack check`',
      ),
  );
  return {
    connected,
    async stop() {
      await client.disconnect();
    },
  };
}
