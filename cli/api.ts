import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../src/config.ts';
import { UserError, isMechanicError } from '../src/core/errors.ts';
import { createApiClient, type ApiClient, type Channel } from '../src/api/client.ts';
import { credentialsFile, currentToken, readSession, saveSession } from '../src/authz/credentials.ts';
import { signInAs } from '../src/authz/dev-idp.ts';
import { readUsersFile } from '../src/authz/users.ts';
import { idpPasswordFile } from '../src/embedded/idp.ts';
import { readStack } from '../src/embedded/stack-file.ts';

const USER_ID = /^[a-z][a-z0-9._-]{1,40}$/;

/**
 * The CLI's only way into mechanic: the typed API client, with the caller's token. `--as` signs a
 * demo user in at the embedded stack's development provider and uses the ID token it issues, so the
 * API server verifies it as it would any OIDC token; otherwise MECHANIC_TOKEN, or the sign-in of
 * `mechanic login`.
 */
export async function connectApi(config: Config, as: string | undefined, channel: Channel = 'cli'): Promise<ApiClient> {
  const stack = await readStack(config.home);
  const url = (config.api.url ?? stack?.apiUrl ?? config.api.defaultUrl).replace(/\/$/, '');
  let token = config.api.token;
  if (as !== undefined) token = await tokenAs(config, as);
  // Signed in with `mechanic login` (at MECHANIC_OIDC_ISSUER, or the embedded stack's provider): that token, renewed.
  const issuer = config.authz.oidc?.issuer ?? stack?.idpIssuer;
  if (token === undefined && issuer !== undefined && (await readSession(credentialsFile(), issuer))) {
    token = await currentToken(credentialsFile(), issuer);
  }
  if (!token)
    throw new UserError(
      'UNAUTHENTICATED',
      'no credentials: sign in with "mechanic login", pass --as <user> (embedded stack) or set MECHANIC_TOKEN',
    );
  return createApiClient({ url, token, channel });
}

/**
 * A demo user's ID token from the embedded stack's provider: the cached one (owner-only under
 * MECHANIC_HOME/idp/as), renewed with its refresh token when it is about to expire, or a new
 * device sign-in when there is none or the provider no longer honours it.
 *
 * Only for the embedded stack: the issuer comes from its stack file, must be on a loopback address,
 * and the sign-in needs the provider's password, which only the stack's owner can read.
 */
export async function tokenAs(config: Config, as: string): Promise<string> {
  const stack = await readStack(config.home);
  const issuer = stack?.idpIssuer;
  if (issuer === undefined) {
    throw new UserError(
      'USAGE',
      `--as only works with the embedded stack, and none is running from ${config.home}; start it with "mechanic dev"`,
    );
  }
  if (!['127.0.0.1', '[::1]', 'localhost'].includes(new URL(issuer).hostname)) {
    throw new UserError('USAGE', `--as signs in only at a development provider on this machine, not at ${issuer}`);
  }
  const people = await demoUserIds(config);
  if (!USER_ID.test(as) || (people !== undefined && !people.includes(as))) {
    throw new UserError(
      'USAGE',
      `there is no demo user "${as.slice(0, 40)}"${people === undefined ? '' : people.length ? `; the demo users are ${people.join(', ')}` : `; ${config.api.usersFile} names none`}`,
    );
  }
  const file = path.join(config.idp.dir, 'as', `${as}.json`);
  try {
    return await currentToken(file, issuer);
  } catch (e) {
    // Not signed in yet, or the provider refused the refresh (it expired, was revoked or replayed): sign in again.
    if (!isMechanicError(e) || e.code !== 'UNAUTHENTICATED') throw e;
  }
  let password: string;
  try {
    password = (await readFile(idpPasswordFile(config), 'utf8')).trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    throw new UserError(
      'USAGE',
      `--as needs the embedded stack's sign-in provider, and ${idpPasswordFile(config)} is missing; start the stack with "mechanic dev"`,
    );
  }
  const session = await signInAs(issuer, as, password);
  await saveSession(file, session);
  return session.idToken;
}

/** The demo users' ids from the users file, for a helpful refusal; undefined when it cannot be read. */
async function demoUserIds(config: Config): Promise<string[] | undefined> {
  try {
    return (await readUsersFile(config.api.usersFile)).users.map((u) => u.id);
  } catch {
    return undefined;
  }
}
