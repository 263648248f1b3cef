import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
// @temporalio/proto is CommonJS whose named exports Node's ESM loader cannot see, so take the default export.
import proto from '@temporalio/proto';
import { UserError } from '../core/errors.ts';

const { Payload: PayloadProto } = proto.temporal.api.common.v1;

export const ENCODING_ENCRYPTED = 'binary/encrypted';
export const METADATA_ENCODING = 'encoding';
export const METADATA_KEY_ID = 'encryption-key-id';

const ALGORITHM = 'aes-256-gcm';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export interface CodecKeys {
  /** Id of the key new payloads are encrypted with. */
  activeKeyId: string;
  /** Every key that may still be needed to decrypt, by id; each 32 bytes. */
  keys: Record<string, Uint8Array>;
}

/**
 * AES-256-GCM PayloadCodec: workflow inputs, results, activity arguments, and (with `encodeCommonAttributes`) failure
 * messages reach the Temporal server only as ciphertext, so its database and Web UI never hold plan details or step
 * output in clear.
 *
 * The whole Payload proto (metadata and data) is encrypted, so even the original encoding is hidden. The key id goes
 * into the new payload's metadata so keys can be rotated: new payloads use the active key, and old histories stay
 * readable as long as their key is still listed. The data layout is IV (12 bytes) ‖ ciphertext ‖ GCM tag (16 bytes),
 * the layout WebCrypto's AES-GCM uses, so a codec server in another language or the browser can decode it.
 */
export class EncryptionCodec implements PayloadCodec {
  readonly #activeKeyId: string;
  readonly #activeKeyIdBytes: Uint8Array;
  readonly #keys: ReadonlyMap<string, Buffer>;

  constructor(keys: CodecKeys) {
    const copied = new Map<string, Buffer>();
    for (const [id, key] of Object.entries(keys.keys)) {
      checkKeyId(id);
      if (key.byteLength !== KEY_BYTES) {
        throw new UserError(
          'CONFIG_INVALID',
          `Codec key "${id}" is ${key.byteLength} bytes long; each key must be exactly ${KEY_BYTES} random bytes.`,
        );
      }
      // Copy so a caller that later zeroes or reuses its buffer cannot change the codec's keys.
      copied.set(id, Buffer.from(key));
    }
    if (!copied.has(keys.activeKeyId)) {
      throw new UserError(
        'CONFIG_INVALID',
        `The active codec key id "${keys.activeKeyId}" is not among the configured keys; list it among the keys.`,
      );
    }
    this.#activeKeyId = keys.activeKeyId;
    this.#activeKeyIdBytes = Buffer.from(keys.activeKeyId, 'utf8');
    this.#keys = copied;
  }

  /** The ids of the keys this codec can decrypt with; never the keys themselves. */
  get keyIds(): string[] {
    return [...this.#keys.keys()];
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const key = this.#keys.get(this.#activeKeyId);
    if (key === undefined) throw new Error('unreachable: active key checked in the constructor');
    return payloads.map((payload) => {
      const plaintext = PayloadProto.encode(payload).finish();
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
      const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      return {
        metadata: {
          [METADATA_ENCODING]: Buffer.from(ENCODING_ENCRYPTED, 'utf8'),
          [METADATA_KEY_ID]: this.#activeKeyIdBytes,
        },
        data: Buffer.concat([iv, ciphertext, cipher.getAuthTag()]),
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      // Payloads that were never encrypted (written before the codec was enabled) pass through unchanged.
      if (metadataString(payload, METADATA_ENCODING) !== ENCODING_ENCRYPTED) return payload;
      const keyId = metadataString(payload, METADATA_KEY_ID);
      if (keyId === undefined) {
        throw new Error(`An encrypted payload has no "${METADATA_KEY_ID}" metadata, so it cannot be decrypted.`);
      }
      const key = this.#keys.get(keyId);
      if (key === undefined) {
        throw new UserError(
          'CONFIG_INVALID',
          `A payload is encrypted with codec key "${keyId}", which is not configured (known: ${this.keyIds.join(', ')}); ` +
            'add that key to the codec keys to read it.',
        );
      }
      const data = payload.data ?? new Uint8Array();
      if (data.byteLength < IV_BYTES + TAG_BYTES) {
        throw new Error(`An encrypted payload (key "${keyId}") is too short to be valid; it was truncated or altered.`);
      }
      const iv = data.subarray(0, IV_BYTES);
      const tag = data.subarray(data.byteLength - TAG_BYTES);
      const ciphertext = data.subarray(IV_BYTES, data.byteLength - TAG_BYTES);
      const decipher = createDecipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
      decipher.setAuthTag(tag);
      let plaintext: Buffer;
      try {
        plaintext = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
      } catch (cause) {
        // GCM verifies the tag in final(): any change to IV, ciphertext or tag, or a different key under the same id.
        throw new Error(
          `An encrypted payload failed authentication with codec key "${keyId}": it was altered, or the key differs ` +
            'from the one that encrypted it.',
          { cause },
        );
      }
      return PayloadProto.decode(plaintext);
    });
  }
}

/**
 * Parses a key list such as `"2025-06:BASE64,2025-01:BASE64"`: comma-separated `id:base64` pairs of 32-byte keys, the
 * first being the active one (new payloads), the rest kept only to decrypt older histories.
 * Error messages name key ids only, never key material, since they end up in logs.
 */
export function parseCodecKeys(spec: string): CodecKeys {
  const entries = spec
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) {
    throw new UserError(
      'CONFIG_INVALID',
      'No codec keys are configured; give at least one "id:base64key" pair (a key is `openssl rand -base64 32`).',
    );
  }
  const keys: Record<string, Uint8Array> = {};
  let activeKeyId: string | undefined;
  for (const [index, entry] of entries.entries()) {
    const colon = entry.indexOf(':');
    if (colon <= 0) {
      throw new UserError(
        'CONFIG_INVALID',
        `Codec key entry ${index + 1} is not in the form "id:base64key"; separate keys with commas.`,
      );
    }
    const id = entry.slice(0, colon).trim();
    const encoded = entry.slice(colon + 1).trim();
    checkKeyId(id);
    if (Object.hasOwn(keys, id)) {
      throw new UserError('CONFIG_INVALID', `Codec key id "${id}" is listed twice; give each key a unique id.`);
    }
    if (!BASE64_PATTERN.test(encoded)) {
      throw new UserError(
        'CONFIG_INVALID',
        `Codec key "${id}" is not valid base64; generate one with \`openssl rand -base64 32\`.`,
      );
    }
    const key = Buffer.from(encoded, 'base64');
    if (key.byteLength !== KEY_BYTES) {
      throw new UserError(
        'CONFIG_INVALID',
        `Codec key "${id}" decodes to ${key.byteLength} bytes; each key must be exactly ${KEY_BYTES} bytes ` +
          '(`openssl rand -base64 32`).',
      );
    }
    keys[id] = new Uint8Array(key);
    activeKeyId ??= id;
  }
  if (activeKeyId === undefined) throw new Error('unreachable: at least one entry was parsed');
  return { activeKeyId, keys };
}

/**
 * The data converter for clients and workers. Both sides must use it: a worker without the codec cannot read what a
 * client with it wrote, and the reverse.
 *
 * The failure converter moves error messages and stack traces into an encoded attribute so they are encrypted too;
 * an error message can carry command output. It is given by path because the worker loads it inside the workflow
 * bundle, where an object instance cannot be passed.
 */
export function dataConverterFor(keys: CodecKeys): DataConverter {
  return {
    payloadCodecs: [new EncryptionCodec(keys)],
    failureConverterPath: failureConverterPath(),
  };
}

/**
 * Path of the module exporting the encrypting `failureConverter`. It is a plain `.js` ES module because the SDK
 * `require()`s it in Node (outside any TypeScript loader) and also bundles it with webpack for the workflow sandbox.
 */
export function failureConverterPath(): string {
  return fileURLToPath(new URL('./failure-converter.js', import.meta.url));
}

function checkKeyId(id: string): void {
  if (!KEY_ID_PATTERN.test(id)) {
    throw new UserError(
      'CONFIG_INVALID',
      `Codec key id "${id.slice(0, 64)}" is not allowed; use 1-64 letters, digits, ".", "_" or "-".`,
    );
  }
}

function metadataString(payload: Payload, key: string): string | undefined {
  const value = payload.metadata?.[key];
  return value == null ? undefined : Buffer.from(value).toString('utf8');
}
