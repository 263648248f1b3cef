/**
 * Faults, said once: what happened, in one sentence, and what the operator can do next. The TUI
 * never exits on these; it shows them where they happened.
 */
import { isMechanicError } from '../../src/core/errors.ts';
import { inert } from './text.ts';

export interface Problem {
  readonly code: string;
  readonly message: string;
  readonly next?: string;
  readonly tone?: 'error' | 'info';
}

const NEXT: Record<string, string> = {
  UNAUTHENTICATED:
    'your sign-in is not valid (expired or revoked): quit with q and sign in again (--as, or a new MECHANIC_TOKEN)',
  FORBIDDEN: 'ask an admin for the role this needs',
  SERVER_UNAVAILABLE: 'check that the stack is up (mechanic dev), then press r to retry',
  TEMPORAL_UNAVAILABLE: 'the API is up but Temporal is not; wait for it to come back, then press r to retry',
  EXECUTION_NOT_FOUND: 'the run is gone; press q to go back to the list',
  EXECUTION_FINISHED: 'the run has ended; nothing more can be done to it',
  PARAMS_INVALID: 'fix the values in the form and review the plan again',
  TARGETS_INVALID: 'narrow the targets differently and review the plan again',
  APPROVAL_SELF: 'someone else has to approve it',
  APPROVAL_DUPLICATE: 'your vote is already recorded',
  APPROVAL_PLAN_MISMATCH: 'the plan changed: read it again before you vote',
  RATE_LIMITED: 'wait the seconds it says, then press r to retry',
  APPROVAL_NOT_ALLOWED: 'a member of the runbook’s approval groups has to vote on it',
  INTERNAL: 'this is a bug; the server log has the details',
};

export function toProblem(e: unknown): Problem {
  if (isMechanicError(e)) {
    const next = NEXT[e.code];
    return { code: e.code, message: inert(e.message), ...(next ? { next } : {}) };
  }
  const message = e instanceof Error ? e.message : String(e);
  return { code: 'INTERNAL', message: `unexpected error: ${inert(message)}`, next: NEXT['INTERNAL'] ?? '' };
}
