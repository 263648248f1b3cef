import { paginateDescribeInstanceInformation, type SSMClient } from '@aws-sdk/client-ssm';
import { AssumeRoleCommand, type STSClient } from '@aws-sdk/client-sts';
import type { Targets } from '../core/runbook.ts';
import type { FleetInstance } from '../core/targets.ts';
import { UserError } from '../core/errors.ts';
import { sessionCredentialsOf, type SessionCredentials } from './aws.ts';

export interface Inventory {
  /** The managed instances a runbook's target scope matches, as SSM sees them now. */
  instancesFor(roleArn: string, scope: Targets): Promise<FleetInstance[]>;
}

export interface InventoryDeps {
  readonly sts: Pick<STSClient, 'send'>;
  readonly ssmFor: (credentials: SessionCredentials) => SSMClient;
  readonly now?: () => Date;
}

// Planning only needs to look: this session can describe instances and nothing else.
const READ_ONLY_POLICY = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: 'ssm:DescribeInstanceInformation', Resource: '*' }],
});

/**
 * Resolves target scopes when a run is planned, so the plan names concrete instances and a
 * target that does not exist is refused before anything starts. It assumes the runbook's role
 * with a describe-only session policy; credentials are cached per role until near expiry.
 */
export function createInventory(deps: InventoryDeps): Inventory {
  const sessions = new Map<string, SessionCredentials>();
  const now = () => deps.now?.() ?? new Date();

  async function credentialsFor(roleArn: string): Promise<SessionCredentials> {
    const held = sessions.get(roleArn);
    if (held && held.expiration.getTime() - now().getTime() > 60_000) return held;
    const out = await deps.sts.send(
      new AssumeRoleCommand({
        RoleArn: roleArn,
        RoleSessionName: 'mechanic-planner',
        Policy: READ_ONLY_POLICY,
        DurationSeconds: 900,
        SourceIdentity: 'mechanic-planner',
      }),
    );
    const creds = sessionCredentialsOf(out.Credentials);
    if (!creds) throw new UserError('STS_FAILED', 'STS answered AssumeRole without credentials; try again');
    sessions.set(roleArn, creds);
    return creds;
  }

  return {
    async instancesFor(roleArn, scope) {
      const filters =
        'instanceIds' in scope
          ? [{ Key: 'InstanceIds', Values: [...scope.instanceIds] }]
          : Object.entries(scope.tags).map(([k, v]) => ({ Key: `tag:${k}`, Values: [v] }));
      const client = deps.ssmFor(await credentialsFor(roleArn));
      const found: FleetInstance[] = [];
      for await (const page of paginateDescribeInstanceInformation({ client, pageSize: 50 }, { Filters: filters })) {
        for (const info of page.InstanceInformationList ?? []) {
          if (!info.InstanceId) continue;
          found.push({
            id: info.InstanceId,
            name: info.ComputerName ?? info.Name,
            // The query matched on these tags; SSM does not return an instance's tags itself.
            tags: 'tags' in scope ? { ...scope.tags } : {},
            online: info.PingStatus === 'Online',
          });
        }
      }
      return found;
    },
  };
}
