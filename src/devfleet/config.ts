import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { UserError } from '../core/errors.ts';
import { PolicyDocumentSchema, type PolicyDocument } from './iam.ts';
import { ParameterSeedSchema } from './parameters.ts';

/**
 * The fleet devfleet pretends to be: one AWS account with long-term keys, assumable roles and
 * instances (each a sandbox folder on this machine), plus faults to rehearse bad days with.
 */

const AccountIdSchema = z.string().regex(/^\d{12}$/, 'must be 12 digits');

const CredentialSchema = z.strictObject({
  // Long-term IAM user keys start with AKIA; devfleet hands out ASIA keys for sessions, so the
  // prefix alone tells the two kinds apart, as it does in AWS.
  accessKeyId: z.string().regex(/^AKIA[0-9A-Z]{12,124}$/, 'must look like AKIA followed by 12 or more A–Z/0–9'),
  secretAccessKey: z.string().min(16, 'must be at least 16 characters'),
  name: z.string().regex(/^[\w+=,.@-]{1,64}$/, 'must be an IAM user name (1–64 of A–Z a–z 0–9 _+=,.@-)'),
});

const RoleSchema = z.strictObject({
  arn: z.string().regex(/^arn:aws:iam::\d{12}:role\/[\w+=,.@/-]{1,64}$/, 'must be an IAM role ARN'),
  maxSessionDurationSeconds: z.number().int().min(3600).max(43200).default(3600),
  /** The role's identity policy. Absent means "allow ssm:* on *", the usual runner role. */
  policy: PolicyDocumentSchema.optional(),
});

const FaultsSchema = z.strictObject({
  /**
   * The agent is not connected (PingStatus ConnectionLost). As in AWS, SendCommand naming the
   * instance is refused with InvalidInstanceId; tag targets that reach it get an Undeliverable
   * invocation. A command it already had waits Pending until its delivery timeout.
   */
  offline: z.boolean().optional(),
  /**
   * The agent still looks Online (its last ping was recent) but never picks a command up: SSM
   * accepts the command and the invocation stays Pending until the delivery timeout, then
   * TimedOut / DeliveryTimedOut, as for an instance that died a moment ago.
   */
  unresponsive: z.boolean().optional(),
  /**
   * SSM's first delivery attempts fail and it retries: each invocation is Delayed for this long,
   * then delivered (DeliveryTimedOut instead if the delivery timeout passes first). Not scaled.
   */
  delayedMs: z.number().int().min(1).max(600_000).optional(),
  /**
   * SSM accepts commands for it but cannot deliver them (the node went away after the send):
   * each invocation ends Failed / Undeliverable with ResponseCode -1, without running.
   */
  undeliverable: z.boolean().optional(),
  /** Delivery takes this long (the invocation is Pending meanwhile). Not scaled by timeScale. */
  slowMs: z.number().int().min(0).max(600_000).optional(),
  /** Every invocation fails with exit code 1 without running the script. */
  failAlways: z.boolean().optional(),
  /** Every Nth SSM API call (from anyone, counted across the whole fleet) gets ThrottlingException. */
  throttleEveryNth: z.number().int().min(1).optional(),
});

/**
 * Faults of the service rather than of an instance. `sendCommand`: the next `times` SendCommand
 * calls are accepted (the command is stored and runs) but their answer is lost on the way back: a
 * 503 ('503'), a connection closed without an answer ('drop'), or an answer held back for
 * `delayMs` ('delay'), as a proxy or a flaky network would. Counted from devfleet's start.
 */
const TimesSchema = z.number().int().min(1).default(1);
const ServiceFaultsSchema = z.strictObject({
  /**
   * Eventual consistency: ListCommands shows a command only this long after it was sent (AWS
   * documents such lags for the read calls right after SendCommand, without a bound).
   */
  listCommandsLagMs: z.number().int().min(0).max(600_000).optional(),
  /**
   * A token bucket per SSM operation, as AWS rate-limits each API: `burst` calls at once, refilled
   * at `ratePerSecond`; a call with no token left gets ThrottlingException "Rate exceeded" (and
   * takes no effect). `operations` limits it to those operations (default: all).
   */
  throttle: z
    .strictObject({
      ratePerSecond: z.number().positive().max(100_000),
      burst: z.number().int().min(1).max(100_000),
      operations: z
        .array(z.string().regex(/^[A-Za-z]+$/, 'must be an SSM operation name'))
        .min(1)
        .optional(),
    })
    .optional(),
  sendCommand: z
    .discriminatedUnion('acceptThen', [
      z.strictObject({ acceptThen: z.enum(['503', 'drop']), times: TimesSchema }),
      z.strictObject({
        acceptThen: z.literal('delay'),
        delayMs: z.number().int().min(1).max(600_000),
        times: TimesSchema,
      }),
    ])
    .optional(),
});

const InstanceSchema = z.strictObject({
  id: z.string().regex(/^i-[0-9a-f]{17}$/, 'must be i- followed by 17 lowercase hex digits'),
  /**
   * The host name (SSM's ComputerName and InstanceName). What people call an instance is its
   * `Name` tag, under `tags`, as in AWS: mechanic resolves names from the tag, never from this.
   */
  name: z.string().min(1).max(255).optional(),
  tags: z.record(z.string().min(1).max(128), z.string().max(256)).default({}),
  /**
   * The instance's platform (default Linux). AWS-RunShellScript is for Linux: SendCommand naming a
   * Windows instance is refused with UnsupportedPlatformType; tag targets reaching one get an
   * InvalidPlatform invocation.
   */
  platform: z.enum(['Linux', 'Windows']).optional(),
  faults: FaultsSchema.optional(),
  /**
   * The role of the instance's instance profile (one of `roles`): what the instance's own AWS
   * calls run as, e.g. `aws ssm get-parameter` for a runbook's secret. Absent: the instance has no
   * instance profile, and the AWS CLI on it finds no credentials, as on EC2.
   */
  roleArn: z
    .string()
    .regex(/^arn:aws:iam::\d{12}:role\/[\w+=,.@/-]{1,64}$/, 'must be an IAM role ARN')
    .optional(),
});

/**
 * A group of light instances: thousands of managed nodes that cost a few hundred bytes each. SSM
 * treats them exactly like the others (DescribeInstanceInformation, tags, SendCommand by id or tag,
 * the List/Get calls, IAM, MaxConcurrency/MaxErrors, faults, the command log); only their commands
 * are simulated in devfleet's process instead of run by bash in a sandbox folder: after `commandMs`
 * they exit 0 with a one-line stdout naming the instance, or, for every `failEvery`-th instance of
 * the group (by its number), exit 1. No folder, no process, no seeding.
 */
const LightGroupSchema = z.strictObject({
  count: z.number().int().min(1).max(50_000),
  /** Instance n (1-based) of the group gets the Name tag `<namePrefix>-<n>`. */
  namePrefix: z
    .string()
    .regex(/^[A-Za-z0-9][\w.-]{0,99}$/, 'must be 1–100 of A–Z a–z 0–9 _ . - (not starting with _ . -)'),
  tags: z.record(z.string().min(1).max(128), z.string().max(256)).default({}),
  /** How long each simulated command runs (not scaled by timeScale). */
  commandMs: z.number().int().min(0).max(600_000).default(100),
  /** Instances whose number is a multiple of this fail every command with exit code 1 (deterministic). */
  failEvery: z.number().int().min(1).optional(),
  faults: FaultsSchema.optional(),
});
export type LightGroup = z.infer<typeof LightGroupSchema>;

/** The most light instances one devfleet holds, over all groups. */
export const MAX_LIGHT_INSTANCES = 50_000;

export const FleetConfigSchema = z
  .strictObject({
    accountId: AccountIdSchema.default('123456789012'),
    region: z
      .string()
      .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region such as us-east-1')
      .default('us-east-1'),
    credentials: z.array(CredentialSchema),
    roles: z.array(RoleSchema),
    instances: z.array(InstanceSchema).max(1000),
    /** Groups of light instances (simulated commands, no sandbox), for fleets of thousands. */
    lightInstances: z.array(LightGroupSchema).max(16).optional(),
    /** Lay each instance out like the host the example runbooks expect (seed.ts), once. */
    seedHosts: z.boolean().default(false),
    faults: ServiceFaultsSchema.optional(),
    /** Parameter Store parameters devfleet holds from its start (a changed value becomes a new version). */
    parameters: z.array(ParameterSeedSchema).max(1000).optional(),
    /**
     * Multiplies every STS session's lifetime (AssumeRole, instance profiles, the container
     * endpoint): at 0.001 a 3600 s session expires after 3.6 s, and its Expiration says so, while
     * the limits (DurationSeconds 900–43200, the role-chaining hour) keep AWS's numbers. For tests
     * of runs that outlive many sessions.
     */
    stsTimeScale: z.number().positive().max(1).optional(),
    /**
     * ECS's container-credentials endpoint (GET /container-credentials with this Authorization
     * token), handing out sessions of `roleArn` as a task role: what the AWS SDK's default chain
     * reads from AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN.
     */
    containerCredentials: z
      .strictObject({
        roleArn: z.string().regex(/^arn:aws:iam::\d{12}:role\/[\w+=,.@/-]{1,64}$/, 'must be an IAM role ARN'),
        authorizationToken: z.string().regex(/^[\x21-\x7e]{32,512}$/, 'must be 32 to 512 printable characters'),
      })
      .optional(),
    /** Append every call (service, operation, key, the key's expiry, outcome) to calls.jsonl in the data folder. */
    callLog: z.boolean().optional(),
  })
  .superRefine((cfg, ctx) => {
    const dup = (what: string, values: readonly string[], path: string) => {
      const seen = new Set<string>();
      values.forEach((v, i) => {
        if (seen.has(v)) ctx.addIssue({ code: 'custom', message: `duplicate ${what} ${v}`, path: [path, i] });
        seen.add(v);
      });
    };
    dup(
      'access key id',
      cfg.credentials.map((c) => c.accessKeyId),
      'credentials',
    );
    dup(
      'role ARN',
      cfg.roles.map((r) => r.arn),
      'roles',
    );
    dup(
      'instance id',
      cfg.instances.map((i) => i.id),
      'instances',
    );
    dup(
      'parameter name',
      (cfg.parameters ?? []).map((p) => p.name),
      'parameters',
    );
    const light = cfg.lightInstances ?? [];
    const total = light.reduce((n, g) => n + g.count, 0);
    if (total > MAX_LIGHT_INSTANCES) {
      ctx.addIssue({
        code: 'custom',
        message: `${total} light instances is more than devfleet holds (${MAX_LIGHT_INSTANCES}); lower the counts`,
        path: ['lightInstances'],
      });
    }
    dup(
      'light instance name prefix',
      light.map((g) => g.namePrefix),
      'lightInstances',
    );
    cfg.instances.forEach((inst, i) => {
      if (LIGHT_ID_RE.test(inst.id)) {
        ctx.addIssue({
          code: 'custom',
          message: `instance id ${inst.id} is in the range devfleet keeps for light instances (i-f…); choose another`,
          path: ['instances', i, 'id'],
        });
      }
    });
    cfg.instances.forEach((inst, i) => {
      if (inst.roleArn !== undefined && !cfg.roles.some((r) => r.arn === inst.roleArn)) {
        ctx.addIssue({
          code: 'custom',
          message: `instance ${inst.id}'s role ${inst.roleArn} is not one of the fleet's roles; add it under roles`,
          path: ['instances', i, 'roleArn'],
        });
      }
    });
    if (cfg.containerCredentials && !cfg.roles.some((r) => r.arn === cfg.containerCredentials?.roleArn)) {
      ctx.addIssue({
        code: 'custom',
        message: `the container credentials' role ${cfg.containerCredentials.roleArn} is not one of the fleet's roles; add it under roles`,
        path: ['containerCredentials', 'roleArn'],
      });
    }
    cfg.roles.forEach((r, i) => {
      // A role of another account could never be assumed here; say so at start-up, not at AssumeRole.
      if (r.arn.split(':')[4] !== cfg.accountId) {
        ctx.addIssue({
          code: 'custom',
          message: `role ${r.arn} is not in account ${cfg.accountId}`,
          path: ['roles', i, 'arn'],
        });
      }
    });
  });

export type FleetConfig = z.infer<typeof FleetConfigSchema>;

/** Light instance ids: `i-f`, the group's index (2 hex digits), the instance's number (14 hex digits). */
const LIGHT_ID_RE = /^i-f[0-9a-f]{16}$/;
export const lightInstanceId = (group: number, n: number): string =>
  `i-f${group.toString(16).padStart(2, '0')}${n.toString(16).padStart(14, '0')}`;

/** What devfleet needs to simulate a light instance's commands. */
export interface LightSpec {
  readonly commandMs: number;
  readonly fails: boolean;
  readonly failEvery?: number | undefined;
}

/**
 * Every light instance of the config as an ordinary FleetInstance (its `Name` tag
 * `<namePrefix>-<n>`, an EC2-like host name, the group's tags and faults), with its simulation.
 */
export function expandLightInstances(
  cfg: Pick<FleetConfig, 'lightInstances'>,
): { instance: FleetInstance; light: LightSpec }[] {
  const out: { instance: FleetInstance; light: LightSpec }[] = [];
  (cfg.lightInstances ?? []).forEach((g, gi) => {
    for (let n = 1; n <= g.count; n++) {
      out.push({
        instance: {
          id: lightInstanceId(gi, n),
          // Host names differ from Name tags, as on EC2 (and as devfleet's ordinary instances do).
          name: `ip-10-${100 + gi}-${(n >> 8) & 255}-${n & 255}.ec2.internal`,
          tags: { Name: `${g.namePrefix}-${n}`, ...g.tags },
          ...(g.faults ? { faults: g.faults } : {}),
        },
        light: {
          commandMs: g.commandMs,
          fails: g.failEvery !== undefined && n % g.failEvery === 0,
          failEvery: g.failEvery,
        },
      });
    }
  });
  return out;
}
export type FleetInstance = FleetConfig['instances'][number];
export type FleetRole = FleetConfig['roles'][number];
export type FleetCredential = FleetConfig['credentials'][number];
export type ServiceFaults = NonNullable<FleetConfig['faults']>;

/** Parses and validates a fleet config; every problem is reported in one readable message. */
export function parseFleetConfig(input: unknown): FleetConfig {
  const r = FleetConfigSchema.safeParse(input);
  if (!r.success) throw new UserError('CONFIG_INVALID', `devfleet config is invalid:\n${z.prettifyError(r.error)}`);
  return r.data;
}

/** The role policy used when a role has none: the usual runner role, narrowed per run by session policies. */
export const DEFAULT_ROLE_POLICY: PolicyDocument = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: 'ssm:*', Resource: '*' }],
};

export const DEMO_ROLE_ARN = 'arn:aws:iam::123456789012:role/mechanic-runner';
/** Where devfleet serves ECS's container-credentials endpoint (config.containerCredentials). */
export const CONTAINER_CREDENTIALS_PATH = '/container-credentials';
/** The worker's own role in the demo fleet (a task role): it may only assume the account's roles. */
export const DEMO_WORKER_ROLE_ARN = 'arn:aws:iam::123456789012:role/mechanic-worker';

/**
 * The container-credentials token of a demo fleet, derived from its root secret so that whoever
 * holds one holds the other, and a fleet file written from the same root keys agrees with it.
 */
export function containerTokenFor(root: { secretAccessKey: string }): string {
  return createHmac('sha256', root.secretAccessKey).update('devfleet container credentials').digest('base64url');
}

/** Stable ids so that demo runbooks, docs and tests can name the demo instances. */
export const DEMO_INSTANCE_IDS = {
  'web-1': 'i-0d3f1ee7000000001',
  'web-2': 'i-0d3f1ee7000000002',
  'db-1': 'i-0d3f1ee7000000003',
} as const;

/**
 * The demo instances' host names: like EC2's, distinct from their `Name` tags (web-1, …), so
 * anything that resolved names from the host name instead of the tag would show.
 */
export const DEMO_HOST_NAMES = {
  'web-1': 'ip-10-0-1-11.ec2.internal',
  'web-2': 'ip-10-0-1-12.ec2.internal',
  'db-1': 'ip-10-0-2-21.ec2.internal',
} as const;

/**
 * The demo fleet: one runner role (12 h), the worker's role (a task role from the container
 * endpoint, which may assume the account's roles: role chaining) and three staging instances.
 */
export function defaultFleetConfig(root: { accessKeyId: string; secretAccessKey: string }): FleetConfig {
  return parseFleetConfig({
    credentials: [{ accessKeyId: root.accessKeyId, secretAccessKey: root.secretAccessKey, name: 'mechanic' }],
    roles: [
      { arn: DEMO_ROLE_ARN, maxSessionDurationSeconds: 43200 },
      {
        arn: DEMO_WORKER_ROLE_ARN,
        policy: {
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: 'arn:aws:iam::123456789012:role/*' }],
        },
      },
    ],
    containerCredentials: { roleArn: DEMO_WORKER_ROLE_ARN, authorizationToken: containerTokenFor(root) },
    instances: [
      ...(['web-1', 'web-2', 'db-1'] as const).map((n) => ({
        id: DEMO_INSTANCE_IDS[n],
        name: DEMO_HOST_NAMES[n],
        tags: { Name: n, Role: n.startsWith('web') ? 'web' : 'db', Env: 'staging' },
      })),
    ],
  });
}
