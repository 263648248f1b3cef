/**
 * The typed client of the mechanic API: what the CLI, the TUI and the tests use. Every answer is
 * parsed with the contract's schema, so a server that says something unexpected is a clear error
 * here, never a silently wrong screen.
 */
import { UserError } from '../core/errors.ts';
import {
  downloads,
  rateLimited,
  routes,
  streams,
  type DownloadName,
  type RouteInput,
  type RouteName,
  type RouteOutput,
} from './contract.ts';
import type { z } from 'zod';
import { AuditRecordSchema, ErrorBodySchema, type AuditRecordInfo } from './schemas.ts';

export type Channel = 'cli' | 'tui' | 'slack' | 'web' | 'api';

export interface ApiClientOptions {
  readonly url: string;
  readonly token: string;
  /** Which face the caller uses; the server passes it to the Authorizer as context. */
  readonly channel?: Channel;
}

export interface StreamOptions {
  /** Resume after this audit seq (sent as Last-Event-ID). */
  readonly after?: number;
  readonly signal?: AbortSignal;
}

export interface ApiClient {
  readonly url: string;
  call<N extends RouteName>(name: N, input?: Partial<RouteInput<N>>): Promise<RouteOutput<N>>;
  /** Audit records as they are written; ends when the server closes the stream or `signal` aborts. */
  events(target: { executionId: string } | 'all', options?: StreamOptions): AsyncGenerator<AuditRecordInfo>;
  /**
   * A download (contract `downloads`): the response body as it streams, once the server has
   * accepted the request (an error answer throws first). Reading the body throws when the server
   * cuts the connection part-way, so a partial file is never mistaken for a whole one.
   */
  download<N extends DownloadName>(
    name: N,
    query: z.input<(typeof downloads)[N]['query']>,
  ): Promise<{ body: ReadableStream<Uint8Array>; contentType: string }>;
}

export function createApiClient(options: ApiClientOptions): ApiClient {
  const base = options.url.replace(/\/$/, '');
  const headers = {
    authorization: `Bearer ${options.token}`,
    'x-mechanic-channel': options.channel ?? 'cli',
  };
  const unreachable = () =>
    new UserError(
      'SERVER_UNAVAILABLE',
      `the mechanic API at ${base} is not answering; start the stack with "mechanic dev" or set MECHANIC_API_URL`,
    );

  async function send(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, init);
    } catch (e) {
      if ((e as Error).name === 'AbortError') throw e;
      throw unreachable();
    }
  }

  async function failure(res: Response): Promise<UserError> {
    const text = await res.text();
    // A 429 from something in front of the API (a proxy) still says when to try again.
    if (res.status === rateLimited.status && !ErrorBodySchema.safeParse(safeJson(text)).success) {
      const wait = Number(res.headers.get(rateLimited.retryAfterHeader));
      return new UserError(
        rateLimited.code,
        `the mechanic API at ${base} is refusing requests for now (too many); try again in ${Number.isInteger(wait) && wait > 0 ? wait : 1} s`,
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return new UserError(
        'SERVER_UNAVAILABLE',
        `the mechanic API at ${base} answered ${res.status} with something that is not JSON`,
      );
    }
    const parsed = ErrorBodySchema.safeParse(json);
    if (!parsed.success) {
      return new UserError(
        'INTERNAL',
        `the mechanic API answered ${res.status} with an error this client does not know; check that the CLI and the server are the same version`,
      );
    }
    return new UserError(parsed.data.error.code, parsed.data.error.message);
  }

  return {
    url: base,
    async call(name, input = {}) {
      const spec = routes[name];
      const params = (input.params ?? {}) as Record<string, string>;
      const path = spec.path.replace(/:([a-zA-Z]+)/g, (_m, key: string) => encodeURIComponent(params[key] ?? ''));
      const query = new URLSearchParams();
      for (const [k, v] of Object.entries((input.query ?? {}) as Record<string, string | number | undefined>)) {
        if (v !== undefined) query.set(k, String(v));
      }
      const qs = query.size ? `?${query.toString()}` : '';
      const body = input.body;
      const res = await send(`${base}${path}${qs}`, {
        method: spec.method,
        headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      if (!res.ok) throw await failure(res);
      let json: unknown;
      try {
        json = await res.json();
      } catch {
        throw new UserError(
          'SERVER_UNAVAILABLE',
          `the mechanic API at ${base} answered with something that is not JSON`,
        );
      }
      const parsed = spec.response.safeParse(json);
      if (!parsed.success) {
        throw new UserError(
          'INTERNAL',
          `the mechanic API's answer to ${name} does not match its contract; check that the CLI and the server are the same version`,
        );
      }
      return parsed.data as RouteOutput<typeof name>;
    },

    async download(name, query) {
      const qs = new URLSearchParams();
      for (const [k, v] of Object.entries(query as Record<string, string | undefined>)) {
        if (v !== undefined) qs.set(k, v);
      }
      const res = await send(`${base}${downloads[name].path}?${qs.toString()}`, { headers });
      if (!res.ok) throw await failure(res);
      if (!res.body) throw new UserError('SERVER_UNAVAILABLE', `the mechanic API at ${base} answered with no body`);
      return { body: res.body, contentType: res.headers.get('content-type') ?? '' };
    },

    async *events(target, opts = {}) {
      const path =
        target === 'all'
          ? streams.all.path
          : streams.execution.path.replace(':id', encodeURIComponent(target.executionId));
      const res = await send(`${base}${path}`, {
        headers: {
          ...headers,
          accept: 'text/event-stream',
          ...(opts.after !== undefined ? { 'last-event-id': String(opts.after) } : {}),
        },
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      if (!res.ok) throw await failure(res);
      if (!res.body) return;
      for await (const message of parseEventStream(res.body)) {
        if (message.event !== 'audit') continue;
        const parsed = AuditRecordSchema.safeParse(JSON.parse(message.data));
        if (!parsed.success) {
          throw new UserError(
            'INTERNAL',
            'the event stream sent a record this client does not understand; check that the CLI and the server are the same version',
          );
        }
        yield parsed.data;
      }
    },
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export interface EventMessage {
  readonly id?: string;
  readonly event: string;
  readonly data: string;
}

/** Parses a text/event-stream body (the WHATWG format: fields per line, a blank line ends a message). */
export async function* parseEventStream(body: ReadableStream<Uint8Array>): AsyncGenerator<EventMessage> {
  const decoder = new TextDecoder();
  let buffer = '';
  let id: string | undefined;
  let event = 'message';
  let data: string[] = [];
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffer.search(/\r\n|\r|\n/)) !== -1) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
      if (line === '') {
        if (data.length) yield { ...(id !== undefined ? { id } : {}), event, data: data.join('\n') };
        event = 'message';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue; // a comment: the server's keep-alive
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') data.push(value);
      else if (field === 'event') event = value;
      else if (field === 'id') id = value;
    }
  }
}
