/** Domain errors (issue 12, mutation round four): a UserError is meant for a person and keeps its code and name. */
import { expect, test } from 'vitest';
import { UserError, isMechanicError } from '../../src/core/errors.ts';

test('a UserError is user-facing, carries its code and cause, and is named after its class', () => {
  const cause = new Error('underneath');
  const e = new UserError('USAGE', 'say what to do', { cause });
  expect(e.userFacing).toBe(true);
  expect(e).toMatchObject({ code: 'USAGE', message: 'say what to do', name: 'UserError', cause });
  expect(isMechanicError(e)).toBe(true);
  expect(isMechanicError(new Error('plain'))).toBe(false);
});
