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
/** DescribeInstanceInformation takes at most 100 values in one filter. */
const INFORMATION_FILTER_VALUES = 100;
/** DescribeInstanceInformation pages hold 5–50 instances, DescribeInstanceProperties pages 5–1,000. */
const INFORMATION_PAGE = 50;
const PROPERTIES_PAGE = 1000;
/**
 * Past this many instances, one listing of every instance's properties (1,000 a page) takes fewer
 * calls than asking for them 40 ids at a time.
 */
const LIST_ALL_PROPERTIES_ABOVE = 400;

/**
 * Resolves target scopes when a run is planned, so the plan names concrete instances and a
 * target that does not exist is refused before anything starts. It assumes the runbook's role
 * with a describe-only session policy; credentials are cached per role until near expiry.
 *
 * Names are AWS's: the `Name` tag. DescribeInstanceInformation finds instances by tag (so by
 * `tag:Name`) but returns no tags and only the host name (ComputerName); DescribeInstanceProperties
 * returns each instance's `Name` tag, which is what the plan shows and what `--target` matches.
 *
 * Fleets are big: every listing follows NextToken to its end, and a selector with more ids or
 * names than one filter takes (100) is asked in several calls, so nothing past the first page or
 * the first hundred is silently left out.
 */
export function createInventory(deps: InventoryDeps): Inventory {
  const sessions = new Map<string, SessionCredentials>();
  const now = () => deps.now?.() ?? new Date();

  /** AssumeRole calls under way, per role: lookups asked at once share one session. */
  const assuming = new Map<string, Promise<SessionCredentials>>();

  function credentialsFor(roleArn: string): Promise<SessionCredentials> {
    const held = sessions.get(roleArn);
    if (held && held.expiration.getTime() - now().getTime() > 60_000) return Promise.resolve(held);
    let pending = assuming.get(roleArn);
    if (!pending) {
      pending = assume(roleArn).finally(() => assuming.delete(roleArn));
      assuming.set(roleArn, pending);
    }
    return pending;
  }

  async function assume(roleArn: string): Promise<SessionCredentials> {
    let out;
    try {
      out = await deps.sts.send(
        new AssumeRoleCommand({
          RoleArn: roleArn,
          RoleSessionName: 'mechanic-planner',
          Policy: READ_ONLY_POLICY,
          DurationSeconds: 900,
          SourceIdentity: 'mechanic-planner',
        }),
      );
    } catch (e) {
      throw awsRefusal(
        'STS_FAILED',
        `the server could not assume the runbook's role ${roleArn} to look up its instances`,
        e,
      );
    }
    const creds = sessionCredentialsOf(out.Credentials);
    if (!creds) throw new UserError('STS_FAILED', 'STS answered AssumeRole without credentials; try again');
    sessions.set(roleArn, creds);
    return creds;
  }

  /** Each instance's `Name` tag (instances without one are absent from the map). */
  async function nameTags(client: SSMClient, ids: readonly string[]): Promise<Map<string, string>> {
    const names = new Map<string, string>();
    const keep = (props: readonly { InstanceId?: string | undefined; Name?: string | undefined }[] = []) => {
      for (const p of props) if (p.InstanceId && p.Name) names.set(p.InstanceId, p.Name);
    };
    if (ids.length > LIST_ALL_PROPERTIES_ABOVE) {
      const wanted = new Set(ids);
      for await (const page of paginateDescribeInstanceProperties({ client, pageSize: PROPERTIES_PAGE }, {})) {
        keep(page.InstanceProperties?.filter((p) => p.InstanceId !== undefined && wanted.has(p.InstanceId)));
      }
      return names;
    }
    for (let i = 0; i < ids.length; i += PROPERTY_FILTER_VALUES) {
      const valueSet = ids.slice(i, i + PROPERTY_FILTER_VALUES);
      const input = { InstancePropertyFilterList: [{ key: 'InstanceIds' as const, valueSet }] };
      for await (const page of paginateDescribeInstanceProperties({ client, pageSize: PROPERTIES_PAGE }, input)) {
        keep(page.InstanceProperties);
      }
    }
    return names;
  }

  /** The filter sets to ask for a selector: values split so that no filter holds more than SSM takes. */
  function filterSets(selector: TargetSelector): { Key: string; Values: string[] }[][] {
    const chunked = (key: string, values: readonly string[]) => {
      const sets: { Key: string; Values: string[] }[][] = [];
      for (let i = 0; i < values.length; i += INFORMATION_FILTER_VALUES)
        sets.push([{ Key: key, Values: values.slice(i, i + INFORMATION_FILTER_VALUES) }]);
      return sets;
    };
    if ('instanceIds' in selector) return chunked('InstanceIds', [...new Set(selector.instanceIds)]);
    if ('names' in selector) return chunked('tag:Name', [...new Set(selector.names)]);
    return [Object.entries(selector.tags).map(([k, v]) => ({ Key: `tag:${k}`, Values: [v] }))];
  }

  return {
    async instancesFor(roleArn, selector) {
      const client = deps.ssmFor(await credentialsFor(roleArn));
      try {
        return await lookUp(client, selector);
      } catch (e) {
        throw awsRefusal('SSM_COMMAND_FAILED', `SSM did not list the instances of role ${roleArn}`, e);
      }
    },
  };

  async function lookUp(client: SSMClient, selector: TargetSelector): Promise<FleetInstance[]> {
    {
      const found: { id: string; online: boolean }[] = [];
      const seen = new Set<string>();
      for (const filters of filterSets(selector)) {
        const pages = paginateDescribeInstanceInformation({ client, pageSize: INFORMATION_PAGE }, { Filters: filters });
        for await (const page of pages) {
          for (const info of page.InstanceInformationList ?? []) {
            if (!info.InstanceId || seen.has(info.InstanceId)) continue;
            seen.add(info.InstanceId);
            found.push({ id: info.InstanceId, online: info.PingStatus === 'Online' });
          }
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
    }
  }
}

/**
 * An AWS SDK error as one sentence for the person planning: what could not be done, AWS's own
 * error name and message, and what to do — fix the role or its policy when AWS refused
 * (a client fault), try again when AWS failed or throttled.
 */
function awsRefusal(code: 'STS_FAILED' | 'SSM_COMMAND_FAILED', what: string, e: unknown): UserError {
  const err = e as { name?: string; message?: string; $fault?: string };
  const said = `${err.name ?? 'Error'}: ${(err.message ?? String(e)).replace(/\s+/g, ' ').slice(0, 300)}`;
  const throttled = /Throttl|TooManyRequests|RequestLimitExceeded/.test(err.name ?? '');
  const advice =
    err.$fault === 'client' && !throttled
      ? "check the role's trust policy and permissions for the server's credentials"
      : 'try again in a moment';
  return new UserError(code, `${what} (${said}); ${advice}`, { cause: e });
}
