import { z } from 'zod';
import type { FleetConfig, FleetInstance, ServiceFaults } from './config.ts';
import { PLUGIN_NAME, PLUGIN_OUTPUT_LIMIT, isTerminal, type Fleet, type NewCommand } from './fleet.ts';
import { evaluateSession, instanceContext } from './iam.ts';
import { getParameter, putParameter, type ParameterDeps } from './parameters.ts';
import {
  CommandStatusSchema,
  InvocationStatusSchema,
  type CommandRecord,
  type InvocationRecord,
  type StateStore,
} from './state.ts';
import type { Principal, Sts } from './sts.ts';
import { AwsError, epochSeconds } from './wire.ts';

/**
 * The SSM JSON 1.1 operations mechanic uses, with SSM's validation, authorization and shapes.
 * Unknown request members are ignored, as AWS does; known ones are checked against the model's
 * constraints and fail with ValidationException (or the operation's specific error) when wrong.
 */

export const DOCUMENT_NAME = 'AWS-RunShellScript';
const INSTANCE_ID_RE = /(^i-(\w{8}|\w{17})$)|(^mi-\w{17}$)/;
const COMMAND_ID_RE = /^[0-9a-fA-F-]{36}$/;
const EXECUTION_TIMEOUT_RE = /^(([1-9][0-9]{0,4})|(1[0-6][0-9]{4})|(17[0-1][0-9]{3})|(172[0-7][0-9]{2})|(172800))$/;
const MAX_CONCURRENCY_RE = /^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$/;
const MAX_ERRORS_RE = /^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$/;

// Filter values: a status, or one of the status details SSM lets you filter by.
const COMMAND_STATUS_FILTER = new Set<string>([
  ...CommandStatusSchema.options,
  'AccessDenied',
  'DeliveryTimedOut',
  'ExecutionTimedOut',
  'Incomplete',
  'NoInstancesInTag',
  'LimitExceeded',
]);
const INVOCATION_STATUS_FILTER = new Set<string>([
  ...InvocationStatusSchema.options,
  'AccessDenied',
  'DeliveryTimedOut',
  'ExecutionTimedOut',
  'Undeliverable',
  'InvalidPlatform',
  'Terminated',
]);
const STATUS_VALUES = new Set<string>(InvocationStatusSchema.options);

const CommandFilterSchema = z.object({ key: z.string(), value: z.string().min(1) });
const PagingSchema = {
  MaxResults: z.number().int().min(1).max(50).optional(),
  NextToken: z.string().optional(),
};

const SendCommandSchema = z.object({
  DocumentName: z.string().regex(/^[a-zA-Z0-9_\-.:/]{3,128}$/),
  DocumentVersion: z.string().optional(),
  DocumentHash: z.string().max(256).optional(),
  DocumentHashType: z.enum(['Sha256', 'Sha1']).optional(),
  InstanceIds: z.array(z.string()).max(50).optional(),
  Targets: z
    .array(z.object({ Key: z.string().min(1).max(163), Values: z.array(z.string()).max(50) }))
    .max(5)
    .optional(),
  TimeoutSeconds: z.number().int().min(30).max(2_592_000).optional(),
  Comment: z.string().max(100).optional(),
  Parameters: z.record(z.string(), z.array(z.string())).optional(),
  MaxConcurrency: z.string().regex(MAX_CONCURRENCY_RE).optional(),
  MaxErrors: z.string().regex(MAX_ERRORS_RE).optional(),
  OutputS3BucketName: z.string().min(3).max(63).optional(),
  OutputS3KeyPrefix: z.string().max(500).optional(),
  ServiceRoleArn: z.string().optional(),
});
const ListCommandsSchema = z.object({
  CommandId: z.string().optional(),
  InstanceId: z.string().optional(),
  Filters: z.array(CommandFilterSchema).min(1).max(5).optional(),
  ...PagingSchema,
});
const ListCommandInvocationsSchema = ListCommandsSchema.extend({ Details: z.boolean().optional() });
const GetCommandInvocationSchema = z.object({
  CommandId: z.string(),
  InstanceId: z.string(),
  PluginName: z.string().optional(),
});
const CancelCommandSchema = z.object({ CommandId: z.string(), InstanceIds: z.array(z.string()).max(50).optional() });
const DescribeInstanceInformationSchema = z.object({
  InstanceInformationFilterList: z
    .array(z.object({ key: z.string(), valueSet: z.array(z.string()).min(1).max(100) }))
    .optional(),
  Filters: z.array(z.object({ Key: z.string(), Values: z.array(z.string()).min(1).max(100) })).optional(),
  MaxResults: z.number().int().min(5).max(50).optional(),
  NextToken: z.string().optional(),
});

const PropertyValuesSchema = z.array(z.string().min(1)).min(1).max(40);
const DescribeInstancePropertiesSchema = z.object({
  InstancePropertyFilterList: z.array(z.object({ key: z.string(), valueSet: PropertyValuesSchema })).optional(),
  FiltersWithOperator: z
    .array(
      z.object({
        Key: z.string().min(1),
        Values: PropertyValuesSchema,
        Operator: z.enum(['Equal', 'NotEqual', 'BeginWith', 'LessThan', 'GreaterThan']).optional(),
      }),
    )
    .optional(),
  MaxResults: z.number().int().min(5).max(1000).optional(),
  NextToken: z.string().optional(),
});

function parseInput<T extends z.ZodType>(schema: T, input: unknown): z.infer<T> {
  const r = schema.safeParse(input);
  if (!r.success) {
    const n = r.error.issues.length;
    throw new AwsError(
      'ValidationException',
      `${n} validation error${n === 1 ? '' : 's'} detected: ${r.error.issues.map((i) => awsConstraint(i, input)).join('; ')}`,
    );
  }
  return r.data;
}

/**
 * One failed constraint in AWS's words, e.g. "Value '100' at 'maxResults' failed to satisfy
 * constraint: Member must have value less than or equal to 50" (the wording SSM answers an
 * out-of-range MaxResults with): members named in lower camel case, numbers bounded by value,
 * lists and strings by length.
 */
function awsConstraint(issue: z.core.$ZodIssue, input: unknown): string {
  let value: unknown = input;
  for (const key of issue.path) value = (value as Record<PropertyKey, unknown> | undefined)?.[key];
  const at = issue.path
    .map((k) => (typeof k === 'string' ? k.charAt(0).toLowerCase() + k.slice(1) : String(k)))
    .join('.');
  const shown = Array.isArray(value) ? `[${value.map(String).join(', ')}]` : String(value);
  const measure =
    (issue.code === 'too_big' || issue.code === 'too_small') && (issue.origin === 'array' || issue.origin === 'string')
      ? 'length'
      : 'value';
  const constraint =
    issue.code === 'too_big'
      ? `Member must have ${measure} less than or equal to ${String(issue.maximum)}`
      : issue.code === 'too_small'
        ? `Member must have ${measure} greater than or equal to ${String(issue.minimum)}`
        : issue.code === 'invalid_format' && issue.format === 'regex' && 'pattern' in issue
          ? `Member must satisfy regular expression pattern: ${String(issue.pattern).replace(/^\/(.*)\/[a-z]*$/, '$1')}`
          : issue.message;
  return `Value '${shown}' at '${at}' failed to satisfy constraint: ${constraint}`;
}

/** Opaque paging tokens: an operation name and a position in a stable order. */
function encodeToken(op: string, position: number[]): string {
  return Buffer.from(JSON.stringify({ op, position })).toString('base64url');
}
function decodeToken(op: string, token: string | undefined): number[] | undefined {
  if (token === undefined || token === '') return undefined;
  try {
    const parsed = z
      .object({ op: z.literal(op), position: z.array(z.number()) })
      .parse(JSON.parse(Buffer.from(token, 'base64url').toString('utf8')));
    return parsed.position;
  } catch {
    throw new AwsError('InvalidNextToken', 'The specified token is not valid.');
  }
}

/** Lexicographic comparison of cursor positions. */
function after(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return false;
}

/**
 * One page of `items` (sorted ascending by `position`) after the token's cursor. The cursor is a
 * position, not an offset, so items added or removed between pages neither repeat nor hide others;
 * it is found by binary search, so paging through thousands costs a page per call.
 */
function page<T>(
  items: readonly T[],
  position: (t: T) => number[],
  op: string,
  token: string | undefined,
  max: number,
) {
  const cursor = decodeToken(op, token);
  let from = 0;
  if (cursor) {
    let hi = items.length;
    while (from < hi) {
      const mid = (from + hi) >>> 1;
      if (after(position(items[mid] as T), cursor)) hi = mid;
      else from = mid + 1;
    }
  }
  const slice = items.slice(from, from + max);
  const last = slice[slice.length - 1];
  return {
    slice,
    nextToken: items.length - from > max && last !== undefined ? encodeToken(op, position(last)) : undefined,
  };
}

function parseTime(value: string): number {
  const t = Date.parse(value);
  if (Number.isNaN(t))
    throw new AwsError('ValidationException', `The timestamp ${value} is not a valid ISO 8601 date-time.`);
  return t;
}

/** An instance's platform: AWS-RunShellScript runs on Linux only. */
const platformOf = (i: FleetInstance): 'Linux' | 'Windows' => i.platform ?? 'Linux';
/** What DescribeInstanceInformation / DescribeInstanceProperties report as PingStatus. */
const pingOf = (i: FleetInstance): 'Online' | 'ConnectionLost' => (i.faults?.offline ? 'ConnectionLost' : 'Online');

/**
 * AWS limits each API's request rate per account: a token bucket per operation, `burst` deep,
 * refilled at `ratePerSecond` by the real clock (a test's frozen devfleet clock must not freeze it).
 */
class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; atMs: number }>();
  /** Throttled calls per operation, for tests and the README's bench. */
  readonly throttled: Record<string, number> = {};
  constructor(private readonly spec: NonNullable<ServiceFaults['throttle']>) {}

  /** Takes a token for `operation`; false (and counted) when there is none. */
  take(operation: string): boolean {
    if (this.spec.operations && !this.spec.operations.includes(operation)) return true;
    const nowMs = performance.now();
    const b = this.buckets.get(operation) ?? { tokens: this.spec.burst, atMs: nowMs };
    b.tokens = Math.min(this.spec.burst, b.tokens + ((nowMs - b.atMs) / 1000) * this.spec.ratePerSecond);
    b.atMs = nowMs;
    this.buckets.set(operation, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return true;
    }
    this.throttled[operation] = (this.throttled[operation] ?? 0) + 1;
    return false;
  }
}

export class SsmApi {
  private calls = 0;
  private readonly throttleEvery: number[];
  private readonly buckets: TokenBuckets | undefined;
  private lostSendAnswers: number;

  constructor(
    private readonly deps: { config: FleetConfig; store: StateStore; fleet: Fleet; sts: Sts; now: () => number },
  ) {
    this.throttleEvery = [
      ...new Set(
        deps.fleet
          .allInstances()
          .flatMap((i) => (i.faults?.throttleEveryNth !== undefined ? [i.faults.throttleEveryNth] : [])),
      ),
    ];
    this.lostSendAnswers = deps.config.faults?.sendCommand?.times ?? 0;
    const throttle = deps.config.faults?.throttle;
    this.buckets = throttle ? new TokenBuckets(throttle) : undefined;
  }

  /** How many calls of each operation the `faults.throttle` rate refused so far. */
  throttledCalls(): Readonly<Record<string, number>> {
    return { ...this.buckets?.throttled };
  }

  /**
   * How the answer to an operation that succeeded is to be lost, if the `faults.sendCommand`
   * fault still applies: the command is already stored and running, only the caller never learns.
   */
  lostAnswer(operation: string): NonNullable<ServiceFaults['sendCommand']> | undefined {
    const fault = this.deps.config.faults?.sendCommand;
    if (operation !== 'SendCommand' || fault === undefined || this.lostSendAnswers <= 0) return undefined;
    this.lostSendAnswers--;
    return fault;
  }

  /** Runs one operation for an authenticated, unexpired caller and returns the response body. */
  async handle(operation: string, input: unknown, caller: Principal): Promise<unknown> {
    // The throttling fault counts every authenticated SSM call from anyone, as a shared quota would.
    this.calls++;
    if (this.throttleEvery.some((n) => this.calls % n === 0))
      throw new AwsError('ThrottlingException', 'Rate exceeded');
    if (this.buckets && !this.buckets.take(operation)) throw new AwsError('ThrottlingException', 'Rate exceeded');
    switch (operation) {
      case 'SendCommand':
        return this.sendCommand(input, caller);
      case 'ListCommands':
        return this.listCommands(input, caller);
      case 'ListCommandInvocations':
        return this.listCommandInvocations(input, caller);
      case 'GetCommandInvocation':
        return this.getCommandInvocation(input, caller);
      case 'CancelCommand':
        return this.cancelCommand(input, caller);
      case 'DescribeInstanceInformation':
        return this.describeInstanceInformation(input, caller);
      case 'GetParameter':
        return getParameter(this.parameterDeps(caller), input);
      case 'PutParameter':
        return putParameter(this.parameterDeps(caller), input);
      case 'DescribeInstanceProperties':
        return this.describeInstanceProperties(input, caller);
      default:
        throw new AwsError('UnknownOperationException', `devfleet does not implement the SSM operation ${operation}.`);
    }
  }

  private instanceArn(id: string): string {
    return `arn:aws:ec2:${this.deps.config.region}:${this.deps.config.accountId}:instance/${id}`;
  }

  /** Whether the caller may perform `action` on `resource`; long-term user keys may do nothing in SSM. */
  private check(caller: Principal, action: string, resource: string, resourceContext: Record<string, string> = {}) {
    if (caller.kind === 'user') {
      return { allowed: false, reason: `because no identity-based policy allows the ${action} action` };
    }
    const policies = this.deps.sts.policiesOf(caller);
    return evaluateSession(policies.role, policies.session, {
      action,
      resource,
      context: { ...this.deps.sts.principalContext(caller), ...resourceContext },
    });
  }

  /** What the Parameter Store operations (parameters.ts) need of this caller. */
  private parameterDeps(caller: Principal): ParameterDeps {
    const { config, store, now } = this.deps;
    return {
      store,
      region: config.region,
      accountId: config.accountId,
      now,
      callerArn: caller.arn,
      require: (action, resource) => this.require(caller, action, resource),
    };
  }

  private require(caller: Principal, action: string, resource: string, resourceContext?: Record<string, string>): void {
    const verdict = this.check(caller, action, resource, resourceContext);
    if (!verdict.allowed) {
      throw new AwsError(
        'AccessDeniedException',
        `User: ${caller.arn} is not authorized to perform: ${action} on resource: ${resource} ${verdict.reason}`,
      );
    }
  }

  private async sendCommand(raw: unknown, caller: Principal) {
    const input = parseInput(SendCommandSchema, raw);
    const { config } = this.deps;
    const docArn = `arn:aws:ssm:${config.region}::document/${DOCUMENT_NAME}`;
    if (input.DocumentName !== DOCUMENT_NAME && input.DocumentName !== docArn) {
      throw new AwsError(
        'InvalidDocument',
        `Document with name ${input.DocumentName} does not exist (devfleet has only ${DOCUMENT_NAME}).`,
      );
    }
    const version = input.DocumentVersion ?? '$DEFAULT';
    if (!['$DEFAULT', '$LATEST', '1'].includes(version)) {
      throw new AwsError('InvalidDocumentVersion', `Document ${DOCUMENT_NAME} has no version ${version}.`);
    }
    const parameters = input.Parameters ?? {};
    const unknown = Object.keys(parameters).filter(
      (k) => !['commands', 'workingDirectory', 'executionTimeout'].includes(k),
    );
    if (unknown.length > 0)
      throw new AwsError(
        'InvalidParameters',
        `Parameters ${JSON.stringify(unknown)} are not defined in ${DOCUMENT_NAME}.`,
      );
    const commands = parameters['commands'];
    if (!commands || commands.length === 0) {
      throw new AwsError(
        'InvalidParameters',
        'Parameter "commands" is required and must contain at least one command.',
      );
    }
    const executionTimeout = parameters['executionTimeout'] ?? ['3600'];
    if (executionTimeout.length !== 1 || !EXECUTION_TIMEOUT_RE.test(executionTimeout[0] ?? '')) {
      throw new AwsError(
        'InvalidParameters',
        'Parameter "executionTimeout" must be one whole number of seconds between 1 and 172800.',
      );
    }
    const workingDirectory = parameters['workingDirectory'];
    if (workingDirectory && (workingDirectory.length !== 1 || (workingDirectory[0] ?? '').length > 4096)) {
      throw new AwsError(
        'InvalidParameters',
        'Parameter "workingDirectory" must be one path of at most 4096 characters.',
      );
    }

    const instanceIds = input.InstanceIds ?? [];
    const targets = input.Targets ?? [];
    if (instanceIds.length > 0 && targets.length > 0) {
      throw new AwsError('InvalidParameters', 'Specify either InstanceIds or Targets, not both.');
    }
    if (instanceIds.length === 0 && targets.length === 0) {
      throw new AwsError('InvalidParameters', 'Specify InstanceIds or Targets.');
    }
    for (const id of instanceIds) {
      if (!INSTANCE_ID_RE.test(id))
        throw new AwsError(
          'ValidationException',
          `1 validation error detected: Value '${id}' at 'instanceIds' failed to satisfy constraint: Member must satisfy regular expression pattern: (^i-(\\w{8}|\\w{17})$)|(^mi-\\w{17}$)`,
        );
    }
    if (new Set(instanceIds).size !== instanceIds.length)
      throw new AwsError('DuplicateInstanceId', 'The same instance id is listed more than once.');
    // Unknown, and (as AWS refuses them too) instances whose agent is not connected.
    const invalidIds = instanceIds.filter((id) => {
      const inst = this.deps.fleet.instance(id);
      return !inst || pingOf(inst) !== 'Online';
    });
    if (invalidIds.length > 0) {
      throw new AwsError(
        'InvalidInstanceId',
        `Instances [[${invalidIds.join(', ')}]] not in a valid state for account ${config.accountId}`,
      );
    }
    const windows = instanceIds.find((id) => platformOf(this.deps.fleet.instance(id) as FleetInstance) !== 'Linux');
    if (windows !== undefined) {
      throw new AwsError(
        'UnsupportedPlatformType',
        `Cannot perform operation for instance id ${windows} of platform type ${platformOf(this.deps.fleet.instance(windows) as FleetInstance)}`,
      );
    }

    // The document is always a resource of SendCommand; without it nothing else matters.
    this.require(caller, 'ssm:SendCommand', docArn);
    const planned: NewCommand['invocations'] = [];
    if (instanceIds.length > 0) {
      // Named instances: one the caller may not touch fails the whole call, as in AWS.
      for (const id of instanceIds) {
        const inst = this.deps.fleet.instance(id) as FleetInstance;
        this.require(caller, 'ssm:SendCommand', this.instanceArn(id), instanceContext(inst.tags));
        planned.push({ instanceId: id, instanceName: inst.name ?? '' });
      }
    } else {
      // Tag targets are resolved by the service; an instance the caller may not touch gets an
      // AccessDenied invocation instead of failing the call.
      for (const t of this.resolveTargets(targets)) {
        if (typeof t === 'string') {
          planned.push({ instanceId: t, instanceName: '', deniedAs: 'Undeliverable' });
          continue;
        }
        const ok = this.check(caller, 'ssm:SendCommand', this.instanceArn(t.id), instanceContext(t.tags)).allowed;
        // The service resolves tags to nodes and reports each it cannot use as an invocation:
        // no access, an agent that is not connected, a platform the document does not run on.
        const deniedAs = !ok
          ? ('AccessDenied' as const)
          : pingOf(t) !== 'Online'
            ? ('Undeliverable' as const)
            : platformOf(t) !== 'Linux'
              ? ('InvalidPlatform' as const)
              : undefined;
        planned.push({
          instanceId: t.id,
          instanceName: t.name ?? '',
          ...(deniedAs ? { deniedAs } : {}),
        });
      }
    }

    const cmd = await this.deps.fleet.sendCommand({
      documentName: DOCUMENT_NAME,
      documentVersion: version,
      comment: input.Comment ?? '',
      parameters,
      instanceIds,
      targets,
      invocations: planned,
      timeoutSeconds: input.TimeoutSeconds ?? 3600,
      executionTimeoutSeconds: Number(executionTimeout[0]),
      maxConcurrency: input.MaxConcurrency ?? '50',
      maxErrors: input.MaxErrors ?? '0',
      requestedBy: caller.arn,
      outputS3BucketName: input.OutputS3BucketName,
      outputS3KeyPrefix: input.OutputS3KeyPrefix,
      serviceRoleArn: input.ServiceRoleArn,
    });
    this.deps.fleet.settle();
    return { Command: this.commandShape(cmd) };
  }

  /**
   * Targets: keys are ANDed, values of one key ORed. `tag:K`, `tag-key` and `InstanceIds` are
   * supported; an unknown id in an InstanceIds target yields an Undeliverable invocation (a string).
   */
  /** The fleet's instances that pass every filter, one page of them in fleet order (both Describe calls). */
  private instancePage(
    tests: readonly ((i: FleetInstance) => boolean)[],
    op: string,
    input: { NextToken?: string | undefined; MaxResults?: number | undefined },
  ) {
    const all = this.deps.fleet
      .allInstances()
      .map((inst, index) => ({ inst, index }))
      .filter(({ inst }) => tests.every((t) => t(inst)));
    return page(all, (r) => [r.index], op, input.NextToken, input.MaxResults ?? 50);
  }

  private resolveTargets(targets: readonly { Key: string; Values: string[] }[]): (FleetInstance | string)[] {
    let candidates: readonly FleetInstance[] = this.deps.fleet.allInstances();
    const missing: string[] = [];
    for (const t of targets) {
      if (t.Values.length === 0) throw new AwsError('InvalidParameters', `Target ${t.Key} needs at least one value.`);
      if (t.Key.startsWith('tag:')) {
        const k = t.Key.slice(4);
        candidates = candidates.filter((i) => i.tags[k] !== undefined && t.Values.includes(i.tags[k]));
      } else if (t.Key === 'tag-key') {
        candidates = candidates.filter((i) => t.Values.some((k) => i.tags[k] !== undefined));
      } else if (t.Key.toLowerCase() === 'instanceids') {
        for (const id of t.Values) {
          if (!INSTANCE_ID_RE.test(id))
            throw new AwsError('InvalidParameters', `Target value ${id} is not an instance id.`);
          if (!this.deps.fleet.instance(id) && !missing.includes(id)) missing.push(id);
        }
        candidates = candidates.filter((i) => t.Values.includes(i.id));
      } else {
        throw new AwsError(
          'InvalidParameters',
          `devfleet supports the target keys tag:<key>, tag-key and InstanceIds, not ${t.Key}.`,
        );
      }
    }
    return [...candidates, ...missing];
  }

  private listCommands(raw: unknown, caller: Principal) {
    const input = parseInput(ListCommandsSchema, raw);
    this.require(caller, 'ssm:ListCommands', '*');
    // Command statuses are recomputed lazily (fleet.ts): bring them up to date before filtering.
    this.deps.fleet.settle();
    checkIds(input);
    const matches = this.filterPredicate(input.Filters ?? [], COMMAND_STATUS_FILTER, true);
    const { store } = this.deps;
    const lag = this.deps.config.faults?.listCommandsLagMs ?? 0;
    const visibleBefore = this.deps.now() - lag;
    const commands = [...store.commands.values()]
      .filter((c) => lag === 0 || c.requestedAtMs <= visibleBefore)
      .filter((c) => input.CommandId === undefined || c.commandId === input.CommandId)
      .filter(
        (c) =>
          input.InstanceId === undefined ||
          store.invocationsOf(c.commandId).some((i) => i.instanceId === input.InstanceId),
      )
      .filter((c) => matches(c, c))
      .sort((a, b) => b.seq - a.seq);
    // Newest first, so a cursor is "older than seq N"; negate to keep `after` ascending.
    const { slice, nextToken } = page(
      commands,
      (c) => [-c.seq],
      'ListCommands',
      input.NextToken,
      input.MaxResults ?? 50,
    );
    return { Commands: slice.map((c) => this.commandShape(c)), ...(nextToken ? { NextToken: nextToken } : {}) };
  }

  private listCommandInvocations(raw: unknown, caller: Principal) {
    const input = parseInput(ListCommandInvocationsSchema, raw);
    this.require(caller, 'ssm:ListCommandInvocations', '*');
    checkIds(input);
    const matches = this.filterPredicate(input.Filters ?? [], INVOCATION_STATUS_FILTER, false);
    const { store } = this.deps;
    const commands =
      input.CommandId !== undefined
        ? [store.commands.get(input.CommandId)].filter((c): c is CommandRecord => c !== undefined)
        : [...store.commands.values()].sort((a, b) => b.seq - a.seq);
    const rows: { cmd: CommandRecord; inv: InvocationRecord }[] = [];
    for (const cmd of commands) {
      for (const inv of store.invocationsOf(cmd.commandId)) {
        if (input.InstanceId !== undefined && inv.instanceId !== input.InstanceId) continue;
        if (!matches(cmd, inv)) continue;
        rows.push({ cmd, inv });
      }
    }
    const { slice, nextToken } = page(
      rows,
      (r) => [-r.cmd.seq, r.inv.index],
      'ListCommandInvocations',
      input.NextToken,
      input.MaxResults ?? 50,
    );
    return {
      CommandInvocations: slice.map((r) => this.invocationShape(r.cmd, r.inv, input.Details === true)),
      ...(nextToken ? { NextToken: nextToken } : {}),
    };
  }

  /** The ListCommands / ListCommandInvocations filters; Status matches a status or a status detail. */
  private filterPredicate(
    filters: readonly { key: string; value: string }[],
    statusValues: ReadonlySet<string>,
    commandLevel: boolean,
  ): (cmd: CommandRecord, subject: { status: string; statusDetails: string }) => boolean {
    const tests = filters.map((f): ((cmd: CommandRecord, s: { status: string; statusDetails: string }) => boolean) => {
      switch (f.key) {
        case 'InvokedAfter': {
          const t = parseTime(f.value);
          return (cmd) => cmd.requestedAtMs >= t;
        }
        case 'InvokedBefore': {
          const t = parseTime(f.value);
          return (cmd) => cmd.requestedAtMs <= t;
        }
        case 'DocumentName':
          return (cmd) => cmd.documentName === f.value || f.value.endsWith(`:document/${cmd.documentName}`);
        case 'Status':
          if (!statusValues.has(f.value))
            throw new AwsError('InvalidFilterValue', `The Status filter value ${f.value} is not valid.`);
          return (_cmd, s) => (STATUS_VALUES.has(f.value) ? s.status === f.value : s.statusDetails === f.value);
        case 'ExecutionStage':
          if (!commandLevel) throw new AwsError('InvalidFilterKey', 'ExecutionStage is a ListCommands filter only.');
          if (f.value !== 'Executing' && f.value !== 'Complete')
            throw new AwsError('InvalidFilterValue', 'ExecutionStage must be Executing or Complete.');
          return (_cmd, s) => (f.value === 'Complete') === isTerminal(s.status as InvocationRecord['status']);
        default:
          throw new AwsError('InvalidFilterKey', `The filter key ${f.key} is not valid.`);
      }
    });
    return (cmd, subject) => tests.every((t) => t(cmd, subject));
  }

  private getCommandInvocation(raw: unknown, caller: Principal) {
    const input = parseInput(GetCommandInvocationSchema, raw);
    this.require(caller, 'ssm:GetCommandInvocation', '*');
    if (!COMMAND_ID_RE.test(input.CommandId)) throw new AwsError('InvalidCommandId', 'The command id is not valid.');
    if (!INSTANCE_ID_RE.test(input.InstanceId))
      throw new AwsError('InvalidInstanceId', 'The instance id is not valid.');
    if (input.PluginName !== undefined && input.PluginName !== PLUGIN_NAME) {
      throw new AwsError(
        'InvalidPluginName',
        `The plugin name ${input.PluginName} is not valid; ${DOCUMENT_NAME} has only ${PLUGIN_NAME}.`,
      );
    }
    const cmd = this.deps.store.commands.get(input.CommandId);
    const inv = this.deps.store.invocations.get(`${input.CommandId}/${input.InstanceId}`);
    if (!cmd || !inv)
      throw new AwsError('InvocationDoesNotExist', 'An invocation with this CommandId and InstanceId does not exist.');
    const done = isTerminal(inv.status);
    const nowMs = this.deps.now();
    const started = inv.startedAtMs;
    const ended = done ? inv.finishedAtMs : undefined;
    const elapsedMs = started === undefined ? 0 : (ended ?? nowMs) - started;
    return {
      CommandId: cmd.commandId,
      InstanceId: inv.instanceId,
      Comment: cmd.comment,
      DocumentName: cmd.documentName,
      DocumentVersion: cmd.documentVersion,
      PluginName: PLUGIN_NAME,
      // As in SSM: output and exit code appear once the plugin has finished.
      ResponseCode: done ? inv.responseCode : -1,
      ExecutionStartDateTime: started === undefined ? '' : new Date(started).toISOString(),
      ExecutionElapsedTime: `PT${(elapsedMs / 1000).toFixed(3)}S`,
      ExecutionEndDateTime: ended === undefined ? '' : new Date(ended).toISOString(),
      Status: inv.status,
      StatusDetails: inv.statusDetails,
      StandardOutputContent: done ? inv.stdout : '',
      StandardOutputUrl: '',
      StandardErrorContent: done ? inv.stderr : '',
      StandardErrorUrl: '',
      CloudWatchOutputConfig: { CloudWatchLogGroupName: '', CloudWatchOutputEnabled: false },
    };
  }

  private cancelCommand(raw: unknown, caller: Principal) {
    const input = parseInput(CancelCommandSchema, raw);
    this.require(caller, 'ssm:CancelCommand', '*');
    const cmd = COMMAND_ID_RE.test(input.CommandId) ? this.deps.store.commands.get(input.CommandId) : undefined;
    if (!cmd) throw new AwsError('InvalidCommandId', `Command ${input.CommandId} does not exist.`);
    const ids = input.InstanceIds && input.InstanceIds.length > 0 ? input.InstanceIds : undefined;
    if (ids) {
      if (new Set(ids).size !== ids.length)
        throw new AwsError('DuplicateInstanceId', 'The same instance id is listed more than once.');
      const known = new Set(this.deps.store.invocationsOf(cmd.commandId).map((i) => i.instanceId));
      const foreign = ids.filter((id) => !known.has(id));
      if (foreign.length > 0)
        throw new AwsError('InvalidInstanceId', `Command ${cmd.commandId} was not sent to ${foreign.join(', ')}.`);
    }
    this.deps.fleet.cancel(cmd, ids);
    return {};
  }

  private describeInstanceInformation(raw: unknown, caller: Principal) {
    const input = parseInput(DescribeInstanceInformationSchema, raw);
    this.require(caller, 'ssm:DescribeInstanceInformation', '*');
    const filters = [
      ...(input.InstanceInformationFilterList ?? []).map((f) => ({ Key: f.key, Values: f.valueSet })),
      ...(input.Filters ?? []),
    ];
    const nowMs = this.deps.now();
    const ping = pingOf;
    const tests = filters.map((f): ((i: FleetInstance) => boolean) => {
      if (f.Key.startsWith('tag:')) {
        const k = f.Key.slice(4);
        return (i) => i.tags[k] !== undefined && f.Values.includes(i.tags[k]);
      }
      switch (f.Key) {
        case 'InstanceIds':
          return (i) => f.Values.includes(i.id);
        case 'PingStatus':
          return (i) => f.Values.includes(ping(i));
        case 'PlatformTypes':
          return (i) => f.Values.includes(platformOf(i));
        case 'ResourceType':
          return () => f.Values.includes('EC2Instance');
        case 'tag-key':
          return (i) => f.Values.some((k) => i.tags[k] !== undefined);
        default:
          throw new AwsError(
            'InvalidInstanceInformationFilterValue',
            `devfleet does not support the filter key ${f.Key}.`,
          );
      }
    });
    const { slice, nextToken } = this.instancePage(tests, 'DescribeInstanceInformation', input);
    return {
      InstanceInformationList: slice.map(({ inst }) => ({
        InstanceId: inst.id,
        PingStatus: ping(inst),
        // An offline agent was last heard from an hour ago, a healthy one just now.
        LastPingDateTime: epochSeconds(inst.faults?.offline ? nowMs - 3600_000 : nowMs),
        AgentVersion: '3.3.0.0',
        IsLatestVersion: true,
        PlatformType: platformOf(inst),
        PlatformName: 'devfleet sandbox',
        PlatformVersion: '1',
        ResourceType: 'EC2Instance',
        IPAddress: '127.0.0.1',
        ComputerName: inst.name ?? inst.id,
        SourceId: inst.id,
        SourceType: 'AWS::EC2::Instance',
      })),
      ...(nextToken ? { NextToken: nextToken } : {}),
    };
  }

  /**
   * DescribeInstanceProperties: like DescribeInstanceInformation, but each node carries `Name`, the
   * value of its EC2 `Name` tag (blank without one), beside `ComputerName`, its host name. Filter
   * keys InstanceIds, PingStatus, PlatformTypes and ResourceType (both filter forms; Equal,
   * NotEqual and BeginWith), as the model documents them.
   */
  private describeInstanceProperties(raw: unknown, caller: Principal) {
    const input = parseInput(DescribeInstancePropertiesSchema, raw);
    this.require(caller, 'ssm:DescribeInstanceProperties', '*');
    const nowMs = this.deps.now();
    const ping = pingOf;
    const field = (key: string): ((i: FleetInstance) => string) => {
      switch (key) {
        case 'InstanceIds':
          return (i) => i.id;
        case 'PingStatus':
          return ping;
        case 'PlatformTypes':
          return platformOf;
        case 'ResourceType':
          return () => 'EC2Instance';
        default:
          throw new AwsError('InvalidInstancePropertyFilterValue', `devfleet does not support the filter key ${key}.`);
      }
    };
    const tests = [
      ...(input.InstancePropertyFilterList ?? []).map((f) => ({ Key: f.key, Values: f.valueSet, Operator: 'Equal' })),
      ...(input.FiltersWithOperator ?? []),
    ].map((f): ((i: FleetInstance) => boolean) => {
      const get = field(f.Key);
      switch (f.Operator ?? 'Equal') {
        case 'Equal':
          return (i) => f.Values.includes(get(i));
        case 'NotEqual':
          return (i) => !f.Values.includes(get(i));
        case 'BeginWith':
          return (i) => f.Values.some((v) => get(i).startsWith(v));
        default:
          throw new AwsError(
            'InvalidFilterOption',
            `devfleet does not support the operator ${f.Operator} for ${f.Key}.`,
          );
      }
    });
    const { slice, nextToken } = this.instancePage(tests, 'DescribeInstanceProperties', input);
    return {
      InstanceProperties: slice.map(({ inst }) => ({
        Name: inst.tags['Name'] ?? '',
        InstanceId: inst.id,
        InstanceType: 't3.micro',
        InstanceState: 'running',
        Architecture: 'x86_64',
        IPAddress: '127.0.0.1',
        PingStatus: ping(inst),
        LastPingDateTime: epochSeconds(inst.faults?.offline ? nowMs - 3600_000 : nowMs),
        AgentVersion: '3.3.0.0',
        PlatformType: platformOf(inst),
        PlatformName: 'devfleet sandbox',
        PlatformVersion: '1',
        ResourceType: 'EC2Instance',
        ComputerName: inst.name ?? inst.id,
        SourceId: inst.id,
        SourceType: 'AWS::EC2::Instance',
      })),
      ...(nextToken ? { NextToken: nextToken } : {}),
    };
  }

  private commandShape(cmd: CommandRecord) {
    const invs = this.deps.store.invocationsOf(cmd.commandId);
    let completed = 0;
    let errors = 0;
    let deliveryTimedOut = 0;
    for (const i of invs) {
      if (isTerminal(i.status)) completed++;
      if (i.statusDetails === 'Failed' || i.statusDetails === 'ExecutionTimedOut') errors++;
      if (i.statusDetails === 'DeliveryTimedOut') deliveryTimedOut++;
    }
    return {
      CommandId: cmd.commandId,
      DocumentName: cmd.documentName,
      DocumentVersion: cmd.documentVersion,
      Comment: cmd.comment,
      ExpiresAfter: epochSeconds(this.deps.fleet.expiresAtMs(cmd)),
      Parameters: cmd.parameters,
      InstanceIds: cmd.instanceIds,
      Targets: cmd.targets,
      RequestedDateTime: epochSeconds(cmd.requestedAtMs),
      Status: cmd.status,
      StatusDetails: cmd.statusDetails,
      OutputS3Region: this.deps.config.region,
      OutputS3BucketName: cmd.outputS3BucketName ?? '',
      OutputS3KeyPrefix: cmd.outputS3KeyPrefix ?? '',
      MaxConcurrency: cmd.maxConcurrency,
      MaxErrors: cmd.maxErrors,
      TargetCount: invs.length,
      CompletedCount: completed,
      ErrorCount: errors,
      DeliveryTimedOutCount: deliveryTimedOut,
      ServiceRole: cmd.serviceRoleArn ?? '',
      NotificationConfig: { NotificationArn: '', NotificationEvents: [], NotificationType: '' },
      CloudWatchOutputConfig: { CloudWatchLogGroupName: '', CloudWatchOutputEnabled: false },
      TimeoutSeconds: cmd.timeoutSeconds,
    };
  }

  private invocationShape(cmd: CommandRecord, inv: InvocationRecord, details: boolean) {
    const done = isTerminal(inv.status);
    // Plugins have no Delayed or Cancelling status; a cancelling plugin is still running.
    const pluginStatus = inv.status === 'Cancelling' ? 'InProgress' : inv.status === 'Delayed' ? 'Pending' : inv.status;
    const combined =
      inv.stderr === ''
        ? inv.stdout
        : `${inv.stdout}${inv.stdout === '' || inv.stdout.endsWith('\n') ? '' : '\n'}----------ERROR-------\n${inv.stderr}`;
    return {
      CommandId: cmd.commandId,
      InstanceId: inv.instanceId,
      InstanceName: inv.instanceName,
      Comment: cmd.comment,
      DocumentName: cmd.documentName,
      DocumentVersion: cmd.documentVersion,
      RequestedDateTime: epochSeconds(cmd.requestedAtMs),
      Status: inv.status,
      StatusDetails: inv.statusDetails,
      TraceOutput: '',
      StandardOutputUrl: '',
      StandardErrorUrl: '',
      CommandPlugins: details
        ? [
            {
              Name: PLUGIN_NAME,
              Status: pluginStatus,
              StatusDetails: inv.statusDetails,
              ResponseCode: done ? inv.responseCode : -1,
              ...(inv.startedAtMs !== undefined ? { ResponseStartDateTime: epochSeconds(inv.startedAtMs) } : {}),
              ...(done && inv.finishedAtMs !== undefined
                ? { ResponseFinishDateTime: epochSeconds(inv.finishedAtMs) }
                : {}),
              Output: done ? combined.slice(0, PLUGIN_OUTPUT_LIMIT) : '',
              StandardOutputUrl: '',
              StandardErrorUrl: '',
              OutputS3Region: this.deps.config.region,
              OutputS3BucketName: cmd.outputS3BucketName ?? '',
              OutputS3KeyPrefix: cmd.outputS3KeyPrefix ?? '',
            },
          ]
        : [],
      ServiceRole: cmd.serviceRoleArn ?? '',
      NotificationConfig: { NotificationArn: '', NotificationEvents: [], NotificationType: '' },
      CloudWatchOutputConfig: { CloudWatchLogGroupName: '', CloudWatchOutputEnabled: false },
    };
  }
}

/** The id filters both List calls accept, checked the way SSM checks them. */
function checkIds(input: { CommandId?: string | undefined; InstanceId?: string | undefined }): void {
  if (input.CommandId !== undefined && !COMMAND_ID_RE.test(input.CommandId))
    throw new AwsError('InvalidCommandId', 'The command id is not valid.');
  if (input.InstanceId !== undefined && !INSTANCE_ID_RE.test(input.InstanceId))
    throw new AwsError('InvalidInstanceId', 'The instance id is not valid.');
}
