import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { Sha256 } from '@aws-crypto/sha256-js';
import { DescribeInstanceInformationCommand, ListCommandsCommand } from '@aws-sdk/client-ssm';
import { AssumeRoleCommand, GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterEach, describe, expect, test } from 'vitest';
import { DEMO_INSTANCE_IDS, DEMO_ROLE_ARN, defaultFleetConfig, readCommandLog } from '../../src/devfleet/index.ts';
import { REGION, ROOT, startHarness, until, type Harness } from './devfleet-helpers.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const sha256Hex = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');

/** Signs a request the way the SDK does, so tests can then tamper with it on the way out. */
async function signRaw(opts: {
  endpoint: string;
  service: 'ssm' | 'sts';
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  headers: Record<string, string>;
  body: string;
  signingDate?: Date;
  hostForSigning?: string;
}): Promise<Record<string, string>> {
  const url = new URL(opts.endpoint);
  const req = new HttpRequest({
    method: 'POST',
    protocol: 'http:',
    hostname: url.hostname,
    port: Number(url.port),
    path: '/',
    headers: { host: opts.hostForSigning ?? url.host, 'x-amz-content-sha256': sha256Hex(opts.body), ...opts.headers },
    body: opts.body,
  });
  const signer = new SignatureV4({
    credentials: opts.credentials,
    region: REGION,
    service: opts.service,
    sha256: Sha256,
  });
  const signed = await signer.sign(req, opts.signingDate ? { signingDate: opts.signingDate } : {});
  return signed.headers;
}

function post(
  endpoint: string,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; text: string }> {
  const url = new URL(endpoint);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: Number(url.port),
        method: 'POST',
        path: '/',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('STS', () => {
  test('AssumeRole issues session credentials that GetCallerIdentity recognises', async () => {
    h = await startHarness();
    const sts = h.sts();
    const me = await sts.send(new GetCallerIdentityCommand({}));
    expect(me).toMatchObject({ Account: '123456789012', Arn: 'arn:aws:iam::123456789012:user/mechanic' });
    expect(me.UserId).toMatch(/^AIDA/);

    const before = Date.now();
    const out = await sts.send(
      new AssumeRoleCommand({
        RoleArn: DEMO_ROLE_ARN,
        RoleSessionName: 'run-42',
        DurationSeconds: 900,
        SourceIdentity: 'alice@example.com',
        Tags: [{ Key: 'RunId', Value: '42' }],
        Policy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: 'ssm:List*', Resource: '*' }],
        }),
      }),
    );
    expect(out.Credentials?.AccessKeyId).toMatch(/^ASIA[A-Z2-7]{16}$/);
    expect(out.Credentials?.SessionToken?.length).toBeGreaterThan(100);
    const exp = out.Credentials?.Expiration?.getTime() ?? 0;
    expect(exp).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 899_000);
    expect(exp).toBeLessThanOrEqual(Date.now() + 901_000);
    expect(out.AssumedRoleUser?.Arn).toBe('arn:aws:sts::123456789012:assumed-role/mechanic-runner/run-42');
    expect(out.AssumedRoleUser?.AssumedRoleId).toMatch(/^AROA[A-Z2-7]{17}:run-42$/);
    expect(out.SourceIdentity).toBe('alice@example.com');
    expect(out.PackedPolicySize).toBeGreaterThan(0);
    expect(out.PackedPolicySize).toBeLessThanOrEqual(100);

    const session = h.sts({
      accessKeyId: out.Credentials!.AccessKeyId!,
      secretAccessKey: out.Credentials!.SecretAccessKey!,
      sessionToken: out.Credentials!.SessionToken!,
    });
    const who = await session.send(new GetCallerIdentityCommand({}));
    expect(who.Arn).toBe('arn:aws:sts::123456789012:assumed-role/mechanic-runner/run-42');
    expect(who.UserId).toBe(out.AssumedRoleUser?.AssumedRoleId);
  });

  test('AssumeRole enforces its limits the way STS does', async () => {
    h = await startHarness();
    const sts = h.sts();
    const assume = (input: Partial<ConstructorParameters<typeof AssumeRoleCommand>[0]>) =>
      sts.send(new AssumeRoleCommand({ RoleArn: DEMO_ROLE_ARN, RoleSessionName: 'limits', ...input }));

    await expect(assume({ RoleArn: 'arn:aws:iam::123456789012:role/nope' })).rejects.toMatchObject({
      name: 'AccessDenied',
    });
    await expect(assume({ RoleSessionName: 'x' })).rejects.toMatchObject({ name: 'ValidationError' });
    await expect(assume({ RoleSessionName: 'has space' })).rejects.toMatchObject({ name: 'ValidationError' });
    await expect(assume({ DurationSeconds: 899 })).rejects.toMatchObject({ name: 'ValidationError' });
    await expect(assume({ DurationSeconds: 43200 })).resolves.toBeDefined(); // the demo role allows 12 h
    await expect(assume({ DurationSeconds: 43201 })).rejects.toMatchObject({ name: 'ValidationError' });
    await expect(assume({ SourceIdentity: 'aws:me' })).rejects.toMatchObject({ name: 'ValidationError' });
    await expect(assume({ Policy: '{"Statement": [' })).rejects.toMatchObject({
      name: 'MalformedPolicyDocumentException',
    });
    await expect(
      assume({ Policy: JSON.stringify({ Statement: [{ Effect: 'Allow', Action: 'ssm:*' }] }) }),
    ).rejects.toMatchObject({
      name: 'MalformedPolicyDocumentException',
    });
    await expect(
      assume({
        Policy: JSON.stringify({ Statement: [{ Effect: 'Allow', Action: 'ssm:*', Resource: '*', Principal: '*' }] }),
      }),
    ).rejects.toMatchObject({
      name: 'MalformedPolicyDocumentException',
    });
    await expect(assume({ Policy: ' '.repeat(2049) })).rejects.toMatchObject({ name: 'ValidationError' });
    const bigTags = Array.from({ length: 50 }, (_, i) => ({
      Key: `k${i}-${randomBytes(40).toString('hex')}`,
      Value: randomBytes(120).toString('hex'),
    }));
    await expect(assume({ Tags: bigTags })).rejects.toMatchObject({ name: 'PackedPolicyTooLargeException' });
    await expect(
      assume({
        Tags: [
          { Key: 'Env', Value: 'a' },
          { Key: 'env', Value: 'b' },
        ],
      }),
    ).rejects.toMatchObject({
      name: 'InvalidParameterValue',
    });
  });

  test('a role with a shorter maximum refuses longer sessions', async () => {
    const config = {
      ...defaultFleetConfig(ROOT),
      roles: [{ arn: 'arn:aws:iam::123456789012:role/short', maxSessionDurationSeconds: 3600 }],
      // Its only role is the short one: no worker role for the container endpoint to hand out.
      containerCredentials: undefined,
    };
    h = await startHarness({ config });
    const sts = h.sts();
    await expect(
      sts.send(
        new AssumeRoleCommand({
          RoleArn: 'arn:aws:iam::123456789012:role/short',
          RoleSessionName: 'short-run',
          DurationSeconds: 3601,
        }),
      ),
    ).rejects.toMatchObject({ name: 'ValidationError', message: expect.stringContaining('MaxSessionDuration') });
  });

  test('sessions survive a devfleet restart', async () => {
    h = await startHarness();
    const { credentials } = await h.assume();
    await h.restart();
    const who = await h.sts(credentials).send(new GetCallerIdentityCommand({}));
    expect(who.Arn).toContain('assumed-role/mechanic-runner/test-run');
  });
});

describe('authentication', () => {
  test('a wrong secret fails with each protocol’s signature error', async () => {
    h = await startHarness();
    const wrong = { accessKeyId: ROOT.accessKeyId, secretAccessKey: 'not-the-secret-at-all' };
    await expect(h.sts(wrong).send(new GetCallerIdentityCommand({}))).rejects.toMatchObject({
      name: 'SignatureDoesNotMatch',
    });
    const { credentials } = await h.assume();
    const badSession = {
      ...credentials,
      secretAccessKey: credentials.secretAccessKey.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')),
    };
    await expect(h.ssm(badSession).send(new ListCommandsCommand({}))).rejects.toMatchObject({
      name: 'InvalidSignatureException',
    });
  });

  test('unknown keys and wrong session tokens are unrecognised', async () => {
    h = await startHarness();
    const unknown = { accessKeyId: 'AKIAUNKNOWNKEY000000', secretAccessKey: 'whatever-secret' };
    await expect(h.sts(unknown).send(new GetCallerIdentityCommand({}))).rejects.toMatchObject({
      name: 'InvalidClientTokenId',
    });
    await expect(h.ssm(unknown).send(new ListCommandsCommand({}))).rejects.toMatchObject({
      name: 'UnrecognizedClientException',
    });
    const { credentials } = await h.assume();
    await expect(
      h.ssm({ ...credentials, sessionToken: credentials.sessionToken + 'x' }).send(new ListCommandsCommand({})),
    ).rejects.toMatchObject({
      name: 'UnrecognizedClientException',
    });
    const { sessionToken: _omit, ...noToken } = credentials;
    await expect(h.ssm(noToken).send(new ListCommandsCommand({}))).rejects.toMatchObject({
      name: 'UnrecognizedClientException',
    });
  });

  test('long-term keys may call STS but not SSM', async () => {
    h = await startHarness();
    await expect(h.ssm(ROOT).send(new ListCommandsCommand({}))).rejects.toMatchObject({
      name: 'AccessDeniedException',
      message: expect.stringContaining(
        'arn:aws:iam::123456789012:user/mechanic is not authorized to perform: ssm:ListCommands',
      ),
    });
    await expect(h.ssm(ROOT).send(new DescribeInstanceInformationCommand({}))).rejects.toMatchObject({
      name: 'AccessDeniedException',
    });
  });

  test('an expired session gets ExpiredTokenException, on both services', async () => {
    let offsetMs = 0;
    h = await startHarness({ now: () => Date.now() + offsetMs });
    const { ssm, credentials } = await h.assume({ DurationSeconds: 900 });
    await expect(ssm.send(new ListCommandsCommand({}))).resolves.toBeDefined();
    // devfleet's clock moves 15 minutes on; the SDK corrects its clock skew from the Date header
    // on the first (skewed) attempt, so what remains is the expiry.
    offsetMs = 901_000;
    await expect(ssm.send(new ListCommandsCommand({}))).rejects.toMatchObject({ name: 'ExpiredTokenException' });
    const sts = h.sts(credentials);
    await sts.send(new GetCallerIdentityCommand({})).catch(() => undefined); // let this client learn the skew
    await expect(sts.send(new GetCallerIdentityCommand({}))).rejects.toMatchObject({ name: 'ExpiredTokenException' });
  });

  test('a body swapped under its original x-amz-content-sha256 is rejected', async () => {
    h = await startHarness();
    const { credentials } = await h.assume();
    const make = (cmd: string) =>
      JSON.stringify({
        DocumentName: 'AWS-RunShellScript',
        InstanceIds: [DEMO_INSTANCE_IDS['web-1']],
        Parameters: { commands: [cmd] },
      });
    const original = make('echo safe');
    const tampered = make('echo evil');
    expect(tampered.length).toBe(original.length);
    const headers = await signRaw({
      endpoint: h.fleet.endpoint,
      service: 'ssm',
      credentials,
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AmazonSSM.SendCommand' },
      body: original,
    });

    const rejected = await post(h.fleet.endpoint, headers, tampered);
    expect(rejected.status).toBe(400);
    expect(JSON.parse(rejected.text)).toMatchObject({
      __type: expect.stringContaining('InvalidSignatureException'),
      message: expect.stringContaining('x-amz-content-sha256'),
    });

    // The same signed request with its own body goes through: the rejection was about the body.
    const accepted = await post(h.fleet.endpoint, headers, original);
    expect(accepted.status).toBe(200);
    expect(JSON.parse(accepted.text).Command.Parameters.commands).toEqual(['echo safe']);
    const dataDir = h.dataDir;
    const log = await until(async () => {
      const entries = await readCommandLog(dataDir);
      return entries.length > 0 ? entries : undefined;
    });
    expect(log.map((e) => e.commands)).toEqual([['echo safe']]);
  });

  test('the signature covers the Host and the time', async () => {
    h = await startHarness();
    const body = 'Action=GetCallerIdentity&Version=2011-06-15';
    const base = { endpoint: h.fleet.endpoint, service: 'sts' as const, credentials: ROOT, body };
    const form = { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' };

    const ok = await post(h.fleet.endpoint, await signRaw({ ...base, headers: form }), body);
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('<Arn>arn:aws:iam::123456789012:user/mechanic</Arn>');

    // Signed for another port, replayed here: the Host we received is not the one signed.
    const otherHost = await signRaw({ ...base, headers: form, hostForSigning: '127.0.0.1:1' });
    const replay = await post(h.fleet.endpoint, { ...otherHost, host: new URL(h.fleet.endpoint).host }, body);
    expect(replay.status).toBe(403);
    expect(replay.text).toContain('<Code>SignatureDoesNotMatch</Code>');

    const stale = await post(
      h.fleet.endpoint,
      await signRaw({ ...base, headers: form, signingDate: new Date(Date.now() - 6 * 60_000) }),
      body,
    );
    expect(stale.status).toBe(403);
    expect(stale.text).toContain('Signature expired');

    const scopedToSsm = await post(h.fleet.endpoint, await signRaw({ ...base, service: 'ssm', headers: form }), body);
    expect(scopedToSsm.text).toContain('Credential should be scoped to correct service: &apos;sts&apos;');

    const unsigned = await post(h.fleet.endpoint, form, body);
    expect(unsigned.status).toBe(403);
    expect(unsigned.text).toContain('<Code>MissingAuthenticationToken</Code>');
  });
});
