/**
 * Slack's way in: button clicks, the reject modal and the /mechanic slash command, mounted on the
 * API server under /slack, or arriving over Socket Mode (socket.ts) into the same handlers. Over
 * HTTP a request is believed only after its signature checks out against the signing secret over
 * the raw body (constant-time, within 5 minutes); either way only once (a replay of the same
 * signed request or the same envelope is refused). The clicker is then a mechanic identity only if the admin's
 * Slack users file says so, and a vote takes the same path as every other channel: the Authorizer
 * (Cedar, with channel "slack" in the context), then the execution service, whose workflow
 * validator refuses the requester, a second vote, an ended run and a button from an older plan.
 * What a click may do is the policies' decision: the default slack-one-click-high-risk refuses a
 * one-click approval of a high-risk run, and that refusal alone earns the clicker a confirm link.
 *
 * Every refusal is answered with the right status, told to the clicker in one sentence (an
 * ephemeral message, or the modal's error), and recorded in the audit log; none changes the run.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Authorizer } from '../authz/authorizer.ts';
import type { User } from '../authz/users.ts';
import type { ExecutionView } from '../core/execution.ts';
import { isMechanicError } from '../core/errors.ts';
import type { AuditEventData, RefusalType } from '../core/audit-events.ts';
import type { ApprovalState } from '../core/approval.ts';
import type { ExecutionSummary } from '../core/audit.ts';
import type { ExecutionStatus } from '../core/execution.ts';
import { neutralize } from '../core/text.ts';
import type { SlackApi } from './client.ts';
import type { SlackIdentities } from './identity.ts';
import type { SlackState } from './state.ts';
import type { WebSessions } from '../server/web-session.ts';
import { policiesDenying } from '../server/executions.ts';
import { confirmRoutes } from './confirm.ts';
import { verifySlackSignature } from './signature.ts';
import {
  APPROVE_ACTION,
  REJECT_ACTION,
  REJECT_VIEW,
  decodeButtonValue,
  rejectModal,
  type VoteButtonValue,
} from './message.ts';

/** What the Slack routes need of the execution service: the same calls the API's routes make. */
export interface SlackExecutions {
  /** The one vote path: policies (with the channel), the run's rules, then the workflow's validator. */
  vote(
    user: User,
    executionId: string,
    req: { decision: 'approve' | 'reject'; planDigest: string; comment?: string | undefined },
    origin: { channel: 'slack' | 'web' },
  ): Promise<ApprovalState>;
  get(executionId: string): Promise<ExecutionView>;
  /** The plan, votes and status from the run's records, without asking a worker. */
  approvalView(executionId: string): Promise<ExecutionView>;
  list(q: { status?: ExecutionStatus | undefined; limit?: number | undefined }): Promise<ExecutionSummary[]>;
  auditRefusal<T extends RefusalType>(
    user: User,
    executionId: string | null,
    type: T,
    data: AuditEventData<T>,
  ): Promise<void>;
}

export interface SlackRoutesDeps {
  /** The app's signing secret; without it (Socket Mode alone) the HTTP interaction endpoints are off. */
  readonly signingSecret?: string | undefined;
  readonly api: SlackApi;
  readonly identities: SlackIdentities;
  readonly state: SlackState;
  readonly authorizer: Authorizer;
  readonly executions: SlackExecutions;
  readonly log: Logger;
  /** The server's browser sign-in; without it high-risk runs are approved from the CLI or TUI. */
  readonly sessions?: Pick<WebSessions, 'userOf' | 'loginPath'> | undefined;
  /** The server's origin as browsers reach it, for the confirm page's link. */
  readonly publicUrl: () => string;
  readonly now?: () => number;
}

/** Slack's interaction payloads are small; our own message is well under this. */
export const MAX_SLACK_BODY_BYTES = 64 * 1024;
/** How long a high-risk approval's confirm link can be used (once). */
export const CONFIRM_TICKET_MS = 5 * 60 * 1000;
/** Replays are refused for longer than a signature stays fresh, so a replay is always caught. */
const SEEN_KEEP_MS = 15 * 60 * 1000;

const SlackUserRef = z.looseObject({ id: z.string().regex(/^[UW][A-Z0-9]{2,30}$/) });
const BlockActionsSchema = z.looseObject({
  type: z.literal('block_actions'),
  user: SlackUserRef,
  trigger_id: z.string().min(1).max(200),
  channel: z.looseObject({ id: z.string().max(40) }).optional(),
  container: z.looseObject({ channel_id: z.string().max(40).optional() }).optional(),
  actions: z
    .array(z.looseObject({ action_id: z.string().max(255), value: z.string().max(2000).optional() }))
    .min(1)
    .max(5),
});
const ViewSubmissionSchema = z.looseObject({
  type: z.literal('view_submission'),
  user: SlackUserRef,
  view: z.looseObject({
    callback_id: z.string().max(255),
    private_metadata: z.string().max(3000),
    state: z.looseObject({
      values: z.record(z.string(), z.record(z.string(), z.looseObject({ value: z.string().nullish() }))),
    }),
  }),
});
const PayloadSchema = z.discriminatedUnion('type', [BlockActionsSchema, ViewSubmissionSchema]);
type Payload = z.infer<typeof PayloadSchema>;

const CommandSchema = z.looseObject({
  command: z.string().max(100),
  text: z.string().max(2000).default(''),
  user_id: z.string().regex(/^[UW][A-Z0-9]{2,30}$/),
  channel_id: z.string().max(40).default(''),
});

/** The actor of refusals whose sender could not be verified (no signature, no identity yet). */
function anonymous(slackUserId?: string): User {
  return { id: slackUserId ? `slack:${slackUserId}` : 'slack:unverified', displayName: 'Slack', roles: [] };
}

/**
 * What mechanic answers a Slack request with: the HTTP response of the interaction endpoint, or
 * the acknowledgement of a Socket Mode envelope (which carries `json` and has no status).
 */
export interface SlackAnswer {
  readonly status: 200 | 400 | 401 | 409 | 413;
  readonly text?: string;
  readonly json?: Record<string, unknown>;
}

/** The handlers behind both ways in (HTTP endpoint, Socket Mode), given a request believed to come from Slack. */
export interface SlackHandlers {
  /**
   * Claims a delivery (`key`) as never handled before; answers the replay refusal when it was.
   * `raw` is the interaction payload, parsed JSON, so the clicker can be told.
   */
  claim(key: string, raw: unknown): Promise<SlackAnswer | undefined>;
  /** An interaction payload (block_actions, view_submission), parsed JSON. */
  interaction(raw: unknown): Promise<SlackAnswer>;
  /** A slash command's fields. */
  command(fields: Record<string, unknown>): Promise<SlackAnswer>;
  /** Records a refusal of a request whose sender could not be verified. */
  refuseUnverified(code: string, reason: string, path: string): Promise<void>;
}

const answer = (status: SlackAnswer['status'], text?: string): SlackAnswer =>
  text === undefined ? { status } : { status, text };
const answerJson = (json: Record<string, unknown>): SlackAnswer => ({ status: 200, json });

export function slackRoutes(deps: SlackRoutesDeps): Hono {
  const app = new Hono();
  const now = () => deps.now?.() ?? Date.now();
  const handlers = slackHandlers(deps);
  const respond = (c: Context, a: SlackAnswer): Response =>
    a.json ? c.json(a.json, a.status) : a.text !== undefined ? c.body(a.text, a.status) : c.body(null, a.status);

  /**
   * Checks the raw body's signature and freshness and claims it as never seen before; answers the
   * refusal (401 unverifiable, 409 replayed) or undefined when the request may go on.
   */
  const refusedRequest = async (c: Context, body: string, signingSecret: string): Promise<Response | undefined> => {
    const check = verifySlackSignature({
      signingSecret,
      timestamp: c.req.header('x-slack-request-timestamp'),
      signature: c.req.header('x-slack-signature'),
      body,
      nowMs: now(),
    });
    if (!check.ok) {
      // Nothing in an unverified body is believed, not even who it says clicked: no message to anyone.
      await handlers.refuseUnverified(
        check.problem === 'stale' ? 'SLACK_REQUEST_STALE' : 'SLACK_SIGNATURE_INVALID',
        check.message,
        c.req.path,
      );
      return c.body(null, 401);
    }
    const key = createHash('sha256')
      .update(`${c.req.header('x-slack-request-timestamp')}:${body}`)
      .digest('hex');
    const replayed = await handlers.claim(key, rawPayload(body));
    return replayed && respond(c, replayed);
  };

  app.use(
    '*',
    bodyLimit({
      maxSize: MAX_SLACK_BODY_BYTES,
      onError: async (c) => {
        await handlers.refuseUnverified(
          'SLACK_PAYLOAD_TOO_LARGE',
          'the Slack request body is larger than 64 KiB',
          c.req.path,
        );
        return c.body('the Slack request body is larger than 64 KiB', 413);
      },
    }),
  );

  if (deps.sessions) {
    app.route(
      '/confirm',
      confirmRoutes({
        state: deps.state,
        sessions: deps.sessions,
        executions: deps.executions,
        log: deps.log,
        ...(deps.now ? { now: deps.now } : {}),
      }),
    );
  }

  // Without a signing secret (Socket Mode alone) nothing can be verified here: no endpoint at all.
  const signingSecret = deps.signingSecret;
  if (signingSecret !== undefined) {
    app.post('/interactions', async (c) => {
      const body = await c.req.text();
      const refused = await refusedRequest(c, body, signingSecret);
      if (refused) return refused;
      return respond(c, await handlers.interaction(rawPayload(body)));
    });
    app.post('/commands', async (c) => {
      const body = await c.req.text();
      const refused = await refusedRequest(c, body, signingSecret);
      if (refused) return refused;
      return respond(c, await handlers.command(Object.fromEntries(new URLSearchParams(body))));
    });
  }
  return app;
}

/**
 * The handlers of Slack's requests, shared by the HTTP endpoint and Socket Mode: identity mapping,
 * the one vote path, replay claims and the audit of every refusal are the same whichever way a
 * request came in.
 */
export function slackHandlers(deps: Omit<SlackRoutesDeps, 'signingSecret'>): SlackHandlers {
  const now = () => deps.now?.() ?? Date.now();

  const refuse = async (
    user: User,
    executionId: string | null,
    type: RefusalType,
    data: { code: string; reason: string; [k: string]: unknown },
  ) => {
    try {
      await deps.executions.auditRefusal(user, executionId, type, { ...data, channel: 'slack' });
    } catch (e) {
      deps.log.error({ err: e }, 'could not record a refused Slack request');
    }
  };

  const tell = async (channel: string | undefined, slackUser: string, text: string) => {
    if (!channel) return;
    try {
      await deps.api.postEphemeral({ channel, user: slackUser, text: asMrkdwn(text) });
    } catch (e) {
      // The answer is on the record either way; Slack being unreachable must not fail the request.
      deps.log.warn({ err: e }, 'could not tell a Slack user why their request was refused');
    }
  };

  async function claim(key: string, raw: unknown): Promise<SlackAnswer | undefined> {
    if (deps.state.claimInteraction(key, now(), SEEN_KEEP_MS)) return undefined;
    // Slack sent it, so the clicker it names is real: tell them and record it.
    const sentence = 'This Slack request was already handled once; a replay changes nothing.';
    const p = parsePayload(raw);
    await refuse(anonymous(p?.user.id), null, 'request.refused', { code: 'SLACK_REPLAY', reason: sentence });
    if (p?.type === 'block_actions') await tell(p.channel?.id ?? p.container?.channel_id, p.user.id, sentence);
    return answer(409, sentence);
  }

  async function interaction(raw: unknown): Promise<SlackAnswer> {
    const parsed = parsePayload(raw);
    if (!parsed) {
      await refuse(anonymous(), null, 'request.refused', {
        code: 'SLACK_PAYLOAD_INVALID',
        reason: 'the Slack interaction payload is not one mechanic understands',
      });
      return answer(400, 'the Slack interaction payload is not one mechanic understands');
    }
    const payload = parsed;
    const slackUser = payload.user.id;
    const channel =
      payload.type === 'block_actions' ? (payload.channel?.id ?? payload.container?.channel_id) : undefined;
    const who = await deps.identities.resolve(slackUser).catch((e: unknown) => {
      deps.log.warn({ err: e }, 'could not look up a Slack user');
      return {
        ok: false as const,
        reason: 'mechanic could not look up your Slack account just now; try again in a minute',
      };
    });
    if (!who.ok) {
      await refuse(anonymous(slackUser), null, 'request.refused', { code: 'SLACK_USER_UNMAPPED', reason: who.reason });
      if (payload.type === 'view_submission')
        return answerJson({ response_action: 'errors', errors: { reason: who.reason } });
      await tell(channel, slackUser, who.reason);
      return answer(200);
    }
    const user = who.user;
    if (payload.type === 'view_submission') return onRejectSubmitted(user, payload);
    const action = payload.actions[0]!;
    const target = decodeButtonValue(action.value);
    if (!target || (action.action_id !== APPROVE_ACTION && action.action_id !== REJECT_ACTION)) {
      await refuse(user, null, 'request.refused', {
        code: 'SLACK_PAYLOAD_INVALID',
        reason: 'the button clicked is not one of mechanic’s',
      });
      await tell(channel, slackUser, 'That button is not one of mechanic’s; nothing was done.');
      return answer(400, 'the button clicked is not one of mechanic’s');
    }
    const decision = action.action_id === APPROVE_ACTION ? 'approve' : 'reject';
    try {
      if (decision === 'reject') {
        const view = await deps.executions.approvalView(target.executionId);
        // Whether this approver may reject is decided when the reason is submitted, on the vote path.
        await deps.api.openView(
          payload.trigger_id,
          rejectModal(target, `${view.plan.runbook.name}@${view.plan.runbook.version}`, channel),
        );
        return answer(200);
      }
      const state = await deps.executions.vote(
        user,
        target.executionId,
        { decision, planDigest: target.planDigest },
        { channel: 'slack' },
      );
      await tell(channel, slackUser, voted(target.executionId, 'approval', state));
      return answer(200);
    } catch (e) {
      if (isOneClickRefusal(e)) {
        // The policies refused this click only because it is one click in Slack: the confirm page
        // (channel "web") is the way on. Any other policy refusing too, and the link would not help.
        const sentence = await confirmLink(user, slackUser, target);
        await refuse(user, target.executionId, 'approval.refused', {
          executionId: target.executionId,
          decision,
          code: 'APPROVAL_CONFIRM_REQUIRED',
          reason: `the policy ${ONE_CLICK_POLICY} refuses one-click approval in Slack; a confirm link was sent to the approver`,
        });
        await tell(channel, slackUser, sentence);
        return answer(200);
      }
      await tell(channel, slackUser, await sentenceOf(user, target.executionId, decision, e));
      return answer(200);
    }
  }

  async function command(fields: Record<string, unknown>): Promise<SlackAnswer> {
    const cmd = CommandSchema.safeParse(fields);
    if (!cmd.success) return answer(400, 'the slash command request is not one mechanic understands');
    const ephemeral = (text: string) => answerJson({ response_type: 'ephemeral', text: asMrkdwn(text) });
    const who = await deps.identities.resolve(cmd.data.user_id);
    if (!who.ok) {
      await refuse(anonymous(cmd.data.user_id), null, 'request.refused', {
        code: 'SLACK_USER_UNMAPPED',
        reason: who.reason,
      });
      return ephemeral(who.reason);
    }
    const [verb, arg, ...rest] = cmd.data.text.trim().split(/\s+/);
    try {
      if (verb === 'status' && arg && rest.length === 0) return ephemeral(await statusOf(who.user, arg));
      if (verb === 'pending' && !arg) return ephemeral(await pendingFor(who.user));
    } catch (e) {
      if (isMechanicError(e)) return ephemeral(`${e.message}.`);
      throw e;
    }
    return ephemeral('Usage: /mechanic status <execution id>, or /mechanic pending');
  }

  // ------------------------------------------------------------------------------------------

  /** One sentence for the clicker; votes refused by the workflow were already recorded by the service. */
  async function sentenceOf(user: User, executionId: string, decision: string, e: unknown): Promise<string> {
    if (isMechanicError(e)) {
      if (e.code === 'EXECUTION_NOT_FOUND') {
        await refuse(user, null, 'approval.refused', { executionId, decision, code: e.code, reason: e.message });
      }
      return `Not done: ${e.message}.`;
    }
    deps.log.error({ err: e }, 'a Slack vote failed');
    return 'mechanic could not record your vote just now; nothing was changed, so try again in a minute.';
  }

  async function onRejectSubmitted(user: User, payload: z.infer<typeof ViewSubmissionSchema>): Promise<SlackAnswer> {
    const meta = decodeModalMetadata(payload.view.private_metadata);
    if (payload.view.callback_id !== REJECT_VIEW || !meta) {
      await refuse(user, null, 'request.refused', {
        code: 'SLACK_PAYLOAD_INVALID',
        reason: 'the submitted form is not one of mechanic’s',
      });
      return answer(400, 'the submitted form is not one of mechanic’s');
    }
    const reason = (payload.view.state.values['reason']?.['reason']?.value ?? '').trim();
    try {
      const state = await deps.executions.vote(
        user,
        meta.executionId,
        { decision: 'reject', planDigest: meta.planDigest, comment: reason },
        { channel: 'slack' },
      );
      await tell(meta.channel, payload.user.id, voted(meta.executionId, 'rejection', state));
      return answer(200);
    } catch (e) {
      return answerJson({
        response_action: 'errors',
        errors: { reason: neutralize(await sentenceOf(user, meta.executionId, 'reject', e)) },
      });
    }
  }

  /** Mints the single-use confirm link of a high-risk approval, bound to this approver and plan. */
  async function confirmLink(user: User, slackUserId: string, target: VoteButtonValue): Promise<string> {
    if (!deps.sessions) {
      return 'This run is high risk: approve it with `mechanic approve` after reviewing its plan (this server has no confirm page configured).';
    }
    const token = randomBytes(32).toString('base64url');
    deps.state.saveTicket({
      token,
      executionId: target.executionId,
      planDigest: target.planDigest,
      userId: user.id,
      slackUserId,
      expiresAtMs: now() + CONFIRM_TICKET_MS,
    });
    return `This run is high risk: one click does not approve it. Sign in and confirm the plan within 5 minutes at ${deps.publicUrl()}/slack/confirm/${token}`;
  }

  async function statusOf(user: User, executionId: string): Promise<string> {
    const d = deps.authorizer.authorize(user, 'readRun', { kind: 'execution', id: executionId }, { channel: 'slack' });
    if (!d.allow) {
      await deps.executions.auditRefusal(user, executionId, 'access.denied', {
        action: 'readRun',
        channel: 'slack',
        reason: d.reason,
        policies: d.policies,
      });
      return d.reason;
    }
    const view = await deps.executions.get(executionId);
    const p = view.plan;
    const approvals =
      view.approval.status === 'rejected'
        ? `rejected by ${view.approval.by}`
        : `${view.approval.approvedBy.length} of ${p.approval.required} approvals`;
    return `${view.executionId}: ${p.runbook.name}@${p.runbook.version} on ${p.targets.length} target(s), requested by ${p.requester} — ${view.status.replace('_', ' ')}; ${approvals}.`;
  }

  async function pendingFor(user: User): Promise<string> {
    const d = deps.authorizer.authorize(user, 'readRun', { kind: 'catalog' }, { channel: 'slack' });
    if (!d.allow) return d.reason;
    const waiting = await deps.executions.list({ status: 'awaiting_approval', limit: 50 });
    const visible = waiting.filter(
      (s) => deps.authorizer.authorize(user, 'readRun', { kind: 'execution', id: s.id }, { channel: 'slack' }).allow,
    );
    if (!visible.length) return 'Nothing is waiting for approval.';
    return [
      `${visible.length} waiting for approval:`,
      ...visible.map((s) => `• ${s.id}: ${s.runbookName}@${s.runbookVersion}, requested by ${s.operator}`),
    ].join('\n');
  }

  return {
    claim,
    interaction,
    command,
    refuseUnverified: (code, reason, path) => refuse(anonymous(), null, 'request.refused', { code, reason, path }),
  };
}

/**
 * The default policy that refuses one-click approvals of high-risk runs in Slack. A refusal by it
 * alone sends the clicker to the confirm page; an admin who deletes it lets such clicks approve.
 */
export const ONE_CLICK_POLICY = 'slack-one-click-high-risk';

/** A vote refused by the one-click policy and no other. */
function isOneClickRefusal(e: unknown): boolean {
  const policies = policiesDenying(e);
  return isMechanicError(e) && e.code === 'FORBIDDEN' && policies.length === 1 && policies[0] === ONE_CLICK_POLICY;
}

/** mechanic's own sentences, which may quote names and reasons: inert in Slack's mrkdwn too. */
function asMrkdwn(text: string): string {
  return neutralize(text, { multiline: true }).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The `payload` field of an interaction request's form body, parsed; undefined when it is not JSON. */
function rawPayload(body: string): unknown {
  const raw = new URLSearchParams(body).get('payload');
  if (raw === null) return undefined;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return undefined;
  }
}

function parsePayload(raw: unknown): Payload | undefined {
  const r = PayloadSchema.safeParse(raw);
  return r.success ? r.data : undefined;
}

function decodeModalMetadata(s: string): (VoteButtonValue & { channel?: string | undefined }) | undefined {
  const v = decodeButtonValue(s);
  if (!v) return undefined;
  try {
    const c = (JSON.parse(s) as { c?: unknown }).c;
    return { ...v, channel: typeof c === 'string' && /^[A-Z0-9]{1,40}$/.test(c) ? c : undefined };
  } catch {
    return v;
  }
}

function voted(executionId: string, what: 'approval' | 'rejection', state: ApprovalState): string {
  switch (state.status) {
    case 'pending':
      return `Your ${what} of ${executionId} is recorded; ${state.missing} more approval${state.missing === 1 ? '' : 's'} needed.`;
    case 'approved':
      return `Your ${what} of ${executionId} is recorded; it is approved by ${state.approvedBy.join(', ')} and runs now.`;
    case 'rejected':
      return `Your ${what} of ${executionId} is recorded; the run is rejected and will not run.`;
  }
}
