/**
 * The SSM client's guard on SendCommand (src/activities/aws.ts, refusedBeforeAccepting) and the
 * worker's client cache (ssmClients), for what mutation round six left alive (issue 12).
 *
 * SendCommand has no idempotency token: a 4xx answer proves SSM refused the call, so the SDK may
 * retry it (throttling); any other failure — a 5xx, an answer that cannot be read, a connection
 * closed — may follow a command SSM accepted, so the SDK must not send it again. The real SDK
 * client talks to devfleet through a small proxy speaking SSM's JSON protocol: to lose an answer
 * devfleet gave, the proxy forwards the call and answers the client itself; to refuse a call, it
 * answers without forwarding. Devfleet's own list of commands is the witness of what was accepted.
 */
import { randomUUID } from 'node:crypto';
import { ListCommandsCommand, SendCommandCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { AssumeRoleCommand } from '@aws-sdk/client-sts';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  createSsmClient,
  createStsClient,
  SendCommandOutcomeUnknownError,
  sessionCredentialsOf,
  ssmClients,
  type SessionCredentials,
} from '../../src/activities/aws.ts';
import { DEMO_ROLE_ARN } from '../../src/devfleet/index.ts';
import { startSsmProxy, type SsmProxy } from '../helpers/ssm-proxy.ts';
import { REGION, ROOT, startHarness, type Harness } from './devfleet-helpers.ts';

const WEB_1 = 'i-0d3f1ee7000000001';

let fleet: Harness;
let proxy: SsmProxy;
let credentials: SessionCredentials;
let witness: SSMClient;
const clients: SSMClient[] = [];

beforeAll(async () => {
  fleet = await startHarness();
  proxy = await startSsmProxy(fleet.fleet.endpoint);
  const sts = createStsClient({ region: REGION, endpoint: fleet.fleet.endpoint, baseCredentials: ROOT });
  const out = await sts.send(new AssumeRoleCommand({ RoleArn: DEMO_ROLE_ARN, RoleSessionName: 'mutants-aws-2' }));
  sts.destroy();
  credentials = sessionCredentialsOf(out.Credentials)!;
  witness = fleet.ssm(credentials);
});
afterAll(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await proxy?.close();
  await fleet?.close();
});
afterEach(() => proxy.reset());

/** An SSM client as the worker builds it, through the proxy. */
function client(): SSMClient {
  const c = createSsmClient({ region: REGION, endpoint: proxy.endpoint }, credentials);
  clients.push(c);
  return c;
}

/** A SendCommand with a comment no other test uses, and the commands devfleet holds with it. */
function send(c: SSMClient) {
  const comment = `mutants-aws-2 ${randomUUID()}`;
  const sent = c.send(
    new SendCommandCommand({
      DocumentName: 'AWS-RunShellScript',
      InstanceIds: [WEB_1],
      Parameters: { commands: ['true'] },
      Comment: comment,
    }),
  );
  const accepted = async () => {
    const out = await witness.send(new ListCommandsCommand({ MaxResults: 50 }));
    return (out.Commands ?? []).filter((x) => x.Comment === comment).length;
  };
  return { sent, accepted };
}

const errorOf = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

describe('SendCommand is sent once unless SSM refused it (refusedBeforeAccepting)', () => {
  test('a 500 after SSM accepted the command: the outcome is unknown and the SDK does not send it again', async () => {
    proxy.answer = (op) =>
      op === 'SendCommand'
        ? { replace: { status: 500, body: JSON.stringify({ __type: 'InternalServerError', message: 'lost' }) } }
        : undefined;
    const { sent, accepted } = send(client());
    const e = await errorOf(sent);
    expect(e).toBeInstanceOf(SendCommandOutcomeUnknownError);
    expect((e as Error).message).toBe(
      'SSM may have accepted the command, but its answer was lost (InternalServerError 500: lost)',
    );
    expect(proxy.calls.filter((c) => c.operation === 'SendCommand')).toHaveLength(1);
    expect(await accepted()).toBe(1);
  });

  test('a 200 whose body cannot be read: unknown (SSM answered, so it may have accepted), sent once', async () => {
    proxy.answer = (op) => (op === 'SendCommand' ? { replace: { status: 200, body: '{"Command": ' } } : undefined);
    const { sent, accepted } = send(client());
    const e = await errorOf(sent);
    expect(e).toBeInstanceOf(SendCommandOutcomeUnknownError);
    expect(((e as SendCommandOutcomeUnknownError).lost as { $metadata?: unknown }).$metadata).toMatchObject({
      httpStatusCode: 200,
    });
    expect(proxy.calls.filter((c) => c.operation === 'SendCommand')).toHaveLength(1);
    expect(await accepted()).toBe(1);
  });

  test('a connection closed after SSM accepted the command: unknown, sent once', async () => {
    proxy.answer = (op) => (op === 'SendCommand' ? { drop: true } : undefined);
    const { sent, accepted } = send(client());
    expect(await errorOf(sent)).toBeInstanceOf(SendCommandOutcomeUnknownError);
    expect(proxy.calls.filter((c) => c.operation === 'SendCommand')).toHaveLength(1);
    expect(await accepted()).toBe(1);
  });

  test('a 400 throttling refusal proves nothing was accepted: the SDK retries it, and one command runs', async () => {
    proxy.answer = (op, _input, nth) =>
      op === 'SendCommand' && nth === 1
        ? { status: 400, json: { __type: 'ThrottlingException', message: 'Rate exceeded' } }
        : undefined;
    const { sent, accepted } = send(client());
    const out = await sent;
    expect(out.Command?.CommandId).toMatch(/^[0-9a-f-]{36}$/);
    expect(proxy.calls.filter((c) => c.operation === 'SendCommand')).toHaveLength(2);
    expect(await accepted()).toBe(1);
  });

  test('a 4xx refusal the SDK does not retry reaches the caller as SSM said it, not as an unknown outcome', async () => {
    proxy.answer = (op) =>
      op === 'SendCommand' ? { status: 499, json: { __type: 'InvalidInstanceId', message: 'not managed' } } : undefined;
    const { sent, accepted } = send(client());
    const e = await errorOf(sent);
    expect(e).not.toBeInstanceOf(SendCommandOutcomeUnknownError);
    expect([(e as Error).name, (e as Error).message]).toEqual(['InvalidInstanceId', 'not managed']);
    expect(await accepted()).toBe(0);
  });

  test('other operations keep the SDK’s retries: a 500 on ListCommands is asked again and answered', async () => {
    proxy.answer = (op, _input, nth) =>
      op === 'ListCommands' && nth === 1
        ? { replace: { status: 500, body: JSON.stringify({ __type: 'InternalServerError', message: 'lost' }) } }
        : undefined;
    const out = await client().send(new ListCommandsCommand({ MaxResults: 5 }));
    expect(out.Commands).toBeDefined();
    expect(proxy.calls.map((c) => c.operation)).toEqual(['ListCommands', 'ListCommands']);
  });
});

describe('ssmClients: one client per session, reused', () => {
  test('the same session gets the same client; another session (even with equal keys) its own', () => {
    const forSession = ssmClients({ region: REGION, endpoint: proxy.endpoint });
    const first = forSession(credentials);
    clients.push(first);
    expect(forSession(credentials)).toBe(first);
    const other = forSession({ ...credentials });
    clients.push(other);
    expect(other).not.toBe(first);
    expect(forSession(credentials)).toBe(first);
  });

  test('a cached client is the worker’s: the configured endpoint, the session’s keys and the SendCommand guard', async () => {
    const forSession = ssmClients({ region: REGION, endpoint: proxy.endpoint });
    const c = forSession(credentials);
    clients.push(c);
    proxy.answer = (op) =>
      op === 'SendCommand'
        ? { replace: { status: 503, body: JSON.stringify({ __type: 'ServiceUnavailable', message: 'lost' }) } }
        : undefined;
    const { sent, accepted } = send(c);
    expect(await errorOf(sent)).toBeInstanceOf(SendCommandOutcomeUnknownError);
    expect(proxy.calls.map((c) => c.operation)).toEqual(['SendCommand']);
    expect(await accepted()).toBe(1);
  });
});
