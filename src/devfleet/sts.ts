import { createHash, randomBytes } from 'node:crypto';
import type { FleetConfig, FleetCredential, FleetRole } from './config.ts';
import { DEFAULT_ROLE_POLICY } from './config.ts';
import { evaluateSession, parsePolicyJson, type PolicyDocument } from './iam.ts';
import { packedPolicySizePercent } from './packed-policy.ts';
import type { Session, StateStore } from './state.ts';
import { AwsError, isoSeconds, xmlEscape } from './wire.ts';

/**
 * STS for devfleet: who a signed request comes from, AssumeRole and GetCallerIdentity.
 * Long-term keys (AKIA…) come from the fleet config; session keys (ASIA…) are minted by AssumeRole
 * and kept in the durable state so that a restarted devfleet honours them until they expire.
 */

export type Principal =
  | { kind: 'user'; credential: FleetCredential; arn: string; userId: string }
  | { kind: 'session'; session: Session; role: FleetRole; arn: string; userId: string };

/** What the SigV4 verifier needs to re-sign a request from this key. */
export interface SigningSecret {
  secretAccessKey: string;
  sessionToken?: string;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
function base32(bytes: Uint8Array, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += BASE32[(bytes[i % bytes.length] ?? 0) % 32];
  return out;
}
/** Stable pseudo-ids (AIDA…, AROA…) derived from a name, so they survive restarts without state. */
const stableId = (prefix: string, seed: string): string =>
  prefix + base32(createHash('sha256').update(seed).digest(), 17);

const roleName = (arn: string): string =>
  arn
    .slice(arn.indexOf(':role/') + ':role/'.length)
    .split('/')
    .pop() ?? arn;

const SESSION_NAME_RE = /^[\w+=,.@-]{2,64}$/;
const SOURCE_IDENTITY_RE = /^[\w+=,.@-]{2,64}$/;
const TAG_KEY_RE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u;
const TAG_VALUE_RE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,256}$/u;
/** Session policies may use U+0020–U+00FF plus tab, LF and CR (STS's documented character set). */
const POLICY_CHARS_RE = /^[\u0009\u000A\u000D\u0020-\u00FF]*$/;
/** Sessions this long expired are forgotten; before that they answer ExpiredTokenException. */
const FORGET_EXPIRED_AFTER_MS = 24 * 3600 * 1000;

/** Who issued an instance profile's session (EC2 assumes the role for the instance). */
const INSTANCE_PROFILE_ISSUER = 'ec2.amazonaws.com';
/** Who issued a container's task-role session (ECS assumes the role for the task). */
const TASK_ROLE_ISSUER = 'ecs-tasks.amazonaws.com';
/**
 * AWS caps a session assumed with role credentials (role chaining) at one hour. devfleet applies
 * it to every session caller: instance profiles included, which AWS does not count as chaining.
 */
const ROLE_CHAINING_MAX_SECONDS = 3600;

const validation = (message: string): AwsError =>
  new AwsError('ValidationError', `1 validation error detected: ${message}`);

export class Sts {
  private readonly users = new Map<string, FleetCredential>();
  private readonly roles = new Map<string, FleetRole>();
  private readonly sessionPolicies = new Map<string, PolicyDocument | undefined>();
  /** Multiplies every session lifetime (config.stsTimeScale), so a test lives through many in seconds. */
  private readonly lifetimeScale: number;

  constructor(
    private readonly config: FleetConfig,
    private readonly store: StateStore,
    private readonly now: () => number,
  ) {
    for (const c of config.credentials) this.users.set(c.accessKeyId, c);
    for (const r of config.roles) this.roles.set(r.arn, r);
    this.lifetimeScale = config.stsTimeScale ?? 1;
    this.forgetOldSessions();
  }

  /** A session lifetime as devfleet lives it: `seconds` scaled by stsTimeScale, in ms. */
  private lifetimeMs(seconds: number): number {
    return Math.max(1, Math.round(seconds * 1000 * this.lifetimeScale));
  }

  /** The secret (and token) behind an access key id, or undefined when devfleet never issued it. */
  secretFor(accessKeyId: string): SigningSecret | undefined {
    const user = this.users.get(accessKeyId);
    if (user) return { secretAccessKey: user.secretAccessKey };
    const s = this.store.sessions.get(accessKeyId);
    if (s) return { secretAccessKey: s.secretAccessKey, sessionToken: s.sessionToken };
    return undefined;
  }

  /** The principal behind a verified access key id; undefined if its role has left the config. */
  principalFor(accessKeyId: string): Principal | undefined {
    const user = this.users.get(accessKeyId);
    if (user) {
      return {
        kind: 'user',
        credential: user,
        arn: `arn:aws:iam::${this.config.accountId}:user/${user.name}`,
        userId: stableId('AIDA', `${this.config.accountId}:${user.name}`),
      };
    }
    const session = this.store.sessions.get(accessKeyId);
    const role = session ? this.roles.get(session.roleArn) : undefined;
    if (!session || !role) return undefined;
    return {
      kind: 'session',
      session,
      role,
      arn: `arn:aws:sts::${this.config.accountId}:assumed-role/${roleName(role.arn)}/${session.roleSessionName}`,
      userId: session.assumedRoleId,
    };
  }

  isExpired(session: Session): boolean {
    return this.now() >= session.expiresAtMs;
  }

  /** The role policy and the session policy that together bound what a session may do. */
  policiesOf(principal: Extract<Principal, { kind: 'session' }>): {
    role: PolicyDocument;
    session: PolicyDocument | undefined;
  } {
    const key = principal.session.accessKeyId;
    if (!this.sessionPolicies.has(key)) {
      const text = principal.session.policy;
      const parsed = text === undefined ? undefined : parsePolicyJson(text);
      // Policies were validated at AssumeRole; a stored one that no longer parses grants nothing.
      this.sessionPolicies.set(
        key,
        parsed === undefined
          ? undefined
          : parsed.ok
            ? parsed.policy
            : { Statement: { Effect: 'Deny', Action: '*', Resource: '*' } },
      );
    }
    return { role: principal.role.policy ?? DEFAULT_ROLE_POLICY, session: this.sessionPolicies.get(key) };
  }

  /** Condition keys that describe the caller, available to every policy evaluation. */
  principalContext(principal: Principal): Record<string, string> {
    const ctx: Record<string, string> = {
      'aws:principalarn': principal.kind === 'session' ? principal.role.arn : principal.arn,
      'aws:principalaccount': this.config.accountId,
      'aws:userid': principal.userId,
      'aws:requestedregion': this.config.region,
    };
    if (principal.kind === 'session') {
      for (const t of principal.session.tags) ctx[`aws:principaltag/${t.key.toLowerCase()}`] = t.value;
      if (principal.session.sourceIdentity !== undefined) ctx['aws:sourceidentity'] = principal.session.sourceIdentity;
    }
    return ctx;
  }

  getCallerIdentity(caller: Principal): string {
    return (
      `<Arn>${xmlEscape(caller.arn)}</Arn><UserId>${xmlEscape(caller.userId)}</UserId>` +
      `<Account>${this.config.accountId}</Account>`
    );
  }

  /** AssumeRole: validates like STS, mints an ASIA… session, persists it, returns the result XML. */
  async assumeRole(caller: Principal, params: URLSearchParams): Promise<string> {
    const roleArn = params.get('RoleArn');
    const sessionName = params.get('RoleSessionName');
    if (roleArn === null)
      throw validation("Value null at 'roleArn' failed to satisfy constraint: Member must not be null");
    if (sessionName === null) {
      throw validation("Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null");
    }
    if (roleArn.length < 20 || roleArn.length > 2048) {
      throw validation(
        `Value '${roleArn}' at 'roleArn' failed to satisfy constraint: Member must have length between 20 and 2048`,
      );
    }
    if (!SESSION_NAME_RE.test(sessionName)) {
      throw validation(
        `Value '${sessionName}' at 'roleSessionName' failed to satisfy constraint: Member must have length between 2 and 64 and satisfy regular expression pattern: [\\w+=,.@-]*`,
      );
    }
    const role = this.roles.get(roleArn);
    const chained = caller.kind === 'session';
    if (!role) {
      throw new AwsError(
        'AccessDenied',
        `User: ${caller.arn} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`,
        403,
      );
    }
    if (chained) {
      // Role chaining: the calling session's own policies must allow sts:AssumeRole on the target.
      const policies = this.policiesOf(caller);
      const verdict = evaluateSession(policies.role, policies.session, {
        action: 'sts:AssumeRole',
        resource: roleArn,
        context: this.principalContext(caller),
      });
      if (!verdict.allowed) {
        throw new AwsError(
          'AccessDenied',
          `User: ${caller.arn} is not authorized to perform: sts:AssumeRole on resource: ${roleArn} ${verdict.reason}`,
          403,
        );
      }
    }

    const durationText = params.get('DurationSeconds');
    const duration = durationText === null ? 3600 : Number(durationText);
    if (!Number.isInteger(duration) || duration < 900 || duration > 43200) {
      throw validation(
        `Value '${durationText}' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200`,
      );
    }
    if (duration > role.maxSessionDurationSeconds) {
      throw new AwsError(
        'ValidationError',
        'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.',
      );
    }
    if (chained && duration > ROLE_CHAINING_MAX_SECONDS) {
      throw new AwsError(
        'ValidationError',
        'The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.',
      );
    }

    if ([...params.keys()].some((k) => k.startsWith('PolicyArns.'))) {
      throw new AwsError(
        'ValidationError',
        'devfleet does not support managed session policies (PolicyArns); pass the session policy inline as Policy.',
      );
    }
    const policy = params.get('Policy') ?? undefined;
    if (policy !== undefined) {
      if (policy.length < 1 || policy.length > 2048) {
        throw validation(
          "Value at 'policy' failed to satisfy constraint: Member must have length less than or equal to 2048",
        );
      }
      if (!POLICY_CHARS_RE.test(policy)) {
        throw validation(
          "Value at 'policy' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+",
        );
      }
      const parsed = parsePolicyJson(policy);
      if (!parsed.ok) throw new AwsError('MalformedPolicyDocument', parsed.reason);
    }

    const tags = parseTags(params);
    const transitive = memberList(params, 'TransitiveTagKeys');
    for (const k of transitive) {
      if (!tags.some((t) => t.key.toLowerCase() === k.toLowerCase())) {
        throw new AwsError('InvalidParameterValue', `The transitive tag key ${k} is not one of the session tags.`);
      }
    }

    let sourceIdentity = params.get('SourceIdentity') ?? undefined;
    if (sourceIdentity !== undefined) {
      if (!SOURCE_IDENTITY_RE.test(sourceIdentity) || sourceIdentity.toLowerCase().startsWith('aws:')) {
        throw validation(
          `Value '${sourceIdentity}' at 'sourceIdentity' failed to satisfy constraint: Member must have length between 2 and 64, satisfy regular expression pattern: [\\w+=,.@-]* and not begin with aws:`,
        );
      }
    }
    if (chained && caller.session.sourceIdentity !== undefined) {
      // SourceIdentity is immutable for the life of a chain of sessions.
      if (sourceIdentity !== undefined && sourceIdentity !== caller.session.sourceIdentity) {
        throw new AwsError(
          'AccessDenied',
          'The source identity of a role session cannot be changed by role chaining.',
          403,
        );
      }
      sourceIdentity = caller.session.sourceIdentity;
    }
    const externalId = params.get('ExternalId');
    if (externalId !== null && !/^[\w+=,.@:/-]{2,1224}$/.test(externalId)) {
      throw validation(
        `Value '${externalId}' at 'externalId' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@:\\/-]*`,
      );
    }

    const hasPacked = policy !== undefined || tags.length > 0;
    const packed = hasPacked ? packedPolicySizePercent(policy, tags) : 0;
    if (packed > 100) {
      throw new AwsError(
        'PackedPolicyTooLarge',
        `Packed policy consumes ${packed}% of allotted space, please use smaller policy.`,
      );
    }

    const nowMs = this.now();
    const session: Session = {
      accessKeyId: 'ASIA' + base32(randomBytes(16), 16),
      secretAccessKey: randomBytes(30).toString('base64'),
      sessionToken: 'IQoJZGV2ZmxlZXQ' + randomBytes(96).toString('base64'),
      roleArn,
      roleSessionName: sessionName,
      assumedRoleId: `${stableId('AROA', roleArn)}:${sessionName}`,
      issuedTo: caller.arn,
      issuedAtMs: nowMs,
      expiresAtMs: nowMs + this.lifetimeMs(duration),
      ...(policy !== undefined ? { policy } : {}),
      tags,
      ...(sourceIdentity !== undefined ? { sourceIdentity } : {}),
    };
    if (this.store.isClosed) throw new AwsError('ServiceUnavailable', 'devfleet is shutting down.', 503);
    this.forgetOldSessions();
    this.store.sessions.set(session.accessKeyId, session);
    this.store.markDirty();
    // The caller may use the keys the moment it has them, and a restart must not forget them.
    await this.store.flush();

    const arn = `arn:aws:sts::${this.config.accountId}:assumed-role/${roleName(roleArn)}/${sessionName}`;
    return (
      `<Credentials><AccessKeyId>${session.accessKeyId}</AccessKeyId>` +
      `<SecretAccessKey>${xmlEscape(session.secretAccessKey)}</SecretAccessKey>` +
      `<SessionToken>${xmlEscape(session.sessionToken)}</SessionToken>` +
      `<Expiration>${isoSeconds(session.expiresAtMs)}</Expiration></Credentials>` +
      `<AssumedRoleUser><AssumedRoleId>${xmlEscape(session.assumedRoleId)}</AssumedRoleId><Arn>${xmlEscape(arn)}</Arn></AssumedRoleUser>` +
      (hasPacked ? `<PackedPolicySize>${packed}</PackedPolicySize>` : '') +
      (sourceIdentity !== undefined ? `<SourceIdentity>${xmlEscape(sourceIdentity)}</SourceIdentity>` : '')
    );
  }

  /**
   * The credentials of an instance's instance profile, as EC2's metadata service hands them out: a
   * session of the instance's role named after the instance, lasting 6 hours and renewed when less
   * than 15 minutes are left. The instance's own AWS calls (the `aws` shim) sign with them.
   */
  instanceSession(instanceId: string, roleArn: string): Promise<Session> {
    return this.serviceSession(INSTANCE_PROFILE_ISSUER, instanceId, roleArn);
  }

  /**
   * A task role's credentials, as ECS's container-credentials endpoint hands them out: a session of
   * the role named `sessionName`, lasting 6 hours and renewed when less than 15 minutes are left.
   * AssumeRole from it is role chaining (one hour at most).
   */
  taskRoleSession(sessionName: string, roleArn: string): Promise<Session> {
    return this.serviceSession(TASK_ROLE_ISSUER, sessionName, roleArn);
  }

  private async serviceSession(issuer: string, sessionName: string, roleArn: string): Promise<Session> {
    const nowMs = this.now();
    for (const s of this.store.sessions.values()) {
      if (
        s.issuedTo === issuer &&
        s.roleSessionName === sessionName &&
        s.roleArn === roleArn &&
        s.expiresAtMs - nowMs > this.lifetimeMs(15 * 60)
      ) {
        return s;
      }
    }
    if (!this.roles.has(roleArn)) throw new AwsError('AccessDenied', `Role ${roleArn} is not in the fleet.`, 403);
    const session: Session = {
      accessKeyId: 'ASIA' + base32(randomBytes(16), 16),
      secretAccessKey: randomBytes(30).toString('base64'),
      sessionToken: 'IQoJZGV2ZmxlZXQ' + randomBytes(96).toString('base64'),
      roleArn,
      roleSessionName: sessionName,
      assumedRoleId: `${stableId('AROA', roleArn)}:${sessionName}`,
      issuedTo: issuer,
      issuedAtMs: nowMs,
      expiresAtMs: nowMs + this.lifetimeMs(6 * 3600),
      tags: [],
    };
    if (this.store.isClosed) throw new AwsError('ServiceUnavailable', 'devfleet is shutting down.', 503);
    this.forgetOldSessions();
    this.store.sessions.set(session.accessKeyId, session);
    this.store.markDirty();
    await this.store.flush();
    return session;
  }

  private forgetOldSessions(): void {
    const cutoff = this.now() - FORGET_EXPIRED_AFTER_MS;
    for (const [id, s] of this.store.sessions) {
      if (s.expiresAtMs < cutoff) {
        this.store.sessions.delete(id);
        this.sessionPolicies.delete(id);
        this.store.markDirty();
      }
    }
  }
}

/** `Name.member.N` values of an awsQuery list, in N order. */
function memberList(params: URLSearchParams, name: string): string[] {
  const items: [number, string][] = [];
  const re = new RegExp(`^${name}\\.member\\.(\\d+)$`);
  for (const [k, v] of params) {
    const m = re.exec(k);
    if (m) items.push([Number(m[1]), v]);
  }
  return items.sort((a, b) => a[0] - b[0]).map(([, v]) => v);
}

function parseTags(params: URLSearchParams): { key: string; value: string }[] {
  const byIndex = new Map<number, { key?: string; value?: string }>();
  for (const [k, v] of params) {
    const m = /^Tags\.member\.(\d+)\.(Key|Value)$/.exec(k);
    if (!m) continue;
    const n = Number(m[1]);
    const slot = byIndex.get(n) ?? {};
    if (m[2] === 'Key') slot.key = v;
    else slot.value = v;
    byIndex.set(n, slot);
  }
  if (byIndex.size > 50)
    throw validation(`Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50`);
  const tags: { key: string; value: string }[] = [];
  const seen = new Set<string>();
  for (const [, slot] of [...byIndex].sort((a, b) => a[0] - b[0])) {
    const key = slot.key;
    const value = slot.value ?? '';
    if (key === undefined)
      throw validation("Value null at 'tags.member.key' failed to satisfy constraint: Member must not be null");
    if (!TAG_KEY_RE.test(key)) {
      throw validation(
        `Value '${key}' at 'tags.member.key' failed to satisfy constraint: Member must have length between 1 and 128 and satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+`,
      );
    }
    if (!TAG_VALUE_RE.test(value)) {
      throw validation(
        `Value '${value}' at 'tags.member.value' failed to satisfy constraint: Member must have length less than or equal to 256 and satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*`,
      );
    }
    // Session tag keys are case-insensitive, so Env and env would collide.
    if (seen.has(key.toLowerCase())) {
      throw new AwsError(
        'InvalidParameterValue',
        'Duplicate tag keys found. Please note that Tag keys are case insensitive.',
      );
    }
    seen.add(key.toLowerCase());
    tags.push({ key, value });
  }
  return tags;
}
