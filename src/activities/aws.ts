import { SSMClient } from '@aws-sdk/client-ssm';
import { STSClient, type Credentials } from '@aws-sdk/client-sts';

export interface AwsSettings {
  readonly region: string;
  /** Endpoint override: devfleet in the embedded stack; unset in production. */
  readonly endpoint?: string | undefined;
  /** Long-term credentials of the worker itself; unset in production (default provider chain). */
  readonly baseCredentials?: { readonly accessKeyId: string; readonly secretAccessKey: string } | undefined;
}

export interface SessionCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
}

// Throttling is expected when many runs poll at once; the adaptive mode backs off client-side.
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
  return new SSMClient({
    region: settings.region,
    ...RETRY,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    credentials,
  });
}
