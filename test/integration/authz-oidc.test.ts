/**
 * OIDC bearer tokens against a real local key server (discovery document + JWKS over HTTP, keys made
 * with jose), and the attack table: every bad token is refused with 401 and one sentence, and the
 * refusals of known callers are on the record, through the real app (SQLite audit store, Cedar).
 */
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { Client, Connection } from '@temporalio/client';
import * as jose from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadCedarAuthorizer } from '../../src/authz/cedar-authorizer.ts';
import { combinedAuthenticator, oidcAuthenticator, type OidcSettings } from '../../src/authz/oidc.ts';
import { tokenAuthenticator } from '../../src/authz/users.ts';
import { createInventory } from '../../src/activities/inventory.ts';
import { createStsClient, ssmClients } from '../../src/activities/aws.ts';
import { createApp } from '../../src/server/app.ts';
import { createAuditTail, type AuditTail } from '../../src/server/audit-tail.ts';
import { createExecutionService } from '../../src/server/executions.ts';
import { openAuditStore, type AuditStore } from '../../src/store/audit-log.ts';
import { loadRunbookRegistry } from '../../src/store/runbook-registry.ts';

const AUDIENCE = 'mechanic-api';

interface KeyServer {
  readonly issuer: string;
  publish(keys: jose.JWK[]): void;
  readonly fetches: () => number;
  close(): Promise<void>;
}

/** A minimal OpenID provider's public face: the discovery document and the key set. */
async function startKeyServer(): Promise<KeyServer> {
  let jwks: jose.JWK[] = [];
  let fetches = 0;
  let issuer = '';
  const server: Server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') {
      res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
    } else if (req.url === '/jwks') {
      fetches++;
      res.end(JSON.stringify({ keys: jwks }));
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    publish: (keys) => (jwks = keys),
    fetches: () => fetches,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function keyPair(alg: 'RS256' | 'ES256', kid: string) {
  const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true });
  return { alg, kid, privateKey, publicKey, jwk: { ...(await jose.exportJWK(publicKey)), kid, alg, use: 'sig' } };
}
type Key = Awaited<ReturnType<typeof keyPair>>;

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

describe('OIDC bearer tokens', () => {
  let idp: KeyServer;
  let rsa: Key;
  let ec: Key;
  let rogue: Key;
  let settings: OidcSettings;
  let home: string;
  let audit: AuditStore;
  let tail: AuditTail;
  let server: ServerType;
  let temporal: Client;
  let url: string;

  const sign = async (
    claims: jose.JWTPayload,
    key: Key = rsa,
    tweak: { iss?: string; aud?: string; exp?: number; nbf?: number; kid?: string } = {},
  ) =>
    new jose.SignJWT({ groups: ['operator', 'approver', 'sre'], ...claims })
      .setProtectedHeader({ alg: key.alg, kid: tweak.kid ?? key.kid })
      .setIssuer(tweak.iss ?? idp.issuer)
      .setAudience(tweak.aud ?? AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(tweak.exp ?? now() + 600)
      .setNotBefore(tweak.nbf ?? now() - 5)
      .sign(key.privateKey);

  beforeAll(async () => {
    idp = await startKeyServer();
    [rsa, ec, rogue] = await Promise.all([keyPair('RS256', 'k1'), keyPair('ES256', 'k2'), keyPair('RS256', 'rogue')]);
    idp.publish([rsa.jwk, ec.jwk]);
    settings = {
      issuer: idp.issuer,
      audience: AUDIENCE,
      jwksUrl: undefined,
      userClaim: 'sub',
      groupsClaim: 'groups',
      algorithms: ['RS256', 'ES256'],
      clockSkewSeconds: 30,
    };

    home = await mkdtemp(path.join(tmpdir(), 'mechanic-oidc-'));
    audit = await openAuditStore({ kind: 'sqlite', file: path.join(home, 'audit.db') });
    tail = createAuditTail(audit, 50);
    temporal = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }) });
    const aws = { region: 'us-east-1', endpoint: 'http://127.0.0.1:1' };
    const registry = await loadRunbookRegistry('runbooks');
    const executions = createExecutionService({
      client: temporal,
      taskQueue: 'unused',
      registry,
      inventory: createInventory({ sts: createStsClient(aws), ssmFor: ssmClients(aws) }),
      audit,
      region: 'us-east-1',
      settings: { heartbeatTimeoutSeconds: 60 },
      authorizer: await loadCedarAuthorizer(),
    });
    const app = createApp({
      authenticator: combinedAuthenticator(
        tokenAuthenticator({
          users: [
            { id: 'ci-bot', displayName: 'CI', roles: ['auditor'], token: 'mk_ci-bot-0123456789abcdef0123456789' },
          ],
        }),
        oidcAuthenticator(settings, { refetchCooldownMs: 0 }),
      ),
      authorizer: await loadCedarAuthorizer(),
      executions,
      registry,
      audit,
      tail,
      log: pino({ level: 'silent' }),
    });
    server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    tail?.stop();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await temporal?.connection.close();
    await audit?.close();
    await idp?.close();
    await rm(home, { recursive: true, force: true });
  });

  const get = (route: string, token?: string, init: RequestInit = {}) =>
    fetch(`${url}${route}`, {
      ...init,
      headers: {
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        'content-type': 'application/json',
      },
    });

  test('a valid token signs its subject in, with the roles its groups name', async () => {
    const res = await get('/api/me', await sign({ sub: 'erin', name: 'Erin', groups: ['operator', 'sre'] }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      user: { id: 'erin', displayName: 'Erin', roles: ['operator'], groups: ['operator', 'sre'] },
    });
    const ecToken = await sign({ sub: 'erin' }, ec);
    expect((await get('/api/me', ecToken)).status).toBe(200);
  });

  test('static tokens from the users file still work beside OIDC', async () => {
    const res = await get('/api/me', 'mk_ci-bot-0123456789abcdef0123456789');
    expect(res.status).toBe(200);
  });

  test('a rotated key is fetched when a token first names it', async () => {
    const next = await keyPair('ES256', 'k3');
    const token = await sign({ sub: 'erin' }, next);
    const before = idp.fetches();
    idp.publish([rsa.jwk, ec.jwk, next.jwk]);
    expect((await get('/api/me', token)).status).toBe(200);
    expect(idp.fetches()).toBe(before + 1);
  });

  // The attack table: each row is refused with 401 and exactly this sentence, and nothing changes.
  const attacks: [string, () => Promise<string | undefined>, string][] = [
    ['no token', async () => undefined, 'a valid bearer token is required; pass --as <user> or set MECHANIC_TOKEN'],
    [
      'a malformed token',
      async () => 'eyJhbGciOi.not-a-jwt',
      'a valid bearer token is required; pass --as <user> or set MECHANIC_TOKEN',
    ],
    [
      // The signature is checked before the payload is read, so garbage never reaches a JSON parser.
      'a token with a garbled payload',
      async () => `${b64({ alg: 'RS256', kid: 'k1' })}.${Buffer.from('{"sub":').toString('base64url')}.c2ln`,
      "the token's signature does not verify; it was altered or signed by someone else",
    ],
    [
      'an expired token',
      () => sign({ sub: 'erin' }, rsa, { exp: now() - 3600 }),
      'the token expired at <exp>; sign in again with "mechanic login"',
    ],
    [
      'a token not valid yet',
      () => sign({ sub: 'erin' }, rsa, { nbf: now() + 3600 }),
      "the token is not valid yet (its nbf is in the future); check this machine's and the issuer's clocks",
    ],
    [
      'a token for another audience',
      () => sign({ sub: 'erin' }, rsa, { aud: 'another-api' }),
      'the token is for another audience than mechanic-api; ask the issuer for a token for mechanic',
    ],
    [
      'a token from another issuer',
      () => sign({ sub: 'erin' }, rsa, { iss: 'https://evil.example' }),
      'the token was issued by https://evil.example, not by <issuer>; use a token from the configured issuer',
    ],
    [
      'alg: none',
      async () => `${b64({ alg: 'none' })}.${b64({ sub: 'erin', iss: idp.issuer, aud: AUDIENCE, exp: now() + 600 })}.`,
      'the token is signed with alg "none", which mechanic does not accept (accepted: RS256, ES256)',
    ],
    [
      'HS256 with the public key as the secret',
      async () =>
        new jose.SignJWT({ sub: 'erin', groups: ['admin'] })
          .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
          .setIssuer(idp.issuer)
          .setAudience(AUDIENCE)
          .setExpirationTime(now() + 600)
          .sign(new TextEncoder().encode(JSON.stringify(rsa.jwk))),
      'the token is signed with alg "HS256", which mechanic does not accept (accepted: RS256, ES256)',
    ],
    [
      'a token signed by a key the issuer does not publish',
      () => sign({ sub: 'erin' }, rogue),
      'the token is signed with a key the issuer does not publish; sign in again with "mechanic login"',
    ],
    [
      "a token signed by another key under a published key's id",
      () => sign({ sub: 'erin', groups: ['admin'] }, rogue, { kid: 'k1' }),
      "the token's signature does not verify; it was altered or signed by someone else",
    ],
    [
      'a token whose payload was altered',
      async () => {
        const [h, , s] = (await sign({ sub: 'erin' })).split('.');
        return `${h}.${b64({ sub: 'erin', groups: ['admin'], iss: idp.issuer, aud: AUDIENCE, exp: now() + 600 })}.${s}`;
      },
      "the token's signature does not verify; it was altered or signed by someone else",
    ],
    [
      'a token without a subject',
      () => sign({}),
      'the token has no "sub" claim, which mechanic requires; ask the issuer for a token that carries it',
    ],
  ];

  test.each(attacks)('%s is refused with 401 and one sentence', async (_name, make, message) => {
    const token = await make();
    const before = (await audit.list({ limit: 10_000 })).length;
    const res = await get('/api/executions', token);
    expect(res.status).toBe(401);
    const body = (await res.json()) as { error: { code: string; message: string } };
    const exp = token && message.includes('<exp>') ? (jose.decodeJwt(token).exp ?? 0) : 0;
    expect(body).toEqual({
      error: {
        code: 'UNAUTHENTICATED',
        message: message.replace('<exp>', new Date(exp * 1000).toISOString()).replace('<issuer>', idp.issuer),
      },
    });
    expect((await audit.list({ limit: 10_000 })).length).toBe(before);
  });

  test('an auditor launching is refused with 403, recorded with the policies that decided', async () => {
    const token = await sign({ sub: 'dora', groups: ['auditor'] });
    const res = await get('/api/executions', token, {
      method: 'POST',
      body: JSON.stringify({ runbook: 'deploy-web', params: { release: 'v1.0.0' }, reason: 'try' }),
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({
      error: { code: 'FORBIDDEN', message: 'dora (auditor) may not launch runbooks; that needs the operator role' },
    });
    const records = await audit.list({ limit: 10_000 });
    expect(records.at(-1)).toMatchObject({
      type: 'access.denied',
      actor: 'dora',
      data: { action: 'launch', policies: [] },
    });
  });

  test("a vote that names another approver is refused: votes carry the token's user", async () => {
    const token = await sign({ sub: 'bob', groups: ['approver'] });
    const res = await get('/api/executions/mx-aaaaaaaaaaaaaaaaaaaaaaaaaa/votes', token, {
      method: 'POST',
      body: JSON.stringify({ decision: 'approve', planDigest: 'a'.repeat(64), approver: 'carol' }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('USAGE');
    const last = (await audit.list({ limit: 10_000 })).at(-1);
    expect(last).toMatchObject({ type: 'request.refused', actor: 'bob' });
  });
});

describe('settings that would weaken verification', () => {
  test('an HMAC algorithm in the allow-list is refused at start', () => {
    expect(() =>
      oidcAuthenticator({
        issuer: 'https://idp.example',
        audience: 'a',
        jwksUrl: undefined,
        userClaim: 'sub',
        groupsClaim: 'groups',
        algorithms: ['RS256', 'HS256'],
        clockSkewSeconds: 30,
      }),
    ).toThrow(
      expect.objectContaining({
        code: 'CONFIG_INVALID',
        message: expect.stringMatching(/^MECHANIC_OIDC_ALGORITHMS names HS256/),
      }),
    );
  });
});
