/**
 * An SSM endpoint (JSON 1.1 over HTTP) in front of devfleet for in-process tests of what devfleet
 * never does: a page without its list, an error without a message, an answer lost after SSM
 * accepted the call. Every call is forwarded to devfleet and its answer passed on, unless the
 * test's `answer` says otherwise; every call is kept in `calls`.
 */
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';

export interface ProxyCall {
  readonly operation: string;
  readonly input: Record<string, unknown>;
}

/**
 * How the proxy answers one call:
 * - `json`: answers it itself, never forwarded (an error is a 400 with `__type`, as SSM answers);
 * - `drop`: forwards it, then closes the connection instead of answering (SSM accepted it, the
 *   caller never hears);
 * - `replace`: forwards it, then answers this status and body instead of devfleet's;
 * - `rewrite`: forwards it and passes on devfleet's JSON answer (when 200) as rewritten;
 * - `delayMs`: forwards it and holds the answer back that long.
 */
export type ProxyAnswer =
  | { readonly json: Record<string, unknown>; readonly status?: number }
  | { readonly drop: true }
  | { readonly replace: { readonly status: number; readonly body: string } }
  | { readonly rewrite: (page: Record<string, unknown>) => Record<string, unknown> }
  | { readonly delayMs: number };

/** `nth` counts the calls of this operation so far, this one included. */
export type ProxyAnswering = (
  operation: string,
  input: Record<string, unknown>,
  nth: number,
) => ProxyAnswer | undefined;

export interface SsmProxy {
  readonly endpoint: string;
  readonly calls: ProxyCall[];
  answer: ProxyAnswering;
  /** Forgets the calls and forwards everything again. */
  reset(): void;
  close(): Promise<void>;
}

const JSON_TYPE = { 'content-type': 'application/x-amz-json-1.1' };

export async function startSsmProxy(target: string): Promise<SsmProxy> {
  const upstream = new URL(target);
  const calls: ProxyCall[] = [];
  const forward = (
    req: IncomingMessage,
    body: Buffer,
    then: (status: number, headers: IncomingHttpHeaders, out: Buffer) => void,
  ): void => {
    const fwd = httpRequest(
      { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
      (up) => {
        const out: Buffer[] = [];
        up.on('data', (c: Buffer) => out.push(c));
        up.on('end', () => then(up.statusCode ?? 502, up.headers, Buffer.concat(out)));
      },
    );
    fwd.on('error', () => then(502, {}, Buffer.from('{}')));
    fwd.end(body);
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const operation = String(req.headers['x-amz-target'] ?? '').replace(/^AmazonSSM\./, '');
      const input = (body.length > 0 ? JSON.parse(body.toString('utf8')) : {}) as Record<string, unknown>;
      calls.push({ operation, input });
      const nth = calls.filter((c) => c.operation === operation).length;
      const answer = proxy.answer(operation, input, nth);
      if (answer && 'json' in answer) {
        res.writeHead(answer.status ?? 200, JSON_TYPE);
        res.end(JSON.stringify(answer.json));
        return;
      }
      forward(req, body, (status, headers, out) => {
        if (answer && 'drop' in answer) {
          res.socket?.destroy();
          return;
        }
        if (answer && 'replace' in answer) {
          res.writeHead(answer.replace.status, JSON_TYPE);
          res.end(answer.replace.body);
          return;
        }
        let sent = out;
        if (answer && 'rewrite' in answer && status === 200) {
          sent = Buffer.from(
            JSON.stringify(answer.rewrite(JSON.parse(out.toString('utf8')) as Record<string, unknown>)),
          );
        }
        const send = (): void => {
          res.writeHead(status, { ...headers, 'content-length': String(sent.length) });
          res.end(sent);
        };
        if (answer && 'delayMs' in answer) setTimeout(send, answer.delayMs);
        else send();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const proxy: SsmProxy = {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    answer: () => undefined,
    reset() {
      calls.length = 0;
      proxy.answer = () => undefined;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return proxy;
}
