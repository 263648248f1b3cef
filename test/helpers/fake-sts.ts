/**
 * A run's credential request and a fake STS behind a real CredentialLeases, for the unit tests of
 * src/activities/credentials.ts that need to hold STS's answers and move the clock.
 */
import type { AssumeRoleCommand } from '@aws-sdk/client-sts';
import { CredentialLeases } from '../../src/activities/credentials.ts';
import type { NewAuditEvent } from '../../src/core/audit.ts';
import type { CredentialRequest } from '../../src/core/execution.ts';

export const T0 = Date.parse('2026-01-01T00:00:00Z');
export const HOUR = 3_600_000;

export const credentialRequest = (over: Partial<CredentialRequest> = {}): CredentialRequest => ({
  executionId: 'mx-0000000001',
  roleArn: 'arn:aws:iam::123456789012:role/runner',
  region: 'us-east-1',
  sessionPolicy: '{"Version":"2012-10-17","Statement":[]}',
  durationSeconds: 1200,
  sourceIdentity: 'alice',
  runbook: 'deploy-web@3',
  approvers: ['bob'],
  ...over,
});

/** Lets every promise chain that can move on do so (an AssumeRole call waits for the probe first). */
export const settle = () => new Promise((resolve) => setImmediate(resolve));

/**
 * A fake STS. Each AssumeRole is numbered in the order it was asked, its key named after that
 * number (ASIAFAKE1 for the first), and lasts one hour from the clock (`clock.now`, T0 until the
 * test moves it). With `held`, each waits until `answer(n)` lets it through. `refuse` makes a call
 * throw what it returns (undefined grants it); `probe`, when given, is the worker's look at its own
 * credentials, and `probes` counts how often it was asked. `asked` holds each call's duration.
 */
export function fakeSts(
  opts: { held?: boolean; refuse?: (seconds: number) => unknown; probe?: () => Promise<boolean> } = {},
) {
  const clock = { now: T0 };
  const asked: number[] = [];
  const gates = new Map<number, () => void>();
  const events: NewAuditEvent[] = [];
  let probes = 0;
  const probe = opts.probe;
  const leases = new CredentialLeases({
    now: () => new Date(clock.now),
    record: async (e) => events.push(e),
    ...(probe
      ? {
          baseIsRoleSession: () => {
            probes++;
            return probe();
          },
        }
      : {}),
    sts: {
      send: (async (command: AssumeRoleCommand) => {
        const seconds = command.input.DurationSeconds ?? 0;
        asked.push(seconds);
        const n = asked.length;
        if (opts.held) await new Promise<void>((resolve) => gates.set(n, resolve));
        const refusal = opts.refuse?.(seconds);
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- what the SDK throws is not always an Error
        if (refusal !== undefined) throw refusal;
        return {
          Credentials: {
            AccessKeyId: `ASIAFAKE${n}`,
            SecretAccessKey: `secret-${n}`,
            SessionToken: `token-${n}`,
            Expiration: new Date(clock.now + HOUR),
          },
        };
      }) as never,
    },
  });
  return {
    leases,
    clock,
    asked,
    events,
    probes: () => probes,
    /** Lets the n-th AssumeRole (held) answer. */
    answer: async (n: number) => {
      gates.get(n)!();
      await settle();
    },
  };
}
