/**
 * Who may see what in the reporting UI: the same Authorizer and the same Cedar actions as the API
 * (readAudit, exportAudit, readRun, approve…), asked with channel `web`. A refusal is recorded the
 * way the API records one (access.denied, folded per caller and route) and answered with a 403 page.
 *
 * Forms that change something (a vote) carry a CSRF token bound to the browser's session cookie:
 * a one-way digest of the cookie, which a page of another site cannot read, so it cannot forge the
 * POST even though the browser would send the cookie (SameSite=Lax already stops most of that;
 * this is the second lock).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { getCookie } from 'hono/cookie';
import type { Action, Decision, Resource } from '../../authz/authorizer.ts';
import { UserError } from '../../core/errors.ts';
import { routeOf } from '../denials.ts';
import { SESSION_COOKIE } from '../web-session.ts';
import type { WebEnv } from './index.ts';

/**
 * Asks the Authorizer whether the signed-in person may take `action` on `resource` here (channel
 * `web`). Allowed: returns. Refused: records the refusal and throws FORBIDDEN, which the UI's error
 * handler answers with a 403 page naming the reason.
 */
export async function requireAction(c: Context<WebEnv>, action: Action, resource: Resource): Promise<void> {
  if (!(await mayAct(c, action, resource, { record: true }))) {
    // mayAct recorded the refusal and left the reason for the page.
    throw new UserError('FORBIDDEN', c.get('refusalReason') ?? `you may not ${action} here`);
  }
}

/**
 * Whether the signed-in person may take `action` on `resource`, without throwing: for a page that
 * shows or hides an option (an approve button). With `record`, a refusal is recorded like
 * requireAction's; without, nothing is written (a hidden option is not a refused request).
 */
export async function mayAct(
  c: Context<WebEnv>,
  action: Action,
  resource: Resource,
  options: { readonly record: boolean } = { record: false },
): Promise<boolean> {
  const user = c.get('user');
  const deps = c.get('web');
  const decision = decide(c, action, resource);
  if (decision.allow) return true;
  if (options.record) {
    await deps.denials.record({
      type: 'access.denied',
      actor: user.id,
      executionId: resource.kind === 'execution' ? resource.id : null,
      kind: `${action} ${webRouteOf(c)}`,
      data: {
        action,
        path: c.req.path.slice(0, 300),
        channel: 'web',
        reason: decision.reason,
        policies: decision.policies,
      },
    });
    c.set('refusalRecorded', true);
    c.set('refusalReason', decision.reason);
  }
  return false;
}

/** The Authorizer's answer for the signed-in person here (channel `web`), with its reason; records nothing. */
export function decide(c: Context<WebEnv>, action: Action, resource: Resource): Decision {
  return c.get('web').authorizer.authorize(c.get('user'), action, resource, { channel: 'web' });
}

/**
 * The route pattern a refusal is folded under: the matched Hono route (e.g. `GET /ui/runs/:id`),
 * never the concrete path, so varying an id does not make every refusal a new kind.
 */
export function webRouteOf(c: Context<WebEnv>): string {
  const pattern = c.req.routePath;
  if (pattern && pattern !== '*' && pattern !== '/*' && !pattern.endsWith('/*')) return `${c.req.method} ${pattern}`;
  return routeOf(c.req.method, c.req.path);
}

/** The hidden form field every POST form of the UI carries: `<input type="hidden" name="_csrf" value=…>`. */
export const CSRF_FIELD = '_csrf';

/** The CSRF token to put in this page's forms. */
export function csrfToken(c: Context<WebEnv>): string {
  return c.get('web').csrf.tokenFor(c);
}

/** The CSRF tokens of one server: an HMAC of the session cookie under a key of its own. */
export interface CsrfTokens {
  /** The token for forms on pages answering this request (empty when there is no session cookie). */
  tokenFor(c: Context): string;
  /** True when `token` is the one for this request's session cookie. */
  check(c: Context, token: string | undefined): boolean;
}

/**
 * Tokens bound to the session cookie. The cookie is sealed, random per sign-in and HttpOnly, so
 * another site can neither read it nor guess its one-way digest: the digest needs no key of its
 * own, and so holds across restarts and across the replicas of a load-balanced server. A `key`
 * can still be given (tests, or to make tokens differ between deployments sharing cookies).
 */
export function csrfTokens(key: Buffer = Buffer.from('mechanic web csrf v1')): CsrfTokens {
  const mac = (cookie: string) =>
    createHmac('sha256', key).update('mechanic web csrf\n').update(cookie).digest('base64url');
  return {
    tokenFor(c) {
      const cookie = getCookie(c, SESSION_COOKIE);
      return cookie ? mac(cookie) : '';
    },
    check(c, token) {
      const cookie = getCookie(c, SESSION_COOKIE);
      if (!cookie || typeof token !== 'string' || token.length === 0 || token.length > 200) return false;
      const want = Buffer.from(mac(cookie));
      const got = Buffer.from(token);
      return want.length === got.length && timingSafeEqual(want, got);
    },
  };
}
