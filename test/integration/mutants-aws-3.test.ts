/**
 * src/activities/aws.ts for the survivors of the whole mutation run (docs/mutation-survivors.md):
 * baseIsRoleSession (lines 43–46), which no test reached — whether the worker's own credentials
 * are a role session, as the STS client really resolves them — and the name the SendCommand guard
 * has in the SSM client's middleware stack (88:11).
 *
 * Left alive, as equivalent:
 * - 130:18 `(e as …)?.$metadata` → `.$metadata`: refusedBeforeAccepting only sees SendCommand's
 *   errors, and for a nullish one the original throws the same TypeError a line later
 *   (SendCommandOutcomeUnknownError reads `lost.$metadata`); nothing under the retry middleware
 *   throws one anyway.
 * - 131:10 `status !== undefined` → `true`: `undefined >= 400` is false, so no status is still no
 *   refusal.
 *
 * The clients are the real SDK clients built by aws.ts, against an in-process devfleet.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { baseIsRoleSession, createSsmClient, createStsClient, sessionCredentialsOf } from '../../src/activities/aws.ts';
import { AssumeRoleCommand } from '@aws-sdk/client-sts';
import { DEMO_WORKER_ROLE_ARN } from '../../src/devfleet/config.ts';
import { DEMO_ROLE_ARN } from '../../src/devfleet/index.ts';
import { REGION, ROOT, startHarness, type Harness } from './devfleet-helpers.ts';

let fleet: Harness;
const clients: { destroy(): void }[] = [];

beforeAll(async () => {
  fleet = await startHarness();
});
afterAll(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await fleet?.close();
});

function sts(baseCredentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }) {
  const c = createStsClient({ region: REGION, endpoint: fleet.fleet.endpoint, baseCredentials });
  clients.push(c);
  return c;
}

describe('baseIsRoleSession: whether the worker’s own credentials carry a session token', () => {
  test('long-term keys (no token): not a role session', async () => {
    expect(await baseIsRoleSession(sts(ROOT))()).toBe(false);
  });

  test('a session of the worker role: a role session, and AssumeRole from it is role chaining', async () => {
    const out = await sts(ROOT).send(
      new AssumeRoleCommand({ RoleArn: DEMO_WORKER_ROLE_ARN, RoleSessionName: 'mutants-aws-3' }),
    );
    const session = sessionCredentialsOf(out.Credentials)!;
    const chained = sts(session);
    expect(await baseIsRoleSession(chained)()).toBe(true);
    // The client really signs with that session: devfleet takes it.
    const again = await chained.send(
      new AssumeRoleCommand({ RoleArn: DEMO_ROLE_ARN, RoleSessionName: 'mutants-aws-3-chained' }),
    );
    expect(again.Credentials?.SessionToken).toBeTruthy();
  });

  test('a blank session token (an environment that sets AWS_SESSION_TOKEN=""): not a role session', async () => {
    expect(await baseIsRoleSession(sts({ ...ROOT, sessionToken: '' }))()).toBe(false);
  });
});

describe('the SendCommand guard in the SSM client’s middleware stack', () => {
  test('under its own name, right after the retry middleware (inside the retry loop) and before signing', async () => {
    const out = await sts(ROOT).send(
      new AssumeRoleCommand({ RoleArn: DEMO_ROLE_ARN, RoleSessionName: 'mutants-aws-3' }),
    );
    const c = createSsmClient(
      { region: REGION, endpoint: fleet.fleet.endpoint },
      sessionCredentialsOf(out.Credentials)!,
    );
    clients.push(c);
    const stack = c.middlewareStack.identify();
    const at = stack.indexOf('mechanicSendCommandOnce - after retryMiddleware');
    expect(at).toBeGreaterThan(0);
    expect(stack[at - 1]).toMatch(/^retryMiddleware /);
    expect(stack[at + 1]).toMatch(/^httpSigningMiddleware /);
  });
});
