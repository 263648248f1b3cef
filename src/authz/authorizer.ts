import type { Channel } from '../api/client.ts';
import type { Role, User } from './users.ts';

/** Everything a principal can ask to do. The names are the Cedar actions the policies will use. */
export type Action = 'readRunbook' | 'launch' | 'readRun' | 'approve' | 'reject' | 'cancel' | 'readAudit';

export type Resource =
  | { readonly kind: 'catalog' }
  | { readonly kind: 'runbook'; readonly name: string }
  | { readonly kind: 'execution'; readonly id: string; readonly requester?: string | undefined }
  | { readonly kind: 'audit' };

export interface AuthzContext {
  readonly channel: Channel;
}

export type Decision =
  | { readonly allow: true; readonly reason: string }
  | { readonly allow: false; readonly reason: string };

/**
 * The one question every route asks before it acts: may this principal take this action on this
 * resource, here? The role table below answers it today; Cedar policies will replace the
 * implementation, not the callers.
 */
export interface Authorizer {
  authorize(principal: User, action: Action, resource: Resource, context: AuthzContext): Decision;
}

const ROLES: Readonly<Record<Action, readonly Role[]>> = {
  readRunbook: ['operator', 'approver', 'auditor', 'author', 'admin'],
  launch: ['operator'],
  readRun: ['operator', 'approver', 'auditor', 'admin'],
  approve: ['approver'],
  reject: ['approver'],
  cancel: ['operator', 'admin'],
  readAudit: ['auditor', 'admin'],
};

const DESCRIBE: Readonly<Record<Action, string>> = {
  readRunbook: 'read runbooks',
  launch: 'launch runbooks',
  readRun: 'read executions',
  approve: 'approve or reject executions',
  reject: 'approve or reject executions',
  cancel: 'cancel executions',
  readAudit: 'read the audit log',
};

/** Today's rules: a role table, and operators cancel only what they requested (admins anything). */
export function roleAuthorizer(): Authorizer {
  return {
    authorize(principal, action, resource) {
      const roles = ROLES[action];
      if (!principal.roles.some((r) => roles.includes(r))) {
        return {
          allow: false,
          reason: `${principal.id} (${principal.roles.join(', ')}) may not ${DESCRIBE[action]}; that needs the ${roles.join(' or ')} role`,
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
        };
      }
      return { allow: true, reason: `role ${principal.roles.join(',')} may ${action}` };
    },
  };
}
