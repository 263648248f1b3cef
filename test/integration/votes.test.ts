/**
 * An approver votes only on a plan they were shown, and only once: the real `mechanic approve` and
 * `reject` against the embedded stack, with a pseudo-terminal for the interactive confirmation.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as pty from 'node-pty';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEMO_USERS } from '../../src/authz/users.ts';
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

/** A runbook only DBAs approve. */
const DBA_ONLY = `name: dba-only
version: 1
description: A change only the database team may approve.
owners: [dba]
risk: medium
environment: staging
tags: [db]
roleArn: arn:aws:iam::123456789012:role/mechanic-runner
targets:
  tags: { Env: staging }
approval:
  required: 1
  groups: [dba]
steps:
  - name: say
    script: echo dba approved
`;

/** A high-risk runbook: two approvals, from members of two different groups. */
const FAILOVER = `name: failover
version: 1
description: A high-risk change that needs approvers from two teams.
owners: [sre, dba]
risk: high
environment: production
tags: [db, failover]
roleArn: arn:aws:iam::123456789012:role/mechanic-runner
targets:
  tags: { Env: staging }
approval:
  required: 2
  groups: [sre, dba]
steps:
  - name: say
    script: echo failed over
`;

/** Each test runs several CLI commands against the whole stack, which a loaded machine slows down. */
const SLOW = 180_000;

interface AuditRow {
  readonly type: string;
  readonly actor: string;
  readonly data: { readonly [key: string]: unknown };
}

describe("approvers come from the runbook's approval groups, high risk takes two groups, every decision names its policies", () => {
  let stack: DevStack;
  let home: string;
  let runbooks: string;
  const cli = (...args: string[]) => runCli(args, stack.env);
  const records = async (id: string): Promise<AuditRow[]> => {
    const r = await cli('audit', 'list', '--execution', id, '--as', 'dave', '--json');
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as AuditRow[];
  };
  const launch = async (runbook: string): Promise<string> => {
    const r = await cli('launch', runbook, '--reason', 'approval groups test', '--as', 'alice', '--json');
    expect(r.stderr).toBe('');
    return (JSON.parse(r.stdout) as { executionId: string }).executionId;
  };

  beforeAll(async () => {
    // The demo people, and frank: a second SRE who approves, so one group can approve twice.
    home = await mkdtemp(path.join(tmpdir(), 'mechanic-groups-'));
    const token = () => `mk_${randomBytes(24).toString('base64url')}`;
    const users = [
      ...DEMO_USERS.map((u) => ({ ...u, token: token() })),
      { id: 'frank', displayName: 'Frank (approver)', roles: ['approver'], groups: ['sre'], token: token() },
    ];
    await writeFile(path.join(home, 'users.json'), JSON.stringify({ users }), { mode: 0o600 });
    runbooks = await mkdtemp(path.join(tmpdir(), 'mechanic-groups-runbooks-'));
    await writeFile(path.join(runbooks, 'dba-only.yaml'), DBA_ONLY);
    await writeFile(path.join(runbooks, 'failover.yaml'), FAILOVER);
    stack = await startDevStack({ MECHANIC_HOME: home, MECHANIC_RUNBOOKS_DIR: runbooks });
  });
  afterAll(async () => {
    await stack?.stop();
    await rm(runbooks, { recursive: true, force: true });
    await rm(home, { recursive: true, force: true });
  }, SLOW);

  test(
    'the catalog shows who owns each runbook and how risky it is',
    async () => {
      const r = await cli('runbooks', '--as', 'alice', '--json');
      expect(r.code).toBe(0);
      const { runbooks: list } = JSON.parse(r.stdout) as {
        runbooks: { name: string; owners: string[]; risk: string; approval: { groups: string[] } }[];
      };
      expect(
        list
          .map((rb) => ({ name: rb.name, owners: rb.owners, risk: rb.risk, groups: rb.approval.groups }))
          .sort((a, b) => a.name.localeCompare(b.name)),
      ).toEqual([
        { name: 'dba-only', owners: ['dba'], risk: 'medium', groups: ['dba'] },
        { name: 'failover', owners: ['sre', 'dba'], risk: 'high', groups: ['sre', 'dba'] },
      ]);
    },
    SLOW,
  );

  test(
    'an approver outside the approval groups is refused in one sentence, on the record once with the policy that refused',
    async () => {
      const id = await launch('dba-only');
      const r = await cli('approve', id, '--yes', '--as', 'bob');
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `mechanic: bob is in none of the approval groups of the runbook ${id} runs; a member of one of them must vote\n`,
      );
      // Refused again and again, bob cannot flood the record: repeats within the window become one count.
      for (let i = 0; i < 2; i++) expect((await cli('approve', id, '--yes', '--as', 'bob')).code).toBe(1);
      const denied = (await records(id)).filter((e) => e.type === 'access.denied');
      expect(denied).toEqual([
        expect.objectContaining({
          actor: 'bob',
          data: expect.objectContaining({ action: 'approve', channel: 'cli', policies: ['approval-groups'] }),
        }),
      ]);
      // A member of the group approves, and the run goes ahead.
      expect((await cli('approve', id, '--yes', '--as', 'carol')).code).toBe(0);
      const done = await cli('status', id, '--wait', '--as', 'alice', '--json');
      expect(JSON.parse(done.stdout)).toMatchObject({ status: 'completed' });
    },
    SLOW,
  );

  test(
    'a high-risk run approved by one group is refused at the second vote, and completes once the other group approves',
    async () => {
      const id = await launch('failover');
      const first = await cli('approve', id, '--yes', '--as', 'bob');
      expect(first.code).toBe(0);
      expect(first.stdout).toContain('1 more needed');
      const second = await cli('approve', id, '--yes', '--as', 'frank');
      expect(second.code).toBe(1);
      expect(second.stderr).toBe(
        `mechanic: ${id} runs a high-risk runbook and frank's approval would complete it with every approval from one group; a member of another approval group must approve\n`,
      );
      const waiting = await cli('status', id, '--as', 'alice', '--json');
      expect(JSON.parse(waiting.stdout)).toMatchObject({ status: 'awaiting_approval' });
      const third = await cli('approve', id, '--yes', '--as', 'carol');
      expect(third.code).toBe(0);
      const done = await cli('status', id, '--wait', '--as', 'alice', '--json');
      expect(JSON.parse(done.stdout)).toMatchObject({ status: 'completed' });

      const story = await records(id);
      expect(story.filter((e) => e.type === 'access.denied')).toEqual([
        expect.objectContaining({
          actor: 'frank',
          data: expect.objectContaining({ policies: ['high-risk-two-groups'] }),
        }),
      ]);
      // The allowed decisions carry their policies: the launch, and each vote with the group it was cast as.
      expect(story.find((e) => e.type === 'execution.requested')?.data['policies']).toEqual(['operators']);
      expect(story.filter((e) => e.type === 'approval.granted').map((e) => [e.actor, e.data])).toEqual([
        ['bob', expect.objectContaining({ groups: ['sre'], policies: ['approvers-vote'] })],
        ['carol', expect.objectContaining({ groups: ['dba'], policies: ['approvers-vote'] })],
      ]);
    },
    SLOW,
  );

  test(
    'a cancel records the policy that allowed it',
    async () => {
      const id = await launch('dba-only');
      const r = await cli('cancel', id, '--reason', 'not today', '--as', 'alice');
      expect(r.code).toBe(0);
      await cli('status', id, '--wait', '--as', 'alice', '--json');
      const cancelled = (await records(id)).find((e) => e.type === 'execution.cancelled');
      expect(cancelled).toMatchObject({ actor: 'alice', data: { policies: ['operators-cancel-own'] } });
    },
    SLOW,
  );
});
