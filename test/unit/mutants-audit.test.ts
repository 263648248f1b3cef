/**
 * Tests written to kill the mutants Stryker left alive or uncovered in src/core/audit-chain.ts and
 * src/core/audit-checkpoint.ts (docs/mutation.md): the size cap on an event's data, which no unit
 * test reached; an event without data; the refusal's error and its cause; a record whose content
 * cannot be hashed; key ids; keys that are not Ed25519 private keys, or cannot verify at all; a
 * malformed checkpoint; the published PEM.
 */
import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import {
  AuditEventInvalidError,
  GENESIS_HASH,
  MAX_AUDIT_DATA_CHARS,
  chainHash,
  parseNewAuditEvent,
  verifyChain,
  type AuditRecord,
} from '../../src/core/audit-chain.ts';
import type { NewAuditEvent } from '../../src/core/audit-events.ts';
import { checkpointProblem, checkpointSigner, keyIdOf, publicKeyPem } from '../../src/core/audit-checkpoint.ts';
import { NonJsonValueError, canonicalJson } from '../../src/core/canonical.ts';

const base = { eventId: 'exec-1:denied:1', executionId: 'exec-1', actor: 'mallory', at: '2025-01-01T10:00:00Z' };

function caught(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a throw, but nothing was thrown');
}

describe('parseNewAuditEvent', () => {
  /** An access.denied event (its data is loose) whose canonical data JSON is exactly `chars` long. */
  const ofSize = (chars: number) => {
    const frame = canonicalJson({ action: 'a', blob: '', reason: 'r' }).length;
    const data = { action: 'a', reason: 'r', blob: 'x'.repeat(chars - frame) };
    expect(canonicalJson(data)).toHaveLength(chars);
    return { ...base, type: 'access.denied', data };
  };

  test('data of exactly MAX_AUDIT_DATA_CHARS is accepted; one character more is refused, with the sizes', () => {
    expect(parseNewAuditEvent(ofSize(MAX_AUDIT_DATA_CHARS)).eventId).toBe(base.eventId);
    const e = caught(() => parseNewAuditEvent(ofSize(MAX_AUDIT_DATA_CHARS + 1)));
    expect(e).toBeInstanceOf(AuditEventInvalidError);
    expect(e.message).toBe(
      `invalid audit event: ${base.eventId} data is ${MAX_AUDIT_DATA_CHARS + 1} chars, over ${MAX_AUDIT_DATA_CHARS}`,
    );
  });

  test('an event without data is refused by its schema, not by the JSON check', () => {
    const e = caught(() => parseNewAuditEvent({ ...base, type: 'execution.completed' }));
    expect(e).toBeInstanceOf(AuditEventInvalidError);
    expect(e.message).toMatch(/^invalid audit event: execution\.completed exec-1:denied:1 does not fit its schema/);
    expect(e.message).toContain('at data');
  });

  test('data JSON cannot hold is refused as AuditEventInvalidError, named so, with the reason as its cause', () => {
    const e = caught(() =>
      parseNewAuditEvent({ ...base, type: 'access.denied', data: { action: 'a', reason: 'r', when: new Date(0) } }),
    ) as AuditEventInvalidError;
    expect(e.name).toBe('AuditEventInvalidError');
    expect(e.code).toBe('AUDIT_EVENT_INVALID');
    expect(e.message).toBe('invalid audit event: value at $.when is not JSON-safe: instance of Date');
    expect(e.cause).toBeInstanceOf(NonJsonValueError);
  });
});

describe('verifyChain', () => {
  test('a record whose content cannot be hashed is the broken link, and says why', () => {
    const event: NewAuditEvent = { ...base, type: 'access.denied', data: { action: 'a', reason: 'r' } };
    const good: AuditRecord = {
      ...event,
      seq: 1,
      prevHash: GENESIS_HASH,
      hash: chainHash(GENESIS_HASH, event),
      recordedAt: '2025-01-01T10:00:01Z',
    };
    const broken = { ...good, seq: 2, prevHash: good.hash, data: { action: 'a', reason: 'r', n: Number.NaN } };
    expect(verifyChain([good, broken as AuditRecord])).toEqual({
      ok: false,
      seq: 2,
      reason: 'content cannot be hashed: value at $.data.n is not JSON-safe: NaN',
    });
  });
});

describe('checkpoint keys', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');

  test('a key id is the first 16 hex digits of the sha256 of the SPKI DER', () => {
    const der = publicKey.export({ type: 'spki', format: 'der' });
    expect(keyIdOf(publicKey)).toBe(createHash('sha256').update(der).digest('hex').slice(0, 16));
    expect(keyIdOf(publicKey)).toHaveLength(16);
    expect(checkpointSigner(privateKey).keyId).toBe(keyIdOf(publicKey));
  });

  test('an Ed25519 public key does not sign', () => {
    expect(() => checkpointSigner(publicKey)).toThrow('the audit signing key must be an Ed25519 private key');
  });

  test('a trusted key that cannot verify Ed25519 signatures makes the checkpoint untrusted', () => {
    const signer = checkpointSigner(privateKey);
    const cp = signer.sign({ seq: 1, hash: 'a'.repeat(64) }, new Date('2025-01-01T10:00:00Z'));
    // An X25519 key cannot verify anything: verify throws, and the checkpoint is not trusted.
    const x25519 = generateKeyPairSync('x25519').publicKey;
    expect(checkpointProblem(cp, new Map([[signer.keyId, x25519]]))).toBe(
      'has a signature that does not match its seq, hash and time',
    );
  });

  test('a malformed checkpoint is named as such, with what is wrong', () => {
    const problem = checkpointProblem({ seq: 0, hash: 'nope' }, new Map());
    expect(problem).toMatch(/^is malformed: /);
    expect(problem).toContain('seq');
    expect(problem).toContain('hash');
  });

  test('the public key is published as an SPKI PEM that reads back as the same key', () => {
    const pem = publicKeyPem(publicKey);
    expect(pem).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/);
    expect(keyIdOf(createPublicKey(pem))).toBe(keyIdOf(publicKey));
  });
});
