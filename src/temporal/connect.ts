import { Client, Connection } from '@temporalio/client';
import { UserError } from '../core/errors.ts';
import { dataConverterFor, parseCodecKeys } from './codec.ts';

export interface TemporalSettings {
  readonly address: string;
  readonly namespace: string;
  readonly apiKey: string | undefined;
  readonly tls: boolean;
  readonly codecKeys: string | undefined;
}

export function connectionOptions(s: TemporalSettings) {
  return {
    address: s.address,
    ...(s.tls ? { tls: true as const } : {}),
    ...(s.apiKey ? { apiKey: s.apiKey } : {}),
  };
}

/** Payloads are always encrypted: a client without the codec keys is a configuration error. */
export function dataConverterFrom(s: TemporalSettings) {
  if (!s.codecKeys) {
    throw new UserError(
      'CONFIG_INVALID',
      'MECHANIC_CODEC_KEYS is not set; it holds the keys that encrypt workflow payloads ("id:base64key")',
    );
  }
  return dataConverterFor(parseCodecKeys(s.codecKeys));
}

/** Connects a client, failing with one sentence when the server does not answer. */
export async function connectClient(s: TemporalSettings): Promise<Client> {
  const dataConverter = dataConverterFrom(s);
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...connectionOptions(s), connectTimeout: '5s' });
  } catch (e) {
    throw new UserError(
      'TEMPORAL_UNAVAILABLE',
      `the Temporal server at ${s.address} is not answering; start the stack with "mechanic dev" or set TEMPORAL_ADDRESS`,
      { cause: e },
    );
  }
  return new Client({ connection, namespace: s.namespace, dataConverter });
}
