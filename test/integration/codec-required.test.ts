import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { startTestTemporal, type TestTemporal } from '../helpers/temporal.ts';

/**
 * "Payloads are always encrypted" holds for the real processes only if neither the worker nor the
 * API server will run without the codec keys. The Temporal server here is up and answering, so the
 * refusal is the missing key and nothing else: each process says so in one sentence and exits 1.
 */
describe('a worker or API server started without MECHANIC_CODEC_KEYS', () => {
  let temporal: TestTemporal;
  let home: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    temporal = await startTestTemporal();
    home = await mkdtemp(path.join(tmpdir(), 'mechanic-nocodec-'));
    const usersFile = path.join(home, 'users.json');
    await writeFile(
      usersFile,
      JSON.stringify({ users: [{ id: 'alice', displayName: 'A', roles: ['operator'], token: 'x'.repeat(40) }] }),
    );
    env = { ...process.env, MECHANIC_HOME: home, TEMPORAL_ADDRESS: temporal.address, MECHANIC_USERS_FILE: usersFile };
    delete env.MECHANIC_CODEC_KEYS;
    delete env.DATABASE_URL;
  });
  afterAll(async () => {
    // A refusal writes nothing: no audit database, no signing key, half-made or otherwise.
    expect((await readdir(home)).sort()).toEqual(['users.json']);
    await temporal?.teardown();
    if (home) await rm(home, { recursive: true, force: true });
  });

  const expectRefusal = (r: { code: number; stderr: string }, sentence: RegExp) => {
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(sentence);
  };
  const missing = /^mechanic: MECHANIC_CODEC_KEYS is not set; it holds the keys that encrypt workflow payloads/;

  test.each([['worker'], ['server']])('mechanic %s refuses to start, naming the setting', async (part) => {
    const r = await runCli([part], { ...env, MECHANIC_API_PORT: '0' });
    expectRefusal(r, missing);
  });

  test.each([['worker'], ['server']])('mechanic %s refuses an empty MECHANIC_CODEC_KEYS too', async (part) => {
    const r = await runCli([part], { ...env, MECHANIC_API_PORT: '0', MECHANIC_CODEC_KEYS: '' });
    expectRefusal(r, missing);
  });

  test.each([['worker'], ['server']])('mechanic %s refuses a key that is not 32 bytes', async (part) => {
    const short = Buffer.alloc(16, 7).toString('base64');
    const r = await runCli([part], { ...env, MECHANIC_API_PORT: '0', MECHANIC_CODEC_KEYS: `k1:${short}` });
    expectRefusal(r, /^mechanic: Codec key "k1" decodes to 16 bytes; each key must be exactly 32 bytes/);
    expect(r.stderr).not.toContain(short);
  });
});
