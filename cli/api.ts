import type { Config } from '../src/config.ts';
import { UserError } from '../src/core/errors.ts';
import { createApiClient, type ApiClient, type Channel } from '../src/api/client.ts';
import { readUsersFile } from '../src/authz/users.ts';
import { readStack } from '../src/embedded/stack-file.ts';

/**
 * The CLI's only way into mechanic: the typed API client, with the caller's token. `--as` picks a demo
 * user's token from the embedded stack's users file; otherwise MECHANIC_TOKEN is used.
 */
export async function connectApi(config: Config, as: string | undefined, channel: Channel = 'cli'): Promise<ApiClient> {
  const stack = config.api.url ? undefined : await readStack(config.home);
  const url = (config.api.url ?? stack?.apiUrl ?? config.api.defaultUrl).replace(/\/$/, '');
  let token = config.api.token;
  if (as !== undefined) {
    let users;
    try {
      users = await readUsersFile(config.api.usersFile);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new UserError(
          'USAGE',
          '--as only works with the embedded stack, and it has not created its users yet; start it with "mechanic dev"',
        );
      }
      throw e;
    }
    const user = users.users.find((u) => u.id === as);
    if (!user) {
      throw new UserError(
        'USAGE',
        `there is no demo user "${as}"; the demo users are ${users.users.map((u) => u.id).join(', ')}`,
      );
    }
    token = user.token;
  }
  if (!token)
    throw new UserError('UNAUTHENTICATED', 'no credentials: pass --as <user> (embedded stack) or set MECHANIC_TOKEN');
  return createApiClient({ url, token, channel });
}
