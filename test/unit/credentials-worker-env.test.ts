import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { CONTAINER_CREDENTIALS_PATH, containerTokenFor, defaultFleetConfig } from '../../src/devfleet/config.ts';
import { workerAwsEnv } from '../../src/embedded/stack.ts';
import { writeOwnerOnly } from '../helpers/claims.ts';

/**
 * What the embedded stack gives its worker to sign with: by default a role session from devfleet's
 * container-credentials endpoint (and no other source of AWS credentials the SDK's chain could
 * find first); devfleet's long-term keys when asked to, or when the fleet file predates the endpoint.
 */

const ROOT = { accessKeyId: 'AKIAWORKERENVTEST001', secretAccessKey: 'worker-env-test-secret-0001' };
const ENDPOINT = 'http://127.0.0.1:45999';
let home: string | undefined;
afterEach(async () => {
  if (home) await rm(home, { recursive: true, force: true });
  home = undefined;
});

async function setUp(fleet: object, mode?: 'role' | 'keys') {
  home = await mkdtemp(path.join(tmpdir(), 'mechanic-worker-env-'));
  await writeOwnerOnly(path.join(home, 'devfleet', 'fleet.json'), JSON.stringify(fleet));
  const config = loadConfig({
    MECHANIC_HOME: home,
    ...(mode ? { MECHANIC_DEV_WORKER_CREDENTIALS: mode } : {}),
  });
  const partEnv: NodeJS.ProcessEnv = {
    PATH: '/usr/bin',
    AWS_ACCESS_KEY_ID: ROOT.accessKeyId,
    AWS_SECRET_ACCESS_KEY: ROOT.secretAccessKey,
    AWS_PROFILE: 'someones-real-account',
    AWS_WEB_IDENTITY_TOKEN_FILE: '/var/run/token',
    MECHANIC_AWS_ENDPOINT: ENDPOINT,
  };
  return { config, partEnv };
}

describe("the embedded stack's worker credentials", () => {
  test('by default, a role session from the container endpoint, and nothing else the SDK could find first', async () => {
    const { config, partEnv } = await setUp(defaultFleetConfig(ROOT));
    const { env, note } = await workerAwsEnv(config, partEnv, ENDPOINT);
    expect(note).toBeUndefined();
    expect(env).toEqual({
      PATH: '/usr/bin',
      MECHANIC_AWS_ENDPOINT: ENDPOINT,
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `${ENDPOINT}${CONTAINER_CREDENTIALS_PATH}`,
      AWS_CONTAINER_AUTHORIZATION_TOKEN: containerTokenFor(ROOT),
      AWS_SHARED_CREDENTIALS_FILE: path.join(home!, 'devfleet', 'no-shared-credentials'),
      AWS_CONFIG_FILE: path.join(home!, 'devfleet', 'no-shared-config'),
      AWS_EC2_METADATA_DISABLED: 'true',
    });
  });

  test('MECHANIC_DEV_WORKER_CREDENTIALS=keys keeps the long-term keys', async () => {
    const { config, partEnv } = await setUp(defaultFleetConfig(ROOT), 'keys');
    expect(await workerAwsEnv(config, partEnv, ENDPOINT)).toEqual({ env: partEnv });
  });

  test('a fleet file without containerCredentials keeps the long-term keys, and says so', async () => {
    const { containerCredentials: _omitted, ...older } = defaultFleetConfig(ROOT);
    const { config, partEnv } = await setUp(older);
    const { env, note } = await workerAwsEnv(config, partEnv, ENDPOINT);
    expect(env).toEqual(partEnv);
    expect(note).toMatch(
      /^the worker signs with devfleet's long-term keys: the fleet file .* has no containerCredentials/,
    );
  });

  test('an unreadable fleet file is one sentence naming it', async () => {
    const { config, partEnv } = await setUp({ credentials: 'not a list' });
    await expect(workerAwsEnv(config, partEnv, ENDPOINT)).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/^the fleet file .*fleet\.json cannot be read for the worker's credentials: /),
    });
  });
});
