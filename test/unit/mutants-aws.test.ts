/**
 * Tests written to kill the mutants Stryker left alive in src/activities/aws.ts and index.ts
 * (docs/mutation.md): an AssumeRole answer missing any part of its credentials is no session at
 * all, the error a SendCommand with a lost answer becomes says what was lost, and recordEvent
 * stops retrying only when the log already holds different content under the event's id.
 */
import { describe, expect, test } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { SendCommandOutcomeUnknownError, sessionCredentialsOf } from '../../src/activities/aws.ts';
import { createActivities } from '../../src/activities/index.ts';
import type { NewAuditEvent } from '../../src/core/audit-events.ts';
import { AuditEventConflictError } from '../../src/store/audit-log.ts';

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

describe('recordEvent', () => {
  const event = {
    eventId: 'exec-1:running',
    executionId: 'exec-1',
    type: 'execution.running',
    actor: 'mechanic',
    at: '2025-01-01T10:00:00Z',
    data: { approvedBy: ['bob'] },
  } as NewAuditEvent;
  const withAppend = (append: (e: NewAuditEvent) => Promise<unknown>) =>
    createActivities({
      audit: { append },
      sts: { send: (() => Promise.reject(new Error('unused'))) as never },
      ssmFor: () => {
        throw new Error('unused');
      },
      pollIntervalMs: { min: 50, max: 50 },
      deliveryTimeoutSeconds: 60,
    });

  test('appends the event as given', async () => {
    const appended: NewAuditEvent[] = [];
    await withAppend(async (e) => appended.push(e)).recordEvent(event);
    expect(appended).toEqual([event]);
  });

  test('different content under a recorded id is a bug retrying cannot fix: non-retryable, named', async () => {
    const failure = await withAppend(() => Promise.reject(new AuditEventConflictError(event.eventId, 7)))
      .recordEvent(event)
      .catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({
      type: 'AUDIT_EVENT_CONFLICT',
      nonRetryable: true,
      message: 'audit event exec-1:running was already recorded (seq 7) with different content',
    });
  });

  test('any other failure is passed on as it is, for Temporal to retry', async () => {
    const down = new Error('database is locked');
    await expect(withAppend(() => Promise.reject(down)).recordEvent(event)).rejects.toBe(down);
  });
});
