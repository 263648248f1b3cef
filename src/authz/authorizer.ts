import type { Channel } from '../api/client.ts';
import type { Role, User } from './users.ts';

/** Everything a principal can ask to do. The names are the Cedar actions the policies use. */
export const ACTIONS = [
  'readRunbook',
  'launch',
  'readRun',
  'approve',
  'reject',
  'cancel',
  'readAudit',
  'exportAudit',
  'publish',
  'review',
  'administer',
] as const;
export type Action = (typeof ACTIONS)[number];

export type Risk = 'low' | 'medium' | 'high';

/**
 * What the policies may know about a runbook. Routes that only know its name leave the rest out;
 * the Cedar authorizer then sees no owners, no approval groups and risk "low".
 */
export interface RunbookFacts {
  readonly name: string;
  readonly owners?: readonly string[] | undefined;
  readonly risk?: Risk | undefined;
  readonly environment?: string | undefined;
  readonly tags?: readonly string[] | undefined;
  /** Groups whose members may approve its runs; empty means any approver. */
  readonly approvalGroups?: readonly string[] | undefined;
}

export type Resource =
  | { readonly kind: 'catalog' }
  | ({ readonly kind: 'runbook' } & RunbookFacts)
  | {
      readonly kind: 'execution';
      readonly id: string;
      readonly requester?: string | undefined;
      readonly runbook?: RunbookFacts | undefined;
      readonly targets?: readonly string[] | undefined;
      /** How many approvals the run has so far (the length of `approvers` when that is given). */
      readonly approvals?: number | undefined;
      /** The approval groups its approvers came from (the union of `approvers`' groups when given). */
      readonly approvedGroups?: readonly string[] | undefined;
      /** Who approved so far, and as which of the runbook's approval groups: the high-risk rule reads it. */
      readonly approvers?: readonly { readonly approver: string; readonly groups: readonly string[] }[] | undefined;
      /** How many approvals the plan needs. */
      readonly approvalsRequired?: number | undefined;
    }
  | { readonly kind: 'audit' };

export interface AuthzContext {
  readonly channel: Channel;
  /** When the request is made; the policies see it as seconds since the epoch. Defaults to now. */
  readonly time?: Date | undefined;
}

export interface Decision {
  readonly allow: boolean;
  /** One sentence for the caller and the audit log. */
  readonly reason: string;
  /** Ids of the policies that decided: the permits that allowed, or the forbids that denied (none for a default deny). */
  readonly policies: readonly string[];
}

/**
 * The one question every route asks before it acts: may this principal take this action on this
 * resource, here? Cedar policies answer it (cedar-authorizer.ts); the role table below is the
 * behaviour they reproduce, kept as the reference the policy tests compare against.
 */
export interface Authorizer {
  authorize(principal: User, action: Action, resource: Resource, context: AuthzContext): Decision;
}

/**
 * The groups a person is in, as the policies see them: a role is a group of the same name, so
 * policies say `principal in Group::"operator"`, and a runbook may name a role as an approval group.
 */
export function groupsOf(user: User): string[] {
  return [...new Set([...user.roles, ...(user.groups ?? [])])];
}

export const ROLES: Readonly<Record<Action, readonly Role[]>> = {
  readRunbook: ['operator', 'approver', 'auditor', 'author', 'admin'],
  launch: ['operator'],
  readRun: ['operator', 'approver', 'auditor', 'admin'],
  approve: ['approver'],
  reject: ['approver'],
  cancel: ['operator', 'admin'],
  readAudit: ['auditor', 'admin'],
  exportAudit: ['auditor', 'admin'],
  publish: ['author'],
  review: ['author'],
  administer: ['admin'],
};

export const DESCRIBE: Readonly<Record<Action, string>> = {
  readRunbook: 'read runbooks',
  launch: 'launch runbooks',
  readRun: 'read executions',
  approve: 'approve or reject executions',
  reject: 'approve or reject executions',
  cancel: 'cancel executions',
  readAudit: 'read the audit log',
  exportAudit: 'export the audit log',
  publish: 'publish runbooks',
  review: 'review runbooks',
  administer: 'administer mechanic',
};

/** The role table: operators cancel only what they requested (admins anything). */
export function roleAuthorizer(): Authorizer {
  return {
    authorize(principal, action, resource) {
      const roles = ROLES[action];
      if (!principal.roles.some((r) => roles.includes(r))) {
        return {
          allow: false,
          reason: `${principal.id} (${principal.roles.join(', ')}) may not ${DESCRIBE[action]}; that needs the ${roles.join(' or ')} role`,
          policies: [],
        };
      }
      if (
        action === 'cancel' &&
        resource.kind === 'execution' &&
        !principal.roles.includes('admin') &&
        resource.requester !== principal.id
      ) {
        return {
          allow: false,
          reason: `${principal.id} may only cancel their own executions; ${resource.id} was requested by ${resource.requester ?? 'someone else'}`,
          policies: [],
        };
      }
      return { allow: true, reason: `role ${principal.roles.join(',')} may ${action}`, policies: ['role-table'] };
    },
  };
}

/** Where decisions are written: the server's structured (pino) log. */
export interface DecisionLog {
  info(fields: object, message: string): void;
}

/**
 * Writes every decision to the structured log: who, what, on which resource, from which channel,
 * the answer and the ids of the policies that gave it. Reads are recorded here and only here: they
 * change nothing, and there are many (every list, every refresh, every event stream), so the audit
 * chain keeps the changes and the refusals while the log keeps everything.
 */
export function loggedAuthorizer(inner: Authorizer, log: DecisionLog): Authorizer {
  return {
    authorize(principal, action, resource, context) {
      const decision = inner.authorize(principal, action, resource, context);
      log.info(
        {
          authz: {
            principal: principal.id,
            action,
            resource: describeResource(resource),
            channel: context.channel,
            decision: decision.allow ? 'allow' : 'deny',
            policies: decision.policies,
          },
        },
        'authorization decision',
      );
      return decision;
    },
  };
}

function describeResource(resource: Resource): string {
  switch (resource.kind) {
    case 'catalog':
      return 'catalog';
    case 'audit':
      return 'audit';
    case 'runbook':
      return `runbook:${resource.name}`;
    case 'execution':
      return `execution:${resource.id}`;
  }
}
