/**
 * Domain errors. Each carries a stable `code` that edges (CLI, HTTP server, Temporal failures) map to
 * an exit code, an HTTP status or a failure `type`; the code survives the workflow sandbox where
 * `instanceof` does not.
 */
export const ERROR_CODES = [
  'CONFIG_INVALID',
  'RUNBOOK_INVALID',
  'RUNBOOK_NOT_FOUND',
  'PARAMS_INVALID',
  'TARGETS_INVALID',
  'TEMPLATE_UNSAFE',
  'EXECUTION_NOT_FOUND',
  'EXECUTION_FINISHED',
  'APPROVAL_SELF',
  'APPROVAL_DUPLICATE',
  'APPROVAL_NOT_ALLOWED',
  'APPROVAL_PLAN_MISMATCH',
  'APPROVAL_REJECTED',
  'APPROVAL_EXPIRED',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  /** Over a rate limit: the caller waits the Retry-After and tries again. */
  'RATE_LIMITED',
  'TEMPORAL_UNAVAILABLE',
  'TEMPORAL_CLI_UNAVAILABLE',
  'SERVER_UNAVAILABLE',
  'STS_FAILED',
  'SSM_COMMAND_FAILED',
  'AUDIT_CHAIN_BROKEN',
  'USAGE',
  /** A bug on the server: never a user's mistake, always in the server's log. */
  'INTERNAL',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export abstract class MechanicError extends Error {
  abstract readonly code: ErrorCode;
  /** True when the message is meant for a person (a user mistake), false for bugs. */
  readonly userFacing: boolean = true;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A user-facing error with an explicit code, for edges that only need the code and the sentence. */
export class UserError extends MechanicError {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export function isMechanicError(e: unknown): e is MechanicError {
  return e instanceof MechanicError;
}
