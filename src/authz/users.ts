import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { UserError } from '../core/errors.ts';
import { readOrCreatePrivateFile } from '../host.ts';

export const RoleSchema = z.enum(['operator', 'approver', 'auditor', 'author', 'admin']);
export type Role = z.infer<typeof RoleSchema>;

const UserSchema = z.strictObject({
  id: z.string().regex(/^[a-z][a-z0-9._-]{1,40}$/),
  displayName: z.string().min(1),
  roles: z.array(RoleSchema).min(1),
  /** The groups a person belongs to (for runbooks' approval groups); a role is also a group of its name. */
  groups: z.array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$/)).optional(),
  token: z.string().min(32),
});
/**
 * A service account (CI, a chat bot): its token is kept only as a sha256 digest, so the users file
 * never holds a usable secret. Make one with: printf %s "$TOKEN" | sha256sum
 */
const ServiceAccountSchema = UserSchema.omit({ token: true }).extend({
  tokenSha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be the hex sha256 digest of the token'),
});
const UsersFileSchema = z.strictObject({
  users: z.array(UserSchema),
  serviceAccounts: z.array(ServiceAccountSchema).optional(),
});

export type User = Omit<z.infer<typeof UserSchema>, 'token'>;
export type UsersFile = z.infer<typeof UsersFileSchema>;

/** The embedded stack's demo people, one per kind of user. */
export const DEMO_USERS: readonly Omit<User, never>[] = [
  // Alice is on call: she launches changes and approves other people's, never her own.
  { id: 'alice', displayName: 'Alice (operator)', roles: ['operator', 'approver'], groups: ['sre'] },
  // Bob approves changes, and reviews the runbook versions carol publishes (never his own).
  { id: 'bob', displayName: 'Bob (approver, author)', roles: ['approver', 'author'], groups: ['sre'] },
  { id: 'carol', displayName: 'Carol (approver)', roles: ['approver', 'author'], groups: ['dba'] },
  { id: 'dave', displayName: 'Dave (auditor)', roles: ['auditor'], groups: ['audit'] },
];

/**
 * Writes the demo users with fresh random tokens to an owner-only file, unless one exists
 * (tokens stay stable across restarts of the stack).
 */
export async function ensureDemoUsers(file: string): Promise<void> {
  await readOrCreatePrivateFile(file, () => {
    const users: UsersFile = {
      users: DEMO_USERS.map((u) => ({
        ...u,
        roles: [...u.roles],
        ...(u.groups ? { groups: [...u.groups] } : {}),
        token: `mk_${randomBytes(24).toString('base64url')}`,
      })),
    };
    return JSON.stringify(users, null, 2);
  });
}

export async function readUsersFile(file: string): Promise<UsersFile> {
  const text = await readFile(file, 'utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UserError('CONFIG_INVALID', `the users file ${file} is not valid JSON`);
  }
  const r = UsersFileSchema.safeParse(json);
  if (!r.success)
    throw new UserError('CONFIG_INVALID', `the users file ${file} is invalid:\n${z.prettifyError(r.error)}`);
  return r.data;
}

/**
 * Who is calling. Undefined means "no such token"; a token that is recognisably wrong (an expired
 * or foreign JWT) throws UNAUTHENTICATED with the sentence that says why.
 */
export interface Authenticator {
  authenticate(token: string): User | undefined | Promise<User | undefined>;
}

/**
 * Bearer tokens from the users file: the embedded stack's demo users, and service accounts whose
 * tokens are kept only as digests. Tokens are compared as sha256 digests in
 * constant time, so neither their length nor a matching prefix leaks through timing.
 */
export function tokenAuthenticator(file: UsersFile): Authenticator {
  const entries = [
    ...file.users.map((u) => ({ hash: digest(u.token), user: u })),
    ...(file.serviceAccounts ?? []).map((u) => ({ hash: Buffer.from(u.tokenSha256, 'hex'), user: u })),
  ].map(({ hash, user: u }) => ({
    digest: hash,
    user: { id: u.id, displayName: u.displayName, roles: u.roles, ...(u.groups ? { groups: u.groups } : {}) },
  }));
  return {
    authenticate(token) {
      const d = digest(token);
      let found: User | undefined;
      for (const e of entries) if (timingSafeEqual(e.digest, d)) found = e.user;
      return found;
    },
  };
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
