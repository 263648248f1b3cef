/**
 * Tests written to kill mutants Stryker found alive (npm run mutate) in src/core/{canonical,
 * approval,redact,session-policy,targets}.ts. Each pins a behaviour the existing tests left
 * open; the mutants judged equivalent are listed at the end of this file with the reason.
 */
import { describe, expect, test } from 'vitest';
import { decideApproval } from '../../src/core/approval.ts';
import { NonJsonValueError, canonicalJson } from '../../src/core/canonical.ts';
import { REDACTED, redact } from '../../src/core/redact.ts';
import { SESSION_POLICY_MAX_CHARS, accountOf, buildSessionPolicy } from '../../src/core/session-policy.ts';
import { selectTargets } from '../../src/core/targets.ts';

function caught(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a throw, but nothing was thrown');
}

describe('canonicalJson refusals say where and what', () => {
  test('a hole in an array', () => {
    const e = caught(() => canonicalJson({ list: [1, , 3] }));
    expect(e).toBeInstanceOf(NonJsonValueError);
    expect(e.message).toBe('value at $.list[1] is not JSON-safe: undefined');
  });

  test('a class instance is named by its class', () => {
    expect(caught(() => canonicalJson({ when: new Date(0) })).message).toBe(
      'value at $.when is not JSON-safe: instance of Date',
    );
  });

  test('an object whose prototype has no constructor is still refused, as "a class"', () => {
    const odd = Object.create(Object.create(null) as object) as object;
    const e = caught(() => canonicalJson({ odd }));
    expect(e).toBeInstanceOf(NonJsonValueError);
    expect(e.message).toBe('value at $.odd is not JSON-safe: instance of a class');
  });
});

describe('decideApproval', () => {
  test('a rejection without a comment has no comment property at all', () => {
    const state = decideApproval(1, 'alice', [{ approver: 'bob', decision: 'reject', planDigest: 'd' }]);
    expect(state).toStrictEqual({ status: 'rejected', by: 'bob' });
    expect(Object.keys(state)).toEqual(['status', 'by']);
  });
});

describe('redact', () => {
  test('the marker is the literal text [REDACTED]', () => {
    expect(REDACTED).toBe('[REDACTED]');
    expect(redact('password=hunter2')).toBe('password=[REDACTED]');
  });

  test.each([
    ['postgres://app:s3cret@db.internal:5432/app', `postgres://app:${REDACTED}@db.internal:5432/app`],
    ['git+ssh://deploy:hunter2@git.example.com/repo', `git+ssh://deploy:${REDACTED}@git.example.com/repo`],
    ['fetch https://u:p@example.com/x done', `fetch https://u:${REDACTED}@example.com/x done`],
  ])('hides the password of a connection string: %s', (text, expected) => {
    expect(redact(text)).toBe(expected);
  });

  test('leaves a URL without a password alone', () => {
    for (const text of ['https://example.com/a@b', 'mailto:ops@example.com', 'ssh://deploy@git.example.com/repo']) {
      expect(redact(text)).toBe(text);
    }
  });

  test('a bearer token after several spaces', () => {
    expect(redact('Authorization: Bearer   abcdef0123456789xyz')).toBe(`Authorization: ${REDACTED}`);
  });

  test('a key that names an access key without a separator (AccessKey, accesskey)', () => {
    expect(redact('AccessKey: abc123')).toBe(`AccessKey: ${REDACTED}`);
  });

  test('a key with more after the secret word (db_password_ro)', () => {
    expect(redact('db_password_ro=hunter2')).toBe(`db_password_ro=${REDACTED}`);
  });

  test('a single-quoted value with spaces is hidden whole', () => {
    expect(redact("password='two words' next")).toBe(`password=${REDACTED} next`);
  });
});

describe('buildSessionPolicy at the STS limit', () => {
  const base = { region: 'eu-west-1', accountId: '123456789012' };
  /** One instance whose id is padded so that the explicit policy is exactly `length` characters. */
  const explicitOf = (length: number) => {
    const probe = buildSessionPolicy({ ...base, instanceIds: ['i-'], scope: { instanceIds: ['i-'] } });
    const id = `i-${'0'.repeat(length - probe.length)}`;
    return { ...base, instanceIds: [id], scope: { instanceIds: [id] } };
  };

  test('an explicit policy of exactly the limit is used', () => {
    const policy = buildSessionPolicy(explicitOf(SESSION_POLICY_MAX_CHARS));
    expect(policy).toHaveLength(SESSION_POLICY_MAX_CHARS);
    expect(policy).toContain('OnlyPlannedInstances');
  });

  test('one character over the limit is refused for an instance-id scope', () => {
    expect(caught(() => buildSessionPolicy(explicitOf(SESSION_POLICY_MAX_CHARS + 1))).code).toBe('TARGETS_INVALID');
  });

  test('a tag policy of exactly the limit is used', () => {
    const many = Array.from({ length: 60 }, (_, i) => `i-${i.toString(16).padStart(17, '0')}`);
    const probe = buildSessionPolicy({ ...base, instanceIds: many, scope: { tags: { Role: 'v' } } });
    expect(probe).toContain('OnlyTaggedInstances');
    const value = 'v'.repeat(1 + SESSION_POLICY_MAX_CHARS - probe.length);
    const policy = buildSessionPolicy({ ...base, instanceIds: many, scope: { tags: { Role: value } } });
    expect(policy).toHaveLength(SESSION_POLICY_MAX_CHARS);
    expect(policy).toContain('OnlyTaggedInstances');
  });
});

describe('accountOf', () => {
  test.each(['arn:aws:iam::1234567890123:role/x', 'arn:aws:iam::a123456789012:role/x'])(
    'refuses an account that is not exactly 12 digits: %s',
    (arn) => {
      expect(caught(() => accountOf(arn)).code).toBe('RUNBOOK_INVALID');
    },
  );
});

describe('selectTargets', () => {
  test('every instance SSM does not know is named, separated by commas', () => {
    const e = caught(() =>
      selectTargets('deploy', { instanceIds: ['i-0aaaaaaaaaaaaaaa1', 'i-0aaaaaaaaaaaaaaa2'] }, []),
    );
    expect(e.message).toBe(
      'deploy targets i-0aaaaaaaaaaaaaaa1, i-0aaaaaaaaaaaaaaa2, which SSM does not know as managed instances',
    );
  });
});

/*
 * Equivalent mutants (no test can tell them apart from the original):
 *
 * - canonical.ts `!(i in value) || value[i] === undefined` → `&&`, → `false`, and
 *   `value[i] === undefined` → `false`: a hole or an undefined element then falls through to
 *   encode(undefined), whose default branch throws the same NonJsonValueError with the same path
 *   and "undefined". (The check stays: it says why in one place.)
 * - canonical.ts `encode(value, '$', [])` → `['Stryker was here']`: the ancestors list is compared
 *   with objects by identity, which a string never matches.
 * - canonical.ts `update(text, 'utf8')` → `update(text, '')`: Node hashes a string as UTF-8 when
 *   the encoding is empty.
 * - approval.ts `v.decision === 'approve'` → `true` in the approvers filter: any rejection not by
 *   the requester has already returned, and the requester's votes are filtered out, so only
 *   approvals reach the filter.
 * - targets.ts `inScope.filter((i) => i.name)` → `inScope` for the by-name map: it only adds the
 *   key `undefined`, and requested names are strings, so it is never looked up.
 */
