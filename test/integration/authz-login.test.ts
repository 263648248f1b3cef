/**
 * `mechanic login` against a real OpenID provider (oidc-provider, the embedded stack's development
 * provider) with the device authorization grant: the real CLI in a child process waits for the
 * code, the test plays the person in the browser, the tokens land owner-only in the config folder,
 * and the API server's verifier accepts the ID token. Logout revokes the refresh token, so a copy
 * replayed afterwards is refused.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { credentialsFile, readSession, refresh, saveSession, type Session } from '../../src/authz/credentials.ts';
import { CLI_CLIENT_ID, approveDeviceCode, startDevIdp, type DevIdp } from '../../src/authz/dev-idp.ts';
import { oidcAuthenticator } from '../../src/authz/oidc.ts';
import { DEMO_USERS } from '../../src/authz/users.ts';
import { BIN, runCli } from '../helpers/cli.ts';

describe('mechanic login, whoami, logout', () => {
  let idp: DevIdp;
  let home: string;
  let env: NodeJS.ProcessEnv;
  let file: string;
  let session: Session;

  beforeAll(async () => {
    idp = await startDevIdp({ users: DEMO_USERS });
    home = await mkdtemp(path.join(tmpdir(), 'mechanic-login-'));
    env = { ...process.env, MECHANIC_HOME: home, XDG_CONFIG_HOME: path.join(home, 'config') };
    delete env['MECHANIC_OIDC_ISSUER'];
    delete env['MECHANIC_OIDC_AUDIENCE'];
    file = credentialsFile(env);
  });
  afterAll(async () => {
    await idp?.close();
    await rm(home, { recursive: true, force: true });
  });

  test('login runs the device flow: the CLI shows a code, the person approves it in the browser', async () => {
    const child = spawn(process.execPath, [BIN, 'login', '--issuer', idp.issuer], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const complete = new Promise<string>((resolve) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /or open (\S+)/.exec(stderr);
        if (m) resolve(m[1]!);
      });
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const url = await Promise.race([
      complete,
      exited.then(() => Promise.reject(new Error(`login exited early: ${stderr}`))),
    ]);
    expect(stderr).toMatch(
      new RegExp(`^To sign in, open ${idp.issuer}/device and enter the code [A-Z]{4}-[A-Z]{4}\\n`),
    );
    await approveDeviceCode(url, 'bob', idp.password);
    expect(await exited).toBe(0);
    expect(stdout).toBe(`signed in to ${idp.issuer} as bob (approver, author, sre)\n`);

    expect((await stat(file)).mode & 0o777).toBe(0o600);
    session = (await readSession(file, idp.issuer))!;
    expect(session).toMatchObject({ issuer: idp.issuer, clientId: CLI_CLIENT_ID, refreshToken: expect.any(String) });
  });

  test("the API server's verifier accepts the ID token, with bob's roles", async () => {
    const verifier = oidcAuthenticator({
      issuer: idp.issuer,
      audience: CLI_CLIENT_ID,
      jwksUrl: undefined,
      userClaim: 'sub',
      groupsClaim: 'groups',
      algorithms: ['ES256', 'RS256'],
      clockSkewSeconds: 30,
    });
    expect(await verifier.verify(session.idToken)).toEqual({
      id: 'bob',
      displayName: 'Bob (approver, author)',
      roles: ['approver', 'author'],
      groups: ['approver', 'author', 'sre'],
    });
  });

  test('whoami reads the stored sign-in', async () => {
    const r = await runCli(['whoami', '--issuer', idp.issuer], env);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(
      new RegExp(`^bob \\(approver, author, sre\\) at ${idp.issuer}; token valid until \\d{4}-`),
    );
  });

  test('the refresh token renews the sign-in', async () => {
    const renewed = await refresh(session);
    expect(renewed.idToken).not.toBe(session.idToken);
    session = renewed;
    // Refresh tokens rotate: the stored one is now spent, so the renewed session replaces it.
    await saveSession(file, renewed);
    await expect(refresh({ ...renewed, refreshToken: 'not-a-refresh-token' })).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
    });
  });

  test('logout revokes the refresh token: a copy replayed afterwards is refused', async () => {
    const stored = (await readSession(file, idp.issuer))!;
    const r = await runCli(['logout', '--issuer', idp.issuer], env);
    expect(r).toMatchObject({ code: 0, stdout: `signed out of ${idp.issuer}; the refresh token is revoked\n` });
    await expect(refresh(stored)).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      message: 'your sign-in was revoked or has expired; run "mechanic login"',
    });
    const who = await runCli(['whoami', '--issuer', idp.issuer], env);
    expect(who).toMatchObject({
      code: 1,
      stderr: `mechanic: you are not signed in to ${idp.issuer}; run "mechanic login"\n`,
    });
  });

  test('login --as plays the browser itself against the development provider, with its password', async () => {
    const refused = await runCli(['login', '--issuer', idp.issuer, '--as', 'carol'], env);
    expect(refused).toMatchObject({ code: 2 });
    expect(refused.stderr).toMatch(/^mechanic: --as needs the embedded stack's sign-in provider, and .* is missing; /);
    await mkdir(path.join(home, 'idp'), { recursive: true });
    await writeFile(path.join(home, 'idp', 'password'), 'not-the-password\n', { mode: 0o600 });
    const wrong = await runCli(['login', '--issuer', idp.issuer, '--as', 'carol'], env);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/refused the sign-in as carol: .*Unknown user or wrong password/);
    await writeFile(path.join(home, 'idp', 'password'), `${idp.password}\n`, { mode: 0o600 });
    const r = await runCli(['login', '--issuer', idp.issuer, '--as', 'carol'], env);
    expect(r).toMatchObject({ code: 0, stdout: `signed in to ${idp.issuer} as carol (approver, author, dba)\n` });
  });

  test('login without an issuer says how to name one', async () => {
    const r = await runCli(['login'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^mechanic: name the identity provider with --issuer <url> or MECHANIC_OIDC_ISSUER, or start the embedded stack \(mechanic dev\); usage: /,
    );
  });
});
