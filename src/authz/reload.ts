import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { UserError } from '../core/errors.ts';
import type { Authorizer } from './authorizer.ts';

export interface ReloadOutcome {
  readonly applied: boolean;
  /** sha256 of the file as read (of nothing, when it could not be read). */
  readonly digest: string;
  /** Why the new policies were refused; the ones in force stay. */
  readonly reason?: string;
}

export interface ReloadableAuthorizer extends Authorizer {
  /** Re-reads the policies; only policies that load and validate replace the ones in force. */
  reload(): Promise<ReloadOutcome>;
}

/**
 * An Authorizer whose policies an admin can change without a restart. A file that does not load
 * or validate is refused and the policies in force stay, so a typo never opens or locks the door.
 */
export async function reloadableAuthorizer(
  file: string,
  load: (file: string) => Promise<Authorizer>,
): Promise<ReloadableAuthorizer> {
  let current = await load(file);
  return {
    authorize: (principal, action, resource, context) => current.authorize(principal, action, resource, context),
    async reload() {
      const digest = createHash('sha256')
        .update(await readFile(file).catch(() => Buffer.alloc(0)))
        .digest('hex');
      try {
        current = await load(file);
        return { applied: true, digest };
      } catch (e) {
        const reason = e instanceof UserError ? e.message : `the policies could not be loaded (${String(e)})`;
        return { applied: false, digest, reason };
      }
    },
  };
}
