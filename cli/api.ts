import type { Config } from '../src/config.ts';
import { UserError, type ErrorCode } from '../src/core/errors.ts';
import { readUsersFile } from '../src/authz/users.ts';
import { readStack } from '../src/embedded/stack-file.ts';

export interface Api {
  readonly url: string;
  request<T>(method: 'GET' | 'POST', route: string, body?: unknown): Promise<T>;
}

/**
 * The CLI's only way into mechanic: the HTTP API, with the caller's token. `--as` picks a demo
 * user's token from the embedded stack's users file; otherwise MECHANIC_TOKEN is used.
 */
export async function connectApi(config: Config, as: string | undefined): Promise<Api> {
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
  return {
    url,
    async request<T>(method: 'GET' | 'POST', route: string, body?: unknown): Promise<T> {
      let res: Response;
      try {
        res = await fetch(`${url}${route}`, {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
      } catch {
        throw new UserError(
          'SERVER_UNAVAILABLE',
          `the mechanic API at ${url} is not answering; start the stack with "mechanic dev" or set MECHANIC_API_URL`,
        );
      }
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new UserError(
          'SERVER_UNAVAILABLE',
          `the mechanic API at ${url} answered ${res.status} with something that is not JSON`,
        );
      }
      if (!res.ok) {
        const err = (json as { error?: { code?: string; message?: string } }).error;
        throw new UserError(
          (err?.code ?? 'SERVER_UNAVAILABLE') as ErrorCode,
          err?.message ?? `the API answered ${res.status}`,
        );
      }
      return json as T;
    },
  };
}
