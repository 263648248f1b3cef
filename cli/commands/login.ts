import { readFile } from 'node:fs/promises';
import { loadConfig } from '../../src/config.ts';
import { UserError } from '../../src/core/errors.ts';
import {
  credentialsFile,
  currentToken,
  describeToken,
  deviceLogin,
  forgetSession,
  readSession,
  revoke,
  saveSession,
} from '../../src/authz/credentials.ts';
import { CLI_CLIENT_ID, approveDeviceCode } from '../../src/authz/dev-idp.ts';
import { idpPasswordFile } from '../../src/embedded/idp.ts';
import { readStack } from '../../src/embedded/stack-file.ts';
import { parse } from '../args.ts';
import { out } from '../output.ts';

const OPTIONS = {
  issuer: { type: 'string' },
  'client-id': { type: 'string' },
  as: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/**
 * The issuer and client: flags first, then MECHANIC_OIDC_ISSUER / MECHANIC_OIDC_AUDIENCE, then the
 * embedded stack's development provider when one runs from MECHANIC_HOME.
 */
async function target(values: { issuer?: string | undefined; 'client-id'?: string | undefined }, usage: string) {
  const config = loadConfig();
  const oidc = config.authz.oidc;
  const issuer = values.issuer ?? oidc?.issuer ?? (await readStack(config.home))?.idpIssuer;
  if (!issuer)
    throw new UserError(
      'USAGE',
      `name the identity provider with --issuer <url> or MECHANIC_OIDC_ISSUER, or start the embedded stack (mechanic dev); usage: ${usage}`,
    );
  return { issuer, clientId: values['client-id'] ?? oidc?.audience ?? CLI_CLIENT_ID };
}

/**
 * The embedded stack's provider password, for `login --as`: only for a provider on this machine, and
 * only for the owner of the stack's home (the file is owner-only).
 */
async function devPassword(issuer: string): Promise<string> {
  if (!['127.0.0.1', '[::1]', 'localhost'].includes(new URL(issuer).hostname)) {
    throw new UserError('USAGE', `--as signs in only at a development provider on this machine, not at ${issuer}`);
  }
  const file = idpPasswordFile(loadConfig());
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    throw new UserError(
      'USAGE',
      `--as needs the embedded stack's sign-in provider, and ${file} is missing; start the stack with "mechanic dev"`,
    );
  }
}

/**
 * `mechanic login`: signs a person in with the device authorization grant and keeps the tokens
 * owner-only in their config folder. `--as <user>` is the embedded stack's shortcut: it plays the
 * browser's part itself against the development provider.
 */
export async function run(argv: string[]): Promise<number> {
  const usage = 'mechanic login [--issuer url] [--client-id id] [--as demo-user]';
  const { values, positionals } = parse(argv, OPTIONS, usage);
  if (positionals.length > 0) throw new UserError('USAGE', `login takes no arguments; usage: ${usage}`);
  const { issuer, clientId } = await target(values, usage);
  const session = await deviceLogin({
    issuer,
    clientId,
    prompt: async (p) => {
      if (values.as !== undefined) {
        await approveDeviceCode(p.verificationUriComplete ?? p.verificationUri, values.as, await devPassword(issuer));
        return;
      }
      out.info(`To sign in, open ${p.verificationUri} and enter the code ${p.userCode}`);
      if (p.verificationUriComplete) out.info(`or open ${p.verificationUriComplete}`);
      out.info(`The code is valid for ${Math.round(p.expiresIn / 60)} minutes; waiting…`);
    },
  });
  const file = credentialsFile();
  await saveSession(file, session);
  const who = describeToken(session.idToken);
  if (values.json) out.json({ issuer, user: who.id, groups: who.groups, expiresAt: who.expiresAt.toISOString() });
  else out.line(`signed in to ${issuer} as ${who.id}${who.groups.length ? ` (${who.groups.join(', ')})` : ''}`);
  return 0;
}

/** `mechanic logout`: revokes the refresh token at the provider and forgets the tokens here. */
export async function logout(argv: string[]): Promise<number> {
  const usage = 'mechanic logout [--issuer url]';
  const { values } = parse(argv, OPTIONS, usage);
  const { issuer } = await target(values, usage);
  const session = await forgetSession(credentialsFile(), issuer);
  if (!session) {
    out.line(`not signed in to ${issuer}`);
    return 0;
  }
  const revoked = await revoke(session).catch(() => false);
  out.line(
    revoked
      ? `signed out of ${issuer}; the refresh token is revoked`
      : `signed out of ${issuer} here; the provider could not revoke the refresh token, so it lasts until it expires`,
  );
  return 0;
}

/** `mechanic whoami`: who the stored sign-in says you are, renewed first when it is about to expire. */
export async function whoami(argv: string[]): Promise<number> {
  const usage = 'mechanic whoami [--issuer url] [--json]';
  const { values } = parse(argv, OPTIONS, usage);
  const { issuer } = await target(values, usage);
  const file = credentialsFile();
  if (!(await readSession(file, issuer)))
    throw new UserError('UNAUTHENTICATED', `you are not signed in to ${issuer}; run "mechanic login"`);
  const who = describeToken(await currentToken(file, issuer));
  if (values.json) out.json({ issuer, user: who.id, groups: who.groups, expiresAt: who.expiresAt.toISOString() });
  else
    out.line(
      `${who.id}${who.groups.length ? ` (${who.groups.join(', ')})` : ''} at ${issuer}; token valid until ${who.expiresAt.toISOString()}`,
    );
  return 0;
}
