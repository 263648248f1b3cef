/**
 * An approver votes only on a plan they were shown, and only once: the real `mechanic approve` and
 * `reject` against the embedded stack, with a pseudo-terminal for the interactive confirmation.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as pty from 'node-pty';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BIN, runCli, startDevStack, type DevStack } from '../helpers/cli.ts';

const TWO_KEYS = `name: two-keys
version: 1
description: A change that needs two approvers, to show how votes are counted.
roleArn: arn:aws:iam::123456789012:role/mechanic-runner
parameters:
  note: { type: string, pattern: '^[a-z ]+$' }
targets:
  tags: { Env: staging }
approval:
  required: 2
  expiresAfterMinutes: 30
steps:
  - name: say
    script: echo noted {{ note }}
`;

/** Runs the CLI in a pseudo-terminal, answers its question, and returns what the screen showed. */
function inTerminal(args: string[], env: NodeJS.ProcessEnv, answer: string): Promise<{ code: number; screen: string }> {
  return new Promise((resolve) => {
    const term = pty.spawn(process.execPath, [BIN, ...args], {
      cols: 120,
      rows: 40,
      env: env,
    });
    let screen = '';
    let answered = false;
    term.onData((d) => {
      screen += d;
      if (!answered && screen.includes('Type "yes"')) {
        answered = true;
        term.write(`${answer}\r`);
      }
    });
    term.onExit(({ exitCode }) => resolve({ code: exitCode, screen }));
  });
}

describe('votes are cast on a plan the voter saw, once', () => {
  let stack: DevStack;
  let runbooks: string;
  let id = '';
  let digest = '';
  const cli = (...args: string[]) => runCli(args, stack.env);
  const refusals = async () => {
    const r = await cli('audit', 'list', '--execution', id, '--as', 'dave', '--json');
    return (JSON.parse(r.stdout) as { type: string; actor: string; data: Record<string, unknown> }[]).filter((e) =>
      e.type.startsWith('approval.'),
    );
  };

  beforeAll(async () => {
    runbooks = await mkdtemp(path.join(tmpdir(), 'mechanic-votes-'));
    await writeFile(path.join(runbooks, 'two-keys.yaml'), TWO_KEYS);
    stack = await startDevStack({ MECHANIC_RUNBOOKS_DIR: runbooks });
    const r = await cli(
      'launch',
      'two-keys',
      '--param',
      'note=hello',
      '--reason',
      'votes test',
      '--as',
      'alice',
      '--json',
    );
    expect(r.code).toBe(0);
    ({ executionId: id, planDigest: digest } = JSON.parse(r.stdout) as { executionId: string; planDigest: string });
  });
  afterAll(async () => {
    await stack?.stop();
    await rm(runbooks, { recursive: true, force: true });
  });

  test('without a terminal and without --yes or --digest, the plan is shown and nothing is sent', async () => {
    const r = await cli('approve', id, '--as', 'bob');
    expect(r.code).toBe(2);
    expect(r.stdout).toContain(`You are approving this plan of ${id}`);
    expect(r.stdout).toContain(digest);
    expect(r.stderr).toBe(
      `mechanic: confirm the plan shown above: run this in a terminal, or add --yes or --digest ${digest.slice(0, 12)}\n`,
    );
    expect(await refusals()).toEqual([]);
  });

  test('a --digest that is not the plan’s is refused and nothing is sent', async () => {
    const r = await cli('approve', id, '--digest', '0123456789ab', '--as', 'bob');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^mechanic: the plan of mx-\w+ has digest [0-9a-f]{12}…, not 0123456789ab; review/);
    expect(await refusals()).toEqual([]);
  });

  test('on a terminal the plan comes first, then the question; answering no sends nothing', async () => {
    const { code, screen } = await inTerminal(['approve', id, '--as', 'bob'], stack.env, 'no');
    expect(code).toBe(1);
    expect(screen.indexOf(digest)).toBeGreaterThan(-1);
    expect(screen.indexOf(digest)).toBeLessThan(screen.indexOf('Type "yes"'));
    expect(screen).toContain('nothing was sent');
    expect(await refusals()).toEqual([]);
  });

  test('answering yes on a terminal casts the vote', async () => {
    const { code, screen } = await inTerminal(['approve', id, '--as', 'bob'], stack.env, 'yes');
    expect(code).toBe(0);
    expect(screen).toContain('approval recorded; 1 more needed');
  });

  test.each([
    ['the same vote again', ['approve', '--yes']],
    ['a reject after the approve', ['reject', '--comment', 'changed my mind', '--yes']],
  ])('%s is refused, saying what bob already did, and recorded', async (_label, [verb, ...flags]) => {
    const r = await cli(verb!, id, ...flags, '--as', 'bob');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('mechanic: bob already approved this execution; a vote cannot be repeated or changed\n');
  });

  test('the refusals are on the record, and the first vote still stands alone', async () => {
    const votes = await refusals();
    expect(votes.map((v) => [v.type, v.actor, v.data['code']])).toEqual([
      ['approval.granted', 'bob', undefined],
      ['approval.refused', 'bob', 'APPROVAL_DUPLICATE'],
      ['approval.refused', 'bob', 'APPROVAL_DUPLICATE'],
    ]);
  });

  test('a second approver confirming with the digest prefix lets it run, and status --wait follows it to the end', async () => {
    const r = await cli('approve', id, '--digest', digest.slice(0, 12), '--as', 'carol');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`approved by bob, carol — ${id} is running`);
    const status = await cli('status', id, '--wait', '--as', 'alice', '--json');
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ status: 'completed' });
  });
});
