import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';

/**
 * Server-side SigV4 verification: re-sign the request exactly as the client must have, with the
 * secret we hold, and compare. The extra checks matter as much as the signature: the signer trusts
 * x-amz-content-sha256 when present, so a body swapped under its original hash would re-sign to the
 * same signature unless we hash the body ourselves.
 */

export type SigV4Failure = 'missing' | 'incomplete' | 'mismatch' | 'expired';

export class SigV4Error extends Error {
  constructor(
    readonly kind: SigV4Failure,
    message: string,
  ) {
    super(message);
    this.name = 'SigV4Error';
  }
}

export interface ParsedAuthorization {
  accessKeyId: string;
  /** YYYYMMDD from the credential scope. */
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

const AUTH_RE =
  /^AWS4-HMAC-SHA256 Credential=([^/\s,]+)\/(\d{8})\/([^/\s,]+)\/([^/\s,]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;_.-]+),\s*Signature=([0-9a-f]{64})$/;

/** Parses the Authorization header; a missing one and a malformed one fail differently, as in AWS. */
export function parseAuthorization(header: string | undefined): ParsedAuthorization {
  if (header === undefined || header === '') throw new SigV4Error('missing', 'Missing Authentication Token');
  const m = AUTH_RE.exec(header.trim());
  if (!m) {
    throw new SigV4Error(
      'incomplete',
      "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters for AWS4-HMAC-SHA256.",
    );
  }
  const [, accessKeyId, date, region, service, signedHeaders, signature] = m as unknown as [string, ...string[]];
  return {
    accessKeyId: accessKeyId!,
    date: date!,
    region: region!,
    service: service!,
    signedHeaders: signedHeaders!.split(';'),
    signature: signature!,
  };
}

const AMZ_DATE_RE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
export const MAX_SKEW_MS = 5 * 60 * 1000;

function parseAmzDate(value: string): Date | undefined {
  const m = AMZ_DATE_RE.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, ...number[]];
  const t = Date.UTC(y!, mo! - 1, d, h, mi, s);
  return Number.isNaN(t) ? undefined : new Date(t);
}

const compactDate = (ms: number): string =>
  new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : v;
}

export interface VerifyInput {
  method: string;
  /** The request target as received, path plus query. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  auth: ParsedAuthorization;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string | undefined };
  nowMs: number;
}

/** Throws SigV4Error unless the request was signed by the holder of `credentials` within 5 minutes. */
export async function verifySigV4(input: VerifyInput): Promise<void> {
  const { headers, auth, body } = input;
  const amzDateText = headerValue(headers, 'x-amz-date');
  if (amzDateText === undefined)
    throw new SigV4Error(
      'incomplete',
      "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    );
  const signingDate = parseAmzDate(amzDateText);
  if (!signingDate) throw new SigV4Error('incomplete', `Invalid X-Amz-Date: ${amzDateText}`);
  if (auth.date !== amzDateText.slice(0, 8)) {
    throw new SigV4Error(
      'mismatch',
      `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${auth.date}' != '${amzDateText.slice(0, 8)}', from '${amzDateText}'.`,
    );
  }
  const skew = signingDate.getTime() - input.nowMs;
  if (skew < -MAX_SKEW_MS) {
    throw new SigV4Error(
      'expired',
      `Signature expired: ${amzDateText} is now earlier than ${compactDate(input.nowMs - MAX_SKEW_MS)} (${compactDate(input.nowMs)} - 5 min.)`,
    );
  }
  if (skew > MAX_SKEW_MS) {
    throw new SigV4Error(
      'expired',
      `Signature not yet current: ${amzDateText} is still later than ${compactDate(input.nowMs + MAX_SKEW_MS)} (${compactDate(input.nowMs)} + 5 min.)`,
    );
  }
  for (const required of ['host', 'x-amz-date']) {
    if (!auth.signedHeaders.includes(required)) {
      throw new SigV4Error('mismatch', `'${required}' must be a 'SignedHeader' in the AWS Authorization.`);
    }
  }
  if (input.credentials.sessionToken !== undefined && !auth.signedHeaders.includes('x-amz-security-token')) {
    throw new SigV4Error('mismatch', "'x-amz-security-token' must be a 'SignedHeader' in the AWS Authorization.");
  }

  const declaredHash = headerValue(headers, 'x-amz-content-sha256');
  if (declaredHash !== undefined) {
    const actual = createHash('sha256').update(body).digest('hex');
    if (declaredHash !== actual) {
      throw new SigV4Error('mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.");
    }
  }

  // Only the headers the client says it signed take part, with their values as received; the Host
  // header (with its port) is the one the client connected to, so a request replayed elsewhere fails.
  const signed: Record<string, string> = {};
  for (const name of auth.signedHeaders) {
    const v = headerValue(headers, name);
    if (v === undefined) throw new SigV4Error('mismatch', `The signed header '${name}' is missing from the request.`);
    signed[name] = v;
  }
  const host = signed['host'] ?? '';
  const url = new URL(input.url, 'http://placeholder');
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of url.searchParams) {
    const prev = query[k];
    query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const portText = /:(\d+)$/.exec(host)?.[1];
  const request = new HttpRequest({
    method: input.method,
    protocol: 'http:',
    hostname: host.replace(/:\d+$/, ''),
    ...(portText !== undefined ? { port: Number(portText) } : {}),
    path: url.pathname,
    query,
    headers: signed,
    body,
  });
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: input.credentials.accessKeyId,
      secretAccessKey: input.credentials.secretAccessKey,
      ...(input.credentials.sessionToken !== undefined ? { sessionToken: input.credentials.sessionToken } : {}),
    },
    region: auth.region,
    service: auth.service,
    sha256: Sha256,
    applyChecksum: false,
  });
  const resigned = await signer.sign(request, {
    signingDate,
    signingRegion: auth.region,
    signingService: auth.service,
    signableHeaders: new Set(auth.signedHeaders),
  });
  const expected = /Signature=([0-9a-f]{64})/.exec(String(resigned.headers['authorization'] ?? ''))?.[1] ?? '';
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(auth.signature, 'utf8');
  if (a.length !== b.length || !timingSafeEqual(a, b)) {
    throw new SigV4Error(
      'mismatch',
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
    );
  }
}

/** Constant-time string comparison for tokens (length leaks, content does not). */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
