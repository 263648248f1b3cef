import { describe, expect, test } from 'vitest';
import { toProblem } from '../../cli/tui/errors.ts';
import { UserError } from '../../src/core/errors.ts';

describe('the TUI says what to do next', () => {
  test('when the API says to slow down', () => {
    expect(toProblem(new UserError('RATE_LIMITED', 'too many requests from alice; try again in 3 s'))).toEqual({
      code: 'RATE_LIMITED',
      message: 'too many requests from alice; try again in 3 s',
      next: 'wait the seconds it says, then press r to retry',
    });
  });
  test('when the voter is outside the approval groups', () => {
    expect(toProblem(new UserError('APPROVAL_NOT_ALLOWED', 'bob is not in sre or dba')).next).toMatch(
      /approval groups/,
    );
  });
});
