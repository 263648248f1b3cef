import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readUsersFile, tokenAuthenticator } from '../../src/authz/users.ts';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const BOT_TOKEN = 'mk_ci-bot-secret-0123456789abcdefghij';

describe('the users file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mechanic-users-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a service account signs in with a token the file keeps only as a digest', async () => {
    const file = path.join(dir, 'users.json');
    await writeFile(
      file,
      JSON.stringify({
        users: [
          { id: 'alice', displayName: 'Alice', roles: ['operator'], token: 'mk_alice-0123456789abcdef0123456789' },
        ],
        serviceAccounts: [
          { id: 'ci-bot', displayName: 'CI', roles: ['auditor'], groups: ['ci'], tokenSha256: sha256(BOT_TOKEN) },
        ],
      }),
    );
    const auth = tokenAuthenticator(await readUsersFile(file));
    expect(await auth.authenticate(BOT_TOKEN)).toEqual({
      id: 'ci-bot',
      displayName: 'CI',
      roles: ['auditor'],
      groups: ['ci'],
    });
    expect(await auth.authenticate(sha256(BOT_TOKEN))).toBeUndefined();
    expect(await auth.authenticate('mk_alice-0123456789abcdef0123456789')).toMatchObject({ id: 'alice' });
  });

  test('a service account with a plaintext token is refused, naming the field', async () => {
    const file = path.join(dir, 'bad.json');
    await writeFile(
      file,
      JSON.stringify({
        users: [],
        serviceAccounts: [{ id: 'ci-bot', displayName: 'CI', roles: ['auditor'], tokenSha256: BOT_TOKEN }],
      }),
    );
    await expect(readUsersFile(file)).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('must be the hex sha256 digest of the token'),
    });
  });
});
