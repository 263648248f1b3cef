import { SSMClient } from '@aws-sdk/client-ssm';
import { STSClient, type Credentials } from '@aws-sdk/client-sts';

export interface AwsSettings {
  readonly region: string;
  /** Endpoint override: devfleet in the embedded stack; unset in production. */
  readonly endpoint?: string | undefined;
  /**
   * The worker's own credentials from the environment (long-term keys, or a session's with its
   * token); unset in production, where the default provider chain finds them.
   */
  readonly baseCredentials?:
    { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string } | undefined;
}

export interface SessionCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
}

// Throttling is expected when many runs poll at once; the adaptive mode backs off client-side.
// SendCommand is the exception: its SDK retries are limited to refusals (sendCommandOnce).
const RETRY = { maxAttempts: 8, retryMode: 'adaptive' } as const;

/** The one place AWS SDK clients are built. */
export function createStsClient(settings: AwsSettings): STSClient {
  return new STSClient({
    region: settings.region,
    ...RETRY,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    ...(settings.baseCredentials ? { credentials: settings.baseCredentials } : {}),
  });
}

/**
 * Whether the worker's own credentials are a role session: they carry a session token (an ECS task
 * role, an EKS pod role, an instance profile, the embedded stack's worker role). AssumeRole from
 * them is role chaining, which AWS caps at one hour. Resolved through the client's own provider,
 * so it is the credentials the client really signs with.
 */
export function baseIsRoleSession(sts: STSClient): () => Promise<boolean> {
  return async () => {
    const identity = await sts.config.credentials();
    return typeof identity.sessionToken === 'string' && identity.sessionToken !== '';
  };
}

/**
 * SSM clients by session: one client, and so one connection pool, for as long as a session's
 * credentials object lives, instead of a new client on every poll.
 */
export function ssmClients(settings: AwsSettings): (credentials: SessionCredentials) => SSMClient {
  const clients = new WeakMap<SessionCredentials, SSMClient>();
  return (credentials) => {
    let client = clients.get(credentials);
    if (!client) {
      client = createSsmClient(settings, credentials);
      clients.set(credentials, client);
    }
    return client;
  };
}

/** The session credentials in an AssumeRole answer, or undefined when STS left a part out. */
export function sessionCredentialsOf(c: Credentials | undefined): SessionCredentials | undefined {
  if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) return undefined;
  return {
    accessKeyId: c.AccessKeyId,
    secretAccessKey: c.SecretAccessKey,
    sessionToken: c.SessionToken,
    expiration: c.Expiration,
  };
}

export function createSsmClient(settings: AwsSettings, credentials: SessionCredentials): SSMClient {
  const client = new SSMClient({
    region: settings.region,
    ...RETRY,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    credentials,
  });
  // Inside the SDK's retry loop, so it decides what that loop may retry for SendCommand.
  client.middlewareStack.addRelativeTo(sendCommandOnce, {
    relation: 'after',
    toMiddleware: 'retryMiddleware',
    name: 'mechanicSendCommandOnce',
  });
  return client;
}

/** Turns a SendCommand attempt without a refusal into a final error (see SendCommandOutcomeUnknownError). */
const sendCommandOnce = ((next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) =>
  async (args: unknown) => {
    try {
      return await next(args);
    } catch (e) {
      if (context.commandName !== 'SendCommandCommand' || refusedBeforeAccepting(e)) throw e;
      throw new SendCommandOutcomeUnknownError(e);
    }
  }) as Parameters<SSMClient['middlewareStack']['addRelativeTo']>[0];

/**
 * SendCommand has no idempotency token, so the SDK must not send it again after an attempt whose
 * outcome it cannot know: a 5xx or a lost connection may follow a command SSM accepted and runs.
 * Only the dispatch activity's find-or-send may send again, after looking for the command. This
 * error is one the SDK's retry strategy classifies as final (no status, no cause, no known name).
 */
export class SendCommandOutcomeUnknownError extends Error {
  override readonly name = 'SendCommandOutcomeUnknown';
  constructor(
    /** What the attempt got instead of an answer; deliberately not `cause`, which the SDK would classify. */
    readonly lost: unknown,
  ) {
    const l = lost as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    const status = l.$metadata?.httpStatusCode;
    super(
      `SSM may have accepted the command, but its answer was lost (${l.name ?? 'Error'}${status ? ` ${status}` : ''}: ${l.message ?? String(lost)})`,
    );
  }
}

/**
 * A 4xx answer proves SSM refused the call: throttling, which the SDK retries, a signature refused
 * for clock skew, which it retries once corrected, or a mistake it does not retry. Anything else —
 * a 5xx, a timeout, a connection closed — leaves it unknown whether the command was accepted.
 */
function refusedBeforeAccepting(e: unknown): boolean {
  const status = (e as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
  return status !== undefined && status >= 400 && status < 500;
}
