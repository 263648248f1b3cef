import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as jose from 'jose';
import type { Configuration } from 'oidc-provider';
import type { User } from './users.ts';

/** The client id `mechanic login` uses; its ID tokens are what the API server accepts (audience = this id). */
export const CLI_CLIENT_ID = 'mechanic-cli';

export interface DevIdp {
  /** The issuer URL (http://127.0.0.1:port). */
  readonly issuer: string;
  close(): Promise<void>;
}

/**
 * A real OpenID provider (oidc-provider) for the embedded stack: the demo users, their roles and
 * groups as a `groups` claim, the device authorization grant (RFC 8628) for `mechanic login`, and
 * refresh tokens. Sign-in uses oidc-provider's development login page, which takes any password:
 * it is bound to 127.0.0.1 and is for development only, like the rest of the embedded stack.
 */
export async function startDevIdp(options: {
  readonly users: readonly User[];
  readonly host?: string;
  readonly port?: number;
  /** Lifetimes in seconds; short values let tests see expiry and refresh. */
  readonly idTokenTtl?: number;
  readonly refreshTokenTtl?: number;
}): Promise<DevIdp> {
  const host = options.host ?? '127.0.0.1';
  const { createServer } = await import('node:http');
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, resolve);
  });
  const issuer = `http://${host}:${(server.address() as AddressInfo).port}`;
  const { privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const signing = {
    ...(await jose.exportJWK(privateKey)),
    kid: `dev-${randomBytes(4).toString('hex')}`,
    alg: 'ES256',
    use: 'sig',
  };
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
    ],
    jwks: { keys: [signing] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    features: {
      deviceFlow: {
        enabled: true,
        successSource: (ctx) => {
          ctx.body =
            '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Sign-in Success</title></head>' +
            '<body><h1>Sign-in Success</h1><p>You are signed in to mechanic; return to your terminal.</p></body></html>';
        },
      },
      devInteractions: { enabled: true },
      // A client may revoke only its own tokens (mechanic logout revokes its refresh token).
      revocation: { enabled: true, allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId },
    },
    scopes: ['openid', 'offline_access', 'groups'],
    claims: { openid: ['sub'], profile: ['name', 'preferred_username'], groups: ['groups'] },
    conformIdTokenClaims: false,
    issueRefreshToken: () => true,
    rotateRefreshToken: true,
    ttl: {
      IdToken: options.idTokenTtl ?? 3600,
      AccessToken: options.idTokenTtl ?? 3600,
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
    // The CLI asks once; consent for mechanic's own client is implied.
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
  server.on('request', (req, res) => void handle(req, res));
  return {
    issuer,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * Plays the person's part of a device sign-in on the dev provider, as a browser would: open the
 * verification page, confirm the code, sign in as `userId`. Tests and `--as` use it; a person uses a browser.
 */
export async function approveDeviceCode(verificationUriComplete: string, userId: string): Promise<void> {
  const jar = new Map<string, string>();
  const send = async (url: string, init: RequestInit = {}): Promise<Response> => {
    const res = await fetch(url, {
      ...init,
      redirect: 'manual',
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
  const follow = async (res: Response, base: string): Promise<Response> => {
    let r = res;
    for (let i = 0; i < 10 && r.status >= 300 && r.status < 400; i++) {
      r = await send(new URL(r.headers.get('location')!, base).toString());
    }
    return r;
  };

  const page = await send(verificationUriComplete);
  const html = await page.text();
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
  const userCode = new URL(verificationUriComplete).searchParams.get('user_code') ?? '';
  if (!xsrf) throw new Error(`the device page did not offer a form (HTTP ${page.status})`);
  const action = new URL(verificationUriComplete);
  action.search = '';
  let res = await follow(
    await send(action.toString(), form({ xsrf, user_code: userCode, confirm: 'yes' })),
    action.toString(),
  );
  // Login, then (if asked) consent: oidc-provider's development interaction pages.
  for (let i = 0; i < 4; i++) {
    const body = await res.text();
    const submit = /<form[^>]*action="([^"]+)"/.exec(body)?.[1];
    const prompt = /name="prompt" value="([^"]+)"/.exec(body)?.[1];
    if (!submit || !prompt) {
      if (/Sign-in Success/.test(body)) return;
      throw new Error(
        `the sign-in did not finish (HTTP ${res.status}): ${body
          .replace(/<[^>]+>/g, ' ')
          .replace(/\s+/g, ' ')
          .slice(0, 200)}`,
      );
    }
    const fields: Record<string, string> = prompt === 'login' ? { prompt, login: userId, password: 'dev' } : { prompt };
    res = await follow(
      await send(new URL(submit, res.url || action.toString()).toString(), form(fields)),
      action.toString(),
    );
  }
  throw new Error('the sign-in did not finish after four steps');
}
