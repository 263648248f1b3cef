import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetParameterCommand, PutParameterCommand, SendCommandCommand } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEMO_ROLE_ARN, defaultFleetConfig, parseFleetConfig, type FleetConfig } from '../../src/devfleet/index.ts';
import { ROOT, startHarness, waitInvocation, type Harness } from './devfleet-helpers.ts';

/**
 * devfleet's Parameter Store and the `aws` shim on its instances: GetParameter/PutParameter through
 * the real SDK with IAM checks, seeds from the fleet file, and scripts that read a parameter with
 * the instance's own role (an instance profile), or fail as on EC2 without one or without permission.
 */

const INSTANCE_ROLE = 'arn:aws:iam::123456789012:role/app-instance';
const READS_APP = 'i-0aaaaaaaaaaaaaaa1';
const READS_NOTHING = 'i-0aaaaaaaaaaaaaaa2';
const NO_PROFILE = 'i-0aaaaaaaaaaaaaaa3';
const SECRET = 's3cr3t value with spaces & $(id)';

function config(): FleetConfig {
  const base = defaultFleetConfig(ROOT);
  return parseFleetConfig({
    ...base,
    roles: [
      ...base.roles,
      {
        arn: INSTANCE_ROLE,
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
      },
    ],
    instances: [
      { id: READS_APP, tags: { Name: 'app-1' }, roleArn: INSTANCE_ROLE },
      {
        id: READS_NOTHING,
        tags: { Name: 'app-2' },
        roleArn: 'arn:aws:iam::123456789012:role/mechanic-runner',
      },
      { id: NO_PROFILE, tags: { Name: 'app-3' } },
    ],
    parameters: [
      { name: '/app/db/password', value: SECRET },
      { name: '/app/region', type: 'String', value: 'eu-west-1' },
      { name: '/other/token', value: 'not-for-app' },
    ],
  });
}

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ config: config() });
});
afterAll(async () => {
  await h?.close();
});

/** Runs a script on one instance through SendCommand and returns its final invocation. */
async function runOn(instanceId: string, script: string) {
  const { ssm } = await h.assume();
  const sent = await ssm.send(
    new SendCommandCommand({
      DocumentName: 'AWS-RunShellScript',
      InstanceIds: [instanceId],
      Parameters: { commands: [script] },
    }),
  );
  return waitInvocation(ssm, sent.Command!.CommandId!, instanceId);
}

describe('the API', () => {
  test('GetParameter returns a seeded SecureString decrypted only when asked', async () => {
    const { ssm } = await h.assume();
    const plain = await ssm.send(new GetParameterCommand({ Name: '/app/db/password', WithDecryption: true }));
    expect(plain.Parameter).toMatchObject({
      Name: '/app/db/password',
      Type: 'SecureString',
      Value: SECRET,
      Version: 1,
      ARN: 'arn:aws:ssm:us-east-1:123456789012:parameter/app/db/password',
    });
    const opaque = await ssm.send(new GetParameterCommand({ Name: '/app/db/password' }));
    expect(opaque.Parameter?.Value).not.toContain('s3cr3t');
    const byArn = await ssm.send(
      new GetParameterCommand({ Name: 'arn:aws:ssm:us-east-1:123456789012:parameter/app/region' }),
    );
    expect(byArn.Parameter?.Value).toBe('eu-west-1');
  });

  test('a missing parameter is ParameterNotFound; a session policy without it is AccessDeniedException', async () => {
    const { ssm } = await h.assume();
    await expect(ssm.send(new GetParameterCommand({ Name: '/app/none' }))).rejects.toMatchObject({
      name: 'ParameterNotFound',
    });
    const narrowed = await h.assume({
      Policy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Action: 'ssm:SendCommand', Resource: '*' }],
      }),
    });
    await expect(
      narrowed.ssm.send(new GetParameterCommand({ Name: '/app/db/password', WithDecryption: true })),
    ).rejects.toMatchObject({
      name: 'AccessDeniedException',
      message: expect.stringContaining(
        'ssm:GetParameter on resource: arn:aws:ssm:us-east-1:123456789012:parameter/app/db/password',
      ) as unknown,
    });
  });

  test('PutParameter versions a parameter, refuses to overwrite by accident, and survives a restart', async () => {
    const { ssm } = await h.assume();
    expect(
      await ssm.send(new PutParameterCommand({ Name: '/app/api/key', Value: 'v1', Type: 'SecureString' })),
    ).toMatchObject({
      Version: 1,
    });
    await expect(
      ssm.send(new PutParameterCommand({ Name: '/app/api/key', Value: 'v2', Type: 'SecureString' })),
    ).rejects.toMatchObject({ name: 'ParameterAlreadyExists' });
    expect(
      await ssm.send(new PutParameterCommand({ Name: '/app/api/key', Value: 'v2', Overwrite: true })),
    ).toMatchObject({ Version: 2 });
    await expect(
      ssm.send(new PutParameterCommand({ Name: 'aws-thing', Value: 'x', Type: 'String' })),
    ).rejects.toMatchObject({
      name: 'AccessDeniedException',
    });
    await expect(ssm.send(new PutParameterCommand({ Name: 'a/b', Value: 'x', Type: 'String' }))).rejects.toMatchObject({
      name: 'ValidationException',
    });
    // The long-term keys have no SSM permissions at all, as an IAM user without policies.
    await expect(
      h.ssm(ROOT).send(new PutParameterCommand({ Name: '/app/x', Value: 'x', Type: 'String' })),
    ).rejects.toMatchObject({ name: 'AccessDeniedException' });

    const state = await readFile(join(h.dataDir, 'state.json'), 'utf8');
    expect(JSON.parse(state)).toMatchObject({
      parameters: expect.arrayContaining([expect.objectContaining({ name: '/app/api/key', version: 2 })]) as unknown,
    });
    await h.restart();
    const after = await (
      await h.assume()
    ).ssm.send(new GetParameterCommand({ Name: '/app/api/key', WithDecryption: true }));
    expect(after.Parameter).toMatchObject({ Value: 'v2', Version: 2 });
    // An unchanged seed is not put again: still version 1.
    const seeded = await (await h.assume()).ssm.send(new GetParameterCommand({ Name: '/app/region' }));
    expect(seeded.Parameter?.Version).toBe(1);
  });

  test('a fleet file with a bad parameter name or an instance role outside the fleet is refused', () => {
    const base = defaultFleetConfig(ROOT);
    expect(() => parseFleetConfig({ ...base, parameters: [{ name: 'a b', value: 'x' }] })).toThrow(
      /must be a Parameter Store name/,
    );
    expect(() =>
      parseFleetConfig({
        ...base,
        instances: [{ id: READS_APP, roleArn: 'arn:aws:iam::123456789012:role/nope' }],
      }),
    ).toThrow(/is not one of the fleet's roles/);
    expect(DEMO_ROLE_ARN).toBe(base.roles[0]?.arn);
  });
});

describe('the aws shim on an instance', () => {
  test('reads a parameter with the instance profile, decrypted, as the AWS CLI prints it', async () => {
    const inv = await runOn(
      READS_APP,
      'aws ssm get-parameter --name /app/db/password --with-decryption --query Parameter.Value --output text | sha256sum',
    );
    const { createHash } = await import('node:crypto');
    expect(inv.StandardErrorContent).toBe('');
    expect(inv.Status).toBe('Success');
    expect(inv.StandardOutputContent).toBe(`${createHash('sha256').update(`${SECRET}\n`).digest('hex')}  -\n`);
  });

  test('the instance role may read only what its policy allows: AccessDeniedException otherwise', async () => {
    const inv = await runOn(READS_APP, 'aws ssm get-parameter --name /other/token --with-decryption');
    expect(inv.Status).toBe('Failed');
    expect(inv.ResponseCode).toBe(254);
    expect(inv.StandardErrorContent).toContain(
      'An error occurred (AccessDeniedException) when calling the GetParameter operation: User: arn:aws:sts::123456789012:assumed-role/app-instance/i-0aaaaaaaaaaaaaaa1 is not authorized to perform: ssm:GetParameter',
    );
  });

  test('the instance is the caller, not the one who sent the command', async () => {
    // The runner role may read everything, but this instance's own role reads only /app/*.
    const inv = await runOn(
      READS_APP,
      'aws ssm get-parameter --name /other/token --query Parameter.Type --output text',
    );
    expect(inv.Status).toBe('Failed');
    const other = await runOn(
      READS_NOTHING,
      'aws ssm get-parameter --name /other/token --with-decryption --query Parameter.Value --output text',
    );
    expect(other.StandardOutputContent).toBe('not-for-app\n');
  });

  test('an instance without an instance profile finds no credentials', async () => {
    const inv = await runOn(NO_PROFILE, 'aws ssm get-parameter --name /app/db/password');
    expect(inv.Status).toBe('Failed');
    expect(inv.ResponseCode).toBe(253);
    expect(inv.StandardErrorContent).toContain('Unable to locate credentials');
  });

  test("a script gets its instance profile's session keys, never devfleet's own, and none without a profile", async () => {
    const withProfile = await runOn(READS_APP, 'printf "%s\\n" "$AWS_ACCESS_KEY_ID" "${AWS_SESSION_TOKEN:+token}"');
    const [key, token] = withProfile.StandardOutputContent!.split('\n');
    expect(key).toMatch(/^ASIA/);
    expect(key).not.toBe(ROOT.accessKeyId);
    expect(token).toBe('token');
    const without = await runOn(NO_PROFILE, 'env | grep -c "^AWS_\\|^DEVFLEET_" || true');
    // Only the SSM agent's own AWS_SSM_INSTANCE_ID.
    expect(without.StandardOutputContent).toBe('1\n');
  });

  test('a command line the shim does not know is refused with its usage', async () => {
    const inv = await runOn(READS_APP, 'aws s3 ls');
    expect(inv.ResponseCode).toBe(252);
    expect(inv.StandardErrorContent).toContain("devfleet's aws knows");
  });
});
