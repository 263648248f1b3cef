import type { RateLimit, Targets } from './runbook.ts';
import { UserError } from './errors.ts';

export interface FleetInstance {
  readonly id: string;
  /** The instance's `Name` tag (never its host name); absent when it has none. */
  readonly name?: string | undefined;
  readonly tags: Readonly<Record<string, string>>;
  readonly online: boolean;
}

export interface PlannedTarget {
  readonly instanceId: string;
  readonly name?: string;
}

/** One look-up the inventory can answer: instances by id, by tags, or by their `Name` tag. */
export type TargetSelector =
  | { readonly instanceIds: readonly string[] }
  | { readonly tags: Readonly<Record<string, string>> }
  | { readonly names: readonly string[] };

/** What planning must look up for a runbook's targets, with a parameter's values filled in. */
export interface TargetLookups {
  /** The instances to find (for `fromParameter`, one selector for its ids and one for its names). */
  readonly wanted: readonly TargetSelector[];
  /** The runbook's bound on what a parameter may name; every chosen instance must be inside it. */
  readonly within?: TargetSelector;
  /** For `fromParameter`: the values the operator gave, each an instance id or a Name tag. */
  readonly values?: readonly string[];
}

const INSTANCE_ID = /^(i-(\w{8}|\w{17})|mi-\w{17})$/;

/**
 * The most instances one run may target. A step on more than MAX_BATCH is sent as batches of
 * MAX_BATCH (fanOutOf), so 10,000 instances are 200 SendCommands, and the step's child workflow
 * keeps its history well under Temporal's limits (README "Fleet scale").
 */
export const MAX_TARGETS = 10_000;
/** The most instance ids one SendCommand may name (SSM's own limit). */
export const MAX_BATCH = 50;
/**
 * The most batches of one step sent and followed at once, however high its maxConcurrency: 1,000
 * instances in flight, well under Temporal's 2,000 pending activities and SSM's throttling.
 */
export const MAX_PARALLEL_BATCHES = 20;

/**
 * Turns a runbook's targets into look-ups. A `fromParameter` scope takes the parameter's value:
 * one string (an instance id or a Name tag) or a list of them; an empty value is refused.
 */
export function lookupsFor(
  runbookName: string,
  scope: Targets,
  params: Readonly<Record<string, unknown>> = {},
): TargetLookups {
  if (!('fromParameter' in scope)) return { wanted: [scope] };
  const raw = params[scope.fromParameter];
  const values = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).map((v) => String(v).trim());
  if (values.length === 0 || values.some((v) => v === '')) {
    throw new UserError(
      'TARGETS_INVALID',
      `${runbookName} runs on the instances named by its parameter "${scope.fromParameter}"; give it at least one instance id or Name tag`,
    );
  }
  const unique = [...new Set(values)];
  const ids = unique.filter((v) => INSTANCE_ID.test(v));
  const names = unique.filter((v) => !INSTANCE_ID.test(v));
  const wanted: TargetSelector[] = [
    ...(ids.length > 0 ? [{ instanceIds: ids }] : []),
    ...(names.length > 0 ? [{ names }] : []),
  ];
  return { wanted, values: unique, ...(scope.within ? { within: scope.within } : {}) };
}

/** The bound as a reader says it: "tags Role=web", "names web-1, web-2". */
export function describeSelector(s: TargetSelector): string {
  if ('instanceIds' in s) return `instances ${s.instanceIds.join(', ')}`;
  if ('names' in s) return `names ${s.names.join(', ')}`;
  return `tags ${Object.entries(s.tags)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ')}`;
}

const listed = (instances: readonly FleetInstance[]) =>
  instances.map((i) => (i.name ? `${i.name} (${i.id})` : i.id)).join(', ');

/**
 * Chooses the instances a run will touch: the runbook's scope, narrowed (never widened) by the
 * operator's explicit choice. An operator naming an instance outside the scope is refused with
 * the list of what is allowed, so a typo never silently targets something else.
 *
 * `inventory` holds what the look-ups found. For `fromParameter`, `ctx.values` are the
 * parameter's values and `ctx.within` the instances inside the runbook's bound (when it has one):
 * a value that names nothing, or an instance outside the bound, is refused naming it.
 */
export function selectTargets(
  runbookName: string,
  scope: Targets,
  inventory: readonly FleetInstance[],
  requested: readonly string[] = [],
  ctx: { readonly values?: readonly string[]; readonly within?: readonly FleetInstance[] } = {},
): PlannedTarget[] {
  const known = new Map(inventory.map((i) => [i.id, i]));
  let inScope: FleetInstance[];
  if ('instanceIds' in scope) {
    const missing = scope.instanceIds.filter((id) => !known.has(id));
    if (missing.length) {
      throw new UserError(
        'TARGETS_INVALID',
        `${runbookName} targets ${missing.join(', ')}, which SSM does not know as managed instances`,
      );
    }
    inScope = scope.instanceIds.map((id) => known.get(id)!);
  } else if ('tags' in scope) {
    inScope = inventory.filter((i) => Object.entries(scope.tags).every(([k, v]) => i.tags[k] === v));
  } else if ('names' in scope) {
    const missing = scope.names.filter((n) => !inventory.some((i) => i.name === n));
    if (missing.length) {
      throw new UserError(
        'TARGETS_INVALID',
        `${runbookName} targets the instance${missing.length === 1 ? '' : 's'} named ${missing.join(', ')}, but no managed instance carries ${missing.length === 1 ? 'that Name tag' : 'those Name tags'}; check the names`,
      );
    }
    inScope = inventory.filter((i) => i.name !== undefined && scope.names.includes(i.name));
  } else {
    inScope = fromParameter(runbookName, scope, inventory, ctx);
  }
  if (inScope.length === 0) {
    throw new UserError('TARGETS_INVALID', `no instance matches the targets of ${runbookName}; check the fleet's tags`);
  }
  let chosen = inScope;
  if (requested.length > 0) {
    const byId = new Map(inScope.map((i) => [i.id, i]));
    // A Name tag may be shared by several instances, as in AWS: a name picks all of them.
    const byName = (r: string) => inScope.filter((i) => i.name === r);
    const unknown = requested.filter((r) => !byId.has(r) && byName(r).length === 0);
    if (unknown.length) {
      throw new UserError(
        'TARGETS_INVALID',
        `${unknown.join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not among the instances ${runbookName} may target: ${listed(inScope)}`,
      );
    }
    const picked = new Set(requested.flatMap((r) => (byId.has(r) ? [r] : byName(r).map((i) => i.id))));
    chosen = inScope.filter((i) => picked.has(i.id));
  }
  if (chosen.length > MAX_TARGETS) {
    throw new UserError(
      'TARGETS_INVALID',
      `${chosen.length} instances selected; a run may target at most ${MAX_TARGETS.toLocaleString('en-US')}, so narrow it with --target`,
    );
  }
  return chosen.map((i) => (i.name ? { instanceId: i.id, name: i.name } : { instanceId: i.id }));
}

/** The instances a parameter names, each checked against what exists and against the bound. */
function fromParameter(
  runbookName: string,
  scope: Extract<Targets, { fromParameter: string }>,
  inventory: readonly FleetInstance[],
  ctx: { readonly values?: readonly string[]; readonly within?: readonly FleetInstance[] },
): FleetInstance[] {
  const param = scope.fromParameter;
  const values = ctx.values ?? [];
  const matches = (v: string) => inventory.filter((i) => i.id === v || i.name === v);
  const unknown = values.filter((v) => matches(v).length === 0);
  if (unknown.length) {
    throw new UserError(
      'TARGETS_INVALID',
      `parameter "${param}" names ${unknown.join(', ')}, which ${unknown.length === 1 ? 'is' : 'are'} neither the id nor the Name tag of a managed instance; check the ${unknown.length === 1 ? 'value' : 'values'}`,
    );
  }
  const found = new Map<string, FleetInstance>();
  for (const v of values) for (const i of matches(v)) found.set(i.id, i);
  const chosen = [...found.values()];
  if (scope.within) {
    // Fail closed: without the bound's instances, nothing counts as inside it.
    const inside = new Set((ctx.within ?? []).map((i) => i.id));
    const outside = chosen.filter((i) => !inside.has(i.id));
    if (outside.length) {
      throw new UserError(
        'TARGETS_INVALID',
        `parameter "${param}" names ${listed(outside)}, outside what ${runbookName} may target (${describeSelector(scope.within)}); name instances inside that bound`,
      );
    }
  }
  return chosen;
}

/**
 * SSM's MaxConcurrency / MaxErrors strings for a step: its own setting, else the runbook's, as
 * SendCommand takes them ("5", "25%"). Undefined when neither sets one: SSM's defaults apply, and
 * plans made before rate control keep their shape and digest.
 */
export function rateControlOf(
  runbook: { readonly maxConcurrency?: RateLimit | undefined; readonly maxErrors?: RateLimit | undefined },
  step: { readonly maxConcurrency?: RateLimit | undefined; readonly maxErrors?: RateLimit | undefined },
): { maxConcurrency?: string; maxErrors?: string } {
  const concurrency = step.maxConcurrency ?? runbook.maxConcurrency;
  const errors = step.maxErrors ?? runbook.maxErrors;
  return {
    ...(concurrency !== undefined ? { maxConcurrency: String(concurrency) } : {}),
    ...(errors !== undefined ? { maxErrors: String(errors) } : {}),
  };
}

/**
 * What a MaxConcurrency or MaxErrors string means for a step on `targets` instances, as SSM and
 * devfleet count it: a percentage of the targets, concurrency rounded up (at least 1), errors
 * rounded down.
 */
export function rateLimitCount(value: string, targets: number, kind: 'concurrency' | 'errors'): number {
  if (value.endsWith('%')) {
    const raw = (Number(value.slice(0, -1)) * targets) / 100;
    return kind === 'concurrency' ? Math.max(1, Math.ceil(raw)) : Math.floor(raw);
  }
  return Number(value);
}

/**
 * A step's rate control as a reader says it, for the plan: "at most 1 instance at a time, no
 * further instance after the first failure". Undefined when the step uses SSM's defaults.
 */
export function rateControlText(
  step: { readonly maxConcurrency?: string | undefined; readonly maxErrors?: string | undefined },
  targets: number,
): string | undefined {
  const parts: string[] = [];
  if (step.maxConcurrency !== undefined) {
    const n = rateLimitCount(step.maxConcurrency, targets, 'concurrency');
    const pct = step.maxConcurrency.endsWith('%') ? ` (${step.maxConcurrency})` : '';
    parts.push(`at most ${n} instance${n === 1 ? '' : 's'}${pct} at a time`);
  }
  if (step.maxErrors !== undefined) {
    const n = rateLimitCount(step.maxErrors, targets, 'errors');
    const pct = step.maxErrors.endsWith('%') ? ` (${step.maxErrors})` : '';
    parts.push(
      n === 0
        ? `no further instance after the first failure${pct}`
        : `no further instance once more than ${n} fail${pct}`,
    );
  }
  return parts.length > 0 ? parts.join(', ') : undefined;
}

/** How a step on more than MAX_BATCH instances is sent: its batches and its rate control across them. */
export interface FanOut {
  /** The instance ids of each SendCommand, in target order, at most MAX_BATCH each. */
  readonly batches: readonly (readonly string[])[];
  /** How many batches are in flight at once. */
  readonly parallel: number;
  /** Each batch's MaxConcurrency: parallel × this never exceeds the step's maxConcurrency. */
  readonly perBatchConcurrency: number;
  /** The step's maxErrors as a count of its whole target list: more failures than this stop it. */
  readonly errorBudget: number;
}

/**
 * Splits a step into SendCommands of at most MAX_BATCH instances and spreads its rate control
 * over them, so that it holds for the whole step as SSM holds it for one command: at most
 * `maxConcurrency` (a count, or a percentage of all the step's targets) instances running at once
 * across every batch in flight, and no further batch sent once more than `maxErrors` instances
 * failed in all. Without maxConcurrency, SSM's default for one command (50) holds for the step.
 */
export function fanOutOf(
  instanceIds: readonly string[],
  step: { readonly maxConcurrency?: string | undefined; readonly maxErrors?: string | undefined },
): FanOut {
  const batches: string[][] = [];
  for (let from = 0; from < instanceIds.length; from += MAX_BATCH)
    batches.push(instanceIds.slice(from, from + MAX_BATCH));
  const targets = instanceIds.length;
  const concurrency = Math.min(
    Math.max(1, targets),
    rateLimitCount(step.maxConcurrency ?? String(MAX_BATCH), targets, 'concurrency'),
  );
  const parallel = Math.max(1, Math.min(MAX_PARALLEL_BATCHES, batches.length, Math.floor(concurrency / MAX_BATCH)));
  return {
    batches,
    parallel,
    perBatchConcurrency: Math.min(MAX_BATCH, Math.floor(concurrency / parallel)),
    errorBudget: rateLimitCount(step.maxErrors ?? '0', targets, 'errors'),
  };
}

/** Whether an instance's result counts toward maxErrors, as SSM counts it (Failed, ExecutionTimedOut). */
export function countsAsError(statusDetails: string): boolean {
  return statusDetails === 'Failed' || statusDetails === 'ExecutionTimedOut';
}
