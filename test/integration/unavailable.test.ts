import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { getFreePort } from '../../src/embedded/ports.ts';
import { runCli } from '../helpers/cli.ts';

/** When a part mechanic needs is not up, the user reads one sentence saying which and what to do. */
describe('services that are not up', () => {
  let home: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'mechanic-down-'));
    const closed = await getFreePort(); // nothing listens here
    env = {
      ...process.env,
      MECHANIC_HOME: home,
      TEMPORAL_ADDRESS: `127.0.0.1:${closed}`,
      MECHANIC_API_URL: `http://127.0.0.1:${closed}`,
      MECHANIC_CODEC_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}`,
      MECHANIC_TOKEN: 'mk_not-a-real-token-but-long-enough-for-the-cli',
    };
    await writeFile(
      path.join(home, 'users.json'),
      JSON.stringify({ users: [{ id: 'alice', displayName: 'A', roles: ['operator'], token: 'x'.repeat(40) }] }),
    );
  });
  afterAll(async () => {
    await rm(home, { recursive: true, force: true });
  });

  const expectOneSentence = (r: { code: number; stderr: string }, code: number, sentence: RegExp) => {
    expect(r.code).toBe(code);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(sentence);
  };

  test('the CLI says the API is not answering', async () => {
    const r = await runCli(['list'], env);
    expectOneSentence(
      r,
      3,
      /^mechanic: the mechanic API at http:\/\/127\.0\.0\.1:\d+ is not answering; start the stack with "mechanic dev"/,
    );
  });

  test('the worker says the Temporal server is not answering', async () => {
    const r = await runCli(['worker'], env);
    expectOneSentence(
      r,
      3,
      /^mechanic: the Temporal server at 127\.0\.0\.1:\d+ is not answering; start it \(mechanic dev\) or set TEMPORAL_ADDRESS$/,
    );
  });

  test('the API server says the Temporal server is not answering', async () => {
    const r = await runCli(['server'], {
      ...env,
      MECHANIC_USERS_FILE: path.join(home, 'users.json'),
      MECHANIC_API_PORT: '0',
    });
    expectOneSentence(
      r,
      3,
      /^mechanic: the Temporal server at 127\.0\.0\.1:\d+ is not answering; start the stack with "mechanic dev" or set TEMPORAL_ADDRESS$/,
    );
  });

  test('a bad setting is named', async () => {
    const r = await runCli(['worker'], { ...env, MECHANIC_API_PORT: 'eighty' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^mechanic: the environment has an invalid setting:\n.*MECHANIC_API_PORT/s);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
