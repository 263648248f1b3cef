import type { Targets } from './runbook.ts';
import { UserError } from './errors.ts';

export interface FleetInstance {
  readonly id: string;
  readonly name?: string | undefined;
  readonly tags: Readonly<Record<string, string>>;
  readonly online: boolean;
}

export interface PlannedTarget {
  readonly instanceId: string;
  readonly name?: string;
}

/**
 * Chooses the instances a run will touch: the runbook's scope, narrowed (never widened) by the
 * operator's explicit choice. An operator naming an instance outside the scope is refused with
 * the list of what is allowed, so a typo never silently targets something else.
 */
export function selectTargets(
  runbookName: string,
  scope: Targets,
  inventory: readonly FleetInstance[],
  requested: readonly string[] = [],
): PlannedTarget[] {
  const known = new Map(inventory.map((i) => [i.id, i]));
  if ('instanceIds' in scope) {
    const missing = scope.instanceIds.filter((id) => !known.has(id));
    if (missing.length) {
      throw new UserError(
        'TARGETS_INVALID',
        `${runbookName} targets ${missing.join(', ')}, which SSM does not know as managed instances`,
      );
    }
  }
  const inScope =
    'instanceIds' in scope
      ? scope.instanceIds.map((id) => known.get(id)!)
      : inventory.filter((i) => Object.entries(scope.tags).every(([k, v]) => i.tags[k] === v));
  if (inScope.length === 0) {
    throw new UserError('TARGETS_INVALID', `no instance matches the targets of ${runbookName}; check the fleet's tags`);
  }
  let chosen = inScope;
  if (requested.length > 0) {
    const byName = new Map(inScope.filter((i) => i.name).map((i) => [i.name, i]));
    const byId = new Map(inScope.map((i) => [i.id, i]));
    const unknown = requested.filter((r) => !byId.has(r) && !byName.has(r));
    if (unknown.length) {
      const allowed = inScope.map((i) => (i.name ? `${i.name} (${i.id})` : i.id)).join(', ');
      throw new UserError(
        'TARGETS_INVALID',
        `${unknown.join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not among the instances ${runbookName} may target: ${allowed}`,
      );
    }
    const picked = new Set(requested.map((r) => (byId.get(r) ?? byName.get(r))!.id));
    chosen = inScope.filter((i) => picked.has(i.id));
  }
  if (chosen.length > 50) {
    throw new UserError(
      'TARGETS_INVALID',
      `${chosen.length} instances selected; a run may target at most 50, so narrow it with --target`,
    );
  }
  return chosen.map((i) => (i.name ? { instanceId: i.id, name: i.name } : { instanceId: i.id }));
}
