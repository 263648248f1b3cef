import { createHmac, timingSafeEqual } from 'node:crypto';

/** Slack's replay window: a request signed longer ago (or further ahead) than this is refused. */
export const MAX_SKEW_SECONDS = 5 * 60;

export type SignatureCheck =
  | { readonly ok: true }
  | { readonly ok: false; readonly problem: 'missing' | 'stale' | 'mismatch'; readonly message: string };

/**
 * Checks a Slack request signature (v0: HMAC-SHA256 over `v0:{timestamp}:{raw body}` with the
 * signing secret) the way bolt-js verify-request does, and also refuses timestamps from the
 * future: a request is accepted only within 5 minutes of now either way, so a captured request
 * cannot be replayed later. The comparison is constant-time. `body` must be the raw bytes as
 * received, before any parsing.
 */
export function verifySlackSignature(input: {
  readonly signingSecret: string;
  readonly timestamp: string | undefined;
  readonly signature: string | undefined;
  readonly body: string;
  readonly nowMs: number;
}): SignatureCheck {
  const { timestamp, signature } = input;
  if (!timestamp || !signature || !/^\d{1,12}$/.test(timestamp) || !/^v0=[0-9a-f]{64}$/.test(signature)) {
    return { ok: false, problem: 'missing', message: 'the request carries no valid Slack signature headers' };
  }
  const skew = Math.abs(Math.floor(input.nowMs / 1000) - Number(timestamp));
  if (skew > MAX_SKEW_SECONDS) {
    return { ok: false, problem: 'stale', message: 'the request was signed more than 5 minutes from now' };
  }
  const expected = Buffer.from(
    `v0=${createHmac('sha256', input.signingSecret).update(`v0:${timestamp}:${input.body}`).digest('hex')}`,
  );
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, problem: 'mismatch', message: 'the request signature does not match the signing secret' };
  }
  return { ok: true };
}
