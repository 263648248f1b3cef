import type { Role, User } from './users.ts';

export type Action =
  'runbook:read' | 'runbook:launch' | 'execution:read' | 'execution:vote' | 'execution:cancel' | 'audit:read';

/**
 * Which roles may do what. One table, read in one place, so the API server has a single point
 * where every request is authorized (Cedar policies will replace this table, not its callers).
 */
const ALLOWED: Readonly<Record<Action, readonly Role[]>> = {
  'runbook:read': ['operator', 'approver', 'auditor', 'author', 'admin'],
  'runbook:launch': ['operator'],
  'execution:read': ['operator', 'approver', 'auditor', 'admin'],
  'execution:vote': ['approver'],
  // Operators cancel their own executions (checked by the caller); admins any.
  'execution:cancel': ['operator', 'admin'],
  'audit:read': ['auditor', 'admin'],
};

export interface Decision {
  readonly allowed: boolean;
  readonly reason: string;
}

export function authorize(user: User, action: Action): Decision {
  const roles = ALLOWED[action];
  if (user.roles.some((r) => roles.includes(r)))
    return { allowed: true, reason: `role ${user.roles.join(',')} may ${action}` };
  return {
    allowed: false,
    reason: `${user.id} (${user.roles.join(', ')}) may not ${describe(action)}; that needs the ${roles.join(' or ')} role`,
  };
}

function describe(action: Action): string {
  switch (action) {
    case 'runbook:read':
      return 'read runbooks';
    case 'runbook:launch':
      return 'launch runbooks';
    case 'execution:read':
      return 'read executions';
    case 'execution:vote':
      return 'approve or reject executions';
    case 'execution:cancel':
      return 'cancel executions';
    case 'audit:read':
      return 'read the audit log';
  }
}
