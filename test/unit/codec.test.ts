import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter } from '@temporalio/common';
import type { Payload } from '@temporalio/common';
import { describe, expect, test } from 'vitest';
import {
  ENCODING_ENCRYPTED,
  EncryptionCodec,
  dataConverterFor,
  failureConverterPath,
  parseCodecKeys,
} from '../../src/temporal/codec.ts';

const k1 = new Uint8Array(randomBytes(32));
const k2 = new Uint8Array(randomBytes(32));
const b64 = (key: Uint8Array): string => Buffer.from(key).toString('base64');
const text = (bytes: Uint8Array | null | undefined): string => Buffer.from(bytes ?? new Uint8Array()).toString('utf8');

function payloadOf(value: unknown): Payload {
  return defaultPayloadConverter.toPayload(value);
}

describe('EncryptionCodec', () => {
  test('round trip restores the exact payload, metadata included', async () => {
    const codec = new EncryptionCodec({ activeKeyId: 'k1', keys: { k1 } });
    const original = [payloadOf({ password: 'hunter2', n: 1 }), payloadOf(undefined), payloadOf('x')];
    const encoded = await codec.encode(original);
    const decoded = await codec.decode(encoded);
    expect(decoded.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([
      { password: 'hunter2', n: 1 },
      undefined,
      'x',
    ]);
    expect(decoded.map((p) => text(p.metadata?.['encoding']))).toEqual(
      original.map((p) => text(p.metadata?.['encoding'])),
    );
  });

  test('encoded payloads carry only the encrypted encoding and the key id, and no plaintext', async () => {
    const codec = new EncryptionCodec({ activeKeyId: 'k1', keys: { k1 } });
    const [encoded] = await codec.encode([payloadOf({ password: 'hunter2' })]);
    expect(Object.keys(encoded?.metadata ?? {}).sort()).toEqual(['encoding', 'encryption-key-id']);
    expect(text(encoded?.metadata?.['encoding'])).toBe(ENCODING_ENCRYPTED);
    expect(text(encoded?.metadata?.['encryption-key-id'])).toBe('k1');
    expect(Buffer.from(encoded?.data ?? []).includes('hunter2')).toBe(false);
    expect(Buffer.from(encoded?.data ?? []).includes('json/plain')).toBe(false);
  });

  test('the same value encrypts differently each time (random IV)', async () => {
    const codec = new EncryptionCodec({ activeKeyId: 'k1', keys: { k1 } });
    const [a, b] = await codec.encode([payloadOf('same'), payloadOf('same')]);
    expect(Buffer.from(a?.data ?? []).equals(Buffer.from(b?.data ?? []))).toBe(false);
  });

  test.each([
    ['the first byte of the IV', 0],
    ['a ciphertext byte', 14],
    ['the last byte of the tag', -1],
  ])('changing %s makes decoding fail', async (_what, index) => {
    const codec = new EncryptionCodec({ activeKeyId: 'k1', keys: { k1 } });
    const [encoded] = await codec.encode([payloadOf({ secret: 'abc' })]);
    const data = Buffer.from(encoded?.data ?? []);
    const at = index < 0 ? data.length + index : index;
    data[at] = (data[at] ?? 0) ^ 0x01;
    await expect(codec.decode([{ ...encoded, data }])).rejects.toThrow(/failed authentication with codec key "k1"/);
  });

  test('a truncated payload is refused', async () => {
    const codec = new EncryptionCodec({ activeKeyId: 'k1', keys: { k1 } });
    const [encoded] = await codec.encode([payloadOf('x')]);
    await expect(codec.decode([{ ...encoded, data: encoded?.data?.subarray(0, 20) ?? null }])).rejects.toThrow(
      /too short/,
    );
  });

  test('a different key under the same id is detected', async () => {
    const [encoded] = await new EncryptionCodec({ activeKeyId: 'k1', keys: { k1 } }).encode([payloadOf('x')]);
    const impostor = new EncryptionCodec({ activeKeyId: 'k1', keys: { k1: k2 } });
    await expect(impostor.decode(encoded ? [encoded] : [])).rejects.toThrow(/failed authentication/);
  });

  test('rotation: payloads written with an old key still decode after a new key becomes active', async () => {
    const before = new EncryptionCodec({ activeKeyId: 'k1', keys: { k1 } });
    const after = new EncryptionCodec({ activeKeyId: 'k2', keys: { k2, k1 } });
    const old = await before.encode([payloadOf({ v: 'old' })]);
    const fresh = await after.encode([payloadOf({ v: 'new' })]);
    expect(text(fresh[0]?.metadata?.['encryption-key-id'])).toBe('k2');
    const decoded = await after.decode([...old, ...fresh]);
    expect(decoded.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([{ v: 'old' }, { v: 'new' }]);
  });

  test('an unknown key id is a clear configuration error naming the id, not the keys', async () => {
    const old = await new EncryptionCodec({ activeKeyId: 'k1', keys: { k1 } }).encode([payloadOf('x')]);
    const codec = new EncryptionCodec({ activeKeyId: 'k2', keys: { k2 } });
    const error = await codec.decode(old).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'CONFIG_INVALID' });
    expect((error as Error).message).toMatchInlineSnapshot(
      `"A payload is encrypted with codec key "k1", which is not configured (known: k2); add that key to the codec keys to read it."`,
    );
  });

  test('payloads that were never encrypted pass through decode unchanged', async () => {
    const codec = new EncryptionCodec({ activeKeyId: 'k1', keys: { k1 } });
    const plain = payloadOf({ legacy: true });
    expect(await codec.decode([plain])).toEqual([plain]);
  });

  test.each([
    ['an active id that has no key', { activeKeyId: 'k9', keys: { k1 } }, /active codec key id "k9"/],
    ['a short key', { activeKeyId: 'k1', keys: { k1: new Uint8Array(16) } }, /16 bytes long/],
    ['a bad id', { activeKeyId: 'a b', keys: { 'a b': k1 } }, /Codec key id "a b" is not allowed/],
  ])('the constructor refuses %s', (_what, keys, message) => {
    expect(() => new EncryptionCodec(keys)).toThrow(message);
  });
});

describe('parseCodecKeys', () => {
  test('the first entry is active and all entries are kept', () => {
    const parsed = parseCodecKeys(` new:${b64(k2)} , old:${b64(k1)} `);
    expect(parsed.activeKeyId).toBe('new');
    expect(Object.keys(parsed.keys)).toEqual(['new', 'old']);
    expect(Buffer.from(parsed.keys['old'] ?? []).equals(Buffer.from(k1))).toBe(true);
  });

  test.each([
    ['empty', '', /No codec keys are configured/],
    ['no colon', b64(k1), /entry 1 is not in the form "id:base64key"/],
    ['empty id', `:${b64(k1)}`, /entry 1 is not in the form/],
    ['bad id', `a/b:${b64(k1)}`, /Codec key id "a\/b" is not allowed/],
    ['not base64', 'k1:not*base64', /Codec key "k1" is not valid base64/],
    ['wrong length', `k1:${b64(new Uint8Array(31))}`, /Codec key "k1" decodes to 31 bytes/],
    ['duplicate id', `k1:${b64(k1)},k1:${b64(k2)}`, /listed twice/],
  ])('refuses %s input with CONFIG_INVALID', (_what, spec, message) => {
    let error: unknown;
    try {
      parseCodecKeys(spec);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'CONFIG_INVALID' });
    expect((error as Error).message).toMatch(message);
  });

  test.each([
    ['too short', b64(randomBytes(31))],
    ['not base64', `${b64(randomBytes(32))}!`],
  ])('error messages never echo key material (%s)', (_what, material) => {
    const error = (() => {
      try {
        parseCodecKeys(`k1:${material}`);
      } catch (e) {
        return e as Error;
      }
      throw new Error('expected parseCodecKeys to throw');
    })();
    expect(error.message).not.toContain(material.slice(0, 8));
  });
});

describe('dataConverterFor', () => {
  test('uses the codec and the encrypting failure converter, given by a loadable path', async () => {
    const converter = dataConverterFor({ activeKeyId: 'k1', keys: { k1 } });
    expect(converter.payloadCodecs?.[0]).toBeInstanceOf(EncryptionCodec);
    expect(converter.failureConverterPath).toBe(failureConverterPath());
    const { failureConverter } = (await import(failureConverterPath())) as {
      failureConverter: { options: { encodeCommonAttributes: boolean } };
    };
    expect(failureConverter.options.encodeCommonAttributes).toBe(true);
  });
});
