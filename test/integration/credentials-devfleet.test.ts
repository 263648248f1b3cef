import { ListCommandsCommand } from '@aws-sdk/client-ssm';
import { AssumeRoleCommand, GetCallerIdentityCommand, type STSClient } from '@aws-sdk/client-sts';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { baseIsRoleSession, createStsClient } from '../../src/activities/aws.ts';
import { CredentialLeases } from '../../src/activities/credentials.ts';
import type { NewAuditEvent } from '../../src/core/audit.ts';
import type { CredentialRequest } from '../../src/core/execution.ts';
import { readCallLog } from '../../src/devfleet/call-log.ts';
import {
  CONTAINER_CREDENTIALS_PATH,
  DEMO_ROLE_ARN,
  DEMO_WORKER_ROLE_ARN,
  containerTokenFor,
  defaultFleetConfig,
} from '../../src/devfleet/config.ts';
import { REGION, ROOT, sleep, startHarness, type Harness } from './devfleet-helpers.ts';

/**
 * A worker whose own credentials are a role session, as on ECS: devfleet's container-credentials
 * endpoint hands it a session of its role through the AWS SDK's own default chain, every AssumeRole
 * from a session is role chaining (one hour at most), sessions can be made to live a scaled time,
 * and an expired key is refused as AWS refuses it. The SDK reads the container settings from the
 * environment, so this file sets them (each test file runs in a process of its own).
 */

const TOKEN = containerTokenFor(ROOT);
const CHAINING = 'The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.';

let h: Harness | undefined;
const clients: { destroy(): void }[] = [];
const saved = { ...process.env };
beforeEach(() => {
  for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE'])
    delete process.env[k];
  // Only the container endpoint: never this machine's shared AWS files or a metadata probe.
  process.env['AWS_SHARED_CREDENTIALS_FILE'] = '/nonexistent/mechanic-test-credentials';
  process.env['AWS_CONFIG_FILE'] = '/nonexistent/mechanic-test-config';
  process.env['AWS_EC2_METADATA_DISABLED'] = 'true';
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await h?.close();
  h = undefined;
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  Object.assign(process.env, saved);
});

async function fleet(extra: Record<string, unknown> = {}): Promise<Harness> {
  h = await startHarness({ config: { ...defaultFleetConfig(ROOT), callLog: true, ...extra } });
  return h;
}

/** An STS client with no credentials of its own: the SDK's default chain finds the container endpoint. */
function workerSts(endpoint: string, token = TOKEN): STSClient {
  process.env['AWS_CONTAINER_CREDENTIALS_FULL_URI'] = `${endpoint}${CONTAINER_CREDENTIALS_PATH}`;
  process.env['AWS_CONTAINER_AUTHORIZATION_TOKEN'] = token;
  const sts = createStsClient({ region: REGION, endpoint });
  clients.push(sts);
  return sts;
}

const lastCallOf = async (dataDir: string, operation: string) =>
  (await readCallLog(dataDir)).filter((c) => c.operation === operation).at(-1);

describe('the container-credentials endpoint', () => {
  test('hands a session of the worker role to the SDK default chain, and nothing without its token', async () => {
    const f = await fleet();
    const url = `${f.fleet.endpoint}${CONTAINER_CREDENTIALS_PATH}`;
    for (const authorization of [undefined, '', TOKEN.slice(1), `${TOKEN}x`]) {
      const res = await fetch(url, authorization === undefined ? {} : { headers: { authorization } });
      expect({ authorization, status: res.status }).toEqual({ authorization, status: 401 });
      expect(JSON.stringify(await res.json())).not.toMatch(/ASIA/);
    }
    const res = await fetch(url, { headers: { authorization: TOKEN } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, string>;
    expect(Object.keys(body).sort()).toEqual(['AccessKeyId', 'Expiration', 'RoleArn', 'SecretAccessKey', 'Token']);
    expect(body['RoleArn']).toBe(DEMO_WORKER_ROLE_ARN);

    const sts = workerSts(f.fleet.endpoint);
    const me = await sts.send(new GetCallerIdentityCommand({}));
    expect(me.Arn).toBe('arn:aws:sts::123456789012:assumed-role/mechanic-worker/mechanic-worker');
    expect(await baseIsRoleSession(sts)()).toBe(true);
    // A refused token is a refused credential source: the SDK never gets keys.
    const refused = workerSts(f.fleet.endpoint, 'not-the-token-of-this-fleet-at-all-0000');
    await expect(refused.send(new GetCallerIdentityCommand({}))).rejects.toThrow();
    const denied = (await readCallLog(f.dataDir)).filter((c) => c.service === 'container-credentials');
    expect(denied.map((c) => c.outcome)).toContain('AccessDenied');
    expect(JSON.stringify(denied)).not.toContain(TOKEN);
  });

  test('long-term keys are not a role session', async () => {
    const f = await fleet();
    const sts = createStsClient({ region: REGION, endpoint: f.fleet.endpoint, baseCredentials: ROOT });
    clients.push(sts);
    expect(await baseIsRoleSession(sts)()).toBe(false);
  });
});

describe('role chaining is capped at one hour', () => {
  test('from the container session and from a session AssumeRole minted; long-term keys may ask for more', async () => {
    const f = await fleet();
    const assume = (sts: STSClient, DurationSeconds: number) =>
      sts.send(new AssumeRoleCommand({ RoleArn: DEMO_ROLE_ARN, RoleSessionName: 'chain-test', DurationSeconds }));
    const worker = workerSts(f.fleet.endpoint);
    await expect(assume(worker, 3600)).resolves.toBeDefined();
    await expect(assume(worker, 3601)).rejects.toMatchObject({ name: 'ValidationError', message: CHAINING });

    const root = f.sts();
    await expect(assume(root, 7200)).resolves.toBeDefined();
    const minted = await root.send(
      new AssumeRoleCommand({ RoleArn: DEMO_WORKER_ROLE_ARN, RoleSessionName: 'worker', DurationSeconds: 3600 }),
    );
    const c = minted.Credentials!;
    const fromMinted = f.sts({
      accessKeyId: c.AccessKeyId!,
      secretAccessKey: c.SecretAccessKey!,
      sessionToken: c.SessionToken!,
    });
    await expect(assume(fromMinted, 7200)).rejects.toMatchObject({ name: 'ValidationError', message: CHAINING });
    await expect(assume(fromMinted, 3600)).resolves.toBeDefined();
  });

  test('a worker on the container session asks for one hour for a four-hour plan, and STS grants it', async () => {
    const f = await fleet();
    const sts = workerSts(f.fleet.endpoint);
    const events: NewAuditEvent[] = [];
    const leases = new CredentialLeases({
      sts,
      record: async (e) => events.push(e),
      baseIsRoleSession: baseIsRoleSession(sts),
    });
    const before = Date.now();
    const lease = await leases.issue(request(), 'approved');
    const after = Date.now();
    // An hour, granted: never a longer ask that STS had to refuse first (an SDK retry may repeat the ask).
    const asked = (await readCallLog(f.dataDir)).filter((c) => c.operation === 'AssumeRole');
    expect(asked.filter((c) => c.durationSeconds !== '3600')).toEqual([]);
    expect(asked.filter((c) => c.outcome === 'ok').length).toBeGreaterThanOrEqual(1);
    // An hour from when STS answered (its Expiration is cut to the second).
    const expiration = Date.parse(lease.expiration);
    expect(expiration).toBeGreaterThan(before + 3600_000 - 1000);
    expect(expiration).toBeLessThanOrEqual(after + 3600_000);
  });
});

describe('stsTimeScale', () => {
  test('a session lives its scaled time, says so in its Expiration, and is then refused with ExpiredTokenException', async () => {
    // 3600 s × 0.0005 = 1.8 s.
    const f = await fleet({ stsTimeScale: 0.0005 });
    const before = Date.now();
    const { ssm, credentials } = await f.assume({ DurationSeconds: 3600 });
    const out = await ssm.send(new ListCommandsCommand({}));
    expect(out.Commands).toBeDefined();
    const expiresAt = Date.parse((await lastCallOf(f.dataDir, 'ListCommands'))!.keyExpiresAt!);
    expect(expiresAt - before).toBeGreaterThan(0);
    expect(expiresAt - before).toBeLessThan(3_000);
    while (Date.now() <= expiresAt) await sleep(50);
    await expect(ssm.send(new ListCommandsCommand({}))).rejects.toMatchObject({ name: 'ExpiredTokenException' });
    await expect(f.sts(credentials).send(new GetCallerIdentityCommand({}))).rejects.toMatchObject({
      name: 'ExpiredTokenException',
    });
    const refused = await lastCallOf(f.dataDir, 'ListCommands');
    expect(refused).toMatchObject({
      service: 'ssm',
      accessKeyId: credentials.accessKeyId,
      outcome: 'ExpiredTokenException',
    });
    expect(Date.parse(refused!.at)).toBeGreaterThanOrEqual(Date.parse(refused!.keyExpiresAt!));
  });

  test('the limits keep AWS numbers: DurationSeconds over 43200 is refused, and chaining still caps at 3600', async () => {
    const f = await fleet({ stsTimeScale: 0.001 });
    await expect(f.assume({ DurationSeconds: 43201 })).rejects.toMatchObject({ name: 'ValidationError' });
    const worker = workerSts(f.fleet.endpoint);
    await expect(
      worker.send(new AssumeRoleCommand({ RoleArn: DEMO_ROLE_ARN, RoleSessionName: 'x-test', DurationSeconds: 3601 })),
    ).rejects.toMatchObject({ message: CHAINING });
  });
});

function request(): CredentialRequest {
  return {
    executionId: 'mx-fourhours01',
    roleArn: DEMO_ROLE_ARN,
    region: REGION,
    sessionPolicy: JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'ssm:ListCommands', Resource: '*' }],
    }),
    durationSeconds: 4 * 3600,
    sourceIdentity: 'alice',
    runbook: 'four-hours@1',
    approvers: ['bob'],
  };
}
