/**
 * Tests written to kill the mutants Stryker left alive in src/activities/aws.ts (docs/mutation.md):
 * an AssumeRole answer missing any part of its credentials is no session at all, and the error a
 * SendCommand with a lost answer becomes says what was lost.
 */
import { describe, expect, test } from 'vitest';
import { SendCommandOutcomeUnknownError, sessionCredentialsOf } from '../../src/activities/aws.ts';

describe('sessionCredentialsOf', () => {
  const full = {
    AccessKeyId: 'ASIAEXAMPLE',
    SecretAccessKey: 'secret',
    SessionToken: 'token',
    Expiration: new Date('2026-01-01T00:00:00Z'),
  };

  test('an answer with every part is a session', () => {
    expect(sessionCredentialsOf(full)).toEqual({
      accessKeyId: 'ASIAEXAMPLE',
      secretAccessKey: 'secret',
      sessionToken: 'token',
      expiration: full.Expiration,
    });
  });

  test.each([['AccessKeyId'], ['SecretAccessKey'], ['SessionToken'], ['Expiration']])(
    'an answer without %s is none',
    (part) => {
      expect(sessionCredentialsOf({ ...full, [part]: undefined })).toBeUndefined();
    },
  );

  test('no answer is none', () => {
    expect(sessionCredentialsOf(undefined)).toBeUndefined();
  });
});

describe('SendCommandOutcomeUnknownError', () => {
  test('names what the attempt got instead of an answer: the error, its HTTP status and message', () => {
    const lost = Object.assign(new Error('upstream closed'), {
      name: 'InternalServerError',
      $metadata: { httpStatusCode: 503 },
    });
    const e = new SendCommandOutcomeUnknownError(lost);
    expect(e.name).toBe('SendCommandOutcomeUnknown');
    expect(e.lost).toBe(lost);
    expect(e.message).toBe(
      'SSM may have accepted the command, but its answer was lost (InternalServerError 503: upstream closed)',
    );
  });

  test('without a name, status or message it still says something', () => {
    expect(new SendCommandOutcomeUnknownError({}).message).toBe(
      'SSM may have accepted the command, but its answer was lost (Error: [object Object])',
    );
    expect(new SendCommandOutcomeUnknownError('socket hang up').message).toBe(
      'SSM may have accepted the command, but its answer was lost (Error: socket hang up)',
    );
  });
});
