import {
  paginateDescribeInstanceInformation,
  paginateDescribeInstanceProperties,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { AssumeRoleCommand, type STSClient } from '@aws-sdk/client-sts';
import type { FleetInstance, TargetSelector } from '../core/targets.ts';
import { UserError } from '../core/errors.ts';
import { sessionCredentialsOf, type SessionCredentials } from './aws.ts';

export interface Inventory {
  /**
   * The managed instances a selector matches (by id, by tags, or by their `Name` tag), as SSM
   * sees them now, each with its `Name` tag.
   */
  instancesFor(roleArn: string, selector: TargetSelector): Promise<FleetInstance[]>;
}

export interface InventoryDeps {
  readonly sts: Pick<STSClient, 'send'>;
  readonly ssmFor: (credentials: SessionCredentials) => SSMClient;
  readonly now?: () => Date;
}

// Planning only needs to look: this session can describe instances and nothing else.
const READ_ONLY_POLICY = JSON.stringify({
  Version: '2012-10-17',
  Statement: [
    {
      Effect: 'Allow',
      Action: ['ssm:DescribeInstanceInformation', 'ssm:DescribeInstanceProperties'],
      Resource: '*',
    },
  ],
});

/** DescribeInstanceProperties takes at most 40 values in one filter. */
const PROPERTY_FILTER_VALUES = 40;

/**
 * Resolves target scopes when a run is planned, so the plan names concrete instances and a
 * target that does not exist is refused before anything starts. It assumes the runbook's role
 * with a describe-only session policy; credentials are cached per role until near expiry.
 *
 * Names are AWS's: the `Name` tag. DescribeInstanceInformation finds instances by tag (so by
 * `tag:Name`) but returns no tags and only the host name (ComputerName); DescribeInstanceProperties
 * returns each instance's `Name` tag, which is what the plan shows and what `--target` matches.
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

  /** Each instance's `Name` tag (instances without one are absent from the map). */
  async function nameTags(client: SSMClient, ids: readonly string[]): Promise<Map<string, string>> {
    const names = new Map<string, string>();
    for (let i = 0; i < ids.length; i += PROPERTY_FILTER_VALUES) {
      const valueSet = ids.slice(i, i + PROPERTY_FILTER_VALUES);
      const input = { InstancePropertyFilterList: [{ key: 'InstanceIds' as const, valueSet }] };
      for await (const page of paginateDescribeInstanceProperties({ client, pageSize: 50 }, input)) {
        for (const p of page.InstanceProperties ?? []) if (p.InstanceId && p.Name) names.set(p.InstanceId, p.Name);
      }
    }
    return names;
  }

  return {
    async instancesFor(roleArn, selector) {
      const filters =
        'instanceIds' in selector
          ? [{ Key: 'InstanceIds', Values: [...selector.instanceIds] }]
          : 'names' in selector
            ? [{ Key: 'tag:Name', Values: [...selector.names] }]
            : Object.entries(selector.tags).map(([k, v]) => ({ Key: `tag:${k}`, Values: [v] }));
      const client = deps.ssmFor(await credentialsFor(roleArn));
      const found: { id: string; online: boolean }[] = [];
      for await (const page of paginateDescribeInstanceInformation({ client, pageSize: 50 }, { Filters: filters })) {
        for (const info of page.InstanceInformationList ?? []) {
          if (info.InstanceId) found.push({ id: info.InstanceId, online: info.PingStatus === 'Online' });
        }
      }
      const names =
        found.length > 0
          ? await nameTags(
              client,
              found.map((f) => f.id),
            )
          : new Map<string, string>();
      return found.map(({ id, online }) => ({
        id,
        name: names.get(id),
        // The query matched on these tags; SSM does not return an instance's tags itself.
        tags: 'tags' in selector ? { ...selector.tags } : {},
        online,
      }));
    },
  };
}
