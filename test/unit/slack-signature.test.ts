/**
 * Slack request signatures, checked against requests signed by the test helper (written from
 * Slack's documentation) and by bolt-js's own verifier, so mechanic agrees with both.
 */
import { isValidSlackRequest } from '@slack/bolt';
import { describe, expect, test } from 'vitest';
import { verifySlackSignature } from '../../src/slack/signature.ts';
import { signSlackRequest } from '../helpers/fake-slack.ts';

const SECRET = 'fake-signing-secret-0123456789abcdef';
const NOW = 1_800_000_000_000;
const body = 'payload=%7B%22type%22%3A%22block_actions%22%7D';

function check(headers: Record<string, string>, b = body, nowMs = NOW) {
  return verifySlackSignature({
    signingSecret: SECRET,
    timestamp: headers['x-slack-request-timestamp'],
    signature: headers['x-slack-signature'],
    body: b,
    nowMs,
  });
}

describe('Slack request signatures', () => {
  const fresh = signSlackRequest(SECRET, body, NOW / 1000);

  test('a request signed with the secret, just now, is accepted — and bolt agrees', () => {
    expect(check(fresh)).toEqual({ ok: true });
    expect(
      isValidSlackRequest({
        signingSecret: SECRET,
        body,
        nowMilliseconds: NOW,
        headers: {
          'x-slack-signature': fresh['x-slack-signature']!,
          'x-slack-request-timestamp': Number(fresh['x-slack-request-timestamp']),
        },
      }),
    ).toBe(true);
  });

  test.each([
    ['another secret', signSlackRequest('another-secret-0123456789abcdef0000', body, NOW / 1000), body, 'mismatch'],
    ['a changed body', fresh, `${body}x`, 'mismatch'],
    ['a changed timestamp', { ...fresh, 'x-slack-request-timestamp': String(NOW / 1000 + 1) }, body, 'mismatch'],
    ['no signature', { 'x-slack-request-timestamp': String(NOW / 1000) }, body, 'missing'],
    ['no timestamp', { 'x-slack-signature': fresh['x-slack-signature']! }, body, 'missing'],
    [
      'a v1 signature',
      { ...fresh, 'x-slack-signature': fresh['x-slack-signature']!.replace('v0=', 'v1=') },
      body,
      'missing',
    ],
    [
      'a truncated signature',
      { ...fresh, 'x-slack-signature': fresh['x-slack-signature']!.slice(0, 40) },
      body,
      'missing',
    ],
    ['a signature 5 min 1 s old', signSlackRequest(SECRET, body, NOW / 1000 - 301), body, 'stale'],
    ['a signature 5 min 1 s in the future', signSlackRequest(SECRET, body, NOW / 1000 + 301), body, 'stale'],
  ])('%s is refused (%s)', (_label, headers, b, problem) => {
    expect(check(headers, b)).toMatchObject({ ok: false, problem });
  });

  test('exactly 5 minutes old is still accepted', () => {
    expect(check(signSlackRequest(SECRET, body, NOW / 1000 - 300))).toEqual({ ok: true });
  });
});
