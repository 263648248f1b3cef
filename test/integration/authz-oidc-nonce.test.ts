/**
 * A browser sign-in's ID token must carry the nonce that sign-in sent (OpenID Connect Core 3.1.3.7):
 * the verifier behind /auth/callback refuses a token minted for another sign-in, with one sentence.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as jose from 'jose';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { oidcAuthenticator } from '../../src/authz/oidc.ts';

let server: Server;
let issuer: string;
let key: Awaited<ReturnType<typeof jose.generateKeyPair>>['privateKey'];

beforeAll(async () => {
  const pair = await jose.generateKeyPair('ES256', { extractable: true });
  key = pair.privateKey;
  const jwk = { ...(await jose.exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration')
      res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
    else res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server?.close(() => resolve()));
});

const idToken = (nonce: string | undefined) =>
  new jose.SignJWT({ groups: ['approver'], ...(nonce === undefined ? {} : { nonce }) })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(issuer)
    .setAudience('mechanic-web')
    .setSubject('bob')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(key);

test('the nonce of the sign-in is required; another one, or none, is refused', async () => {
  const verifier = oidcAuthenticator({
    issuer,
    audience: 'mechanic-web',
    jwksUrl: undefined,
    userClaim: 'sub',
    groupsClaim: 'groups',
    algorithms: ['ES256'],
    clockSkewSeconds: 30,
  });
  await expect(verifier.verify(await idToken('n-1'), { nonce: 'n-1' })).resolves.toMatchObject({ id: 'bob' });
  for (const nonce of ['n-2', undefined]) {
    await expect(verifier.verify(await idToken(nonce), { nonce: 'n-1' })).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      message: 'the ID token was issued for another sign-in (its nonce does not match); sign in again',
    });
  }
  // A bearer token (no sign-in to match) is judged without a nonce.
  await expect(verifier.authenticate(await idToken(undefined))).resolves.toMatchObject({ id: 'bob' });
});
