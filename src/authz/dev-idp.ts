import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as jose from 'jose';
import type { Adapter, AdapterPayload, Configuration } from 'oidc-provider';
import { UserError } from '../core/errors.ts';
import { writePrivateFile } from '../host.ts';
import { discover, type Session } from './credentials.ts';
import type { User } from './users.ts';

/** The client id `mechanic login` uses; its ID tokens are what the API server accepts (audience = this id). */
export const CLI_CLIENT_ID = 'mechanic-cli';
/** The web client the API server's own pages sign in with (authorization code + PKCE, src/server/web-session.ts). */
export const WEB_CLIENT_ID = 'mechanic-web';

export interface DevIdp {
  /** The issuer URL (http://127.0.0.1:port). */
  readonly issuer: string;
  /** The one password of every demo user's sign-in on this provider. */
  readonly password: string;
  close(): Promise<void>;
}

/** What makes a provider the same one after a restart: its signing key, cookie keys and password. */
export interface DevIdpKeys {
  readonly signing: jose.JWK;
  readonly cookies: readonly string[];
  readonly password: string;
}

/** Fresh keys for a development provider (ES256 signing key, cookie key, a random password). */
export async function newDevIdpKeys(): Promise<DevIdpKeys> {
  const { privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
  return {
    signing: {
      ...(await jose.exportJWK(privateKey)),
      kid: `dev-${randomBytes(4).toString('hex')}`,
      alg: 'ES256',
      use: 'sig',
    },
    cookies: [randomBytes(32).toString('base64url')],
    password: randomBytes(18).toString('base64url'),
  };
}

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);

function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

/**
 * A real OpenID provider (oidc-provider) for the embedded stack: the demo users, their roles and
 * groups as a `groups` claim, the device authorization grant (RFC 8628) for `mechanic login` and
 * `--as`, the authorization code flow with PKCE for the server's web pages, and refresh tokens.
 * Its sign-in page takes a demo user's id and the provider's password (random, kept owner-only
 * under MECHANIC_HOME, like the rest of the stack's secrets): only the stack's owner signs in.
 * It listens on 127.0.0.1 and is for development only.
 *
 * With `stateFile`, grants, refresh tokens and sessions are kept in that owner-only file, so a
 * restarted provider (same keys, same port) still honours what it issued.
 */
export async function startDevIdp(options: {
  readonly users: readonly User[];
  readonly host?: string;
  readonly port?: number;
  readonly keys?: DevIdpKeys;
  readonly stateFile?: string;
  /** Lifetimes in seconds; short values let tests see expiry and refresh. */
  readonly idTokenTtl?: number;
  readonly refreshTokenTtl?: number;
}): Promise<DevIdp> {
  const host = options.host ?? '127.0.0.1';
  const { createServer } = await import('node:http');
  // The port comes first (it is part of the issuer), the provider a moment later: a request that arrives in
  // between (a client retrying while a restarted provider starts) waits for it instead of hanging unanswered.
  const route: { serve?: (req: IncomingMessage, res: ServerResponse) => void } = {};
  const waiting: [IncomingMessage, ServerResponse][] = [];
  const server: Server = createServer((req, res) => (route.serve ? route.serve(req, res) : waiting.push([req, res])));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, resolve);
  });
  const issuer = `http://${host}:${(server.address() as AddressInfo).port}`;
  const keys = options.keys ?? (await newDevIdpKeys());
  const users = new Map(options.users.map((u) => [u.id, u]));

  const configuration: Configuration = {
    clients: [
      {
        client_id: CLI_CLIENT_ID,
        client_name: 'mechanic CLI',
        token_endpoint_auth_method: 'none',
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
        response_types: [],
        redirect_uris: [],
        id_token_signed_response_alg: 'ES256',
      },
      {
        // A public client on a loopback address: oidc-provider lets a native client's loopback
        // redirect use any port (RFC 8252), which the stack's API server picks at start.
        client_id: WEB_CLIENT_ID,
        client_name: 'mechanic web',
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1/auth/callback'],
        id_token_signed_response_alg: 'ES256',
      },
    ],
    jwks: { keys: [keys.signing] },
    cookies: { keys: [...keys.cookies] },
    ...(options.stateFile ? { adapter: fileAdapter(options.stateFile) } : {}),
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      deviceFlow: {
        enabled: true,
        successSource: (ctx) => {
          ctx.body =
            '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Sign-in Success</title></head>' +
            '<body><h1>Sign-in Success</h1><p>You are signed in to mechanic; return to your terminal.</p></body></html>';
        },
      },
      devInteractions: { enabled: false },
      // A client may revoke only its own tokens (mechanic logout revokes its refresh token).
      revocation: { enabled: true, allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId },
    },
    pkce: { required: () => true },
    scopes: ['openid', 'offline_access', 'groups'],
    claims: { openid: ['sub'], profile: ['name', 'preferred_username'], groups: ['groups'] },
    conformIdTokenClaims: false,
    issueRefreshToken: (_ctx, client) => client.clientId === CLI_CLIENT_ID,
    rotateRefreshToken: true,
    ttl: {
      IdToken: options.idTokenTtl ?? 3600,
      AccessToken: options.idTokenTtl ?? 3600,
      AuthorizationCode: 60,
      RefreshToken: options.refreshTokenTtl ?? 8 * 3600,
      DeviceCode: 600,
      Grant: 8 * 3600,
      Session: 8 * 3600,
      Interaction: 600,
    },
    async findAccount(_ctx, id) {
      const user = users.get(id);
      if (!user) return undefined;
      return {
        accountId: id,
        claims: () => ({
          sub: id,
          name: user.displayName,
          preferred_username: id,
          groups: [...new Set([...user.roles, ...(user.groups ?? [])])],
        }),
      };
    },
    // mechanic's own clients need no consent screen: the grant is implied.
    loadExistingGrant: async (ctx) => {
      const client = ctx.oidc.client;
      const accountId = ctx.oidc.session?.accountId;
      if (!client || !accountId) return undefined;
      const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId });
      grant.addOIDCScope('openid offline_access groups profile');
      grant.addOIDCClaims(['sub', 'name', 'preferred_username', 'groups']);
      await grant.save();
      return grant;
    },
  };
  // Loaded here, not at import: it prints a Node 22 notice, which CLI commands should not show.
  const { default: Provider } = await import('oidc-provider');
  const provider = new Provider(issuer, configuration);
  provider.proxy = false;
  const handle = provider.callback();

  /** The sign-in page: a demo user's id and the provider's password. */
  const signIn = async (req: IncomingMessage, res: ServerResponse, uid: string, action: string | undefined) => {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) throw new Error('interaction mismatch');
    const form = (status: number, problem?: string) => {
      res.statusCode = status;
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.setHeader('cache-control', 'no-store');
      res.end(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Sign in to mechanic (development)</title></head><body>' +
          '<h1>Sign in to mechanic</h1><p>Development provider of the embedded stack: a demo user and the password in its home (idp/password).</p>' +
          (problem ? `<p role="alert">${esc(problem)}</p>` : '') +
          `<form method="post" action="/interaction/${esc(uid)}/login">` +
          '<label>User <input name="login" autocomplete="username" autofocus></label> ' +
          '<label>Password <input name="password" type="password" autocomplete="current-password"></label> ' +
          '<button type="submit">Sign in</button></form></body></html>',
      );
    };
    if (details.prompt.name !== 'login') {
      // mechanic's clients have an implied grant (loadExistingGrant); any other prompt means no grant yet.
      const grant = new provider.Grant({
        accountId: details.session!.accountId,
        clientId: String(details.params['client_id']),
      });
      const scope = details.params['scope'];
      grant.addOIDCScope(typeof scope === 'string' ? scope : 'openid');
      await provider.interactionFinished(
        req,
        res,
        { consent: { grantId: await grant.save() } },
        { mergeWithLastSubmission: true },
      );
      return;
    }
    if (action !== 'login' || req.method !== 'POST') return form(200);
    const body = new URLSearchParams(await readBody(req));
    const login = body.get('login') ?? '';
    const password = body.get('password') ?? '';
    // Both are compared whatever the first says, so a wrong user and a wrong password look alike.
    const known = users.has(login);
    const right = sameSecret(password, keys.password);
    if (!known || !right) return form(401, 'Unknown user or wrong password.');
    await provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
  };

  const serve = (req: IncomingMessage, res: ServerResponse) => {
    const m = /^\/interaction\/([A-Za-z0-9_-]{1,100})(?:\/(login))?(?:\?|$)/.exec(req.url ?? '');
    if (!m) {
      void handle(req, res);
      return;
    }
    signIn(req, res, m[1]!, m[2]).catch(() => {
      if (res.headersSent) {
        res.end();
        return;
      }
      res.statusCode = 400;
      res.setHeader('content-type', 'text/plain; charset=utf-8');
      res.end('This sign-in has expired or belongs to another browser; start it again.\n');
    });
  };
  route.serve = serve;
  for (const [req, res] of waiting.splice(0)) serve(req, res);
  return {
    issuer,
    password: keys.password,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of req) {
    text += String(chunk);
    if (text.length > 10_000) throw new Error('body too large');
  }
  return text;
}

interface Stored {
  payload: AdapterPayload;
  /** Milliseconds since the epoch; undefined: until removed. */
  expiresAt: number | undefined;
}

/**
 * oidc-provider's storage in one owner-only JSON file: small (a development provider's handful of
 * grants), rewritten whole on each change, read once at start.
 */
function fileAdapter(file: string): (name: string) => Adapter {
  const rows = new Map<string, Stored>();
  try {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as Record<string, Stored>;
    for (const [k, v] of Object.entries(saved)) rows.set(k, v);
  } catch {
    // No state yet (first start), or unreadable: start empty; people sign in again.
  }
  let writing: Promise<void> = Promise.resolve();
  const live = (key: string): AdapterPayload | undefined => {
    const row = rows.get(key);
    if (!row) return undefined;
    if (row.expiresAt !== undefined && row.expiresAt < Date.now()) {
      rows.delete(key);
      return undefined;
    }
    return row.payload;
  };
  const save = () => {
    const now = Date.now();
    for (const [k, v] of rows) if (v.expiresAt !== undefined && v.expiresAt < now) rows.delete(k);
    const text = JSON.stringify(Object.fromEntries(rows));
    writing = writing.then(() => writePrivateFile(file, text)).catch(() => {});
    return writing;
  };
  return (name) => {
    const key = (id: string) => `${name}:${id}`;
    return {
      async upsert(id, payload, expiresIn) {
        rows.set(key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
        await save();
      },
      async find(id) {
        return live(key(id));
      },
      async findByUid(uid) {
        for (const [k] of rows) {
          const p = k.startsWith(`${name}:`) ? live(k) : undefined;
          if (p?.uid === uid) return p;
        }
        return undefined;
      },
      async findByUserCode(userCode) {
        for (const [k] of rows) {
          const p = k.startsWith(`${name}:`) ? live(k) : undefined;
          if (p?.userCode === userCode) return p;
        }
        return undefined;
      },
      async consume(id) {
        const p = live(key(id));
        if (p) p.consumed = Math.floor(Date.now() / 1000);
        await save();
      },
      async destroy(id) {
        rows.delete(key(id));
        await save();
      },
      async revokeByGrantId(grantId) {
        for (const [k, v] of rows) if (v.payload.grantId === grantId) rows.delete(k);
        await save();
      },
    };
  };
}

/**
 * Plays the person's part of a device sign-in on the dev provider, as a browser would: open the
 * verification page, confirm the code, sign in as `userId` with the provider's password. Tests and
 * `--as` use it; a person uses a browser. A refused sign-in throws UNAUTHENTICATED with the page's sentence.
 */
export async function approveDeviceCode(
  verificationUriComplete: string,
  userId: string,
  password: string,
): Promise<void> {
  const jar = new Map<string, string>();
  const send = async (url: string, init: RequestInit = {}): Promise<Response> => {
    const res = await fetch(url, {
      ...init,
      redirect: 'manual',
      signal: AbortSignal.timeout(15_000),
      headers: { ...(init.headers ?? {}), cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') },
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      jar.set(pair!.slice(0, eq), pair!.slice(eq + 1));
    }
    return res;
  };
  const form = (fields: Record<string, string>): RequestInit => ({
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
  const follow = async (res: Response, base: string): Promise<{ res: Response; url: string }> => {
    let r = res;
    let url = base;
    for (let i = 0; i < 10 && r.status >= 300 && r.status < 400; i++) {
      url = new URL(r.headers.get('location')!, url).toString();
      r = await send(url);
    }
    return { res: r, url };
  };
  const text = (html: string) =>
    html
      .replace(/<[^>]+>/g, ' ')
      .replace(/\s+/g, ' ')
      .trim()
      .slice(0, 200);

  const page = await send(verificationUriComplete);
  const html = await page.text();
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
  const userCode = new URL(verificationUriComplete).searchParams.get('user_code') ?? '';
  if (!xsrf) throw new Error(`the device page did not offer a form (HTTP ${page.status})`);
  const action = new URL(verificationUriComplete);
  action.search = '';
  let { res, url } = await follow(
    await send(action.toString(), form({ xsrf, user_code: userCode, confirm: 'yes' })),
    action.toString(),
  );
  const body = await res.text();
  const submit = /<form method="post" action="([^"]+\/login)"/.exec(body)?.[1];
  if (!submit) throw new Error(`the device sign-in did not reach the sign-in page (HTTP ${res.status}): ${text(body)}`);
  ({ res, url } = await follow(await send(new URL(submit, url).toString(), form({ login: userId, password })), url));
  const done = await res.text();
  if (/Sign-in Success/.test(done)) return;
  throw new UserError('UNAUTHENTICATED', `the development provider refused the sign-in as ${userId}: ${text(done)}`);
}

/**
 * `--as <user>` on the embedded stack: a whole device sign-in (RFC 8628) on the development
 * provider, the person's part played with the provider's password (which only the stack's owner
 * can read). The ID token it returns is an ordinary one, verified by the API server like any other.
 */
export async function signInAs(issuer: string, userId: string, password: string): Promise<Session> {
  const doc = await discover(issuer);
  const post = async (url: string, fields: Record<string, string>) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams(fields).toString(),
      signal: AbortSignal.timeout(15_000),
    });
    return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, unknown> };
  };
  if (!doc.device_authorization_endpoint) {
    throw new UserError('CONFIG_INVALID', `${issuer} does not offer the device authorization grant`);
  }
  const start = await post(doc.device_authorization_endpoint, {
    client_id: CLI_CLIENT_ID,
    scope: 'openid offline_access profile groups',
  });
  const deviceCode = start.body['device_code'];
  const complete = start.body['verification_uri_complete'];
  if (start.status !== 200 || typeof deviceCode !== 'string' || typeof complete !== 'string') {
    throw new UserError('UNAUTHENTICATED', `the development provider at ${issuer} would not start a sign-in`);
  }
  await approveDeviceCode(complete, userId, password);
  // Approved already: one poll answers (a second one only if the provider is a moment behind).
  for (let attempt = 0; attempt < 5; attempt++) {
    const r = await post(doc.token_endpoint, {
      client_id: CLI_CLIENT_ID,
      grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
      device_code: deviceCode,
    });
    const idToken = r.body['id_token'];
    if (r.status === 200 && typeof idToken === 'string') {
      const refreshToken = r.body['refresh_token'];
      return {
        issuer,
        clientId: CLI_CLIENT_ID,
        idToken,
        ...(typeof refreshToken === 'string' ? { refreshToken } : {}),
        expiresAt: jose.decodeJwt(idToken).exp ?? Math.floor(Date.now() / 1000),
      };
    }
    if (r.body['error'] !== 'authorization_pending' && r.body['error'] !== 'slow_down') break;
    await new Promise((resolve) => setTimeout(resolve, 200 * (attempt + 1)));
  }
  throw new UserError(
    'UNAUTHENTICATED',
    `the development provider at ${issuer} did not finish the sign-in as ${userId}`,
  );
}
