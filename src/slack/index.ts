/**
 * Slack in the API server: the interaction routes (mounted under /slack) and the follower that
 * keeps each run's message in step with the audit log. Built once from the config's Slack slice.
 */
import type { Hono } from 'hono';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { Authorizer } from '../authz/authorizer.ts';
import type { AuditStore } from '../store/audit-log.ts';
import type { WebSessions } from '../server/web-session.ts';
import { createSlackApi, type SlackApi } from './client.ts';
import { readSlackUsersFile, slackIdentities } from './identity.ts';
import { slackHandlers, slackRoutes, type SlackExecutions } from './interactions.ts';
import { startSlackSocket, type SlackSocket } from './socket.ts';
import { startMessageFollower, type MessageFollower } from './follower.ts';
import { openSlackState, type SlackState } from './state.ts';

export type SlackSettings = NonNullable<Config['slack']>;

export interface SlackService {
  readonly routes: Hono;
  readonly follower: MessageFollower;
  readonly state: SlackState;
  readonly api: SlackApi;
  /** The Socket Mode connection, when an app token is configured. */
  readonly socket: SlackSocket | undefined;
  stop(): Promise<void>;
}

export async function startSlack(
  settings: SlackSettings,
  deps: {
    readonly audit: Pick<AuditStore, 'list'>;
    readonly waitBeyond: (seq: number, signal: AbortSignal) => Promise<boolean>;
    readonly authorizer: Authorizer;
    readonly executions: SlackExecutions;
    readonly log: Logger;
    /** The server's browser sign-in, for the confirm page of high-risk approvals. */
    readonly sessions?: WebSessions | undefined;
    /** The server's origin as browsers reach it: MECHANIC_PUBLIC_URL, else the address it is bound to. */
    readonly publicUrl: () => string;
  },
): Promise<SlackService> {
  // The users file first: a server must not start answering clicks it cannot attribute.
  const users = await readSlackUsersFile(settings.usersFile);
  const api = createSlackApi({ token: settings.botToken, apiUrl: settings.apiUrl });
  const state = openSlackState(settings.stateFile);
  const log = deps.log.child({ part: 'slack' });
  const handlerDeps = {
    api,
    identities: slackIdentities(users, { allowEmail: settings.allowEmail, api }),
    state,
    authorizer: deps.authorizer,
    executions: deps.executions,
    log,
    sessions: deps.sessions,
    publicUrl: deps.publicUrl,
  };
  // Over HTTP when there is a signing secret, over Socket Mode when there is an app token (or both):
  // either way into the same handlers.
  const routes = slackRoutes({ ...handlerDeps, signingSecret: settings.signingSecret });
  const socket = settings.appToken
    ? startSlackSocket({
        appToken: settings.appToken,
        apiUrl: settings.apiUrl,
        handlers: slackHandlers(handlerDeps),
        log,
      })
    : undefined;
  const runUrl = settings.runUrl;
  const follower = startMessageFollower({
    audit: deps.audit,
    waitBeyond: deps.waitBeyond,
    state,
    api,
    channelFor: (runbook) => settings.channels[runbook] ?? settings.defaultChannel,
    runUrl: runUrl ? (id) => runUrl.replace('{id}', encodeURIComponent(id)) : undefined,
    log,
  });
  return {
    routes,
    follower,
    state,
    api,
    socket,
    async stop() {
      await socket?.stop();
      await follower.stop();
      state.close();
    },
  };
}
