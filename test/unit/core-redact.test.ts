import { describe, expect, test } from 'vitest';
import { REDACTED, cap, redact } from '../../src/core/redact.ts';

// Secret-shaped test values are assembled from parts so the file itself does not look like it leaks one.
const AWS_KEY_ID = ['AKIA', 'IOSFODNN7EXAMPLE'].join('');
const AWS_TEMP_KEY_ID = ['ASIA', 'Y34FZKBOKMUTVV7A'].join('');
const SLACK_TOKEN = ['xoxb', '123456789012', '1234567890123', 'AbCdEfGhIjKlMnOpQrStUvWx'].join('-');
const GITHUB_TOKEN = `ghp_${'a1B2c3D4e5'.repeat(4)}`;
const JWT = [
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9',
  'eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0',
  'SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c',
].join('.');
const PRIVATE_KEY = [
  '-----BEGIN RSA PRIVATE KEY-----',
  'MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun',
  'VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK',
  '-----END RSA PRIVATE KEY-----',
].join('\n');

describe('redact', () => {
  test.each([
    ['an AWS access key id', `key ${AWS_KEY_ID} in use`, `key ${REDACTED} in use`],
    ['an AWS temporary key id', `AccessKeyId: ${AWS_TEMP_KEY_ID}`, `AccessKeyId: ${REDACTED}`],
    ['a private key block', `before\n${PRIVATE_KEY}\nafter`, `before\n${REDACTED}\nafter`],
    [
      'an unterminated private key block, to the end',
      `before\n${PRIVATE_KEY.split('\n').slice(0, 2).join('\n')}`,
      `before\n${REDACTED}`,
    ],
    ['a Slack token', `token ${SLACK_TOKEN} ok`, `token ${REDACTED} ok`],
    ['a GitHub token', `using ${GITHUB_TOKEN}`, `using ${REDACTED}`],
    ['a JWT', `session ${JWT} issued`, `session ${REDACTED} issued`],
    ['a bearer token', 'Authorization: Bearer abcdef0123456789xyz', `Authorization: ${REDACTED}`],
    ['a basic credential', 'authorization: basic dXNlcjpwYXNzd29yZA==', `authorization: ${REDACTED}`],
    ['password=…', 'connecting with password=hunter2 now', `connecting with password=${REDACTED} now`],
    ['PASSWORD = "…"', 'DB_PASSWORD = "two words"', `DB_PASSWORD = ${REDACTED}`],
    ["api_key: '…'", "api_key: 'k-123'", `api_key: ${REDACTED}`],
    ['api-key=…;', 'x-api-key=abc123;next', `x-api-key=${REDACTED};next`],
    ['apikey:…', 'apikey:abc', `apikey:${REDACTED}`],
    ['secret=…', 'client_secret=s3cr3t', `client_secret=${REDACTED}`],
    ['token=…', 'export GITLAB_TOKEN=glpat-abc', `export GITLAB_TOKEN=${REDACTED}`],
    [
      'aws_secret_access_key = …',
      'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      `aws_secret_access_key = ${REDACTED}`,
    ],
    ['access_key=…', 'access_key=abc', `access_key=${REDACTED}`],
    ['several on one line', `password=a, token=b`, `password=${REDACTED}, token=${REDACTED}`],
  ])('replaces %s', (_what, text, expected) => {
    expect(redact(text)).toBe(expected);
  });

  test.each([
    'rotated to app.log.20250101T000000-exec-1.gz',
    'kept 5 archives',
    'switched from releases/v1.4.1 to releases/v1.4.2',
    'the password policy was updated',
    'AKIA is a prefix, not a key',
    'eyJ alone is not a token',
    '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----',
    'Bearer short',
    '',
    'ünïcødé 日本 🚀',
  ])('leaves %j alone', (text) => {
    expect(redact(text)).toBe(text);
  });

  test('is idempotent', () => {
    const once = redact(`password=hunter2 ${AWS_KEY_ID} ${JWT}`);
    expect(redact(once)).toBe(once);
  });

  // Regression: only bare keys were once matched, so JSON's quoted `"password": "hunter2"` (the most
  // common shape of a secret in logs) was stored as is.
  test.each([
    ['JSON with a space', '{"password": "hunter2"}'],
    ['JSON compact', '{"api_key":"k-123"}'],
    ['YAML-ish quoted key', "'client_secret': s3cr3t"],
  ])('replaces a quoted key (%s)', (_what, text) => {
    expect(redact(text)).not.toMatch(/hunter2|k-123|s3cr3t/);
  });
});

describe('cap', () => {
  test('leaves text within the cap alone', () => {
    expect(cap('abcdef', 6)).toBe('abcdef');
  });

  test('says how much was cut', () => {
    expect(cap('abcdefghij', 4)).toMatchInlineSnapshot(`
      "abcd
      [… 6 more characters not shown]"
    `);
  });

  test('a cap of 0 keeps nothing but the notice', () => {
    expect(cap('abc', 0)).toBe('\n[… 3 more characters not shown]');
  });
});
