/**
 * The embedded stack's own OpenID provider, as `mechanic dev` runs it: `--as` gets its tokens from
 * that provider (they are JWTs the API server verifies on its OIDC path, not the users file's
 * tokens), caches them owner-only and renews them, a restart of the provider loses nothing, and the
 * API server's browser sign-in (authorization code + PKCE) works against it end to end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import * as jose from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { refresh, type Session } from '../../src/authz/credentials.ts';
import { CLI_CLIENT_ID } from '../../src/authz/dev-idp.ts';
import type { UsersFile } from '../../src/authz/users.ts';
import type { AuditRecord } from '../../src/core/audit.ts';
import { Browser } from '../helpers/browser.ts';
import { BIN, runCli, startDevStack, type DevStack } from '../helpers/cli.ts';
import { partPid, waitFor } from '../helpers/parts.ts';

describe("the embedded stack's sign-in provider", () => {
  let stack: DevStack;
  let issuer: string;
  let scratch: string;
  const cli = (...args: string[]) => runCli(args, stack.env);
  const cached = async (user: string): Promise<Session> =>
    (
      JSON.parse(await readFile(path.join(stack.home, 'idp', 'as', `${user}.json`), 'utf8')) as {
        sessions: Record<string, Session>;
      }
    ).sessions[issuer]!;

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'mechanic-idp-'));
    stack = await startDevStack();
    issuer = stack.info.idpIssuer!;
  });
  afterAll(async () => {
    const code = await stack?.stop();
    await rm(scratch, { recursive: true, force: true });
    expect(code).toBe(0);
  });

  test('mechanic dev runs the provider on a loopback port and says where, and its secrets are owner-only', async () => {
    expect(issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(stack.output()).toContain(`sign-in        ${issuer}`);
    const doc = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(doc['issuer']).toBe(issuer);
    expect(doc['code_challenge_methods_supported']).toEqual(['S256']);
    for (const file of ['keys.json', 'password']) {
      expect((await stat(path.join(stack.home, 'idp', file))).mode & 0o777, file).toBe(0o600);
    }
  });

  test('--as gets a JWT from the provider, cached owner-only and reused', async () => {
    const first = await cli('runbooks', '--as', 'alice', '--json');
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const file = path.join(stack.home, 'idp', 'as', 'alice.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const session = await cached('alice');
    const claims = jose.decodeJwt(session.idToken);
    expect(claims).toMatchObject({ iss: issuer, aud: CLI_CLIENT_ID, sub: 'alice' });
    expect(jose.decodeProtectedHeader(session.idToken).alg).toBe('ES256');
    // The users file's static token for alice is not what was sent.
    const users = JSON.parse(await readFile(path.join(stack.home, 'users.json'), 'utf8')) as UsersFile;
    expect(session.idToken).not.toBe(users.users.find((u) => u.id === 'alice')!.token);

    const again = await cli('list', '--as', 'alice', '--json');
    expect(again.code).toBe(0);
    expect((await cached('alice')).idToken).toBe(session.idToken);
  });

  test('an expiring --as token is renewed with its refresh token; a dead one means a new sign-in', async () => {
    const before = await cached('alice');
    const file = path.join(stack.home, 'idp', 'as', 'alice.json');
    const expired = { sessions: { [issuer]: { ...before, expiresAt: Math.floor(Date.now() / 1000) - 10 } } };
    await writeFile(file, JSON.stringify(expired), { mode: 0o600 });
    expect((await cli('list', '--as', 'alice', '--json')).code).toBe(0);
    const renewed = await cached('alice');
    expect(renewed.idToken).not.toBe(before.idToken);
    expect(renewed.refreshToken).not.toBe(before.refreshToken); // rotated

    const dead = { sessions: { [issuer]: { ...renewed, expiresAt: 0, refreshToken: 'revoked-or-forgotten' } } };
    await writeFile(file, JSON.stringify(dead), { mode: 0o600 });
    const r = await cli('list', '--as', 'alice', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const fresh = await cached('alice');
    expect(fresh.refreshToken).not.toBe('revoked-or-forgotten');
    expect(jose.decodeJwt(fresh.idToken).sub).toBe('alice');
  });

  test('--as outside an embedded stack says what to do', async () => {
    const r = await runCli(['runbooks', '--as', 'alice'], { ...stack.env, MECHANIC_HOME: scratch });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `mechanic: --as only works with the embedded stack, and none is running from ${scratch}; start it with "mechanic dev"\n`,
    );
  });

  describe('an API server whose users file holds no demo tokens', () => {
    let server: ChildProcess;
    let url: string;
    const serviceToken = `mk_${randomBytes(24).toString('base64url')}`;
    let usersFile: string;

    beforeAll(async () => {
      // Only a service account, kept as a digest: nobody's usable token is in this file.
      usersFile = path.join(scratch, 'users-service-only.json');
      const file: UsersFile = {
        users: [],
        serviceAccounts: [
          {
            id: 'ci-bot',
            displayName: 'CI bot',
            roles: ['auditor'],
            tokenSha256: createHash('sha256').update(serviceToken).digest('hex'),
          },
        ],
      };
      await writeFile(usersFile, JSON.stringify(file), { mode: 0o600 });
      const codecKeys = (await readFile(path.join(stack.home, 'codec-keys'), 'utf8')).trim();
      server = spawn(process.execPath, [BIN, 'server'], {
        env: {
          ...stack.env,
          MECHANIC_CODEC_KEYS: codecKeys,
          MECHANIC_API_PORT: '0',
          MECHANIC_USERS_FILE: usersFile,
          MECHANIC_OIDC_ISSUER: issuer,
          MECHANIC_OIDC_AUDIENCE: CLI_CLIENT_ID,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      url = await new Promise<string>((resolve, reject) => {
        let seen = '';
        const onLine = (line: string) => {
          seen += `${line}\n`;
          try {
            const entry = JSON.parse(line) as { msg?: string; url?: string };
            if (entry.msg === 'ready' && entry.url) resolve(entry.url);
          } catch {
            // not a log line
          }
        };
        createInterface({ input: server.stdout! }).on('line', onLine);
        createInterface({ input: server.stderr! }).on('line', onLine);
        server.once('exit', (code) => reject(new Error(`mechanic server exited (${code}):\n${seen}`)));
      });
    });
    afterAll(async () => {
      if (server && server.exitCode === null) {
        const exited = new Promise((r) => server.once('exit', r));
        server.kill('SIGTERM');
        await exited;
      }
    });

    const at = (...args: string[]) => runCli(args, { ...stack.env, MECHANIC_API_URL: url });

    test('still accepts --as: the token is a JWT verified on the OIDC path', async () => {
      const r = await at('runbooks', '--as', 'bob', '--json');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const dave = await at('audit', 'verify', '--as', 'dave', '--json');
      expect(dave.code).toBe(0);
    });

    test('--as names no demo user a users file does not have', async () => {
      const r = await runCli(['runbooks', '--as', 'alice'], { ...stack.env, MECHANIC_USERS_FILE: usersFile });
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(`mechanic: there is no demo user "alice"; ${usersFile} names none\n`);
    });

    test("refuses a demo user's static token, and accepts the service account's", async () => {
      const users = JSON.parse(await readFile(path.join(stack.home, 'users.json'), 'utf8')) as UsersFile;
      const demoToken = users.users.find((u) => u.id === 'dave')!.token;
      const refused = await runCli(['audit', 'verify'], {
        ...stack.env,
        MECHANIC_API_URL: url,
        MECHANIC_TOKEN: demoToken,
      });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^mechanic: a valid bearer token is required/);
      const service = await runCli(['audit', 'verify', '--json'], {
        ...stack.env,
        MECHANIC_API_URL: url,
        MECHANIC_TOKEN: serviceToken,
      });
      expect(service.stderr).toBe('');
      expect(service.code).toBe(0);
    });
  });

  test('a restarted provider keeps its keys, its port and the sign-ins it granted', { timeout: 180_000 }, async () => {
    const jwksBefore = await (await fetch(`${issuer}/jwks`)).text();
    const session = await cached('alice');
    const pid = partPid(stack, 'idp');
    process.kill(pid, 'SIGKILL');
    await waitFor('the provider to come back', async () => {
      const now = partPid(stack, 'idp');
      if (now === pid) return undefined;
      const res = await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5000) });
      return res.ok ? true : undefined;
    });
    expect(stack.output()).toMatch(/idp exited \(SIGKILL\); restarting it/);
    expect(await (await fetch(`${issuer}/jwks`)).text()).toBe(jwksBefore);
    // The token issued before the restart is still accepted, without a new sign-in.
    const r = await cli('list', '--as', 'alice', '--json');
    expect(r.code).toBe(0);
    expect((await cached('alice')).idToken).toBe(session.idToken);
    // Its refresh token, granted before the restart, still renews it.
    const renewed = await refresh(session);
    expect(jose.decodeJwt(renewed.idToken).sub).toBe('alice');
    // And a new sign-in works.
    expect((await cli('runbooks', '--as', 'carol', '--json')).code).toBe(0);
  });

  test("the API server's browser sign-in works against the provider, and refusals are on the record", async () => {
    const password = (await readFile(path.join(stack.home, 'idp', 'password'), 'utf8')).trim();
    const browser = new Browser();
    const atProvider = await browser.go(`${stack.info.apiUrl}/auth/login?next=${encodeURIComponent('/healthz')}`);
    expect(new URL(atProvider.url).origin).toBe(issuer);
    const callback = await browser.signIn(atProvider, 'carol', password);
    expect(callback.startsWith(`${stack.info.apiUrl}/auth/callback?`)).toBe(true);
    const back = await browser.go(callback);
    expect(back.url).toBe(`${stack.info.apiUrl}/healthz`);
    expect(browser.cookies.get('mechanic_session')).toMatchObject({ httpOnly: true, sameSite: 'Lax', secure: false });

    const foreign = await new Browser().request(`${stack.info.apiUrl}/auth/login?next=https://evil.example/`);
    expect(foreign.status).toBe(400);
    const audit = await cli('audit', 'list', '--as', 'dave', '--json');
    const records = JSON.parse(audit.stdout) as AuditRecord[];
    expect(records.find((r) => r.actor === 'anonymous' && r.type === 'request.refused')).toMatchObject({
      data: { path: '/auth/login', channel: 'web', code: 'UNAUTHENTICATED' },
    });
  });
});
