import path from 'node:path';
import { z } from 'zod';
import { UserError } from './core/errors.ts';
import {
  DEFAULT_REPORT_TIME_ZONE,
  DEFAULT_WORKING_HOURS_TEXT,
  isTimeZone,
  parseWorkingHours,
  type WorkingHours,
} from './core/reports.ts';

const port = z.coerce.number().int().min(0).max(65535);
const optional = z
  .string()
  .optional()
  .transform((v) => (v === '' ? undefined : v));

/**
 * Every setting mechanic reads, from the environment, parsed once. Composition roots (the CLI
 * commands that start a process) call loadConfig and pass slices down; nothing deeper reads env.
 */
const EnvSchema = z.object({
  /** Where the embedded stack keeps its state (SQLite files, tokens, keys, logs). */
  MECHANIC_HOME: z.string().default('.mechanic'),
  MECHANIC_RUNBOOKS_DIR: z.string().default('runbooks'),
  /**
   * "author,reviewer": at start, the API server publishes the runbooks folder as the first user and
   * approves it as the second (the embedded stack's demo catalog). Unset, nothing is seeded.
   */
  MECHANIC_REGISTRY_SEED: optional.pipe(
    z
      .string()
      .regex(/^[^,\s]+,[^,\s]+$/, 'must be "author,reviewer", two user ids')
      .refine((v) => v.split(',')[0] !== v.split(',')[1], 'must name two different users')
      .optional(),
  ),
  MECHANIC_API_HOST: z.string().default('127.0.0.1'),
  MECHANIC_API_PORT: port.default(8787),
  /** The API the CLI talks to; defaults to the embedded stack's. */
  MECHANIC_API_URL: optional,
  MECHANIC_TOKEN: optional,
  /** Bearer-token users of the API server; the embedded stack writes one under MECHANIC_HOME. */
  MECHANIC_USERS_FILE: optional,
  /** Cedar policies the API server decides with; unset, the shipped defaults (src/authz/cedar/policies.cedar). */
  MECHANIC_POLICY_FILE: optional,
  /** An OpenID provider whose JWTs the API server accepts as bearer tokens (besides the users file's tokens). */
  MECHANIC_OIDC_ISSUER: optional,
  /** The audience those JWTs must name; required with MECHANIC_OIDC_ISSUER. */
  MECHANIC_OIDC_AUDIENCE: optional,
  /** The issuer's key set; unset, it is read from the issuer's discovery document. */
  MECHANIC_OIDC_JWKS_URL: optional,
  MECHANIC_OIDC_USER_CLAIM: z.string().min(1).default('sub'),
  MECHANIC_OIDC_GROUPS_CLAIM: z.string().min(1).default('groups'),
  /** Signature algorithms accepted, comma-separated; only asymmetric ones, so a public key can never be an HMAC secret. */
  MECHANIC_OIDC_ALGORITHMS: z
    .string()
    .default('RS256,ES256,EdDSA')
    .transform((v) => v.split(',').map((a) => a.trim()))
    .pipe(
      z
        .array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']))
        .min(1),
    ),
  MECHANIC_OIDC_CLOCK_SKEW_SECONDS: z.coerce.number().int().min(0).max(300).default(30),
  /** The web client (authorization code + PKCE) the server's own pages sign people in with; needs MECHANIC_OIDC_ISSUER. */
  MECHANIC_OIDC_WEB_CLIENT_ID: optional,
  /** Its secret, for a confidential client; unset for a public one (PKCE protects the code either way). */
  MECHANIC_OIDC_WEB_CLIENT_SECRET: optional,
  /** The API server's origin as browsers reach it (sign-in callback, Secure cookies); unset, the address it listens on. */
  MECHANIC_PUBLIC_URL: optional,
  /** The key that seals web session cookies (32+ random bytes, base64); made owner-only the first time when missing. */
  MECHANIC_WEB_SESSION_KEY_FILE: optional,
  MECHANIC_WEB_SESSION_MINUTES: z.coerce.number().int().min(1).max(720).default(60),
  /** The embedded stack's development OpenID provider: its port (0 picks a free one). */
  MECHANIC_IDP_PORT: port.default(0),
  /** devfleet's fleet (instances, roles, keys); the embedded stack writes one under MECHANIC_HOME. */
  MECHANIC_DEVFLEET_CONFIG: optional,
  /** Set by mechanic dev for the parts it starts: they exit when it goes away. */
  MECHANIC_SUPERVISED: z.enum(['0', '1']).default('0'),

  TEMPORAL_ADDRESS: z.string().default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().default('default'),
  TEMPORAL_TASK_QUEUE: z.string().default('mechanic'),
  TEMPORAL_API_KEY: optional,
  TEMPORAL_TLS: z.enum(['true', 'false']).default('false'),
  TEMPORAL_UI_PORT: port.default(8233),
  /** A workflow bundle from `mechanic bundle`; unset, the worker bundles the sources at start. */
  MECHANIC_WORKFLOW_BUNDLE: optional,
  /** AES-256-GCM keys for workflow payloads: "id:base64key[,id:base64key…]", the first is active. */
  MECHANIC_CODEC_KEYS: optional,
  /** Origins of the Temporal Web UI allowed to call the API server's codec endpoint (/codec), comma-separated. */
  MECHANIC_TEMPORAL_UI_ORIGIN: optional,

  AWS_REGION: z.string().default('us-east-1'),
  /** Endpoint override for STS and SSM (devfleet in the embedded stack). Unset for real AWS. */
  MECHANIC_AWS_ENDPOINT: optional,
  AWS_ACCESS_KEY_ID: optional,
  AWS_SECRET_ACCESS_KEY: optional,
  /** With the two above when they are a role session's (then every run's lease is role chaining: one hour at most). */
  AWS_SESSION_TOKEN: optional,
  MECHANIC_DEVFLEET_PORT: port.default(4580),
  /**
   * The longest STS session a run's lease asks for, in seconds. Unset: what the plan needs, at most
   * an hour when the worker's own credentials are a role session (role chaining); longer runs live on
   * refreshed leases. Set it for a role whose MaxSessionDuration is shorter than a plan.
   */
  MECHANIC_CREDENTIAL_MAX_SECONDS: optional.pipe(
    z.coerce.number<string | undefined>().int().min(900).max(43200).optional(),
  ),
  /**
   * What the embedded stack's worker signs with: a session of devfleet's mechanic-worker role from
   * devfleet's container-credentials endpoint (role, as a worker on ECS), or devfleet's long-term keys (keys).
   */
  MECHANIC_DEV_WORKER_CREDENTIALS: z.enum(['role', 'keys']).default('role'),

  /** PostgreSQL for the audit store; SQLite under MECHANIC_HOME when unset. */
  DATABASE_URL: optional,
  /**
   * The Ed25519 key (PKCS#8 PEM, owner-only) that signs checkpoints of the audit log; made the first
   * time when missing. Keep it outside the database's reach; worker and API server share it.
   */
  MECHANIC_AUDIT_KEY_FILE: optional,

  /**
   * Following a running command: the first pause between two looks, grown by half after each look
   * up to the largest. Short steps are noticed within a tenth of a second; a long step costs about a
   * dozen extra ListCommandInvocations calls before it settles at one look every 15 s.
   */
  MECHANIC_POLL_MIN_MS: z.coerce.number().int().min(50).default(100),
  MECHANIC_POLL_MAX_MS: z.coerce.number().int().min(50).default(15000),
  /**
   * How much one worker process takes on at once. Work beyond these waits in Temporal's task queue
   * (a run queues, it does not fail) until this worker or another one on the same queue has room.
   * Activities: SSM calls and the polls that follow a running command (mostly waiting, so cheap).
   */
  MECHANIC_WORKER_MAX_ACTIVITIES: z.coerce.number().int().min(1).max(10_000).default(100),
  /** Workflow tasks a worker runs at once (deciding a run's next move); at least 2. */
  MECHANIC_WORKER_MAX_WORKFLOW_TASKS: z.coerce.number().int().min(2).max(10_000).default(40),
  /** Audit records a worker writes at once (local activities inside workflow tasks). */
  MECHANIC_WORKER_MAX_LOCAL_ACTIVITIES: z.coerce.number().int().min(1).max(10_000).default(100),
  /**
   * Runs a worker keeps in memory between their tasks; a run not kept is replayed from its history
   * when it next moves (CPU instead of memory). 0 keeps none.
   */
  MECHANIC_WORKER_MAX_CACHED_RUNS: z.coerce.number().int().min(0).max(100_000).default(1000),
  /**
   * The V8 heap limit, in MB, of each of the worker's JavaScript heaps: its workflow thread (where the
   * runs it keeps live) and, when the embedded stack starts it, its main thread (activities). Under
   * 2 GB, V8 also collects sooner: a heap grows to 1.3–2 times its live data, not up to 4 times.
   */
  MECHANIC_WORKER_HEAP_MB: z.coerce.number().int().min(128).max(65_536).default(512),
  /** Slack approvals: the bot token (xoxb-…); unset, Slack is off. */
  MECHANIC_SLACK_BOT_TOKEN: optional,
  /** The app's signing secret; required with the bot token unless an app token is set (interaction requests are verified with it). */
  MECHANIC_SLACK_SIGNING_SECRET: optional,
  /** An app-level token (xapp-…, connections:write): Slack's interactions arrive over Socket Mode, no public endpoint needed. */
  MECHANIC_SLACK_APP_TOKEN: optional,
  /** The channel (id) approval requests go to, unless the runbook has its own in MECHANIC_SLACK_CHANNELS. */
  MECHANIC_SLACK_CHANNEL: optional,
  /** Per-runbook channels: "deploy-web=C0123,rotate-logs=C0456". */
  MECHANIC_SLACK_CHANNELS: optional,
  /** Who a Slack user is in mechanic (JSON: Slack user ids or e-mails → id, roles, groups). */
  MECHANIC_SLACK_USERS_FILE: optional,
  /** Also map a Slack user by the confirmed e-mail users.info reports (needs users:read.email). */
  MECHANIC_SLACK_ALLOW_EMAIL: z.enum(['true', 'false']).default('false'),
  /** The Web API base URL, for a proxy or a test fake; unset, Slack's own. */
  MECHANIC_SLACK_API_URL: optional,
  /** A link to a run shown in its message, with {id} for the execution id (e.g. a web UI's run page). */
  MECHANIC_SLACK_RUN_URL: optional,
  MECHANIC_HEARTBEAT_TIMEOUT_SECONDS: z.coerce.number().int().min(2).max(600).default(60),
  MECHANIC_DELIVERY_TIMEOUT_SECONDS: z.coerce.number().int().min(30).max(2_592_000).default(600),
  /**
   * Rate limits of the API (token buckets; over them a request gets 429 with Retry-After). Per
   * signed-in principal: a burst, then so many requests a second. An event stream counts once
   * per connection. The defaults never slow a person or a script that waits for its answers.
   */
  MECHANIC_RATE_LIMIT_BURST: z.coerce.number().int().min(1).max(1_000_000).default(100),
  MECHANIC_RATE_LIMIT_PER_SECOND: z.coerce.number().positive().max(1_000_000).default(20),
  /** Per client address, before authentication (floods of bad tokens); everyone behind one proxy or NAT shares it. */
  MECHANIC_RATE_LIMIT_ADDRESS_BURST: z.coerce.number().int().min(1).max(1_000_000).default(1000),
  MECHANIC_RATE_LIMIT_ADDRESS_PER_SECOND: z.coerce.number().positive().max(1_000_000).default(200),
  /** How often the API server looks for runs Temporal ended without their end on the record (ended-runs.ts). */
  MECHANIC_ENDED_RUNS_SWEEP_SECONDS: z.coerce.number().int().min(1).max(86_400).default(60),
  /** Repeated refusals of one caller within this window are one audit record with a count. */
  MECHANIC_DENIAL_WINDOW_SECONDS: z.coerce.number().int().min(1).max(86_400).default(60),
  /** The working days and hours of the reports ("Mon-Fri 08:00-18:00"): runs started outside them are flagged. */
  MECHANIC_REPORT_WORKING_HOURS: z.string().default(DEFAULT_WORKING_HOURS_TEXT),
  /** The IANA time zone of those hours and of the reports' days (e.g. Europe/Berlin). */
  MECHANIC_REPORT_TIME_ZONE: z.string().default(DEFAULT_REPORT_TIME_ZONE),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface Config {
  readonly home: string;
  readonly runbooksDir: string;
  /** Who the API server seeds the runbooks folder as, at start; undefined: no seeding. */
  readonly registrySeed: { readonly author: string; readonly reviewer: string } | undefined;
  readonly api: {
    readonly host: string;
    readonly port: number;
    /** Where the CLI finds the API; undefined means the embedded stack's (from its stack file). */
    readonly url: string | undefined;
    readonly defaultUrl: string;
    readonly token: string | undefined;
    readonly usersFile: string;
  };
  readonly authz: {
    /** Undefined means the shipped default policies. */
    readonly policyFile: string | undefined;
    readonly oidc:
      | {
          readonly issuer: string;
          readonly audience: string;
          readonly jwksUrl: string | undefined;
          readonly userClaim: string;
          readonly groupsClaim: string;
          readonly algorithms: readonly string[];
          readonly clockSkewSeconds: number;
        }
      | undefined;
    /** Browser sign-in (authorization code + PKCE) for the server's pages; undefined when not configured. */
    readonly web:
      | {
          readonly clientId: string;
          readonly clientSecret: string | undefined;
          readonly publicUrl: string | undefined;
          readonly sessionKeyFile: string;
          readonly sessionTtlSeconds: number;
        }
      | undefined;
  };
  /** The embedded stack's development OpenID provider (mechanic idp). */
  readonly idp: { readonly port: number; readonly dir: string };
  readonly devfleetConfigFile: string;
  readonly supervised: boolean;
  readonly temporal: {
    readonly address: string;
    readonly namespace: string;
    readonly taskQueue: string;
    readonly apiKey: string | undefined;
    readonly tls: boolean;
    readonly uiPort: number;
    readonly codecKeys: string | undefined;
    readonly workflowBundle: string | undefined;
    /** Web UI origins the codec endpoint grants CORS with credentials (MECHANIC_TEMPORAL_UI_ORIGIN); empty: none. */
    readonly uiOrigins: readonly string[];
  };
  readonly aws: {
    readonly region: string;
    readonly endpoint: string | undefined;
    readonly baseCredentials:
      { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string } | undefined;
    readonly devfleetPort: number;
    /** MECHANIC_CREDENTIAL_MAX_SECONDS: the most a run's lease asks STS for. */
    readonly credentialMaxSeconds: number | undefined;
    /** MECHANIC_DEV_WORKER_CREDENTIALS: the embedded stack's worker as a role session, or with long-term keys. */
    readonly devWorkerCredentials: 'role' | 'keys';
  };
  readonly store:
    { readonly kind: 'sqlite'; readonly file: string } | { readonly kind: 'postgres'; readonly url: string };
  /** The audit log's checkpoint signing key; its latest checkpoint is kept beside it. */
  readonly audit: { readonly keyFile: string };
  /** What one worker process takes on at once (MECHANIC_WORKER_*); the rest waits in the task queue. */
  readonly worker: {
    readonly maxActivities: number;
    readonly maxWorkflowTasks: number;
    readonly maxLocalActivities: number;
    readonly maxCachedRuns: number;
    /** MECHANIC_WORKER_HEAP_MB: the heap limit of the worker's workflow thread, and of its main thread where it is started with it. */
    readonly heapMb: number;
  };
  readonly ssm: {
    readonly pollMinMs: number;
    readonly pollMaxMs: number;
    readonly deliveryTimeoutSeconds: number;
    readonly heartbeatTimeoutSeconds: number;
  };
  /** Slack approvals; undefined when MECHANIC_SLACK_BOT_TOKEN is unset. */
  readonly slack:
    | {
        readonly botToken: string;
        /** Undefined with Socket Mode alone: the HTTP interaction endpoint is then off. */
        readonly signingSecret: string | undefined;
        /** The app-level token (xapp-…) of Socket Mode; undefined, interactions come over HTTP. */
        readonly appToken: string | undefined;
        readonly apiUrl: string | undefined;
        readonly defaultChannel: string;
        readonly channels: Readonly<Record<string, string>>;
        readonly usersFile: string;
        readonly allowEmail: boolean;
        readonly runUrl: string | undefined;
        /** Where the server's own pages are (the high-risk confirm page); MECHANIC_PUBLIC_URL. */
        readonly publicUrl: string | undefined;
        readonly stateFile: string;
      }
    | undefined;
  /** The API's rate limits and how long one caller's repeated refusals fold into one audit record. */
  readonly limits: {
    readonly principal: { readonly burst: number; readonly perSecond: number };
    readonly address: { readonly burst: number; readonly perSecond: number };
    readonly denialWindowSeconds: number;
  };
  /** How often the API server records the end of runs Temporal ended (terminated, failed, timed out). */
  readonly endedRunsSweepSeconds: number;
  readonly logLevel: string;
  /** The reports' working hours and time zone (off-hours flags, days of the charts). */
  readonly reports: { readonly workingHours: WorkingHours; readonly timeZone: string };
}

/** MECHANIC_TEMPORAL_UI_ORIGIN as a list of exact origins: a CORS grant compares them as text. */
function uiOrigins(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o !== '')
    .map((o) => {
      const url = URL.canParse(o) ? new URL(o) : undefined;
      if (url === undefined || !['http:', 'https:'].includes(url.protocol) || url.origin !== o.replace(/\/$/, '')) {
        throw new UserError(
          'CONFIG_INVALID',
          `MECHANIC_TEMPORAL_UI_ORIGIN holds "${o.slice(0, 100)}", which is not an origin; give the Temporal Web UI's scheme, host and port (e.g. https://temporal.example.com), commas between several`,
        );
      }
      return url.origin;
    });
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const r = EnvSchema.safeParse(env);
  if (!r.success)
    throw new UserError('CONFIG_INVALID', `the environment has an invalid setting:\n${z.prettifyError(r.error)}`);
  const e = r.data;
  if ((e.AWS_ACCESS_KEY_ID === undefined) !== (e.AWS_SECRET_ACCESS_KEY === undefined)) {
    throw new UserError('CONFIG_INVALID', 'set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither');
  }
  // A poll is also a heartbeat: waiting longer than the heartbeat timeout would look like a dead worker.
  if (e.MECHANIC_POLL_MAX_MS * 2 > e.MECHANIC_HEARTBEAT_TIMEOUT_SECONDS * 1000) {
    throw new UserError(
      'CONFIG_INVALID',
      'MECHANIC_POLL_MAX_MS must be at most half of MECHANIC_HEARTBEAT_TIMEOUT_SECONDS',
    );
  }
  if (e.MECHANIC_POLL_MAX_MS < e.MECHANIC_POLL_MIN_MS) {
    throw new UserError('CONFIG_INVALID', 'MECHANIC_POLL_MAX_MS must not be smaller than MECHANIC_POLL_MIN_MS');
  }
  // Temporal's own rules for these two, said here rather than silently changed by the SDK.
  const cached = e.MECHANIC_WORKER_MAX_CACHED_RUNS;
  if (cached === 1 || (cached > 0 && e.MECHANIC_WORKER_MAX_WORKFLOW_TASKS > cached)) {
    throw new UserError(
      'CONFIG_INVALID',
      'MECHANIC_WORKER_MAX_CACHED_RUNS must be 0 or at least MECHANIC_WORKER_MAX_WORKFLOW_TASKS (and at least 2)',
    );
  }
  if (e.MECHANIC_OIDC_ISSUER !== undefined && e.MECHANIC_OIDC_AUDIENCE === undefined) {
    throw new UserError(
      'CONFIG_INVALID',
      'MECHANIC_OIDC_ISSUER is set without MECHANIC_OIDC_AUDIENCE; set the audience your tokens carry',
    );
  }
  if (e.MECHANIC_OIDC_WEB_CLIENT_ID !== undefined && e.MECHANIC_OIDC_ISSUER === undefined) {
    throw new UserError(
      'CONFIG_INVALID',
      'MECHANIC_OIDC_WEB_CLIENT_ID is set without MECHANIC_OIDC_ISSUER; set the issuer the web client belongs to',
    );
  }
  if (e.MECHANIC_PUBLIC_URL !== undefined) {
    const url = URL.canParse(e.MECHANIC_PUBLIC_URL) ? new URL(e.MECHANIC_PUBLIC_URL) : undefined;
    const loopback = url !== undefined && ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname);
    if (url === undefined || !(url.protocol === 'https:' || (url.protocol === 'http:' && loopback))) {
      throw new UserError(
        'CONFIG_INVALID',
        'MECHANIC_PUBLIC_URL must be an https:// URL (plain http only on a loopback address), since session cookies travel over it',
      );
    }
  }
  const home = path.resolve(e.MECHANIC_HOME);
  const slack = slackSettings(e);

  return Object.freeze({
    home,
    runbooksDir: path.resolve(e.MECHANIC_RUNBOOKS_DIR),
    registrySeed: e.MECHANIC_REGISTRY_SEED
      ? { author: e.MECHANIC_REGISTRY_SEED.split(',')[0]!, reviewer: e.MECHANIC_REGISTRY_SEED.split(',')[1]! }
      : undefined,
    api: {
      host: e.MECHANIC_API_HOST,
      port: e.MECHANIC_API_PORT,
      url: e.MECHANIC_API_URL,
      defaultUrl: `http://${e.MECHANIC_API_HOST}:${e.MECHANIC_API_PORT}`,
      token: e.MECHANIC_TOKEN,
      usersFile: path.resolve(e.MECHANIC_USERS_FILE ?? path.join(home, 'users.json')),
    },
    authz: {
      policyFile: e.MECHANIC_POLICY_FILE ? path.resolve(e.MECHANIC_POLICY_FILE) : undefined,
      oidc:
        e.MECHANIC_OIDC_ISSUER !== undefined && e.MECHANIC_OIDC_AUDIENCE !== undefined
          ? {
              issuer: e.MECHANIC_OIDC_ISSUER,
              audience: e.MECHANIC_OIDC_AUDIENCE,
              jwksUrl: e.MECHANIC_OIDC_JWKS_URL,
              userClaim: e.MECHANIC_OIDC_USER_CLAIM,
              groupsClaim: e.MECHANIC_OIDC_GROUPS_CLAIM,
              algorithms: e.MECHANIC_OIDC_ALGORITHMS,
              clockSkewSeconds: e.MECHANIC_OIDC_CLOCK_SKEW_SECONDS,
            }
          : undefined,
      web:
        e.MECHANIC_OIDC_WEB_CLIENT_ID !== undefined
          ? {
              clientId: e.MECHANIC_OIDC_WEB_CLIENT_ID,
              clientSecret: e.MECHANIC_OIDC_WEB_CLIENT_SECRET,
              publicUrl: e.MECHANIC_PUBLIC_URL?.replace(/\/$/, ''),
              sessionKeyFile: path.resolve(e.MECHANIC_WEB_SESSION_KEY_FILE ?? path.join(home, 'web-session.key')),
              sessionTtlSeconds: e.MECHANIC_WEB_SESSION_MINUTES * 60,
            }
          : undefined,
    },
    idp: { port: e.MECHANIC_IDP_PORT, dir: path.join(home, 'idp') },
    devfleetConfigFile: path.resolve(e.MECHANIC_DEVFLEET_CONFIG ?? path.join(home, 'devfleet', 'fleet.json')),
    supervised: e.MECHANIC_SUPERVISED === '1',
    temporal: {
      address: e.TEMPORAL_ADDRESS,
      namespace: e.TEMPORAL_NAMESPACE,
      taskQueue: e.TEMPORAL_TASK_QUEUE,
      apiKey: e.TEMPORAL_API_KEY,
      tls: e.TEMPORAL_TLS === 'true' || e.TEMPORAL_API_KEY !== undefined,
      uiPort: e.TEMPORAL_UI_PORT,
      codecKeys: e.MECHANIC_CODEC_KEYS,
      uiOrigins: uiOrigins(e.MECHANIC_TEMPORAL_UI_ORIGIN),
      workflowBundle: e.MECHANIC_WORKFLOW_BUNDLE ? path.resolve(e.MECHANIC_WORKFLOW_BUNDLE) : undefined,
    },
    aws: {
      region: e.AWS_REGION,
      endpoint: e.MECHANIC_AWS_ENDPOINT,
      baseCredentials:
        e.AWS_ACCESS_KEY_ID && e.AWS_SECRET_ACCESS_KEY
          ? {
              accessKeyId: e.AWS_ACCESS_KEY_ID,
              secretAccessKey: e.AWS_SECRET_ACCESS_KEY,
              ...(e.AWS_SESSION_TOKEN !== undefined ? { sessionToken: e.AWS_SESSION_TOKEN } : {}),
            }
          : undefined,
      devfleetPort: e.MECHANIC_DEVFLEET_PORT,
      credentialMaxSeconds: e.MECHANIC_CREDENTIAL_MAX_SECONDS,
      devWorkerCredentials: e.MECHANIC_DEV_WORKER_CREDENTIALS,
    },
    store: e.DATABASE_URL
      ? { kind: 'postgres' as const, url: e.DATABASE_URL }
      : { kind: 'sqlite' as const, file: path.join(home, 'audit.db') },
    audit: { keyFile: path.resolve(e.MECHANIC_AUDIT_KEY_FILE ?? path.join(home, 'audit-key.pem')) },
    worker: {
      maxActivities: e.MECHANIC_WORKER_MAX_ACTIVITIES,
      maxWorkflowTasks: e.MECHANIC_WORKER_MAX_WORKFLOW_TASKS,
      maxLocalActivities: e.MECHANIC_WORKER_MAX_LOCAL_ACTIVITIES,
      maxCachedRuns: e.MECHANIC_WORKER_MAX_CACHED_RUNS,
      heapMb: e.MECHANIC_WORKER_HEAP_MB,
    },
    ssm: {
      pollMinMs: e.MECHANIC_POLL_MIN_MS,
      pollMaxMs: e.MECHANIC_POLL_MAX_MS,
      deliveryTimeoutSeconds: e.MECHANIC_DELIVERY_TIMEOUT_SECONDS,
      heartbeatTimeoutSeconds: e.MECHANIC_HEARTBEAT_TIMEOUT_SECONDS,
    },
    slack: slack && {
      ...slack,
      usersFile: path.resolve(e.MECHANIC_SLACK_USERS_FILE ?? path.join(home, 'slack-users.json')),
      stateFile: path.join(home, 'slack.db'),
    },
    limits: {
      principal: { burst: e.MECHANIC_RATE_LIMIT_BURST, perSecond: e.MECHANIC_RATE_LIMIT_PER_SECOND },
      address: { burst: e.MECHANIC_RATE_LIMIT_ADDRESS_BURST, perSecond: e.MECHANIC_RATE_LIMIT_ADDRESS_PER_SECOND },
      denialWindowSeconds: e.MECHANIC_DENIAL_WINDOW_SECONDS,
    },
    endedRunsSweepSeconds: e.MECHANIC_ENDED_RUNS_SWEEP_SECONDS,
    logLevel: e.LOG_LEVEL,
    reports: reportSettings(e),
  });
}

/** The reports' working hours and time zone, each refused with what to write. */
function reportSettings(e: z.infer<typeof EnvSchema>): Config['reports'] {
  if (!isTimeZone(e.MECHANIC_REPORT_TIME_ZONE)) {
    throw new UserError(
      'CONFIG_INVALID',
      `MECHANIC_REPORT_TIME_ZONE "${e.MECHANIC_REPORT_TIME_ZONE.slice(0, 60)}" is not a time zone; write an IANA name such as UTC or Europe/Berlin`,
    );
  }
  return {
    workingHours: parseWorkingHours(e.MECHANIC_REPORT_WORKING_HOURS, 'MECHANIC_REPORT_WORKING_HOURS'),
    timeZone: e.MECHANIC_REPORT_TIME_ZONE,
  };
}

/** The Slack settings, checked together: a token without its signing secret or channel is refused. */
function slackSettings(e: z.infer<typeof EnvSchema>) {
  if (e.MECHANIC_SLACK_BOT_TOKEN === undefined) {
    const stray = (
      ['MECHANIC_SLACK_SIGNING_SECRET', 'MECHANIC_SLACK_APP_TOKEN', 'MECHANIC_SLACK_CHANNEL'] as const
    ).find((k) => e[k] !== undefined);
    if (stray)
      throw new UserError('CONFIG_INVALID', `${stray} is set without MECHANIC_SLACK_BOT_TOKEN; set the bot token too`);
    return undefined;
  }
  if (!/^xox[bp]-/.test(e.MECHANIC_SLACK_BOT_TOKEN)) {
    throw new UserError('CONFIG_INVALID', 'MECHANIC_SLACK_BOT_TOKEN must be a bot token (xoxb-…) from the Slack app');
  }
  const appToken = e.MECHANIC_SLACK_APP_TOKEN;
  if (appToken !== undefined && !/^xapp-[A-Za-z0-9-]{8,}$/.test(appToken)) {
    throw new UserError(
      'CONFIG_INVALID',
      'MECHANIC_SLACK_APP_TOKEN must be an app-level token (xapp-…) with connections:write, from the Slack app’s Basic Information page',
    );
  }
  // With Socket Mode the interactions come over the app's own connection, so the secret is optional.
  const secret = e.MECHANIC_SLACK_SIGNING_SECRET;
  if ((secret === undefined && appToken === undefined) || (secret !== undefined && secret.length < 32)) {
    throw new UserError(
      'CONFIG_INVALID',
      "MECHANIC_SLACK_SIGNING_SECRET must be set to the Slack app's signing secret (32 characters or more), or MECHANIC_SLACK_APP_TOKEN to an app-level token for Socket Mode",
    );
  }
  if (e.MECHANIC_SLACK_CHANNEL === undefined) {
    throw new UserError('CONFIG_INVALID', 'MECHANIC_SLACK_CHANNEL must name the channel id approval requests go to');
  }
  const channels: Record<string, string> = {};
  for (const pair of (e.MECHANIC_SLACK_CHANNELS ?? '').split(',').filter((p) => p.trim() !== '')) {
    const m = /^\s*([a-z0-9][a-z0-9-]*)\s*=\s*([A-Z0-9]+)\s*$/.exec(pair);
    if (!m) {
      throw new UserError(
        'CONFIG_INVALID',
        `MECHANIC_SLACK_CHANNELS has "${pair.slice(0, 80)}"; write runbook=CHANNELID pairs separated by commas`,
      );
    }
    channels[m[1]!] = m[2]!;
  }
  const runUrl = e.MECHANIC_SLACK_RUN_URL;
  if (runUrl !== undefined && !(/^https?:\/\/[^\s|<>]+$/.test(runUrl) && runUrl.includes('{id}'))) {
    throw new UserError(
      'CONFIG_INVALID',
      'MECHANIC_SLACK_RUN_URL must be an http(s) URL with {id} where the execution id goes',
    );
  }
  return {
    botToken: e.MECHANIC_SLACK_BOT_TOKEN,
    signingSecret: secret,
    appToken,
    apiUrl: e.MECHANIC_SLACK_API_URL,
    defaultChannel: e.MECHANIC_SLACK_CHANNEL,
    channels,
    allowEmail: e.MECHANIC_SLACK_ALLOW_EMAIL === 'true',
    runUrl,
    publicUrl: e.MECHANIC_PUBLIC_URL?.replace(/\/$/, ''),
  };
}
