import { mkdir } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UserError } from '../core/errors.ts';
import { CONTAINER_CREDENTIALS_PATH, parseFleetConfig, type FleetConfig } from './config.ts';
import { Fleet } from './fleet.ts';
import { SigV4Error, parseAuthorization, safeEqual, verifySigV4, type ParsedAuthorization } from './sigv4.ts';
import { seedHost } from './seed.ts';
import { SsmApi } from './ssm.ts';
import { seedParameters } from './parameters.ts';
import type { FleetInstance } from './config.ts';
import { StateStore } from './state.ts';
import { Sts, type Principal } from './sts.ts';
import {
  AwsError,
  isoSeconds,
  sendJson,
  sendJsonError,
  sendQueryError,
  sendQueryResult,
  type Protocol,
} from './wire.ts';
import { appendCallLog, type CallLogEntry } from './call-log.ts';

/** What the call log records of one request, filled in as the request is understood. */
type CallNote = Omit<CallLogEntry, 'at' | 'outcome'>;

/**
 * devfleet's HTTP front: one endpoint for both services, as the SDKs' endpoint override wants.
 * A request is SSM when it carries `x-amz-target: AmazonSSM.*` (awsJson1_1) and STS when it is a
 * form-encoded `Action=` POST (awsQuery); the SigV4 credential scope must name the same service.
 * Every request is authenticated before anything else looks at it.
 */

export interface DevfleetOptions {
  dataDir: string;
  config: FleetConfig;
  /** 0 or absent: a free port chosen by the OS. */
  port?: number;
  /** devfleet's clock (sessions, timestamps, signature skew). Defaults to Date.now. */
  now?: () => number;
  /** Multiplies every SSM timeout (TimeoutSeconds, executionTimeout) so tests can be fast. Default 1. */
  timeScale?: number;
}

export interface Devfleet {
  readonly endpoint: string;
  readonly port: number;
  /** How many calls of each SSM operation the `faults.throttle` rate refused so far. */
  throttledCalls(): Readonly<Record<string, number>>;
  close(): Promise<void>;
}

/** SSM requests are small JSON; STS ones smaller. Anything bigger is not an AWS call we serve. */
const MAX_BODY_BYTES = 1024 * 1024;

const AUTH_ERRORS: Record<
  Protocol,
  Record<'unknownKey' | 'signature' | 'missing' | 'incomplete' | 'expiredToken', { code: string; status: number }>
> = {
  json: {
    unknownKey: { code: 'UnrecognizedClientException', status: 400 },
    signature: { code: 'InvalidSignatureException', status: 400 },
    missing: { code: 'MissingAuthenticationTokenException', status: 400 },
    incomplete: { code: 'IncompleteSignatureException', status: 400 },
    expiredToken: { code: 'ExpiredTokenException', status: 400 },
  },
  query: {
    unknownKey: { code: 'InvalidClientTokenId', status: 403 },
    signature: { code: 'SignatureDoesNotMatch', status: 403 },
    missing: { code: 'MissingAuthenticationToken', status: 403 },
    incomplete: { code: 'IncompleteSignature', status: 403 },
    expiredToken: { code: 'ExpiredTokenException', status: 400 },
  },
};

function authError(protocol: Protocol, kind: keyof (typeof AUTH_ERRORS)['json'], message: string): AwsError {
  const e = AUTH_ERRORS[protocol][kind];
  return new AwsError(e.code, message, e.status);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new AwsError('RequestEntityTooLarge', 'Request body is too large.', 413));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function startDevfleet(opts: DevfleetOptions): Promise<Devfleet> {
  const timeScale = opts.timeScale ?? 1;
  if (!Number.isFinite(timeScale) || timeScale <= 0) {
    throw new UserError(
      'CONFIG_INVALID',
      `devfleet timeScale must be a positive number, not ${String(opts.timeScale)}.`,
    );
  }
  const port = opts.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UserError(
      'CONFIG_INVALID',
      `devfleet port must be a whole number from 0 to 65535, not ${String(opts.port)}.`,
    );
  }
  if (opts.dataDir === '') throw new UserError('CONFIG_INVALID', 'devfleet needs a data folder (dataDir).');
  // Re-validate: callers may build the config by hand, and the rest of devfleet trusts it.
  const config = parseFleetConfig(opts.config);
  const now = opts.now ?? Date.now;
  // Absolute, because it becomes the scripts' cwd and HOME.
  const dataDir = resolvePath(opts.dataDir);
  await mkdir(dataDir, { recursive: true });
  for (const i of config.instances) {
    const root = join(dataDir, 'instances', i.id, 'root');
    await mkdir(root, { recursive: true });
    if (config.seedHosts) await seedHost(root, i);
  }

  const store = await StateStore.open(dataDir);
  seedParameters(store, config.parameters ?? [], now());
  const sts = new Sts(config, store, now);
  /** Set once the server listens: the endpoint an instance's `aws` shim calls. */
  let endpoint = '';
  const instanceEnv = async (instance: FleetInstance): Promise<Record<string, string>> => {
    // Without an instance profile a script gets nothing of devfleet: its `aws` finds no credentials.
    if (instance.roleArn === undefined) return {};
    const session = await sts.instanceSession(instance.id, instance.roleArn);
    return {
      AWS_ENDPOINT_URL: endpoint,
      AWS_REGION: config.region,
      AWS_DEFAULT_REGION: config.region,
      // Never ask a metadata service: a devfleet instance has none, and the probe only waits.
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      DEVFLEET_NODE: process.execPath,
      AWS_ACCESS_KEY_ID: session.accessKeyId,
      AWS_SECRET_ACCESS_KEY: session.secretAccessKey,
      AWS_SESSION_TOKEN: session.sessionToken,
    };
  };
  const fleet = new Fleet({ config, store, dataDir, now, timeScale, instanceEnv });
  const ssm = new SsmApi({ config, store, fleet, sts, now });
  await fleet.recover();
  /** Set when close() begins; later requests get 503 instead of touching a stopping fleet. */
  let closing: Promise<void> | undefined;

  async function authenticate(
    req: IncomingMessage,
    body: Buffer,
    protocol: Protocol,
    note: CallNote,
  ): Promise<Principal> {
    const expectedService = protocol === 'json' ? 'ssm' : 'sts';
    let auth: ParsedAuthorization;
    try {
      auth = parseAuthorization(req.headers.authorization);
    } catch (e) {
      if (e instanceof SigV4Error)
        throw authError(protocol, e.kind === 'missing' ? 'missing' : 'incomplete', e.message);
      throw e;
    }
    note.accessKeyId = auth.accessKeyId;
    if (auth.service !== expectedService) {
      throw authError(protocol, 'signature', `Credential should be scoped to correct service: '${expectedService}'.`);
    }
    if (auth.region !== config.region) {
      throw authError(protocol, 'signature', `Credential should be scoped to a valid region, not '${auth.region}'.`);
    }
    const secret = sts.secretFor(auth.accessKeyId);
    const tokenHeader = req.headers['x-amz-security-token'];
    const token = Array.isArray(tokenHeader) ? tokenHeader.join(',') : tokenHeader;
    const invalidToken = 'The security token included in the request is invalid.';
    if (!secret) throw authError(protocol, 'unknownKey', invalidToken);
    // Session keys need their token, long-term keys must not carry one.
    if (
      secret.sessionToken === undefined
        ? token !== undefined
        : token === undefined || !safeEqual(token, secret.sessionToken)
    ) {
      throw authError(protocol, 'unknownKey', invalidToken);
    }
    try {
      await verifySigV4({
        method: req.method ?? 'POST',
        url: req.url ?? '/',
        headers: req.headers,
        body,
        auth,
        credentials: { accessKeyId: auth.accessKeyId, ...secret },
        nowMs: now(),
      });
    } catch (e) {
      if (e instanceof SigV4Error) {
        throw authError(
          protocol,
          e.kind === 'incomplete' ? 'incomplete' : e.kind === 'missing' ? 'missing' : 'signature',
          e.message,
        );
      }
      throw e;
    }
    const principal = sts.principalFor(auth.accessKeyId);
    if (!principal) throw authError(protocol, 'unknownKey', invalidToken);
    if (principal.kind === 'session') note.keyExpiresAt = new Date(principal.session.expiresAtMs).toISOString();
    if (principal.kind === 'session' && sts.isExpired(principal.session)) {
      throw authError(protocol, 'expiredToken', 'The security token included in the request is expired');
    }
    return principal;
  }

  async function handleJson(
    req: IncomingMessage,
    body: Buffer,
    target: string,
    note: CallNote,
  ): Promise<{ operation: string; answer: unknown }> {
    const principal = await authenticate(req, body, 'json', note);
    const m = /^AmazonSSM\.(\w+)$/.exec(target);
    if (!m)
      throw new AwsError('UnknownOperationException', `devfleet serves only AmazonSSM operations, not ${target}.`);
    let input: unknown;
    try {
      input = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
    } catch {
      throw new AwsError('SerializationException', 'The request body is not valid JSON.');
    }
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      throw new AwsError('SerializationException', 'The request body must be a JSON object.');
    }
    const operation = m[1] ?? '';
    return { operation, answer: await ssm.handle(operation, input, principal) };
  }

  /** Answers an SSM call, unless a fault says the answer is lost (the call itself took effect). */
  async function answerJson(res: ServerResponse, operation: string, answer: unknown): Promise<void> {
    const lost = ssm.lostAnswer(operation);
    if (lost?.acceptThen === 'drop') {
      res.destroy();
      return;
    }
    if (lost?.acceptThen === '503') {
      sendJsonError(res, now(), new AwsError('ServiceUnavailable', 'Service Unavailable', 503));
      return;
    }
    if (lost?.acceptThen === 'delay') {
      // Held until the delay is over or the connection is gone (the caller gave up, or close()).
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, lost.delayMs);
        res.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    if (!res.destroyed) sendJson(res, now(), answer);
  }

  async function handleQuery(
    req: IncomingMessage,
    body: Buffer,
    note: CallNote,
  ): Promise<{ action: string; xml: string }> {
    const params = new URLSearchParams(body.toString('utf8'));
    const action = params.get('Action') ?? '';
    note.operation = action;
    const asked = params.get('DurationSeconds');
    if (action === 'AssumeRole' && asked !== null) note.durationSeconds = asked;
    const principal = await authenticate(req, body, 'query', note);
    switch (action) {
      case 'AssumeRole':
        return { action, xml: await sts.assumeRole(principal, params) };
      case 'GetCallerIdentity':
        return { action, xml: sts.getCallerIdentity(principal) };
      default:
        throw new AwsError('InvalidAction', `Could not find operation ${action} for version 2011-06-15`);
    }
  }

  /**
   * ECS's container-credentials endpoint: a task-role session for whoever presents the token, in
   * the JSON the AWS SDK's HTTP credential provider reads. Renewed well before it expires.
   */
  async function containerCredentials(req: IncomingMessage, res: ServerResponse, note: CallNote): Promise<void> {
    const given = req.headers.authorization;
    const cc = config.containerCredentials;
    if (!cc || given === undefined || !safeEqual(given, cc.authorizationToken)) {
      throw new AwsError('AccessDenied', 'The container credentials endpoint needs its authorization token.', 401);
    }
    const session = await sts.taskRoleSession('mechanic-worker', cc.roleArn);
    note.accessKeyId = session.accessKeyId;
    note.keyExpiresAt = new Date(session.expiresAtMs).toISOString();
    const text = JSON.stringify({
      AccessKeyId: session.accessKeyId,
      SecretAccessKey: session.secretAccessKey,
      Token: session.sessionToken,
      Expiration: isoSeconds(session.expiresAtMs),
      RoleArn: cc.roleArn,
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  function logCall(note: CallNote, outcome: string): void {
    if (config.callLog !== true) return;
    appendCallLog(dataDir, { at: new Date(now()).toISOString(), ...note, outcome });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = req.headers['x-amz-target'];
    const protocol: Protocol = typeof target === 'string' ? 'json' : 'query';
    const note: CallNote =
      protocol === 'json'
        ? { service: 'ssm', operation: String(target).replace(/^AmazonSSM\./, '') }
        : { service: 'sts', operation: '' };
    if (req.method === 'GET' && (req.url ?? '').split('?')[0] === CONTAINER_CREDENTIALS_PATH) {
      const cnote: CallNote = { service: 'container-credentials', operation: 'GetCredentials' };
      try {
        if (closing) throw new AwsError('ServiceUnavailable', 'devfleet is shutting down.', 503);
        await containerCredentials(req, res, cnote);
        logCall(cnote, 'ok');
      } catch (e) {
        const err =
          e instanceof AwsError ? e : new AwsError('InternalFailure', 'devfleet failed to hand out credentials.', 500);
        logCall(cnote, err.code);
        if (!res.headersSent) sendJson(res, now(), { code: err.code, message: err.message }, err.status);
      }
      return;
    }
    try {
      if (closing) throw new AwsError('ServiceUnavailable', 'devfleet is shutting down.', 503);
      if (req.method !== 'POST') throw new AwsError('InvalidAction', 'devfleet accepts only POST requests.', 405);
      const body = await readBody(req);
      if (protocol === 'json') {
        const { operation, answer } = await handleJson(req, body, target as string, note);
        await answerJson(res, operation, answer);
      } else {
        const contentType = req.headers['content-type'] ?? '';
        if (!contentType.startsWith('application/x-www-form-urlencoded')) {
          throw new AwsError(
            'InvalidAction',
            'A request without x-amz-target must be a form-encoded STS Query request.',
          );
        }
        const { action, xml } = await handleQuery(req, body, note);
        sendQueryResult(res, now(), action, xml);
      }
      logCall(note, 'ok');
    } catch (e) {
      const err =
        e instanceof AwsError ? e : new AwsError('InternalFailure', 'devfleet failed to handle the request.', 500);
      logCall(note, err.code);
      if (!(e instanceof AwsError)) {
        // A bug in devfleet, not a caller mistake: keep the stack where a developer will look.
        process.emitWarning(`devfleet: unexpected error: ${(e as Error)?.stack ?? String(e)}`);
      }
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (protocol === 'json') sendJsonError(res, now(), err);
      else sendQueryError(res, now(), err);
    }
  }

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  }).catch(async (e: NodeJS.ErrnoException) => {
    await fleet.shutdown();
    if (e.code === 'EADDRINUSE')
      throw new UserError('CONFIG_INVALID', `devfleet cannot listen on 127.0.0.1:${port}: the port is in use.`, {
        cause: e,
      });
    throw e;
  });
  const actualPort = (server.address() as AddressInfo).port;
  endpoint = `http://127.0.0.1:${actualPort}`;

  return {
    endpoint: `http://127.0.0.1:${actualPort}`,
    port: actualPort,
    throttledCalls: () => ssm.throttledCalls(),
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await fleet.shutdown();
        // In-flight requests have had the time the scripts took to stop; drop whatever is left.
        server.closeAllConnections();
        await stopped;
      })();
      return closing;
    },
  };
}
