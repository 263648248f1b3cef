import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { AuditRecord } from '../../src/core/audit.ts';
import type { ExecutionView } from '../../src/core/execution.ts';
import { readCommandLog } from '../../src/devfleet/command-log.ts';
import { defaultFleetConfig } from '../../src/devfleet/config.ts';
import { EncryptionCodec, parseCodecKeys } from '../../src/temporal/codec.ts';
import { findInSqlite, usersFile, writeOwnerOnly } from '../helpers/claims.ts';
import { runCli, startDevStack, type DevStack } from '../helpers/cli.ts';

/**
 * Secret references and list parameters on the real embedded stack (`mechanic dev`: Temporal dev
 * server, devfleet, worker, API server) through the real CLI. The secret lives only in devfleet's
 * Parameter Store; the web instances read it with their own instance profile. The run must
 * complete with a fact derived from the secret, and the secret must be nowhere mechanic keeps
 * anything: not in the plan, the audit log, the Temporal database or history, nor the command log.
 */

const INSTANCE_ROLE = 'arn:aws:iam::123456789012:role/web-instance';
// Made at run time so that no file of the project holds it.
const SECRET = `pw-${randomBytes(12).toString('hex')}`;
const SECRET_SHA = createHash('sha256').update(SECRET).digest('hex');

const RUNBOOKS: Record<string, string> = {
  'use-secret.yaml': `
name: use-secret
version: 1
description: Checks the database password's fingerprint on each web host, for a list of hosts to report.
roleArn: arn:aws:iam::123456789012:role/mechanic-runner
parameters:
  db_password: { type: secret, default: /app/db/password }
  hosts:
    type: list
    items: { type: string, pattern: '^[a-z0-9.-]{1,40}$' }
    maxItems: 5
targets:
  tags: { Role: web }
steps:
  - name: fingerprint
    timeoutSeconds: 120
    script: |
      set -euo pipefail
      printf %s {{ db_password }} | sha256sum
      printf 'host=%s\\n' {{ hosts }}
`,
  'denied-secret.yaml': `
name: denied-secret
version: 1
description: Reads a parameter the web hosts' instance profile may not read.
roleArn: arn:aws:iam::123456789012:role/mechanic-runner
parameters:
  token: { type: secret, default: /other/token }
targets:
  tags: { Role: web }
steps:
  - name: read
    timeoutSeconds: 120
    script: |
      printf %s -- {{ token }} | wc -c
      echo this line must not run
`,
  'bounded-secret.yaml': `
name: bounded-secret
version: 1
description: Reads a secret the operator names, only from under /app/.
roleArn: arn:aws:iam::123456789012:role/mechanic-runner
parameters:
  token: { type: secret, prefix: /app/ }
targets:
  tags: { Role: web }
steps:
  - name: read
    timeoutSeconds: 120
    script: printf %s {{ token }} | sha256sum
`,
};

describe('secret references and lists on the embedded stack', { timeout: 300_000 }, () => {
  let stack: DevStack;
  let home: string;
  let scratch: string;
  let connection: Connection | undefined;
  let codec: EncryptionCodec;
  const cli = (...args: string[]) => runCli(args, stack.env);

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'mechanic-secrets-'));
    home = path.join(scratch, 'home');
    const root = {
      accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
      secretAccessKey: 'x'.repeat(40),
    };
    const fleet = defaultFleetConfig(root);
    fleet.roles.push({
      arn: INSTANCE_ROLE,
      maxSessionDurationSeconds: 3600,
      policy: {
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Action: 'ssm:GetParameter',
            Resource: 'arn:aws:ssm:us-east-1:123456789012:parameter/app/*',
          },
        ],
      },
    });
    for (const instance of fleet.instances) if (instance.tags['Role'] === 'web') instance.roleArn = INSTANCE_ROLE;
    fleet.parameters = [
      { name: '/app/db/password', type: 'SecureString', value: SECRET },
      { name: '/other/token', type: 'SecureString', value: `other-${SECRET}` },
    ];
    await writeOwnerOnly(path.join(home, 'devfleet', 'root.json'), JSON.stringify(root));
    await writeOwnerOnly(path.join(home, 'devfleet', 'fleet.json'), JSON.stringify(fleet));
    const users = usersFile({ alice: ['operator'], bob: ['approver'], dave: ['auditor'] });
    const usersPath = path.join(scratch, 'users.json');
    await writeOwnerOnly(usersPath, JSON.stringify(users));
    const runbooksDir = path.join(scratch, 'runbooks');
    for (const [file, text] of Object.entries(RUNBOOKS)) await writeOwnerOnly(path.join(runbooksDir, file), text);
    stack = await startDevStack({
      MECHANIC_HOME: home,
      MECHANIC_USERS_FILE: usersPath,
      MECHANIC_RUNBOOKS_DIR: runbooksDir,
    });
    const keys = parseCodecKeys((await readFile(path.join(home, 'codec-keys'), 'utf8')).trim());
    connection = await Connection.connect({ address: stack.info.temporalAddress });
    codec = new EncryptionCodec(keys);
  }, 600_000);
  afterAll(async () => {
    await connection?.close();
    const code = await stack?.stop();
    await rm(scratch, { recursive: true, force: true });
    expect(code).toBe(0);
  });

  const run = async (runbook: string, ...params: string[]): Promise<ExecutionView> => {
    const launched = await cli(
      'launch',
      runbook,
      ...params.flatMap((p) => ['--param', p]),
      '--reason',
      'secret test',
      '--as',
      'alice',
      '--json',
    );
    expect(launched.stderr).toBe('');
    expect(launched.code).toBe(0);
    const { executionId } = JSON.parse(launched.stdout) as { executionId: string };
    const approved = await cli('approve', executionId, '--yes', '--as', 'bob');
    expect(approved.stderr).toBe('');
    const status = await cli('status', executionId, '--wait', '--as', 'alice', '--json');
    return JSON.parse(status.stdout) as ExecutionView;
  };
  const auditOf = async (id: string): Promise<AuditRecord[]> => {
    const r = await cli('audit', 'list', '--execution', id, '--as', 'dave', '--json');
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as AuditRecord[];
  };

  describe('a run that reads a secret on its instances', () => {
    let view: ExecutionView;
    beforeAll(async () => {
      view = await run('use-secret', 'hosts=db-a.internal', 'hosts=db-b.internal');
    }, 600_000);

    test('completes, each instance printing the fingerprint of the secret it read and every listed host', () => {
      expect(view.status).toBe('completed');
      const outputs = view.steps[0]!.instances.map((i) => i.stdout);
      expect(outputs).toHaveLength(2);
      for (const stdout of outputs) {
        expect(stdout).toBe(`${SECRET_SHA}  -\nhost=db-a.internal\nhost=db-b.internal\n`);
      }
    });

    test('the plan names the parameter, marks it a secret reference and holds the list; never the value', () => {
      expect(view.plan.params).toEqual({ db_password: '/app/db/password', hosts: ['db-a.internal', 'db-b.internal'] });
      expect(view.plan.secretParams).toEqual(['db_password']);
      expect(view.plan.steps[0]!.script).toContain("aws ssm get-parameter --name '/app/db/password' --with-decryption");
      expect(view.plan.steps[0]!.script).toContain("'db-a.internal' 'db-b.internal'");
      expect(JSON.stringify(view)).not.toContain(SECRET);
    });

    test('mechanic plan shows the secret as a reference and the list', async () => {
      const r = await cli('plan', 'use-secret', '--param', 'hosts=x', '--param', 'hosts=y', '--as', 'alice');
      expect(r.stderr).toBe('');
      expect(r.stdout).toContain('/app/db/password');
      expect(r.stdout).toContain('"x","y"');
      expect(r.stdout).not.toContain(SECRET);
    });

    test('the audit log holds the name and the fingerprint, not the secret', async () => {
      const all = JSON.stringify(await auditOf(view.executionId));
      expect(all).toContain('/app/db/password');
      expect(all).toContain(SECRET_SHA);
      expect(all).not.toContain(SECRET);
    });

    test("neither the Temporal server's database nor the run's decoded history holds the secret", async () => {
      const found = findInSqlite(path.join(home, 'temporal.db'), [view.executionId, SECRET]);
      expect(found.get(view.executionId)!.length).toBeGreaterThan(0);
      expect(found.get(SECRET)).toEqual([]);

      const history = await new Client({ connection: connection! }).workflow.getHandle(view.executionId).fetchHistory();
      const payloads: Payload[] = [];
      const collect = (value: unknown): void => {
        if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return;
        const v = value as Record<string, unknown>;
        if (v['data'] instanceof Uint8Array && typeof v['metadata'] === 'object') payloads.push(v);
        for (const child of Object.values(v)) collect(child);
      };
      collect(history);
      const decoded = Buffer.concat((await codec.decode(payloads)).map((p) => Buffer.from(p.data ?? [])));
      // The decoding is real: the plan's parameter name and the output's fingerprint are in there.
      expect(decoded.includes('/app/db/password')).toBe(true);
      expect(decoded.includes(SECRET_SHA)).toBe(true);
      expect(decoded.includes(SECRET)).toBe(false);
    });

    test("devfleet's command log holds the script with the name only", async () => {
      const entries = (await readCommandLog(path.join(home, 'devfleet'))).filter((e) =>
        e.comment.startsWith(`mechanic ${view.executionId} `),
      );
      expect(entries.length).toBeGreaterThan(0);
      expect(JSON.stringify(entries)).not.toContain(SECRET);
    });
  });

  test('an instance whose role may not read the parameter gets AccessDenied, and the step stops before its commands', async () => {
    const view = await run('denied-secret');
    expect(view.status).toBe('failed');
    for (const instance of view.steps[0]!.instances) {
      expect(instance.stderr).toContain('(AccessDeniedException) when calling the GetParameter operation');
      expect(instance.stderr).toContain('mechanic: cannot read the SSM parameter /other/token');
      expect(instance.stdout).not.toContain('this line must not run');
    }
    expect(JSON.stringify(view)).not.toContain(`other-${SECRET}`);
  });

  test('a secret named outside its prefix is refused at plan and launch in one sentence, recorded, and nothing starts', async () => {
    const before = JSON.parse((await cli('list', '--as', 'alice', '--json')).stdout) as unknown[];
    const sentence =
      'parameter "token" must name an SSM parameter under /app/, the only path this runbook lets it read; got "/other/token"';
    for (const command of ['plan', 'launch']) {
      const r = await cli(
        command,
        'bounded-secret',
        '--param',
        'token=/other/token',
        '--reason',
        'outside',
        '--as',
        'alice',
      );
      expect(r.code, command).not.toBe(0);
      expect(r.stderr, command).toContain(sentence);
      expect(r.stderr, command).not.toMatch(/\n\s+at /);
      expect(r.stdout, command).not.toContain(`other-${SECRET}`);
    }
    expect(JSON.parse((await cli('list', '--as', 'alice', '--json')).stdout)).toEqual(before);
    const audit = await cli('audit', 'list', '--limit', '200', '--as', 'dave', '--json');
    const refusals = (JSON.parse(audit.stdout) as AuditRecord[]).filter(
      (r) => r.type === 'request.refused' && r.actor === 'alice' && r.data['reason'] === sentence,
    );
    expect(refusals.map((r) => r.data['code'])).toContain('PARAMS_INVALID');
    // Inside the prefix, the same runbook plans.
    const ok = await cli('plan', 'bounded-secret', '--param', 'token=/app/db/password', '--as', 'alice');
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toContain('/app/db/password');
  });

  test('a list item that breaks its rule is refused at launch with its index, and nothing starts', async () => {
    const r = await cli(
      'launch',
      'use-secret',
      '--param',
      'hosts=ok.internal',
      '--param',
      'hosts=Not Valid',
      '--reason',
      'bad item',
      '--as',
      'alice',
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('parameter "hosts[1]" must match');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
