import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.ts';
import { UserError } from '../core/errors.ts';
import { newDevIdpKeys, startDevIdp, type DevIdpKeys } from '../authz/dev-idp.ts';
import { readUsersFile } from '../authz/users.ts';
import { readOrCreatePrivateFile, writePrivateFile } from '../host.ts';
import { createLogger } from '../log.ts';
import { exitIfStoppedWhileStarting } from './part.ts';

/** Where the development provider keeps its password (for the stack's owner to read, and for `--as`). */
export const idpPasswordFile = (config: Pick<Config, 'idp'>) => path.join(config.idp.dir, 'password');

/**
 * The provider's keys, made once and kept owner-only under MECHANIC_HOME/idp: tokens it signed
 * before a restart still verify after it, and the password stays the same.
 */
export async function ensureDevIdpKeys(config: Pick<Config, 'idp'>): Promise<DevIdpKeys> {
  const keysFile = path.join(config.idp.dir, 'keys.json');
  let saved: Pick<DevIdpKeys, 'signing' | 'cookies'> | undefined;
  try {
    saved = JSON.parse(await readFile(keysFile, 'utf8')) as Pick<DevIdpKeys, 'signing' | 'cookies'>;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new UserError(
        'CONFIG_INVALID',
        `${keysFile} cannot be read (${(e as Error).message}); delete it to make new keys (everyone signs in again)`,
      );
    }
  }
  const fresh = await newDevIdpKeys();
  if (saved === undefined) {
    saved = { signing: fresh.signing, cookies: fresh.cookies };
    await writePrivateFile(keysFile, `${JSON.stringify(saved, null, 2)}\n`);
  }
  const password = await readOrCreatePrivateFile(idpPasswordFile(config), () => fresh.password);
  return { ...saved, password };
}

/**
 * `mechanic idp`: the embedded stack's development OpenID provider as a process of its own, with
 * the users file's people, on 127.0.0.1 only. Its grants and refresh tokens live in
 * MECHANIC_HOME/idp/state.json, so a restart on the same port loses no sign-in.
 */
export async function runDevIdpPart(config: Config): Promise<number> {
  const log = createLogger('idp', config.logLevel);
  const { stopped, started } = exitIfStoppedWhileStarting(config.supervised, () => log.info('stopped while starting'));
  const keys = await ensureDevIdpKeys(config);
  const { users } = await readUsersFile(config.api.usersFile);
  let idp;
  try {
    idp = await startDevIdp({
      users,
      host: '127.0.0.1',
      port: config.idp.port,
      keys,
      stateFile: path.join(config.idp.dir, 'state.json'),
    });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES') {
      throw new UserError(
        'CONFIG_INVALID',
        `the development sign-in provider cannot listen on 127.0.0.1:${config.idp.port} (${code === 'EADDRINUSE' ? 'the port is in use' : 'permission denied'}); set MECHANIC_IDP_PORT to a free port`,
      );
    }
    throw e;
  }
  started();
  log.info({ issuer: idp.issuer, users: users.length }, 'ready');
  await stopped;
  await idp.close();
  log.info('stopped');
  return 0;
}
