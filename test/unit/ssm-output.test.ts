import { describe, expect, test } from 'vitest';
import { SSM_OUTPUT_LIMITS, sendRefusal, ssmTruncated, truncationNote } from '../../src/core/ssm-output.ts';
import { outputLines } from '../../cli/tui/OutputPane.tsx';
import { STDERR_LIMIT, STDOUT_LIMIT } from '../../src/devfleet/fleet.ts';

describe('ssmTruncated', () => {
  test.each([
    ['nothing near a limit', { stdout: 'ok\n', stderr: '' }, []],
    ['stdout one short of 24,000', { stdout: 'a'.repeat(23_999), stderr: '' }, []],
    [
      'stdout at 24,000 (SSM cut it there, or it ended there: cannot be told apart)',
      { stdout: 'a'.repeat(24_000), stderr: '' },
      ['stdout'],
    ],
    ['stderr one short of 8,000', { stdout: '', stderr: 'b'.repeat(7_999) }, []],
    ['stderr at 8,000', { stdout: '', stderr: 'b'.repeat(8_000) }, ['stderr']],
    ['both at their limits', { stdout: 'a'.repeat(24_000), stderr: 'b'.repeat(8_000) }, ['stdout', 'stderr']],
    ['stderr long, stdout short: the stream limits differ', { stdout: 'a'.repeat(8_000), stderr: '' }, []],
  ] as const)('%s', (_name, output, expected) => {
    expect(ssmTruncated(output)).toEqual(expected);
  });

  test("the limits are SSM's, and devfleet cuts at the same ones", () => {
    expect(SSM_OUTPUT_LIMITS).toEqual({ stdout: 24_000, stderr: 8_000 });
    expect([STDOUT_LIMIT, STDERR_LIMIT]).toEqual([SSM_OUTPUT_LIMITS.stdout, SSM_OUTPUT_LIMITS.stderr]);
  });
});

describe('truncationNote', () => {
  test('says SSM cut it, where, and that the rest is gone', () => {
    expect(truncationNote('stdout')).toMatchInlineSnapshot(
      `"output truncated by SSM: it returns only the first 24,000 characters; the rest was not kept"`,
    );
    expect(truncationNote('stderr')).toMatchInlineSnapshot(
      `"error output truncated by SSM: it returns only the first 8,000 characters; the rest was not kept"`,
    );
  });
});

describe('sendRefusal', () => {
  test('InvalidInstanceId: one sentence naming the instance, with AWS’s words and what to do', () => {
    expect(
      sendRefusal(
        'InvalidInstanceId',
        'Instances [[i-0ccccccccccccccc1]] not in a valid state for account 123456789012',
      ),
    ).toMatchInlineSnapshot(
      `"SSM refused to send the step to instance i-0ccccccccccccccc1 (InvalidInstanceId: Instances [[i-0ccccccccccccccc1]] not in a valid state for account 123456789012): its SSM agent is not connected, or it is not running; bring the agent back online (ping status Online) or leave the instance out, then launch again"`,
    );
  });

  test('names every instance once, and says so when AWS named none', () => {
    expect(sendRefusal('InvalidInstanceId', 'Instances [[i-0123456789abcdef0, mi-0123456789abcdef0]] …')).toContain(
      'to instances i-0123456789abcdef0, mi-0123456789abcdef0 (',
    );
    expect(sendRefusal('InvalidInstanceId', '')).toContain('to an instance of the step (');
  });

  test('UnsupportedPlatformType: names the instance and that the document is Linux-only', () => {
    expect(
      sendRefusal(
        'UnsupportedPlatformType',
        'Cannot perform operation for instance id i-0ccccccccccccccc1 of platform type Windows',
      ),
    ).toBe(
      'SSM refused to send the step to instance i-0ccccccccccccccc1 (UnsupportedPlatformType: Cannot perform operation for instance id i-0ccccccccccccccc1 of platform type Windows): AWS-RunShellScript runs only on Linux; leave the instance out of the targets',
    );
  });

  test('any other error is not a refusal of instances', () => {
    expect(sendRefusal('ThrottlingException', 'Rate exceeded')).toBeUndefined();
    expect(sendRefusal('InvalidDocument', 'i-0ccccccccccccccc1')).toBeUndefined();
  });
});

describe('the TUI output pane', () => {
  const output = { step: 'work', instance: 'web-1', status: 'Success', responseCode: 0, stdout: 'a\n', stderr: 'b\n' };
  test('says under each stream SSM cut that it was truncated by SSM', () => {
    const lines = outputLines({ ...output, truncatedBySsm: ['stdout', 'stderr'] }).map((l) => l.text);
    expect(lines).toEqual(['stdout', 'a', truncationNote('stdout'), 'stderr', 'b', truncationNote('stderr')]);
  });
  test('and nothing of the kind when SSM cut nothing', () => {
    expect(outputLines(output).map((l) => l.text)).toEqual(['stdout', 'a', 'stderr', 'b']);
  });
});
