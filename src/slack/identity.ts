/**
 * Who a Slack user is in mechanic. Slack tells us only a user id (`U…`); the admin's Slack users
 * file says which mechanic identity — id, roles, groups — that id is. When the admin allows it, a
 * Slack user not in the file by id is matched by the e-mail Slack has confirmed for them
 * (`users.info`, scope users:read.email) against the file's e-mails. Nobody else is anyone: an
 * unmapped click is refused, never guessed from a display name.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { UserError } from '../core/errors.ts';
import { RoleSchema, type User } from '../authz/users.ts';
import type { SlackApi } from './client.ts';

const SlackIdentitySchema = z
  .strictObject({
    /** The Slack user id (Workspace settings → profile → "Copy member ID"). */
    slackUserId: z
      .string()
      .regex(/^[UW][A-Z0-9]{2,30}$/)
      .optional(),
    /** Matched against Slack's confirmed e-mail, only with MECHANIC_SLACK_ALLOW_EMAIL=true. */
    email: z.email().optional(),
    id: z.string().regex(/^[a-z][a-z0-9._-]{1,40}$/),
    displayName: z.string().min(1).optional(),
    roles: z.array(RoleSchema).min(1),
    groups: z.array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$/)).optional(),
  })
  .refine((u) => u.slackUserId !== undefined || u.email !== undefined, {
    message: 'each user needs a slackUserId or an email',
  });

export const SlackUsersFileSchema = z.strictObject({ users: z.array(SlackIdentitySchema) });
export type SlackUsersFile = z.infer<typeof SlackUsersFileSchema>;

export async function readSlackUsersFile(file: string): Promise<SlackUsersFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new UserError(
        'CONFIG_INVALID',
        `the Slack users file ${file} does not exist; create it (see slack/users.example.json) or set MECHANIC_SLACK_USERS_FILE`,
      );
    }
    throw e;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UserError('CONFIG_INVALID', `the Slack users file ${file} is not valid JSON`);
  }
  const r = SlackUsersFileSchema.safeParse(json);
  if (!r.success) {
    throw new UserError('CONFIG_INVALID', `the Slack users file ${file} is invalid:\n${z.prettifyError(r.error)}`);
  }
  const ids = new Set<string>();
  for (const u of r.data.users) {
    for (const key of [u.slackUserId, u.email?.toLowerCase()]) {
      if (key === undefined) continue;
      if (ids.has(key)) throw new UserError('CONFIG_INVALID', `the Slack users file ${file} maps ${key} twice`);
      ids.add(key);
    }
  }
  return r.data;
}

export type IdentityResult =
  | { readonly ok: true; readonly user: User; readonly via: 'slack-id' | 'email' }
  | { readonly ok: false; readonly reason: string };

export interface SlackIdentities {
  resolve(slackUserId: string): Promise<IdentityResult>;
}

export function slackIdentities(
  file: SlackUsersFile,
  opts: { readonly allowEmail: boolean; readonly api: Pick<SlackApi, 'userInfo'> },
): SlackIdentities {
  const toUser = (u: SlackUsersFile['users'][number]): User => ({
    id: u.id,
    displayName: u.displayName ?? u.id,
    roles: [...u.roles],
    ...(u.groups ? { groups: [...u.groups] } : {}),
  });
  const bySlackId = new Map(file.users.filter((u) => u.slackUserId).map((u) => [u.slackUserId!, u]));
  const byEmail = new Map(file.users.filter((u) => u.email).map((u) => [u.email!.toLowerCase(), u]));
  const unmapped = (id: string) =>
    `your Slack account (${id}) is not mapped to a mechanic user; ask an admin to add it to the Slack users file`;
  return {
    async resolve(slackUserId) {
      const direct = bySlackId.get(slackUserId);
      if (direct) return { ok: true, user: toUser(direct), via: 'slack-id' };
      if (!opts.allowEmail || byEmail.size === 0) return { ok: false, reason: unmapped(slackUserId) };
      const info = await opts.api.userInfo(slackUserId);
      // Only an address Slack has confirmed, of a live human account, stands for a person.
      if (info.deleted || info.isBot || !info.emailConfirmed || info.email === undefined) {
        return { ok: false, reason: unmapped(slackUserId) };
      }
      const match = byEmail.get(info.email.toLowerCase());
      if (!match || (match.slackUserId !== undefined && match.slackUserId !== slackUserId)) {
        return { ok: false, reason: unmapped(slackUserId) };
      }
      return { ok: true, user: toUser(match), via: 'email' };
    },
  };
}
