import { mkdir, readFile, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as jose from 'jose';
import { z } from 'zod';
import { UserError } from '../core/errors.ts';
import { writePrivateFile } from '../host.ts';

/**
 * A person's sign-in on this machine: the tokens `mechanic login` obtained with the device
 * authorization grant (RFC 8628), kept owner-only in the user's config folder, one entry per issuer.
 * The ID token is the bearer token the API server verifies (its audience is the CLI's client id).
 */
const SessionSchema = z.strictObject({
  issuer: z.string(),
  clientId: z.string(),
  idToken: z.string(),
  refreshToken: z.string().optional(),
  /** Seconds since the epoch. */
  expiresAt: z.number(),
});
export type Session = z.infer<typeof SessionSchema>;
const FileSchema = z.strictObject({ sessions: z.record(z.string(), SessionSchema) });

/** $XDG_CONFIG_HOME/mechanic/credentials.json, or ~/.config/mechanic/credentials.json. */
export function credentialsFile(env: NodeJS.ProcessEnv = process.env): string {
  const base = env['XDG_CONFIG_HOME'] || path.join(homedir(), '.config');
  return path.join(base, 'mechanic', 'credentials.json');
}

async function readAll(file: string): Promise<z.infer<typeof FileSchema>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { sessions: {} };
    throw e;
  }
  const r = FileSchema.safeParse(JSON.parse(text));
  if (!r.success)
    throw new UserError(
      'CONFIG_INVALID',
      `${file} is not a mechanic credentials file; delete it and run "mechanic login"`,
    );
  return r.data;
}

async function writeAll(file: string, data: z.infer<typeof FileSchema>): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writePrivateFile(file, `${JSON.stringify(data, null, 2)}\n`);
}

export async function readSession(file: string, issuer: string): Promise<Session | undefined> {
  return (await readAll(file)).sessions[issuer];
}

export async function saveSession(file: string, session: Session): Promise<void> {
  const all = await readAll(file);
  all.sessions[session.issuer] = session;
  await writeAll(file, all);
}

export async function forgetSession(file: string, issuer: string): Promise<Session | undefined> {
  const all = await readAll(file);
  const session = all.sessions[issuer];
  delete all.sessions[issuer];
  if (Object.keys(all.sessions).length === 0) await rm(file, { force: true });
  else await writeAll(file, all);
  return session;
}

interface Discovery {
  readonly issuer: string;
  readonly token_endpoint: string;
  readonly device_authorization_endpoint?: string;
  readonly revocation_endpoint?: string;
}

export async function discover(issuer: string): Promise<Discovery> {
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  let doc: Discovery;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    doc = (await res.json()) as Discovery;
  } catch (e) {
    throw new UserError(
      'SERVER_UNAVAILABLE',
      `the identity provider at ${issuer} cannot be reached (${e instanceof Error ? e.message : String(e)}); check the issuer URL and that it is running`,
    );
  }
  if (doc.issuer !== issuer) {
    throw new UserError(
      'CONFIG_INVALID',
      `${url} names the issuer ${doc.issuer}, not ${issuer}; use the issuer URL exactly as the provider names it`,
    );
  }
  return doc;
}

async function post(
  url: string,
  fields: Record<string, string>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams(fields).toString(),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = { error: 'invalid_response', error_description: text.slice(0, 200) };
  }
  return { status: res.status, body };
}

export interface DevicePrompt {
  readonly verificationUri: string;
  readonly verificationUriComplete: string | undefined;
  readonly userCode: string;
  readonly expiresIn: number;
}

/**
 * The device authorization grant: asks for a code, shows it (through `prompt`), then polls the token
 * endpoint at the interval the provider asks for until the person has signed in, refused or let it expire.
 */
export async function deviceLogin(options: {
  readonly issuer: string;
  readonly clientId: string;
  readonly prompt: (p: DevicePrompt) => void | Promise<void>;
  readonly scope?: string;
}): Promise<Session> {
  const doc = await discover(options.issuer);
  if (!doc.device_authorization_endpoint) {
    throw new UserError(
      'CONFIG_INVALID',
      `the identity provider at ${options.issuer} does not offer the device authorization grant; enable it for the client ${options.clientId}`,
    );
  }
  const start = await post(doc.device_authorization_endpoint, {
    client_id: options.clientId,
    scope: options.scope ?? 'openid offline_access profile groups',
  });
  if (start.status !== 200) throw providerRefused('the device sign-in could not start', start.body);
  const b = start.body as {
    device_code: string;
    user_code: string;
    verification_uri: string;
    verification_uri_complete?: string;
    expires_in: number;
    interval?: number;
  };
  await options.prompt({
    verificationUri: b.verification_uri,
    verificationUriComplete: b.verification_uri_complete,
    userCode: b.user_code,
    expiresIn: b.expires_in,
  });
  let interval = (b.interval ?? 5) * 1000;
  const deadline = Date.now() + b.expires_in * 1000;
  while (Date.now() < deadline) {
    await sleep(interval);
    const r = await post(doc.token_endpoint, {
      client_id: options.clientId,
      grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
      device_code: b.device_code,
    });
    if (r.status === 200) return sessionFrom(options.issuer, options.clientId, r.body);
    const error = r.body['error'];
    if (error === 'authorization_pending') continue;
    if (error === 'slow_down') {
      interval += 5000;
      continue;
    }
    if (error === 'access_denied')
      throw new UserError('UNAUTHENTICATED', 'the sign-in was refused in the browser; run "mechanic login" again');
    if (error === 'expired_token') break;
    throw providerRefused('the sign-in failed', r.body);
  }
  throw new UserError('UNAUTHENTICATED', 'the sign-in code expired before anyone used it; run "mechanic login" again');
}

/**
 * The stored ID token, refreshed first when it expires within a minute. A refresh the provider
 * refuses (revoked, replayed, expired) ends the session: the person signs in again.
 */
export async function currentToken(file: string, issuer: string): Promise<string> {
  const session = await readSession(file, issuer);
  if (!session) throw new UserError('UNAUTHENTICATED', `you are not signed in to ${issuer}; run "mechanic login"`);
  if (session.expiresAt - 60 > Date.now() / 1000) return session.idToken;
  if (!session.refreshToken) throw new UserError('UNAUTHENTICATED', 'your sign-in expired; run "mechanic login"');
  const refreshed = await refresh(session);
  await saveSession(file, refreshed);
  return refreshed.idToken;
}

export async function refresh(session: Session): Promise<Session> {
  const doc = await discover(session.issuer);
  const r = await post(doc.token_endpoint, {
    client_id: session.clientId,
    grant_type: 'refresh_token',
    refresh_token: session.refreshToken ?? '',
  });
  if (r.status !== 200) {
    if (r.body['error'] === 'invalid_grant') {
      throw new UserError('UNAUTHENTICATED', 'your sign-in was revoked or has expired; run "mechanic login"');
    }
    throw providerRefused('the sign-in could not be renewed', r.body);
  }
  return sessionFrom(session.issuer, session.clientId, r.body, session.refreshToken);
}

/** Signs out at the provider too: the refresh token is revoked, so a copy of it is worthless. */
export async function revoke(session: Session): Promise<boolean> {
  if (!session.refreshToken) return false;
  const doc = await discover(session.issuer);
  if (!doc.revocation_endpoint) return false;
  const r = await post(doc.revocation_endpoint, {
    client_id: session.clientId,
    token: session.refreshToken,
    token_type_hint: 'refresh_token',
  });
  return r.status === 200;
}

/** Who a stored ID token says the person is (read, not verified: the server verifies it). */
export function describeToken(idToken: string): { id: string; groups: string[]; expiresAt: Date } {
  const claims = jose.decodeJwt(idToken);
  const groups = Array.isArray(claims['groups'])
    ? claims['groups'].filter((g): g is string => typeof g === 'string')
    : [];
  return { id: String(claims.sub), groups, expiresAt: new Date((claims.exp ?? 0) * 1000) };
}

function sessionFrom(
  issuer: string,
  clientId: string,
  body: Record<string, unknown>,
  previousRefresh?: string,
): Session {
  const idToken = body['id_token'];
  if (typeof idToken !== 'string') {
    throw new UserError(
      'UNAUTHENTICATED',
      `the identity provider returned no ID token; allow the "openid" scope for the client ${clientId}`,
    );
  }
  const refreshToken = typeof body['refresh_token'] === 'string' ? body['refresh_token'] : previousRefresh;
  return {
    issuer,
    clientId,
    idToken,
    ...(refreshToken ? { refreshToken } : {}),
    expiresAt: jose.decodeJwt(idToken).exp ?? Math.floor(Date.now() / 1000),
  };
}

function providerRefused(what: string, body: Record<string, unknown>): UserError {
  const why = [body['error'], body['error_description']].filter((v) => typeof v === 'string').join(': ');
  return new UserError('UNAUTHENTICATED', `${what}: the identity provider answered ${why || 'with an error'}`);
}
