import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';

/**
 * The two AWS wire protocols devfleet speaks, and the error each one returns. Errors are thrown as
 * AwsError anywhere below the HTTP handler and rendered once, in the caller's protocol, so the real
 * SDK clients surface them as the exceptions AWS would produce (e.name === code).
 */

export type Protocol = 'json' | 'query';

export class AwsError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
    /** Query protocol only: Sender for the caller's mistakes, Receiver for ours. */
    readonly fault: 'Sender' | 'Receiver' = status >= 500 ? 'Receiver' : 'Sender',
  ) {
    super(message);
    this.name = 'AwsError';
  }
}

export const STS_XMLNS = 'https://sts.amazonaws.com/doc/2011-06-15/';

export function xmlEscape(s: string): string {
  return s.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] ?? c,
  );
}

/** Common headers; Date follows devfleet's clock so the SDK's clock-skew correction follows it too. */
function baseHeaders(nowMs: number, requestId: string, contentType: string, length: number): Record<string, string> {
  return {
    'content-type': contentType,
    'content-length': String(length),
    'x-amzn-requestid': requestId,
    date: new Date(nowMs).toUTCString(),
  };
}

export function sendJson(res: ServerResponse, nowMs: number, body: unknown, status = 200): void {
  const text = JSON.stringify(body);
  const requestId = randomUUID();
  res.writeHead(status, baseHeaders(nowMs, requestId, 'application/x-amz-json-1.1', Buffer.byteLength(text)));
  res.end(text);
}

export function sendJsonError(res: ServerResponse, nowMs: number, err: AwsError): void {
  const text = JSON.stringify({ __type: `com.amazonaws.ssm#${err.code}`, message: err.message });
  const requestId = randomUUID();
  res.writeHead(err.status, {
    ...baseHeaders(nowMs, requestId, 'application/x-amz-json-1.1', Buffer.byteLength(text)),
    'x-amzn-errortype': err.code,
  });
  res.end(text);
}

/** Renders `<{action}Response><{action}Result>{resultXml}</…Result><ResponseMetadata>…` for STS. */
export function sendQueryResult(res: ServerResponse, nowMs: number, action: string, resultXml: string): void {
  const requestId = randomUUID();
  const text =
    `<${action}Response xmlns="${STS_XMLNS}"><${action}Result>${resultXml}</${action}Result>` +
    `<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${action}Response>`;
  res.writeHead(200, baseHeaders(nowMs, requestId, 'text/xml', Buffer.byteLength(text)));
  res.end(text);
}

export function sendQueryError(res: ServerResponse, nowMs: number, err: AwsError): void {
  const requestId = randomUUID();
  const text =
    `<ErrorResponse xmlns="${STS_XMLNS}"><Error><Type>${err.fault}</Type><Code>${xmlEscape(err.code)}</Code>` +
    `<Message>${xmlEscape(err.message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`;
  res.writeHead(err.status, baseHeaders(nowMs, requestId, 'text/xml', Buffer.byteLength(text)));
  res.end(text);
}

/** Every wire timestamp of SSM JSON is epoch seconds (fractions allowed). */
export const epochSeconds = (ms: number): number => ms / 1000;

/** STS writes timestamps as ISO 8601 in UTC without fractions, e.g. 2030-01-01T00:15:00Z. */
export const isoSeconds = (ms: number): string =>
  new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
