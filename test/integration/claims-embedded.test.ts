import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { AuditRecord } from '../../src/core/audit.ts';
import type { ExecutionStatus, ExecutionView } from '../../src/core/execution.ts';
import { REDACTED } from '../../src/core/redact.ts';
import { defaultFleetConfig } from '../../src/devfleet/config.ts';
import { readCommandLog } from '../../src/devfleet/command-log.ts';
import {
  EncryptionCodec,
  dataConverterFor,
  parseCodecKeys,
  ENCODING_ENCRYPTED,
  METADATA_KEY_ID,
} from '../../src/temporal/codec.ts';
import { searchAttributes } from '../../src/temporal/search-attributes.ts';
import { findInSqlite, usersFile, waitFor, writeOwnerOnly } from '../helpers/claims.ts';
import { runCli, startDevStack, type DevStack } from '../helpers/cli.ts';

/**
 * What the README promises about secrets, identity and the end of a run, checked on the real
 * embedded stack (`mechanic dev`: Temporal dev server with its SQLite file, devfleet, worker, API
 * server) with the real CLI and plain HTTP. Each test names the promise it pins in docs/claims.md.
 *
 * The stack gets its own users (one of them an admin, which the demo users lack), its own
 * runbooks, and a fleet with a second role whose maximum session is shorter than a plan needs.
 */

const SHORT_ROLE = 'arn:aws:iam::123456789012:role/mechanic-short-sessions';
/** A role the planner may assume but the worker's own role may not (as a trust policy would refuse it). */
const BARRED_ROLE = 'arn:aws:iam::123456789012:role/mechanic-barred';

// Secrets a step prints. The script assembles them at run time, so they exist only in output.
const PASSWORD = 'hunter2';
const AWS_KEY = ['AKIA', 'IOSFODNN7EXAMPLE'].join('');
// Markers that must stay out of the Temporal database: a parameter value, script text, output.
const PARAM_MARKER = `param-${randomBytes(6).toString('hex')}`;
const SCRIPT_MARKER = `scriptmarker${randomBytes(6).toString('hex')}`;
const OUTPUT_MARKER = `outputmarker${randomBytes(6).toString('hex')}`;

const RUNBOOKS: Record<string, string> = {
  'leak-secrets.yaml': `
name: leak-secrets
version: 1
description: Prints a parameter, a password and an AWS key id, as a careless script would.
roleArn: arn:aws:iam::123456789012:role/mechanic-runner
parameters:
  marker: { type: string, pattern: '^[a-z0-9-]{6,40}$' }
targets:
  tags: { Role: web }
steps:
  - name: leak
    timeoutSeconds: 60
    script: |
      set -euo pipefail
      # ${SCRIPT_MARKER}
      echo got {{ marker }}
      printf 'db pass%s=hun%s\\n' word ter2
      printf 'aws key AKIA%s in use\\n' IOSFODNN7EXAMPLE
      printf '%s%s\\n' ${OUTPUT_MARKER.slice(0, 8)} ${OUTPUT_MARKER.slice(8)}
`,
  'short-role.yaml': `
name: short-role
version: 1
description: Its plan needs longer than one session of its role may last, so it runs on shorter, refreshed leases.
roleArn: ${SHORT_ROLE}
targets:
  tags: { Role: web }
steps:
  - name: long-allowed
    timeoutSeconds: 3600
    script: echo ran on a lease of an hour at most
`,
  'barred-role.yaml': `
name: barred-role
version: 1
description: The worker may not assume its role, so no credentials can be had.
roleArn: ${BARRED_ROLE}
targets:
  tags: { Role: web }
steps:
  - name: never
    timeoutSeconds: 60
    script: echo this must never run
`,
  'fail-then-report.yaml': `
name: fail-then-report
version: 1
description: Its second step fails, so the third never runs and the onFailure step does.
roleArn: arn:aws:iam::123456789012:role/mechanic-runner
targets:
  tags: { Role: web }
steps:
  - name: first
    timeoutSeconds: 30
    script: echo first
  - name: breaks
    timeoutSeconds: 30
    script: exit 3
  - name: never
    timeoutSeconds: 30
    script: echo this must never run
onFailure:
  - name: report
    timeoutSeconds: 30
    script: echo reporting the failure
`,
  'expire-soon.yaml': `
name: expire-soon
version: 1
description: Nobody approves it within its minute.
roleArn: arn:aws:iam::123456789012:role/mechanic-runner
targets:
  tags: { Role: web }
approval: { required: 1, expiresAfterMinutes: 1 }
steps:
  - name: never
    timeoutSeconds: 30
    script: echo this must never run
`,
  'wait-here.yaml': `
name: wait-here
version: 1
description: Something to launch and cancel while it waits for approval.
roleArn: arn:aws:iam::123456789012:role/mechanic-runner
targets:
  tags: { Role: web }
steps:
  - name: noop
    timeoutSeconds: 30
    script: echo nothing
`,
};

describe('claims on the embedded stack', { timeout: 300_000 }, () => {
  let stack: DevStack;
  let home: string;
  let scratch: string;
  let tokens: Record<string, string>;
  let connection: Connection | undefined;
  let client: Client;
  let codec: EncryptionCodec;
  let expiring = '';
  const cli = (...args: string[]) => runCli(args, stack.env);

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'mechanic-claims-'));
    home = path.join(scratch, 'home');
    // devfleet's root keys and fleet, made before the stack starts so it uses them: the demo
    // fleet plus a role whose sessions may last one hour at most.
    const root = {
      accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
      secretAccessKey: 'x'.repeat(40),
    };
    const fleet = defaultFleetConfig(root);
    fleet.roles.push(
      { arn: SHORT_ROLE, maxSessionDurationSeconds: 3600 },
      { arn: BARRED_ROLE, maxSessionDurationSeconds: 3600 },
    );
    // The worker's own role may assume the account's roles, but not the barred one.
    const workerRole = fleet.roles.find((r) => r.arn === fleet.containerCredentials?.roleArn);
    workerRole!.policy = {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: 'sts:AssumeRole', Resource: 'arn:aws:iam::123456789012:role/*' },
        { Effect: 'Deny', Action: 'sts:AssumeRole', Resource: BARRED_ROLE },
      ],
    };
    await writeOwnerOnly(path.join(home, 'devfleet', 'root.json'), JSON.stringify(root));
    await writeOwnerOnly(path.join(home, 'devfleet', 'fleet.json'), JSON.stringify(fleet));
    const users = usersFile({
      alice: ['operator', 'approver'],
      erin: ['operator'],
      bob: ['approver'],
      dave: ['auditor'],
      ada: ['admin'],
    });
    tokens = Object.fromEntries(users.users.map((u) => [u.id, u.token]));
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
    client = new Client({ connection, dataConverter: dataConverterFor(keys) });
    codec = new EncryptionCodec(keys);
    // Launched first, so its minute runs out while the other tests run; checked last.
    expiring = await launch('alice', 'expire-soon');
  }, 600_000);
  afterAll(async () => {
    await connection?.close();
    const code = await stack?.stop();
    await rm(scratch, { recursive: true, force: true });
    expect(code).toBe(0);
  });

  const launch = async (as: string, runbook: string, ...params: string[]): Promise<string> => {
    const args = params.flatMap((p) => ['--param', p]);
    const r = await cli('launch', runbook, ...args, '--reason', 'claims test', '--as', as, '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return (JSON.parse(r.stdout) as { executionId: string }).executionId;
  };
  const statusOf = async (id: string, wait = false): Promise<ExecutionView> => {
    const r = await cli('status', id, ...(wait ? ['--wait'] : []), '--as', 'alice', '--json');
    expect(r.stderr).toBe('');
    return JSON.parse(r.stdout) as ExecutionView;
  };
  const auditOf = async (id: string): Promise<AuditRecord[]> => {
    const r = await cli('audit', 'list', '--execution', id, '--as', 'dave', '--json');
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as AuditRecord[];
  };
  const commandsRunFor = async (id: string) =>
    (await readCommandLog(path.join(home, 'devfleet'))).filter((e) => e.comment.startsWith(`mechanic ${id} `));
  /** MechanicStatus as Temporal holds it for the run (describe reads the run's own state). */
  const statusAttribute = async (id: string) =>
    (await client.workflow.getHandle(id).describe()).typedSearchAttributes.get(searchAttributes.status);
  /** Visibility is eventually consistent: wait until the query finds the run. */
  const foundByQuery = (query: string, id: string) =>
    waitFor(async () => {
      for await (const wfe of client.workflow.list({ query: `${query} AND WorkflowId = "${id}"` }))
        return wfe.workflowId;
      return undefined;
    });

  describe('authentication: every /api route needs a valid bearer token', () => {
    const routes: [method: 'GET' | 'POST', route: string, body?: unknown][] = [
      ['GET', '/api/me'],
      ['GET', '/api/runbooks'],
      ['GET', '/api/runbooks/wait-here'],
      ['POST', '/api/executions', { runbook: 'wait-here', reason: 'no token', params: {} }],
      ['GET', '/api/executions'],
      ['GET', '/api/executions/mx-0000000000'],
      ['POST', '/api/executions/mx-0000000000/votes', { decision: 'approve', planDigest: 'a'.repeat(64) }],
      ['POST', '/api/executions/mx-0000000000/cancel', { reason: 'no token' }],
      ['GET', '/api/audit'],
      ['GET', '/api/audit/verify'],
    ];
    const call = (method: string, route: string, body: unknown, authorization?: string) =>
      fetch(`${stack.info.apiUrl}${route}`, {
        method,
        headers: {
          ...(authorization !== undefined ? { authorization } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });

    test.each(routes)('%s %s answers 401 without a token, or with a wrong one', async (method, route, body) => {
      const before = (await (await call('GET', '/api/audit', undefined, `Bearer ${tokens['dave']}`)).json()) as {
        records: unknown[];
      };
      const wrong = [
        undefined,
        '',
        'Bearer',
        'Bearer ',
        `Bearer mk_${randomBytes(24).toString('base64url')}`, // well-formed, unknown
        `Bearer ${tokens['ada']!.slice(0, -1)}`, // one character short
        `Bearer ${tokens['ada']}x`, // one character long
        `Basic ${tokens['ada']}`, // right secret, wrong scheme
        `Bearer ${tokens['ada']} ${tokens['ada']}`,
      ];
      for (const authorization of wrong) {
        const res = await call(method, route, body, authorization);
        expect({ authorization, status: res.status }).toEqual({ authorization, status: 401 });
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UNAUTHENTICATED');
      }
      // Nothing an unauthenticated request asked for happened, not even an audit record.
      const after = (await (await call('GET', '/api/audit', undefined, `Bearer ${tokens['dave']}`)).json()) as {
        records: unknown[];
      };
      expect(after.records).toHaveLength(before.records.length);
    });

    test('the right token is accepted and names its user', async () => {
      const res = await call('GET', '/api/me', undefined, `Bearer ${tokens['ada']}`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as { user: { id: string } }).user.id).toBe('ada');
    });
  });

  describe('cancel: operators cancel only their own runs, admins any', () => {
    test('another operator is refused, the refusal is audited, and the run goes on waiting', async () => {
      const id = await launch('alice', 'wait-here');
      const r = await cli('cancel', id, '--reason', 'not mine to stop', '--as', 'erin');
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^mechanic: erin may/);
      const denied = (await auditOf(id)).filter((e) => e.type === 'access.denied');
      expect(denied.map((e) => e.actor)).toEqual(['erin']);
      expect(JSON.stringify(denied[0]!.data)).toMatch(/cancel/);
      expect((await statusOf(id)).status).toBe('awaiting_approval');
      expect(await statusAttribute(id)).toBe('awaiting_approval');

      // An admin may cancel anyone's run.
      const byAdmin = await cli('cancel', id, '--reason', 'change freeze', '--as', 'ada');
      expect(byAdmin.stderr).toBe('');
      expect(byAdmin.code).toBe(0);
      const view = await statusOf(id, true);
      expect(view.status).toBe('cancelled');
      expect(view.reason).toBe('cancelled by ada: change freeze');
      expect((await auditOf(id)).at(-1)).toMatchObject({ type: 'execution.cancelled', actor: 'ada' });
      expect(await commandsRunFor(id)).toEqual([]);
      expect(await statusAttribute(id)).toBe('cancelled');
      expect(await foundByQuery('MechanicStatus = "cancelled"', id)).toBe(id);
    });

    test('an operator cancels their own run; an auditor cancels nothing', async () => {
      const id = await launch('erin', 'wait-here');
      const auditor = await cli('cancel', id, '--reason', 'just looking', '--as', 'dave');
      expect(auditor.code).toBe(1);
      expect(auditor.stderr).toMatch(/^mechanic: dave \(auditor\) may not cancel executions/);
      const own = await cli('cancel', id, '--reason', 'wrong window', '--as', 'erin');
      expect(own.code).toBe(0);
      expect((await statusOf(id, true)).status).toBe('cancelled');
    });
  });

  describe('a step that prints secrets', () => {
    let id = '';
    let view: ExecutionView;

    beforeAll(async () => {
      id = await launch('alice', 'leak-secrets', `marker=${PARAM_MARKER}`);
      expect((await cli('approve', id, '--yes', '--as', 'bob')).code).toBe(0);
      view = await statusOf(id, true);
    }, 600_000);

    test('the run completes, and its output is there with the secrets redacted (mechanic status --json)', () => {
      expect(view.status).toBe('completed');
      const outputs = view.steps[0]!.instances.map((i) => i.stdout);
      expect(outputs).toHaveLength(2);
      for (const stdout of outputs) {
        expect(stdout).toContain(`got ${PARAM_MARKER}`);
        expect(stdout).toContain(OUTPUT_MARKER);
        expect(stdout).toContain(`db password=${REDACTED}`);
        expect(stdout).toContain(`aws key ${REDACTED} in use`);
      }
      const all = JSON.stringify(view);
      expect(all).not.toContain(PASSWORD);
      expect(all).not.toContain(AWS_KEY);
    });

    test('the audit log holds the redacted output only (mechanic audit list --json)', async () => {
      const records = await auditOf(id);
      const outputs = records.filter((e) => e.type === 'step.instance').map((e) => String(e.data['stdout']));
      expect(outputs).toHaveLength(2);
      for (const stdout of outputs) expect(stdout).toContain(`db password=${REDACTED}`);
      const all = JSON.stringify(records);
      expect(all).toContain(OUTPUT_MARKER);
      expect(all).not.toContain(PASSWORD);
      expect(all).not.toContain(AWS_KEY);
    });

    test("the Temporal server's database holds no parameter, script, output or secret in clear", async () => {
      const db = path.join(home, 'temporal.db');
      const needles = [id, 'awaitStep', PARAM_MARKER, SCRIPT_MARKER, OUTPUT_MARKER, PASSWORD, AWS_KEY];
      const found = findInSqlite(db, needles);
      // The search is real: the run's id and its activities' names are stored in clear, in its history.
      expect(found.get(id)!.length).toBeGreaterThan(0);
      expect(found.get('awaitStep')!.map((h) => h.table)).toContain('history_node');
      for (const secret of needles.slice(2))
        expect({ secret, found: found.get(secret) }).toEqual({ secret, found: [] });
    });

    test('history payloads are encrypted and name their key; a client with the key reads them', async () => {
      const plain = new Client({ connection: client.connection });
      const history = await plain.workflow.getHandle(id).fetchHistory();
      const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
      const payload = started?.input?.payloads?.[0];
      expect(Buffer.from(payload?.metadata?.['encoding'] ?? []).toString()).toBe(ENCODING_ENCRYPTED);
      expect(Buffer.from(payload?.metadata?.[METADATA_KEY_ID] ?? []).toString()).toBe('dev1');
      const result = await client.workflow.getHandle(id).result();
      expect((result as ExecutionView).plan.params).toEqual({ marker: PARAM_MARKER });
    });

    test('its STS session names the operator, carries the run in its tags, and is bound by the plan policy', async () => {
      const state = JSON.parse(await readFile(path.join(home, 'devfleet', 'state.json'), 'utf8')) as {
        sessions: {
          roleSessionName: string;
          sourceIdentity?: string;
          policy?: string;
          tags: { key: string; value: string }[];
        }[];
      };
      const sessions = state.sessions.filter((s) => s.roleSessionName === `mechanic-${id}`);
      expect(sessions.length).toBeGreaterThan(0);
      for (const session of sessions) {
        expect(session.sourceIdentity).toBe('alice');
        expect(session.tags).toEqual([
          { key: 'MechanicExecution', value: id },
          { key: 'MechanicRunbook', value: 'leak-secrets@1' },
          { key: 'MechanicApprovers', value: 'bob' },
        ]);
        expect(session.policy).toBe(view.plan.sessionPolicy);
      }
    });

    test("the run's STS secrets are nowhere in its history, even decrypted", async () => {
      const state = JSON.parse(await readFile(path.join(home, 'devfleet', 'state.json'), 'utf8')) as {
        sessions: { accessKeyId: string; roleSessionName: string; secretAccessKey: string; sessionToken: string }[];
      };
      const sessions = state.sessions.filter((s) => s.roleSessionName === `mechanic-${id}`);
      expect(sessions.length).toBeGreaterThan(0);
      const history = await new Client({ connection: client.connection }).workflow.getHandle(id).fetchHistory();
      const payloads: Payload[] = [];
      const collect = (value: unknown): void => {
        if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return;
        const v = value as Record<string, unknown>;
        if (v['data'] instanceof Uint8Array && typeof v['metadata'] === 'object') payloads.push(v);
        for (const child of Object.values(v)) collect(child);
      };
      collect(history);
      const decoded = Buffer.concat((await codec.decode(payloads)).map((p) => Buffer.from(p.data ?? [])));
      // The lease is in there (key id), so the decoding is real; the secret and token are not.
      expect(decoded.includes(sessions[0]!.accessKeyId)).toBe(true);
      for (const s of sessions) {
        expect(decoded.includes(s.secretAccessKey)).toBe(false);
        expect(decoded.includes(s.sessionToken)).toBe(false);
      }
    });

    test('MechanicStatus follows the run to completed, and a query finds it by status, runbook and operator', async () => {
      expect(await statusAttribute(id)).toBe('completed');
      expect(
        await foundByQuery(
          'MechanicStatus = "completed" AND MechanicRunbook = "leak-secrets" AND MechanicOperator = "alice"',
          id,
        ),
      ).toBe(id);
    });
  });

  test('one rejection ends the run: nothing runs, no credentials are issued', async () => {
    const id = await launch('alice', 'wait-here');
    const r = await cli('reject', id, '--comment', 'not in this window', '--yes', '--as', 'bob');
    expect(r.code).toBe(0);
    const view = await statusOf(id, true);
    expect(view.status).toBe('rejected');
    expect(view.reason).toBe('rejected by bob: not in this window');
    const types = (await auditOf(id)).map((e) => e.type);
    expect(types).toContain('approval.rejected');
    expect(types).not.toContain('credentials.issued');
    expect(types.at(-1)).toBe('execution.rejected');
    expect(await commandsRunFor(id)).toEqual([]);
    expect(await statusAttribute(id)).toBe('rejected');
  });

  test('a failing step stops the run: the steps after it are skipped and the onFailure steps run', async () => {
    const id = await launch('alice', 'fail-then-report');
    expect((await cli('approve', id, '--yes', '--as', 'bob')).code).toBe(0);
    const view = await statusOf(id, true);
    expect(view.status).toBe('failed');
    expect(view.reason).toBe('step "breaks" failed');
    expect(view.steps.map((s) => [s.name, s.status])).toEqual([
      ['first', 'succeeded'],
      ['breaks', 'failed'],
      ['never', 'skipped'],
      ['report', 'succeeded'],
    ]);
    // What devfleet ran: steps 0 and 1, then the onFailure step (index 3), never step 2.
    const ran = new Set((await commandsRunFor(id)).map((e) => e.comment.split(' ').slice(2).join(' ')));
    expect([...ran].sort()).toEqual(['onfailure 3', 'step 0', 'step 1']);
    expect(await statusAttribute(id)).toBe('failed');
  });

  test("a plan longer than its role's maximum session runs on a lease of an hour at most (role chaining)", async () => {
    const id = await launch('alice', 'short-role');
    expect((await cli('approve', id, '--yes', '--as', 'bob')).code).toBe(0);
    const view = await statusOf(id, true);
    expect(view.status).toBe('completed');
    const records = await auditOf(id);
    const plan = records[0]!.data['plan'] as { budgetSeconds: number };
    expect(plan.budgetSeconds).toBeGreaterThan(3600);
    const issued = records.find((r) => r.type === 'credentials.issued')!;
    expect(issued.data['reason']).toBe('approved');
    expect(Date.parse(String(issued.data['expiration'])) - Date.parse(issued.at)).toBeLessThanOrEqual(3600_000);
    expect(await commandsRunFor(id)).toHaveLength(2);
  });

  describe('credentials that cannot be had', () => {
    test('end the run failed, with the reason, before any step runs', async () => {
      const id = await launch('alice', 'barred-role');
      expect((await cli('approve', id, '--yes', '--as', 'bob')).code).toBe(0);
      const view = await statusOf(id, true);
      expect(view.status).toBe('failed');
      expect(view.reason).toMatch(
        /^could not obtain credentials: AssumeRole failed: AccessDenied: User: arn:aws:sts::123456789012:assumed-role\/mechanic-worker\/mechanic-worker is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role\/mechanic-barred with an explicit deny/,
      );
      expect(view.steps.map((s) => s.status)).not.toContain('succeeded');
      const records = await auditOf(id);
      const types = records.map((e) => e.type);
      expect(types).not.toContain('credentials.issued');
      expect(types).not.toContain('step.started');
      expect(records.at(-1)).toMatchObject({ type: 'execution.failed', data: { reason: view.reason } });
      expect(await commandsRunFor(id)).toEqual([]);
      const listed = JSON.parse((await cli('list', '--as', 'alice', '--json')).stdout) as {
        id: string;
        status: ExecutionStatus;
      }[];
      expect(listed.find((e) => e.id === id)?.status).toBe('failed');
      expect(await statusAttribute(id)).toBe('failed');
      expect(await foundByQuery('MechanicStatus = "failed"', id)).toBe(id);
      // The failure's message is encrypted like every payload.
      const found = findInSqlite(path.join(home, 'temporal.db'), ['is not authorized to perform']);
      expect(found.get('is not authorized to perform')).toEqual([]);
    });
  });

  test('without a quorum before its deadline the run expires, and nothing runs', async () => {
    const view = await statusOf(expiring, true);
    expect(view.status).toBe('expired');
    expect(view.reason).toBe('not enough approvals within 1 minutes');
    expect((await auditOf(expiring)).at(-1)).toMatchObject({ type: 'execution.expired', actor: 'mechanic' });
    expect(await commandsRunFor(expiring)).toEqual([]);
    expect(await statusAttribute(expiring)).toBe('expired');
  });
});
