import type { Targets } from './runbook.ts';
import { UserError } from './errors.ts';

/** STS limit on the plaintext of inline + managed session policies. */
export const SESSION_POLICY_MAX_CHARS = 2048;

export const RUN_SHELL_SCRIPT = 'AWS-RunShellScript';

export interface SessionPolicyInput {
  readonly region: string;
  readonly accountId: string;
  readonly instanceIds: readonly string[];
  readonly scope: Targets;
}

/**
 * The session policy for one run: SendCommand only with the shell document and only on the
 * planned instances, plus the calls needed to follow and cancel that command (those support no
 * resource types, so they are `*`). The role's own policy still applies; this only narrows it.
 * When listing every instance ARN would pass the STS size limit, runbooks bounded by tags or Name
 * tags fall back to those tag conditions — still no wider than what the runbook was reviewed for.
 */
export function buildSessionPolicy(input: SessionPolicyInput): string {
  const documentArn = `arn:aws:ssm:${input.region}::document/${RUN_SHELL_SCRIPT}`;
  const follow = {
    Sid: 'FollowAndCancel',
    Effect: 'Allow',
    Action: ['ssm:ListCommands', 'ssm:ListCommandInvocations', 'ssm:GetCommandInvocation', 'ssm:CancelCommand'],
    Resource: '*',
  };
  const document = { Sid: 'OnlyShellDocument', Effect: 'Allow', Action: 'ssm:SendCommand', Resource: documentArn };
  const explicit = {
    Sid: 'OnlyPlannedInstances',
    Effect: 'Allow',
    Action: 'ssm:SendCommand',
    Resource: input.instanceIds.map((id) => `arn:aws:ec2:${input.region}:${input.accountId}:instance/${id}`),
  };
  const policy = JSON.stringify({ Version: '2012-10-17', Statement: [document, explicit, follow] });
  if (policy.length <= SESSION_POLICY_MAX_CHARS) return policy;
  const bound = tagBoundOf(input.scope);
  if (bound) {
    const byTag = {
      Sid: 'OnlyTaggedInstances',
      Effect: 'Allow',
      Action: 'ssm:SendCommand',
      Resource: `arn:aws:ec2:${input.region}:${input.accountId}:instance/*`,
      Condition: {
        StringEquals: Object.fromEntries(Object.entries(bound).map(([k, v]) => [`ssm:resourceTag/${k}`, v])),
      },
    };
    const tagged = JSON.stringify({ Version: '2012-10-17', Statement: [document, byTag, follow] });
    if (tagged.length <= SESSION_POLICY_MAX_CHARS) return tagged;
  }
  throw new UserError(
    'TARGETS_INVALID',
    `the session policy for ${input.instanceIds.length} instances is larger than STS allows; target fewer instances`,
  );
}

/**
 * The runbook's own bound as tag conditions, for when listing the planned instances is too large:
 * its tags; its Name tags (any of them); for targets from a parameter, its `within` bound. Never
 * wider than what the runbook was reviewed for; undefined when the bound is a list of ids (or none).
 */
function tagBoundOf(scope: Targets): Record<string, string | string[]> | undefined {
  if ('tags' in scope) return { ...scope.tags };
  if ('names' in scope) return { Name: [...scope.names] };
  if ('fromParameter' in scope && scope.within) return tagBoundOf(scope.within);
  return undefined;
}

/** The account id inside an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME). */
export function accountOf(roleArn: string): string {
  const account = roleArn.split(':')[4];
  if (!account || !/^\d{12}$/.test(account))
    throw new UserError('RUNBOOK_INVALID', `${roleArn} is not an IAM role ARN`);
  return account;
}
